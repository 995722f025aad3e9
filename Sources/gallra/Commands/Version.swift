import ArgumentParser
import GallraPostgres

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print gallra's version, the commit it was built from and the libpq it uses."
    )

    @Flag(help: "Print the version alone.")
    var short = false

    @OptionGroup var output: FormatOptions

    func run() async throws {
        switch output.format {
        case .json:
            try JSONOutput.print(
                VersionJSON(version: BuildInfo.version, commit: BuildInfo.commit, libpq: LibPQ.versionString))
        case .text:
            print(short ? BuildInfo.version : BuildInfo.report)
        }
    }
}

/// `gallra version --format json`.
struct VersionJSON: Encodable {
    var version: String
    /// nil when the build did not know it.
    var commit: String?
    var libpq: String
}
