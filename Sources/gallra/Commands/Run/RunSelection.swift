import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPolicy

/// Options shared by `run` and `plan`: which policies, at which instant.
struct RunSelection: ParsableArguments {
    @Option(name: .customLong("policy"), help: "Only this policy (repeatable). Default: every stored policy.")
    var policies: [String] = []

    @Option(
        help: ArgumentHelp(
            "Evaluate expiry at this instant instead of now, e.g. 2027-01-01T00:00:00Z (UTC unless an offset is given).",
            valueName: "timestamp"))
    var asOf: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        if let asOf, TimeText.parseInstant(asOf) == nil {
            throw ValidationError(
                "--as-of \(asOf): not a timestamp; write it as ISO 8601, e.g. 2027-01-01T00:00:00Z or 2027-01-01")
        }
        for name in policies {
            if (try? PolicyName(name)) == nil { throw ValidationError("--policy \(name): not a policy name") }
        }
    }

    var instant: Date? { asOf.flatMap(TimeText.parseInstant) }
}
