import GallraCore
import GallraEngine
import Testing

/// Plan errors read as they did when they were messages: names only, never row values.
@Suite("Plan errors")
struct PlanErrorTests {
    @Test(arguments: [
        (
            PlanError.identifiedBeforeUnsupported(dataPoint: 2, table: "shop.address"),
            "data[2] (shop.address) must be identified before an earlier step breaks its path; the engine supports this only for rows the subject points to. Reorder the data points or add a direct link"
        ),
        (
            PlanError.referencedNotAtPathEnd(dataPoint: 1, table: "shop.order"),
            "data[1] (shop.order) is reached through a parent link followed by child links; the engine supports rows the subject points to only at the end of the path"
        ),
        (
            PlanError.unusableIdentifier("a\u{0}b"),
            #""a\0b" cannot be used as an identifier (empty, NUL, or over 63 bytes)"#
        ),
        (PlanError.unusableTypeName("text);"), #"the type name "text);" cannot be used in a cast"#),
    ])
    func description(error: PlanError, text: String) {
        #expect(error.description == text)
    }

    @Test func runErrorKeepsItsTextAndExitStatus() {
        #expect(RunError.missingAuditKey.description.hasPrefix("live runs need the audit key"))
        #expect(RunError.missingAuditKey.exitStatus == .software)
    }
}
