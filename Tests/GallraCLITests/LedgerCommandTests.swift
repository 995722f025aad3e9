import Foundation
import GallraEngine
import Testing

@Suite("gallra ledger")
struct LedgerCommandTests {
    /// The environment of a live run that keeps its ledger at `path`.
    static func environment(_ shop: DemoShop, ledger path: String) -> [String: String] {
        shop.keyEnvironment.merging(["GALLRA_LEDGER_PATH": path]) { $1 }
    }

    /// A demo shop after one live run that kept its ledger in the shop's directory.
    static func withRunLedger(_ body: (DemoShop, String) async throws -> Void) async throws {
        try await DemoShop.with(customers: 300) { shop in
            let path = shop.directory + "/state/ledger"
            let run = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, environment: environment(shop, ledger: path))
            try #require(run.status == 0, "\(run.stderr)")
            try await body(shop, path)
        }
    }

    static func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func aLiveRunKeepsALedgerThatVerifiesAndEqualsTheExport() async throws {
        try await Self.withRunLedger { shop, path in
            let blocks = Int(try await shop.psql("SELECT count(*) FROM gallra.audit_block")) ?? 0
            #expect(blocks > 0)
            let kept = try Self.lines(path)
            #expect(kept.count == blocks + 1)
            #expect(kept[0].hasPrefix(#"{"kind":"header","format":1,"database":"\#(shop.database)""#))
            let head = try await shop.psql("SELECT hash FROM gallra.audit_head")
            let verify = try await gallra("ledger", "verify", path, "--expect-head", head)
            #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
            #expect(verify.stdout.contains("intact: \(blocks) block"))
            // The export of the trail holds the same blocks, line for line.
            let exported = shop.directory + "/exported"
            let export = try await shop.gallra("ledger", "export", "--out", exported)
            #expect(export.status == 0, "\(export.stderr)")
            #expect(try Array(Self.lines(exported).dropFirst()) == Array(kept.dropFirst()))
            #expect(try await gallra("ledger", "verify", exported).status == 0)
            // An export never overwrites a file.
            let again = try await shop.gallra("ledger", "export", "--out", path)
            #expect(again.status == 64)
            #expect(try Self.lines(path) == kept)
            // Standard output gets the same lines; --since a time after every block gives the header alone.
            let printed = try await shop.gallra("ledger", "export")
            #expect(printed.stdout.split(separator: "\n").dropFirst().map(String.init) == Array(kept.dropFirst()))
            let none = try await shop.gallra("ledger", "export", "--since", "2999-01-01")
            #expect(none.stdout.split(separator: "\n").count == 1)
        }
    }

    @Test func aCutOrEditedLedgerFailsVerificationNamingTheLine() async throws {
        try await Self.withRunLedger { shop, path in
            let kept = try Self.lines(path)
            try #require(kept.count >= 3)
            let broken = shop.directory + "/broken"
            // Cut inside the last line.
            let text = kept.joined(separator: "\n") + "\n"
            try String(text.dropLast(40)).write(toFile: broken, atomically: true, encoding: .utf8)
            var verify = try await gallra("ledger", "verify", broken)
            #expect(verify.status == 65)
            #expect(verify.stdout.contains("line \(kept.count): the last line is cut"), "\(verify.stdout)")
            // Cut at a line boundary: it reads whole, and the head the journal logged is missing.
            let head = try await shop.psql("SELECT hash FROM gallra.audit_head")
            try (kept.dropLast().joined(separator: "\n") + "\n").write(
                toFile: broken, atomically: true, encoding: .utf8)
            #expect(try await gallra("ledger", "verify", broken).status == 0)
            verify = try await gallra("ledger", "verify", broken, "--expect-head", head)
            #expect(verify.status == 65)
            #expect(verify.stdout.contains("no block has the expected hash"))
            // A row count changed in block 2's records.
            var edited = kept
            let target = edited[2]
            let changed = target.replacingOccurrences(of: #""rows":1"#, with: #""rows":2"#)
            try #require(changed != target)
            edited[2] = changed
            try (edited.joined(separator: "\n") + "\n").write(toFile: broken, atomically: true, encoding: .utf8)
            verify = try await gallra("ledger", "verify", broken, "--format", "json")
            #expect(verify.status == 65)
            let report = try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any]
            let problem = report?["problem"] as? [String: Any]
            #expect(problem?["line"] as? Int == 3)
            #expect((problem?["message"] as? String)?.contains("block 2: a subject record was changed") == true)
            // Two blocks swapped.
            edited = kept
            edited.swapAt(1, 2)
            try (edited.joined(separator: "\n") + "\n").write(toFile: broken, atomically: true, encoding: .utf8)
            verify = try await gallra("ledger", "verify", broken)
            #expect(verify.status == 65)
            #expect(
                verify.stdout.contains("line 3: block 1 follows block 2: blocks were reordered"), "\(verify.stdout)")
        }
    }

    @Test func aLedgerThatCannotBeWrittenFailsTheRunLoudlyAndCatchesUpLater() async throws {
        try await DemoShop.with(customers: 300) { shop in
            // The ledger's directory is a file: nothing can be created under it (whoever runs the tests).
            let blocker = shop.directory + "/state"
            try "not a directory".write(toFile: blocker, atomically: true, encoding: .utf8)
            let path = blocker + "/ledger"
            let env = Self.environment(shop, ledger: path)
            let run = try await shop.gallra("run", "--once", "--as-of", DemoShop.asOf, environment: env)
            #expect(run.status == 74, "\(run.stderr)")
            #expect(run.stderr.contains("ledger \(path)"))
            #expect(run.stderr.contains("committed and in the audit trail"))
            // The run's work is committed and audited.
            let blocks = Int(try await shop.psql("SELECT count(*) FROM gallra.audit_block")) ?? 0
            #expect(blocks > 0)
            #expect(try await shop.psql("SELECT outcome FROM gallra.run ORDER BY started_at DESC LIMIT 1") == "done")
            #expect(try await shop.gallra("audit", "verify").status == 0)
            // Once it can be written, the next run appends every block.
            try FileManager.default.removeItem(atPath: blocker)
            let next = try await shop.gallra("run", "--once", "--as-of", DemoShop.asOf, environment: env)
            #expect(next.status == 0, "\(next.stderr)")
            let after = Int(try await shop.psql("SELECT count(*) FROM gallra.audit_block")) ?? 0
            #expect(try Self.lines(path).count == after + 1)
            #expect(try await gallra("ledger", "verify", path).status == 0)
        }
    }

    @Test func aRestoredDatabaseRefusesLiveRunsUntilAccepted() async throws {
        try await Self.withRunLedger { shop, path in
            let env = Self.environment(shop, ledger: path)
            let blocks = Int(try await shop.psql("SELECT count(*) FROM gallra.audit_block")) ?? 0
            try #require(blocks >= 2)
            // The trail loses its last block, as a restore of a backup taken before it would.
            try await shop.psql(
                """
                SET session_replication_role = replica;
                DELETE FROM gallra.audit_subject WHERE block = \(blocks);
                DELETE FROM gallra.audit_block WHERE sequence = \(blocks);
                UPDATE gallra.audit_head SET (sequence, hash) =
                    (SELECT sequence, hash FROM gallra.audit_block WHERE sequence = \(blocks - 1));
                """)
            let refused = try await shop.gallra("run", "--once", "--as-of", DemoShop.asOf, environment: env)
            #expect(refused.status == 75)
            #expect(refused.stderr.contains("gallra ledger replay --dry-run"))
            #expect(refused.stderr.contains("1 block(s)"))
            // Dry runs go on.
            #expect(try await shop.gallra("plan", "--as-of", DemoShop.asOf, environment: env).status == 0)
            let accept = try await shop.gallra("ledger", "accept", environment: env)
            #expect(accept.status == 0, "\(accept.stderr)")
            #expect(accept.stdout.contains("continues from block \(blocks - 1)"))
            let lines = try Self.lines(path)
            #expect(lines.last?.contains(#""kind":"restore","#) == true)
            #expect(lines.last?.contains(#""resolution":"accept""#) == true)
            #expect(try await gallra("ledger", "verify", path).status == 0)
            let resumed = try await shop.gallra("run", "--once", "--as-of", DemoShop.asOf, environment: env)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            // Nothing left to accept.
            #expect(try await shop.gallra("ledger", "accept", environment: env).status == 75)
        }
    }
}
