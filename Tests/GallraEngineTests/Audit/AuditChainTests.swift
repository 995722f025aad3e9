import GallraEngine
import Testing

@Suite("Audit chain")
struct AuditChainTests {
    static let records = [
        AuditRecord(
            subjectDigest: String(repeating: "a", count: 64),
            counts: [
                AuditCount(table: "shop.order", action: .anonymized, rows: 3),
                AuditCount(table: "shop.customer", action: .deleted, rows: 1),
            ]),
        AuditRecord(
            subjectDigest: String(repeating: "b", count: 64),
            counts: [AuditCount(table: "shop.customer", action: .deleted, rows: 1)]),
    ]

    static func chain() -> [AuditBlock] {
        let first = AuditChain.seal(
            after: nil, run: "r1", policy: "p", policyVersion: 1, createdAtMicroseconds: 1_000, records: records)
        let second = AuditChain.seal(
            after: (first.sequence, first.hash), run: "r1", policy: "p", policyVersion: 1,
            createdAtMicroseconds: 2_000, records: Array(records.prefix(1)))
        return [first, second]
    }

    @Test func blocksChain() {
        let blocks = Self.chain()
        #expect(blocks[0].sequence == 1)
        #expect(blocks[0].previousHash == AuditChain.genesisHash)
        #expect(blocks[1].sequence == 2)
        #expect(blocks[1].previousHash == blocks[0].hash)
        #expect(blocks[0].hash.count == 64)
        #expect(blocks[0].expectedHash(records: Self.records).hash == blocks[0].hash)
    }

    @Test func theRecordsHashIsSHA256OfLengthPrefixedFields() {
        // Computed apart from the code, from the encoding: SHA-256 of "gallra-audit-records-v1\n", then each field
        // as `<byte length>:<text>\n` ("shop.åäö" is 11 bytes), numbers in decimal: the record count, and per record
        // the digest, the count of counts, and per count the table, the action and the rows.
        let records = [
            Self.records[0],
            AuditRecord(
                subjectDigest: String(repeating: "b", count: 64),
                counts: [
                    AuditCount(table: "shop.åäö", action: .retained, rows: 1_234_567_890),
                    AuditCount(table: "shop.order", action: .anonymized, rows: 10),
                ]),
            AuditRecord(subjectDigest: String(repeating: "c", count: 64), counts: []),
        ]
        #expect(
            AuditChain.recordsHash(records) == "e3b18226290883330e8ab4dbb3eda4d31dec02198b9f77d1bbce01bda9611204")
    }

    @Test func countsAreSortedSoOrderOfWritingDoesNotMatter() {
        let reordered = AuditRecord(
            subjectDigest: Self.records[0].subjectDigest, counts: Self.records[0].counts.reversed())
        #expect(reordered == Self.records[0])
    }

    @Test func anyChangeToARecordChangesTheHash() {
        let block = Self.chain()[0]
        var edited = Self.records
        edited[0].counts[0].rows += 1
        #expect(block.expectedHash(records: edited).hash != block.hash)
        var swapped = Self.records
        swapped.swapAt(0, 1)
        #expect(block.expectedHash(records: swapped).hash != block.hash, "reordering records is detected")
        #expect(block.expectedHash(records: Array(Self.records.prefix(1))).hash != block.hash, "a deleted record")
        #expect(
            block.expectedHash(records: Self.records + [Self.records[1]]).hash != block.hash, "an inserted record")
    }

    @Test func anyChangeToABlockChangesTheHash() {
        let block = Self.chain()[0]
        var edited = block
        edited.policyVersion = 2
        #expect(edited.expectedHash(records: Self.records).hash != block.hash)
        edited = block
        edited.createdAtMicroseconds += 1
        #expect(edited.expectedHash(records: Self.records).hash != block.hash)
    }

    @Test func fieldsCannotBeShiftedIntoEachOther() {
        // "ab" + "c" and "a" + "bc" must not encode alike.
        let one = AuditChain.blockHash(
            sequence: 1, run: "ab", policy: "c", policyVersion: 1, createdAtMicroseconds: 0, subjects: 0,
            recordsHash: "", previousHash: "")
        let two = AuditChain.blockHash(
            sequence: 1, run: "a", policy: "bc", policyVersion: 1, createdAtMicroseconds: 0, subjects: 0,
            recordsHash: "", previousHash: "")
        #expect(one != two)
    }

    @Test func subjectDigestsDependOnTableKeyAndSecret() {
        let digester = SubjectDigester(key: Array("k".utf8) + [UInt8](repeating: 7, count: 31))
        let other = SubjectDigester(key: [UInt8](repeating: 9, count: 32))
        let digest = digester.digest(table: "shop.customer", key: "123")
        #expect(digest.count == 64)
        #expect(digest == digester.digest(table: "shop.customer", key: "123"))
        #expect(digest != digester.digest(table: "shop.customer", key: "124"))
        #expect(digest != digester.digest(table: "shop.employee", key: "123"))
        #expect(digest != other.digest(table: "shop.customer", key: "123"))
        // An independent oracle: HMAC-SHA-256 of "shop.customer:123" under the same key, via RFC-checked Digest.
        #expect(
            digest
                == Digest.hex(
                    Digest.hmacSHA256(
                        key: Array("k".utf8) + [UInt8](repeating: 7, count: 31),
                        message: Array("shop.customer:123".utf8)
                    )))
    }
}
