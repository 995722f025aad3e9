import Foundation
import GallraEngine
import GallraPostgres
import Testing

/// A migrated database holding a 3-block audit trail written by the engine under the key in `keyFile`;
/// block 2 holds the record of subject shop.customer:7.
private func withAuditTrail(
    _ body: (_ database: String, _ conninfo: String, _ keyFile: String, _ chain: [AuditBlock]) async throws -> Void
) async throws {
    try await Harness.withDatabase { database, conninfo in
        try await Harness.withTemporaryDirectory { directory in
            let keyFile = directory + "/audit-key"
            try "c2VjcmV0LWF1ZGl0LWtleS1mb3ItdGhlLWNsaS10ZXN0cy0xMjM0NTY3OA==\n".write(
                toFile: keyFile, atomically: true, encoding: .utf8)
            let migrate = try await gallra("migrate", "--database", conninfo)
            try #require(migrate.status == 0, "\(migrate.stderr)")
            let digester = try AuditKey.read(path: keyFile).digester
            let connection = try await PostgresConnection.connect(conninfo)
            var chain: [AuditBlock] = []
            let run = UUID().uuidString.lowercased()
            for keys in [["1", "2"], ["7", "8", "9"], ["12"]] {
                let records = keys.map {
                    AuditRecord(
                        subjectDigest: digester.digest(table: "shop.customer", key: $0),
                        counts: [
                            AuditCount(table: "shop.customer", action: .deleted, rows: 1),
                            AuditCount(table: "shop.order", action: .anonymized, rows: 2),
                        ])
                }
                chain.append(
                    try await connection.transaction { connection in
                        try await AuditTrail.append(
                            records: records, run: run, policy: "inactive-customers", policyVersion: 4,
                            keyCheck: digester.keyCheck, on: connection)
                    })
            }
            await connection.close()
            try await body(database, conninfo, keyFile, chain)
        }
    }
}

@Suite("gallra audit")
struct AuditCommandTests {
    @Test func helpExplainsTheHeadKeptOutsideTheDatabase() async throws {
        let result = try await gallra("audit", "verify", "--help")
        #expect(result.status == 0)
        #expect(result.stdout.contains("--expect-head"))
        #expect(result.stdout.contains("journal"))
        for command in ["verify", "show", "lookup", "runs"] {
            #expect(try await gallra("audit", command, "--help").stdout.contains("USAGE: gallra audit \(command)"))
        }
    }

