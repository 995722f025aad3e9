import Testing

@testable import GallraEngine

@Suite("A batch's counts per subject")
struct SubjectCountsTests {
    @Test func recordsHoldEachSubjectsCountsInRecordOrderWithoutZeros() {
        var counts = SubjectCounts(subjects: ["1", "2", "3"])
        let orders = counts.column(table: "shop.order", action: .anonymized)
        let customers = counts.column(table: "shop.customer", action: .deleted)
        #expect(counts.column(table: "shop.order", action: .anonymized) == orders, "a kind has one column")
        if let row = counts.row(of: "1") {
            counts.add(2, row: row, column: orders)
            counts.add(1, row: row, column: customers)
        }
        counts.add(0, subject: "2", table: "shop.address", action: .retained)
        counts.add(1, subject: "2", table: "shop.address", action: .anonymized)
        counts.add(1, subject: "2", table: "shop.address", action: .anonymized)
        counts.add(5, subject: "not in the batch", table: "shop.customer", action: .deleted)
        #expect(counts.row(of: "not in the batch") == nil)

        let (records, audited) = counts.records(of: ["2", "1", "3"]) { "digest of \($0)" }
        // The public initializer sorts each record's counts itself: the order the records must have.
        #expect(
            records == [
                AuditRecord(
                    subjectDigest: "digest of 2",
                    counts: [AuditCount(table: "shop.address", action: .anonymized, rows: 2)]),
                AuditRecord(
                    subjectDigest: "digest of 1",
                    counts: [
                        AuditCount(table: "shop.order", action: .anonymized, rows: 2),
                        AuditCount(table: "shop.customer", action: .deleted, rows: 1),
                    ]),
                AuditRecord(subjectDigest: "digest of 3", counts: []),
            ])
        #expect(records[1].counts.map(\.table) == ["shop.customer", "shop.order"])
        #expect(
            audited == [
                AuditCountKey(table: "shop.order", action: .anonymized): 2,
                AuditCountKey(table: "shop.customer", action: .deleted): 1,
                AuditCountKey(table: "shop.address", action: .anonymized): 2,
            ])
    }
}
