import Foundation
import GallraPolicy
import Testing

@testable import GallraEngine

/// A run's counts as `gallra.run.counts` stores them: skip reasons, failures and step actions are typed in
/// the code and plain text in the JSON, exactly as written before they were typed.
@Suite("Run reports as stored JSON")
struct RunReportCodingTests {
    static let reports: [PolicyRunReport] = {
        var disabled = PolicyRunReport(name: "old-orders", version: 2, state: .disabled)
        disabled.skipped = .disabled
        var interrupted = PolicyRunReport(name: "drafts", version: 1, state: .active)
        interrupted.skipped = .interrupted
        var failed = PolicyRunReport(name: "customers", version: 3, state: .active)
        failed.failure = PolicyFailure(rawValue: #"relation "shop.customer" does not exist"#)
        failed.steps = [
            StepCounts(dataPoint: 0, table: "shop.customer", action: .delete, rows: 3, retained: 0),
            StepCounts(dataPoint: 1, table: "shop.order", action: .anonymize, rows: 5, retained: 1),
        ]
        failed.tables = PolicyRunReport.tables(failed.steps)
        return [disabled, interrupted, failed]
    }()

    /// The text today's reports hold, written out by hand.
    static let storedJSON =
        #"[{"batches":0,"exempted":0,"expiring":0,"name":"old-orders","processed":0,"#
        + #""skipped":"the policy is disabled: live runs act only on active policies","skipped_batches":[],"#
        + #""state":"disabled","steps":[],"still_due":0,"tables":[],"throttled_seconds":0,"version":2},"#
        + #"{"batches":0,"exempted":0,"expiring":0,"name":"drafts","processed":0,"#
        + #""skipped":"the run was interrupted before this policy","skipped_batches":[],"state":"active","#
        + #""steps":[],"still_due":0,"tables":[],"throttled_seconds":0,"version":1},"#
        + #"{"batches":0,"exempted":0,"expiring":0,"failure":"relation \"shop.customer\" does not exist","#
        + #""name":"customers","processed":0,"skipped_batches":[],"state":"active","#
        + #""steps":[{"action":"delete","data_point":0,"retained":0,"rows":3,"table":"shop.customer"},"#
        + #"{"action":"anonymize","data_point":1,"retained":1,"rows":5,"table":"shop.order"}],"still_due":0,"#
        + #""tables":[{"anonymized":0,"deleted":3,"retained":0,"table":"shop.customer"},"#
        + #"{"anonymized":5,"deleted":0,"retained":1,"table":"shop.order"}],"throttled_seconds":0,"version":3}]"#

    @Test func encodesAsStoredBefore() throws {
        #expect(try Engine.countsJSON(Self.reports) == Self.storedJSON)
    }

    @Test func decodesStoredText() throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let decoded = try decoder.decode([PolicyRunReport].self, from: Data(Self.storedJSON.utf8))
        #expect(decoded == Self.reports)
        #expect(decoded.map(\.skipped) == [.disabled, .interrupted, nil])
        #expect(decoded.last?.steps.map(\.action) == [.delete, .anonymize])
    }

    /// A delete-or-anonymize step stores how many of its rows it anonymized; the table's counts split them.
    @Test func aDeleteOrAnonymizeStepStoresItsAnonymizedRows() throws {
        var report = PolicyRunReport(name: "erase", version: 1, state: .active)
        report.steps = [
            StepCounts(
                dataPoint: 0, table: "shop.order", action: .deleteOrAnonymize, rows: 5, retained: 0, anonymized: 2)
        ]
        report.tables = PolicyRunReport.tables(report.steps)
        #expect(report.tables == [TableCounts(table: "shop.order", deleted: 3, anonymized: 2, retained: 0)])
        let json = try Engine.countsJSON([report])
        #expect(
            json.contains(
                #""steps":[{"action":"delete_or_anonymize","anonymized":2,"data_point":0,"retained":0,"rows":5,"table":"shop.order"}]"#
            ))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode([PolicyRunReport].self, from: Data(json.utf8)) == [report])
    }

    @Test func skipReasonsFollowThePolicyState() {
        #expect(SkipReason(notActive: .active) == nil)
        #expect(
            SkipReason(notActive: .draft)?.description == "the policy is draft: live runs act only on active policies")
        #expect(SkipReason(notActive: .disabled) == .disabled)
    }
}