    @Test func expectHeadTakesAnUnambiguousPrefixOfTwelveDigitsOrMore() async throws {
        try await withAuditTrail { database, conninfo, _, chain in
            let prefix = String(chain[1].hash.prefix(12))
            let through = try await gallra("audit", "verify", "--database", conninfo, "--expect-head", prefix)
            #expect(through.status == 0, "\(through.stderr)")
            #expect(through.stdout.contains("passes through the expected hash at block 2"))
            let upper = try await gallra(
                "audit", "verify", "--database", conninfo, "--expect-head",
                String(chain[2].hash.prefix(20)).uppercased())
            #expect(upper.status == 0, "\(upper.stderr)")
            #expect(upper.stdout.contains("passes through the expected hash at block 3"))

            let short = try await gallra(
                "audit", "verify", "--database", conninfo, "--expect-head", String(chain[1].hash.prefix(11)))
            #expect(short.status == 64)
            #expect(short.stderr.contains("or its first 12 or more"))
            let unknown = try await gallra("audit", "verify", "--database", conninfo, "--expect-head", "0123456789ab")
            #expect(unknown.status == 65)
            #expect(unknown.stdout.contains("audit trail BROKEN: no block has the expected hash 0123456789ab"))

            // Two blocks whose hashes start alike (possible only by tampering at 12 digits): the prefix names neither.
            try await Harness.psql(
                """
                SET session_replication_role = replica;
                UPDATE gallra.audit_block SET hash = '\(prefix)' || substr(hash, 13) WHERE sequence = 3;
                """, database: database)
            let ambiguous = try await gallra("audit", "verify", "--database", conninfo, "--expect-head", prefix)
            #expect(ambiguous.status == 64)
            #expect(
                ambiguous.stderr.contains("the hash prefix \(prefix) matches blocks 2 and 3; give more of the hash"))
        }
    }

    @Test func verifySaysIntactThenFindsTheEditedRecord() async throws {
        try await withAuditTrail { database, conninfo, _, chain in
            let intact = try await gallra("audit", "verify", "--database", conninfo)
            #expect(intact.status == 0, "\(intact.stderr)")
            #expect(intact.stdout == "audit trail intact: 3 blocks, 6 subject records; head 3 \(chain[2].hash)\n")

            let through = try await gallra("audit", "verify", "--database", conninfo, "--expect-head", chain[1].hash)
            #expect(through.status == 0)
            #expect(through.stdout.contains("passes through the expected hash at block 2"))
            let elsewhere = try await gallra(
                "audit", "verify", "--database", conninfo, "--expect-head", String(repeating: "ab", count: 32))
            #expect(elsewhere.status == 65)
            #expect(elsewhere.stdout.contains("audit trail BROKEN: no block has the expected hash"))
            #expect(try await gallra("audit", "verify", "--database", conninfo, "--expect-head", "abc").status == 64)

            try await Harness.psql(
                """
                SET session_replication_role = replica;
                UPDATE gallra.audit_subject SET counts = '[]' WHERE block = 2 AND ordinal = 3;
                """, database: database)
            let broken = try await gallra("audit", "verify", "--database", conninfo)
            #expect(broken.status == 65)
            #expect(
                broken.stdout.hasPrefix(
                    "audit trail BROKEN at block 2: a subject record was changed (records hash differs)\n"))
            #expect(broken.stdout.contains("intact before it: 1 block, 2 subject records; last intact block 1"))

            let json = try await gallra("audit", "verify", "--database", conninfo, "--format", "json")
            #expect(json.status == 65)
            let report = try #require(
                try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(report["intact"] as? Bool == false)
            let firstBreak = try #require(report["first_break"] as? [String: Any])
            #expect(firstBreak["block"] as? Int == 2)
            #expect(firstBreak["reason"] as? String == "edited_record")
            #expect(report["blocks"] as? Int == 1)
        }
    }

    @Test func showListsTheBlocksAsTextAndJSON() async throws {
        try await withAuditTrail { _, conninfo, keyFile, chain in
            let text = try await gallra("audit", "show", "--database", conninfo)
            #expect(text.status == 0, "\(text.stderr)")
            let lines = text.stdout.split(separator: "\n")
            #expect(lines.count == 4)
            #expect(lines.first?.hasPrefix("BLOCK  TIME") == true)
            #expect(lines[1].hasPrefix("3 "), "newest first")
            #expect(lines[2].contains("inactive-customers v4"))
            #expect(lines[2].hasSuffix("3         3        6           0"), "subjects, deleted, anonymized, retained")

            let json = try await gallra(
                "audit", "show", "--database", conninfo, "--format", "json", "--records", "--oldest-first",
                "--limit", "2", "--policy", "inactive-customers", "--run", chain[0].run, "--since", "2000-01-01")
            #expect(json.status == 0, "\(json.stderr)")
            let blocks = try #require(
                try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
            #expect(blocks.map { $0["sequence"] as? Int } == [1, 2])
            #expect(blocks[1]["hash"] as? String == chain[1].hash)
            #expect(blocks[1]["policy_version"] as? Int == 4)
            #expect(blocks[1]["anonymized"] as? Int == 6)
            let records = try #require(blocks[1]["records"] as? [[String: Any]])
            let digest = try AuditKey.read(path: keyFile).digester.digest(table: "shop.customer", key: "7")
            #expect(records.first?["subject_digest"] as? String == digest)

            let none = try await gallra("audit", "show", "--database", conninfo, "--policy", "other-policy")
            #expect(none.status == 0)
            #expect(none.stdout == "no audit block matches\n")
            #expect(try await gallra("audit", "show", "--database", conninfo, "--since", "last tuesday").status == 64)
        }
    }

    @Test func lookupFindsTheSubjectAndKeepsItsKeyOutOfTheLogs() async throws {
        try await withAuditTrail { _, conninfo, keyFile, chain in
            let found = try await gallra(
                "audit", "lookup", "--database", conninfo, "--subject", "Shop.Customer:7", "--audit-key-file",
                keyFile, "--log-level", "trace")
            #expect(found.status == 0, "\(found.stderr)")
            #expect(found.stdout.hasPrefix("shop.customer:7 was processed once (subject digest "))
            #expect(found.stdout.contains("block 2  policy inactive-customers v4  run \(chain[1].run)"))
            #expect(found.stdout.contains("shop.customer deleted 1 row\n"))
            #expect(found.stdout.contains("shop.order anonymized 2 rows"))
            let key = try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .newlines)
            #expect(!found.stdout.contains(key) && !found.stderr.contains(key))
            #expect(!found.stderr.contains("customer:7"), "the subject is not logged")

            // The key from the setting (environment) and from systemd's credentials directory.
            let json = try await gallra(
                "audit", "lookup", "--database", conninfo, "--subject", "shop.customer:7", "--format", "json",
                environment: ["GALLRA_AUDIT_KEY_FILE": keyFile])
            #expect(json.status == 0, "\(json.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(report["found"] as? Bool == true)
            let records = try #require(report["records"] as? [[String: Any]])
            #expect(records.map { $0["block"] as? Int } == [2])
            #expect(records.first?["policy"] as? String == "inactive-customers")
            let directory = (keyFile as NSString).deletingLastPathComponent
            let credential = try await gallra(
                "audit", "lookup", "--database", conninfo, "--subject", "shop.customer:7",
                environment: ["CREDENTIALS_DIRECTORY": directory])
            #expect(credential.status == 0, "\(credential.stderr)")
            #expect(credential.stdout.contains("was processed once"))

            let unknown = try await gallra(
                "audit", "lookup", "--database", conninfo, "--subject", "shop.customer:123", "--audit-key-file",
                keyFile)
            // This database has no table shop.customer: a digest of it can match nothing.
            #expect(unknown.status == 65, "\(unknown.stderr)")
            #expect(unknown.stderr.contains("table shop.customer does not exist"))
            #expect(unknown.stdout.isEmpty)
        }
    }

    @Test func lookupWithoutAKeyIsAConfigurationError() async throws {
        try await withAuditTrail { _, conninfo, keyFile, _ in
            let none = try await gallra("audit", "lookup", "--database", conninfo, "--subject", "shop.customer:7")
            #expect(none.status == 78)
            #expect(none.stderr.contains("no audit key"))
            #expect(none.stderr.contains("--audit-key-file"))
            let missing = try await gallra(
                "audit", "lookup", "--database", conninfo, "--subject", "shop.customer:7", "--audit-key-file",
                keyFile + ".missing")
            #expect(missing.status == 78)
            #expect(missing.stderr.contains("does not exist"))
            let unqualified = try await gallra(
                "audit", "lookup", "--database", conninfo, "--subject", "customer:7", "--audit-key-file", keyFile)
            #expect(unqualified.status == 64)
            #expect(unqualified.stderr.contains("schema"))
            #expect(!unqualified.stderr.contains(":7"), "the key is not echoed")
        }
    }

    @Test func runsAreListed() async throws {
        try await withAuditTrail { database, conninfo, _, _ in
            try await Harness.psql(
                """
                INSERT INTO gallra.run (id, mode, trigger, as_of, started_at, outcome, counts)
                VALUES ('6f1c0d3e-0000-4000-8000-000000000001', 'live', 'manual', now(), '2026-01-02 03:00+00',
                        'done', '{"inactive-customers": {"processed": 6}}')
                """, database: database)
            let text = try await gallra("audit", "runs", "--database", conninfo)
            #expect(text.status == 0, "\(text.stderr)")
            #expect(
                text.stdout.contains("6f1c0d3e-0000-4000-8000-000000000001  live  manual   2026-01-02 03:00:00 UTC"))
            let json = try await gallra("audit", "runs", "--database", conninfo, "--format", "json")
            let runs = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
            let counts = try #require(runs.first?["counts"] as? [String: Any])
            #expect((counts["inactive-customers"] as? [String: Any])?["processed"] as? Int == 6)
        }
    }
}
