import GallraTestSupport
import Foundation
import GallraPolicy
import GallraPostgres
import Testing

@testable import GallraEngine

@Suite("The policy store")
struct PolicyStoreTests {
    /// A migrated fresh database and a store on it.
    func withStore(_ body: (TestDatabase, PostgresConnection, PolicyStore) async throws -> Void) async throws {
        try await TestDatabase.with { database, connection in
            try await Schema.migrate(on: connection)
            try await body(database, connection, PolicyStore(connection: connection))
        }
    }

    func count(_ connection: PostgresConnection, _ name: String? = nil) async throws -> Int {
        try await scalar(
            "SELECT count(*) FROM gallra.policy WHERE $1::text IS NULL OR name = $1", [name.map { .text($0) } ?? .null],
            as: Int.self, on: connection)
    }

    @Test("a new policy is stored as version 1 with its canonical JSON, digest, source and author")
    func create() async throws {
        try await withStore { _, connection, store in
            let customers = try policy("inactive-customers")
            let changes = try await store.apply([(customers, source: "policies/customers.yaml")], appliedBy: "alice")
            #expect(changes == [.created(customers.name, version: 1)])

            // Oracle: the row, compared in SQL with the canonical text the test hands over.
            let row = try #require(
                try await connection.query(
                    """
                    SELECT version, state, source, applied_by,
                           definition = $1::jsonb AS same_definition,
                           digest = encode(sha256(convert_to($1, 'UTF8')), 'hex') AS digest_of_canonical_text
                    FROM gallra.policy WHERE name = 'inactive-customers'
                    """, [.text(customers.canonicalJSON)]
                ).first)
            #expect(try row.decode("version", as: Int.self) == 1)
            #expect(try row.decode("state", as: String.self) == "active")
            #expect(try row.decode("source", as: String.self) == "policies/customers.yaml")
            #expect(try row.decode("applied_by", as: String.self) == "alice")
            #expect(try row.decode("same_definition", as: Bool.self))
            #expect(try row.decode("digest_of_canonical_text", as: Bool.self))

            let latest = try #require(try await store.latest(customers.name))
            #expect(latest.version == 1 && latest.state == .active && latest.source == "policies/customers.yaml")
            #expect(abs(latest.appliedAt.timeIntervalSinceNow) < 60)
            #expect(try await store.list().map(\.name) == ["inactive-customers"])
            #expect(try await store.latest(PolicyName("unknown")) == nil)
        }
    }

    @Test("re-applying an unchanged document stores no version, whatever its layout")
    func unchanged() async throws {
        try await withStore { _, connection, store in
            let customers = try policy("inactive-customers")
            _ = try await store.apply([(customers, source: "a.yaml")])
            // The same policy written differently (key order, flow style, a default spelt out).
            let reordered = try Policy(
                parsing: """
                    data:
                      - table: shop.wishlist_item
                        delete: true
                      - { delete: true, table: shop.customer }
                    expires: { activity: last_seen_at, inactive_for: 1 year }
                    subject: { key: id, table: shop.customer }
                    state: active
                    limits: { batch_size: 1000 }
                    policy: inactive-customers
                    """)
            let changes = try await store.apply([(reordered, source: "b.yaml")])
            #expect(changes == [.unchanged(customers.name, version: 1)])
            #expect(changes.allSatisfy { !$0.storesVersion })
            #expect(try await count(connection) == 1)
        }
    }

    @Test("a changed document becomes the next version, with the paths that changed")
    func update() async throws {
        try await withStore { _, connection, store in
            let name = try PolicyName("inactive-customers")
            _ = try await store.apply([(try policy("inactive-customers"), source: "a.yaml")])

            let longer = try policy("inactive-customers", inactiveFor: "2 years", extra: "schedule: daily at 03:00")
            let changes = try await store.apply([(longer, source: "a.yaml")])
            guard case .updated(name, from: 1, to: 2, let diff) = try #require(changes.first) else {
                Issue.record("expected an update from version 1 to 2, got \(changes)")
                return
            }
            #expect(diff.changedPaths == ["expires.inactive_for", "schedule"])
            #expect(
                diff.changes[0]
                    == .init(path: "expires.inactive_for", kind: .changed, old: #""1 year""#, new: #""2 years""#))
            #expect(diff.changes[1] == .init(path: "schedule", kind: .added, new: #""daily at 03:00""#))
            #expect(diff.definitionChanged)
            #expect(diff.oldState == .active && diff.newState == .active)

            // Only the state: the definition is otherwise the same.
            let drafted = try policy(
                "inactive-customers", state: "draft", inactiveFor: "2 years", extra: "schedule: daily at 03:00")
            let stateOnly = try await store.apply([(drafted, source: "a.yaml")])
            guard case .updated(_, from: 2, to: 3, let stateDiff) = try #require(stateOnly.first) else {
                Issue.record("expected an update from version 2 to 3, got \(stateOnly)")
                return
            }
            #expect(stateDiff.changes == [.init(path: "state", kind: .changed, old: #""active""#, new: #""draft""#)])
            #expect(!stateDiff.definitionChanged)
            #expect(stateDiff.oldState == .active && stateDiff.newState == .draft)

            // A data point fewer: the list item is reported removed.
            let fewer = try Policy(
                parsing: policyYAML(
                    "inactive-customers", state: "draft", inactiveFor: "2 years", extra: "schedule: daily at 03:00"
                )
                .replacingOccurrences(of: "  - { table: shop.wishlist_item, delete: true }\n", with: ""))
            let removed = try await store.apply([(fewer, source: "a.yaml")])
            guard case .updated(_, from: 3, to: 4, let removedDiff) = try #require(removed.first) else {
                Issue.record("expected an update from version 3 to 4, got \(removed)")
                return
            }
            #expect(removedDiff.changedPaths == ["data[0].table", "data[1]"])
            #expect(removedDiff.changes[1].kind == .removed)

            #expect(try await store.history(name).map(\.version) == [1, 2, 3, 4])
            #expect(try await store.history(name).map(\.state) == [.active, .active, .draft, .draft])
            #expect(try await store.version(name, 2)?.definition.contains("2 years") == true)
            #expect(try await store.version(name, 9) == nil)
            #expect(try await store.latest(name)?.version == 4)
            #expect(try await count(connection) == 4)
        }
    }

    @Test("two policies with the same name in one apply are refused before anything is written")
    func duplicateNames() async throws {
        try await withStore { _, connection, store in
            let error = await #expect(throws: PolicyStoreError.self) {
                try await store.apply([
                    (try policy("other"), source: "other.yaml"),
                    (try policy("twice"), source: "one.yaml"),
                    (try policy("twice", inactiveFor: "2 years"), source: "two.yaml"),
                ])
            }
            #expect(error?.code == .duplicateName)
            #expect(error?.policy == "twice")
            #expect(error?.message.contains("one.yaml") == true && error?.message.contains("two.yaml") == true)
            let stored = try await count(connection)
            #expect(stored == 0)
        }
    }

    @Test("an apply that fails part way stores nothing: all files or none")
    func allOrNothing() async throws {
        try await withStore { _, connection, store in
            _ = try await store.apply([(try policy("existing"), source: "existing.yaml")])
            // The database refuses one of the policies (as a constraint or a trigger of a DBA might).
            try await execute(
                [
                    """
                    CREATE FUNCTION public.refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF NEW.name = 'boom' THEN RAISE EXCEPTION 'no boom'; END IF; RETURN NEW; END $$
                    """,
                    """
                    CREATE TRIGGER refuse_boom BEFORE INSERT ON gallra.policy
                        FOR EACH ROW EXECUTE FUNCTION public.refuse_boom()
                    """,
                ], on: connection)
            await #expect(throws: PostgresError.self) {
                try await store.apply([
                    (try policy("first"), source: "first.yaml"),
                    (try policy("existing", inactiveFor: "3 years"), source: "existing.yaml"),
                    (try policy("boom"), source: "boom.yaml"),
                ])
            }
            #expect(try await count(connection) == 1)
            #expect(try await count(connection, "first") == 0)
            #expect(try await store.latest(PolicyName("existing"))?.version == 1)
        }
    }

    @Test("a dry run reports the changes a live apply makes, and writes nothing")
    func dryRun() async throws {
        try await withStore { database, connection, store in
            _ = try await store.apply([
                (try policy("kept"), source: "kept.yaml"), (try policy("changed"), source: "c.yaml"),
            ])
            let documents: [(policy: Policy, source: String)] = [
                (try policy("kept"), source: "kept.yaml"),
                (try policy("changed", state: "disabled"), source: "c.yaml"),
                (try policy("new-one"), source: "new.yaml"),
            ]
            let planned = try await store.apply(documents, dryRun: true)
            #expect(planned.map(\.version) == [1, 2, 1])
            #expect(planned.map(\.storesVersion) == [false, true, true])
            // Counted on another connection: nothing is there, committed or not.
            let observer = try await database.connect()
            #expect(try await count(observer) == 2)
            #expect(try await count(observer, "new-one") == 0)
            #expect(try await store.latest(PolicyName("changed"))?.version == 1)
            #expect(await connection.isInTransaction == false)

            let applied = try await store.apply(documents)
            #expect(applied == planned)
            #expect(try await count(observer) == 4)
            await observer.close()
        }
    }

    @Test("disable stores a new version in state disabled with the same definition otherwise")
    func disable() async throws {
        try await withStore { _, connection, store in
            let name = try PolicyName("inactive-customers")
            _ = try await store.apply([(try policy("inactive-customers"), source: "a.yaml")])
            let change = try await store.disable(name, appliedBy: "bob")
            guard case .updated(name, from: 1, to: 2, let diff) = change else {
                Issue.record("expected an update from version 1 to 2, got \(change)")
                return
            }
            #expect(diff.changes == [.init(path: "state", kind: .changed, old: #""active""#, new: #""disabled""#)])
            let disabled = try #require(try await store.latest(name))
            #expect(disabled.state == .disabled && disabled.appliedBy == "bob" && disabled.source == "database")
            // Oracle: version 2 is version 1 with state replaced, and its digest is that of the disabled document.
            let expected = try policy("inactive-customers", state: "disabled")
            #expect(
                try await scalar(
                    """
                    SELECT (SELECT definition FROM gallra.policy WHERE name = $1 AND version = 2)
                           = jsonb_set((SELECT definition FROM gallra.policy WHERE name = $1 AND version = 1),
                                       '{state}', '"disabled"')
                    """, [.text(name.rawValue)], as: Bool.self, on: connection))
            #expect(
                try await scalar(
                    """
                    SELECT digest = encode(sha256(convert_to($2, 'UTF8')), 'hex')
                    FROM gallra.policy WHERE name = $1 AND version = 2
                    """, [.text(name.rawValue), .text(expected.canonicalJSON)], as: Bool.self, on: connection))
            // Re-applying the disabled document changes nothing; disabling again neither.
            #expect(try await store.apply([(expected, source: "a.yaml")]) == [.unchanged(name, version: 2)])
            #expect(try await store.disable(name) == .unchanged(name, version: 2))
            #expect(try await store.history(name).map(\.state) == [.active, .disabled])
            #expect(try await store.loadActive().policies.isEmpty)
            #expect(try await store.loadAll().policies.map(\.policy) == [expected])

            let error = await #expect(throws: PolicyStoreError.self) { try await store.disable(PolicyName("nope")) }
            #expect(error?.code == .unknownPolicy)
        }
    }

    @Test("purpose and legal_basis are stored only when set, and come back from the store as they were")
    func purposeAndLegalBasis() async throws {
        try await withStore { _, connection, store in
            let plain = try policy("inactive-customers")
            let consented = try policy(
                "newsletter",
                extra: "purpose: |\n  Sending the newsletter.\n  \"Unsubscribe\" stops it — ✓.\nlegal_basis: consent")
            _ = try await store.apply([(plain, source: "a.yaml"), (consented, source: "b.yaml")])

            // Oracle: the rows, read in SQL. The policy without the keys has the digest it had before they existed.
            let rows = try await connection.query(
                """
                SELECT name, digest, definition ? 'purpose' AS has_purpose, definition ->> 'purpose' AS purpose,
                       definition ? 'legal_basis' AS has_basis, definition ->> 'legal_basis' AS basis
                FROM gallra.policy ORDER BY name
                """)
            #expect(try rows.map { try $0.decode("name", as: String.self) } == ["inactive-customers", "newsletter"])
            #expect(
                try rows[0].decode("digest", as: String.self)
                    == "374e1083a76284870fcea4197b2fe494b5f4e50345d02780fa715722244d70e3")
            #expect(try !rows[0].decode("has_purpose", as: Bool.self))
            #expect(try !rows[0].decode("has_basis", as: Bool.self))
            #expect(
                try rows[1].decode("purpose", as: String.self)
                    == "Sending the newsletter.\n\"Unsubscribe\" stops it — ✓.")
            #expect(try rows[1].decode("basis", as: String.self) == "consent")

            // Read back through jsonb: the same policies, valid digests, and nothing to store again.
            let load = try await store.loadAll()
            #expect(load.invalid == [])
            #expect(load.policies.map(\.policy) == [plain, consented])
            #expect(load.policies.last?.policy.legalBasis == .consent)
            #expect(
                try await store.apply([(plain, source: "a.yaml"), (consented, source: "b.yaml")]) == [
                    .unchanged(plain.name, version: 1), .unchanged(consented.name, version: 1),
                ])

            // Disabling keeps them.
            _ = try await store.disable(consented.name)
            let disabled = try #require(try await store.loadAll().policies.first { $0.policy.name == consented.name })
            #expect(disabled.policy.state == .disabled)
            #expect(disabled.policy.purpose == consented.purpose)
            #expect(disabled.policy.legalBasis == .consent)
        }
    }

    @Test("rows written by other means that are invalid are reported with their reason; the others load")
    func invalidRowsSkipped() async throws {
        try await withStore { _, connection, store in
            _ = try await store.apply([
                (try policy("active-one"), source: "a.yaml"),
                (try policy("draft-one", state: "draft"), source: "d.yaml"),
            ])
            // A back office writes rows directly, digests computed the documented way.
            func insert(_ name: String, _ definition: String, digest: String? = nil) async throws {
                try await connection.execute(
                    """
                    INSERT INTO gallra.policy (name, version, state, definition, digest)
                    VALUES ($1, 1, $2::jsonb->>'state', $2::jsonb,
                            COALESCE($3, encode(sha256(convert_to($2, 'UTF8')), 'hex')))
                    """, [.text(name), .text(definition), digest.map { .text($0) } ?? .null])
            }
            // Valid, canonical, correct digest.
            try await insert("by-hand", try policy("by-hand").canonicalJSON)
            // Valid but not in the canonical form (defaults left out); the digest is that of its own sorted text.
            try await insert(
                "short-form",
                #"{"data":[{"delete":true,"table":"shop.customer"}],"expires":{"activity":"last_seen_at","inactive_for":"1 year"},"policy":"short-form","state":"active","subject":{"key":"id","table":"shop.customer"}}"#
            )
            // Not a policy: the subject is not a mapping, a key is misspelt (the digest is right: keys sorted, compact).
            try await insert("broken", #"{"expirs":{},"policy":"broken","state":"active","subject":"nope"}"#)
            // A valid document with a digest that is not its own.
            try await insert(
                "tampered", try policy("tampered").canonicalJSON, digest: String(repeating: "0", count: 64))

            let all = try await store.loadAll()
            #expect(all.policies.map(\.policy.name.rawValue) == ["active-one", "by-hand", "draft-one", "short-form"])
            #expect(all.policies.map(\.stored.source) == ["a.yaml", "database", "d.yaml", "database"])
            #expect(all.invalid.map(\.name) == ["broken", "tampered"])
            let broken = try #require(all.invalid.first)
            #expect(broken.version == 1)
            #expect(broken.reason.hasPrefix("the definition is not a valid policy: "), "\(broken.reason)")
            #expect(broken.reason.contains("expirs"), "\(broken.reason)")
            let tampered = try #require(all.invalid.last)
            #expect(tampered.reason.hasPrefix("its digest is not the SHA-256 of its definition"), "\(tampered.reason)")
            #expect(tampered.description.hasPrefix("policy tampered version 1 in gallra.policy is skipped: "))

            let active = try await store.loadActive()
            #expect(active.policies.map(\.policy.name.rawValue) == ["active-one", "by-hand", "short-form"])
            #expect(active.invalid.map(\.name) == ["broken", "tampered"])
            // The short form decodes to the full policy: defaults filled in.
            #expect(active.policies.last?.policy.limits == Limits())
        }
    }

    @Test("the database refuses rows whose columns contradict their definition")
    func rowsAgreeWithDefinitions() async throws {
        try await withStore { _, connection, _ in
            let definition = try policy("agree").canonicalJSON
            for (name, state, constraint) in [
                ("other-name", "active", "policy_name_matches_definition"),
                ("agree", "draft", "policy_state_matches_definition"),
                ("Bad Name", "active", "policy_name_is_slug"),
            ] {
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.execute(
                        """
                        INSERT INTO gallra.policy (name, version, state, definition, digest)
                        VALUES ($1, 1, $2, $3::jsonb, encode(sha256(convert_to($3, 'UTF8')), 'hex'))
                        """, [.text(name), .text(state), .text(definition)])
                }
                #expect(error?.constraintName == constraint)
            }
        }
    }

    @Test("two applies at once never store the same version twice")
    func concurrentApplies() async throws {
        try await withStore { database, connection, _ in
            let first = PolicyStore(connection: try await database.connect())
            let second = PolicyStore(connection: try await database.connect())
            // Hold the table lock so that both applies are waiting for it at the same time.
            try await connection.execute("BEGIN")
            try await connection.execute("LOCK TABLE gallra.policy IN SHARE ROW EXCLUSIVE MODE")
            async let one = first.apply([(try policy("raced"), source: "one.yaml")])
            async let two = second.apply([(try policy("raced", inactiveFor: "2 years"), source: "two.yaml")])
            var waiting = 0
            for _ in 0..<200 where waiting < 2 {
                waiting = try await scalar(
                    "SELECT count(*) FROM pg_locks WHERE relation = 'gallra.policy'::regclass AND NOT granted",
                    as: Int.self, on: connection)
                if waiting < 2 { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(waiting == 2)
            try await connection.execute("COMMIT")
            let changes = try await (one + two).sorted { $0.version < $1.version }
            let name = try PolicyName("raced")
            #expect(changes.first == .created(name, version: 1))
            guard case .updated(name, from: 1, to: 2, _) = try #require(changes.last) else {
                Issue.record("expected the second apply to store version 2, got \(changes)")
                return
            }
            #expect(try await count(connection, "raced") == 2)
            await first.connection.close()
            await second.connection.close()
        }
    }
}

extension PolicyStore {
    /// The latest version of every policy whose latest version is `active`, decoded; invalid ones are reported.
    func loadActive() async throws -> PolicyLoad {
        load(try await list().filter { $0.state == .active })
    }
}
