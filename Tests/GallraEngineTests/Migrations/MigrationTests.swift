import Foundation
import GallraTestSupport
import GallraPostgres
import Logging
import Testing

@testable import GallraEngine

@Suite("Migrations of the gallra schema")
struct MigrationTests {
    @Test("a fresh database gets every migration, and its version is the latest")
    func freshDatabase() async throws {
        try await TestDatabase.with { _, connection in
            let before = try await Schema.status(on: connection)
            #expect(before.currentVersion == 0)
            #expect(before.needsMigration)
            #expect(before.pending == Schema.migrations)
            await #expect(throws: SchemaError.self) { try await Schema.requireCurrent(on: connection) }

            let applied = try await Schema.migrate(on: connection, appliedBy: "migration test")
            #expect(applied.map(\.version) == Array(1...Schema.latestVersion))
            #expect(try await Schema.currentVersion(on: connection) == Schema.latestVersion)
            #expect(try await Schema.status(on: connection).needsMigration == false)
            try await Schema.requireCurrent(on: connection)

            let rows = try await connection.query(
                "SELECT version, description, applied_by FROM gallra.schema_version ORDER BY version")
            #expect(try rows.map { try $0.decode("version", as: Int.self) } == Array(1...Schema.latestVersion))
            #expect(try rows.map { try $0.decode("applied_by", as: String.self) }.allSatisfy { $0 == "migration test" })
            #expect(try rows.first?.decode("description", as: String.self) == Schema.migrations[0].description)
        }
    }

    @Test("migrating again applies nothing")
    func idempotent() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let appliedAt = try await scalar(
                "SELECT max(applied_at)::text FROM gallra.schema_version", as: String.self, on: connection)
            #expect(try await Schema.migrate(on: connection).isEmpty)
            #expect(try await Schema.migrate(on: connection).isEmpty)
            #expect(
                try await scalar("SELECT count(*) FROM gallra.schema_version", as: Int.self, on: connection)
                    == Schema.migrations.count)
            #expect(
                try await scalar(
                    "SELECT max(applied_at)::text FROM gallra.schema_version", as: String.self, on: connection)
                    == appliedAt)
            // applied_by defaults to the database role.
            #expect(
                try await scalar("SELECT applied_by FROM gallra.schema_version", as: String.self, on: connection)
                    == (try await scalar("SELECT current_user::text", as: String.self, on: connection)))
        }
    }

    @Test("two processes migrating at once both succeed and each migration is applied once")
    func concurrentMigrations() async throws {
        try await TestDatabase.with { database, connection in
            // Hold the migration lock so that both migrators are certainly waiting on it at the same time.
            try await connection.execute("SELECT pg_advisory_lock($1)", [.int64(Schema.migrationLockKey)])
            let first = try await database.connect()
            let second = try await database.connect()
            async let firstApplied = Schema.migrate(on: first)
            async let secondApplied = Schema.migrate(on: second)
            var waiting = 0
            for _ in 0..<200 where waiting < 2 {
                waiting = try await scalar(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", as: Int.self,
                    on: connection)
                if waiting < 2 { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(waiting == 2)
            try await connection.execute("SELECT pg_advisory_unlock($1)", [.int64(Schema.migrationLockKey)])
            let applied = try await [firstApplied, secondApplied]
            // One transaction per migration: the two processes may share the work, never repeat it.
            #expect(applied.flatMap { $0.map(\.version) }.sorted() == Schema.migrations.map(\.version))
            #expect(
                try await scalar("SELECT count(*) FROM gallra.schema_version", as: Int.self, on: connection)
                    == Schema.migrations.count)
            await first.close()
            await second.close()
        }
    }

    @Test("a later migration is applied on its own to a database at the earlier version")
    func upgrade() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let next = Migration(
                version: Schema.latestVersion + 1, description: "test: a later table",
                statements: ["CREATE TABLE gallra.later (id int PRIMARY KEY)"])
            let applied = try await Schema.migrate(
                on: connection, migrations: Schema.migrations + [next], appliedBy: nil, logger: .init(label: "test"))
            #expect(applied == [next])
            #expect(try await Schema.currentVersion(on: connection) == next.version)
            #expect(try await scalar("SELECT count(*) FROM gallra.later", as: Int.self, on: connection) == 0)
        }
    }

    @Test("version 6 makes the bookkeeping keys compare bytewise and keeps what was written before it")
    func byteOrderKeys() async throws {
        try await TestDatabase.with { _, connection in
            let before = Array(Schema.migrations.prefix { $0.version < 6 })
            _ = try await Schema.migrate(
                on: connection, migrations: before, appliedBy: nil, logger: .init(label: "test"))
            for statement in [
                "INSERT INTO gallra.processed (policy, subject_key, run) VALUES ('p', '42', gen_random_uuid())",
                """
                INSERT INTO gallra.processed_row (policy, table_name, path, row_key, fingerprint, run)
                VALUES ('p', 'shop.address', 'shop.customer.address_id -> shop.address.id', '{"id": 7}', 'f',
                        gen_random_uuid())
                """,
                "INSERT INTO gallra.audit_subject (block, ordinal, subject_digest, counts) VALUES (1, 1, 'ab', '[]')",
            ] {
                try await connection.execute(statement)
            }
            let throughSix = Array(Schema.migrations.prefix { $0.version <= 6 })
            #expect(
                try await Schema.migrate(
                    on: connection, migrations: throughSix, appliedBy: nil, logger: .init(label: "test")
                ).map(\.version) == [6])

            let collations = try await connection.query(
                """
                SELECT c.relname || '.' || a.attname AS name, coalesce(k.collname, '') AS collation
                FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
                LEFT JOIN pg_collation AS k ON k.oid = a.attcollation
                WHERE c.relnamespace = 'gallra'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
                  AND c.relname IN ('processed', 'processed_row', 'audit_subject') AND a.atttypid = 'text'::regtype
                ORDER BY 1
                """
            ).map { "\(try $0.decode("name", as: String.self)) \(try $0.decode("collation", as: String.self))" }
            #expect(
                collations == [
                    "audit_subject.subject_digest C", "processed.policy C", "processed.subject_key C",
                    "processed_row.fingerprint default", "processed_row.path C", "processed_row.policy C",
                    "processed_row.row_key C", "processed_row.table_name C",
                ])
            #expect(
                try await scalar(
                    "SELECT count(*) FROM gallra.processed WHERE policy = 'p' AND subject_key = 42::text", as: Int.self,
                    on: connection) == 1)
            #expect(
                try await scalar(
                    "SELECT count(*) FROM gallra.processed_row WHERE row_key = '{\"id\": 7}'", as: Int.self,
                    on: connection) == 1)
            #expect(
                try await scalar(
                    "SELECT count(*) FROM gallra.audit_subject WHERE subject_digest = 'ab'", as: Int.self,
                    on: connection) == 1)
        }
    }

    @Test("version 7 adds the consent registry to a version 6 database and keeps what was there")
    func consentRegistry() async throws {
        try await TestDatabase.with { _, connection in
            let throughSix = Array(Schema.migrations.prefix { $0.version <= 6 })
            _ = try await Schema.migrate(
                on: connection, migrations: throughSix, appliedBy: nil, logger: .init(label: "test"))
            _ = try await PolicyStore(connection: connection).apply([(try policy("kept"), source: "kept.yaml")])
            try await connection.execute(
                "INSERT INTO gallra.processed (policy, subject_key, run) VALUES ('kept', '42', gen_random_uuid())")
            let throughSeven = Array(Schema.migrations.prefix { $0.version <= 7 })
            #expect(
                try await Schema.migrate(
                    on: connection, migrations: throughSeven, appliedBy: nil, logger: .init(label: "test")
                ).map(\.version) == [7])

            #expect(try await scalar("SELECT count(*) FROM gallra.policy", as: Int.self, on: connection) == 1)
            #expect(try await scalar("SELECT count(*) FROM gallra.processed", as: Int.self, on: connection) == 1)
            #expect(
                try await scalar(
                    "SELECT to_regclass('gallra.consent_event') IS NOT NULL AND to_regclass('gallra.consent_in_force') "
                        + "IS NOT NULL", as: Bool.self, on: connection))
            #expect(
                try await scalar(
                    "SELECT NOT rolcanlogin FROM pg_roles WHERE rolname = 'gallra_app'", as: Bool.self, on: connection))
            // The view's columns are documented too (the test of every table's columns skips views).
            let undocumented = try await connection.query(
                """
                SELECT a.attname FROM pg_attribute AS a
                WHERE a.attrelid = 'gallra.consent_in_force'::regclass AND a.attnum > 0
                  AND col_description(a.attrelid, a.attnum) IS NULL
                """)
            #expect(try undocumented.map { try $0.decode("attname", as: String.self) } == [])
            // The functions are SECURITY DEFINER with a pinned search_path, executable by gallra_app and nobody else.
            let functions = try await connection.query(
                """
                SELECT p.proname, p.prosecdef, p.proconfig::text AS config,
                       has_function_privilege('gallra_app', p.oid, 'EXECUTE') AS app,
                       EXISTS (SELECT FROM aclexplode(p.proacl) AS x WHERE x.grantee = 0) AS public
                FROM pg_proc AS p WHERE p.pronamespace = 'gallra'::regnamespace ORDER BY p.proname
                """)
            var callable: [String] = []
            for row in functions {
                let name = try row.decode("proname", as: String.self)
                #expect(try row.decode("public", as: Bool.self) == false, "\(name)")
                guard try row.decode("app", as: Bool.self) else { continue }
                callable.append(name)
                #expect(try row.decode("prosecdef", as: Bool.self), "\(name)")
                #expect(try row.decode("config", as: String?.self) == "{\"search_path=pg_catalog, pg_temp\"}")
            }
            #expect(callable == ["consent_history", "grant_consent", "has_consent", "revoke_consent"])
        }
    }

    @Test("version 8 adds gallra's erasure of consent events to a version 7 database, keeping its events")
    func consentErasure() async throws {
        try await TestDatabase.with { _, connection in
            try await execute(
                [
                    "CREATE SCHEMA shop",
                    "CREATE TABLE shop.customer (id bigint PRIMARY KEY, last_seen_at timestamptz)",
                    "CREATE TABLE shop.wishlist_item (id int PRIMARY KEY, customer_id bigint REFERENCES shop.customer)",
                    "INSERT INTO shop.customer (id) VALUES (1)",
                ],
                on: connection)
            let throughSeven = Array(Schema.migrations.prefix { $0.version <= 7 })
            _ = try await Schema.migrate(
                on: connection, migrations: throughSeven, appliedBy: nil, logger: .init(label: "test"))
            _ = try await PolicyStore(connection: connection).apply([
                (try policy("newsletter", extra: "legal_basis: consent"), source: "newsletter.yaml")
            ])
            _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '1', 'newsletter')")
            // Migration 8, then the consent guards (9), the subject lock (10), the extract records (11) and the requests (12).
            #expect(try await Schema.migrate(on: connection).map(\.version) == Array(8...Schema.latestVersion))

            #expect(try await scalar("SELECT count(*) FROM gallra.consent_event", as: Int.self, on: connection) == 1)
            let function = try #require(
                try await connection.query(
                    """
                    SELECT p.prosecdef, p.proconfig::text AS config, obj_description(p.oid, 'pg_proc') AS comment,
                           has_function_privilege('gallra_app', p.oid, 'EXECUTE') AS app,
                           EXISTS (SELECT FROM aclexplode(p.proacl) AS x WHERE x.grantee = 0) AS public
                    FROM pg_proc AS p
                    WHERE p.oid = 'gallra.erase_consent(text, text[])'::regprocedure
                    """
                ).first)
            #expect(try function.decode("prosecdef", as: Bool.self))
            #expect(try function.decode("config", as: String?.self) == "{\"search_path=pg_catalog, pg_temp\"}")
            #expect(try function.decode("app", as: Bool.self) == false)
            #expect(try function.decode("public", as: Bool.self) == false)
            #expect(try function.decode("comment", as: String?.self)?.hasPrefix("gallra's erasure: ") == true)
        }
    }

    @Test("version 10 makes consent_target lock the subject row, and changes nothing else of migration 7's function")
    func consentTargetLocksTheSubject() async throws {
        let statement = Schema.consentTargetWithSubjectLock
        let original = try #require(
            Schema.migration7.statements.first { $0.hasPrefix("CREATE FUNCTION gallra.consent_target(") })
        #expect(statement.contains("FOR KEY SHARE'"))
        #expect(statement.hasPrefix("CREATE OR REPLACE FUNCTION gallra.consent_target("))
        #expect(
            statement.replacingOccurrences(of: " FOR KEY SHARE'", with: "'").replacingOccurrences(
                of: "CREATE OR REPLACE FUNCTION", with: "CREATE FUNCTION"
            ).replacingOccurrences(of: "plpgsql VOLATILE", with: "plpgsql STABLE") == original)
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let source = try await scalar(
                "SELECT prosrc FROM pg_proc WHERE oid = 'gallra.consent_target(text, text, text, text)'::regprocedure",
                as: String.self, on: connection)
            #expect(source.contains("FOR KEY SHARE"))
            #expect(
                try await scalar(
                    """
                    SELECT p.prosecdef FROM pg_proc AS p
                    WHERE p.oid = 'gallra.consent_target(text, text, text, text)'::regprocedure
                    """, as: Bool.self, on: connection) == false)
        }
    }

    @Test("a migrating role that may not create gallra_app is told what to run as a superuser")
    func roleNeedsSuperuser() async throws {
        // gallra_app exists in the test cluster; the statement that creates it is tried with a name that does not.
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let missing = "gallra_app_t_" + suffix
        let migrator = "gallra_t_migrator_" + suffix
        let statement = try #require(Schema.migration7.statements.first { $0.contains("CREATE ROLE") })
            .replacingOccurrences(of: "gallra_app", with: missing)
        let admin = try await TestServer.admin()
        try await admin.execute("CREATE ROLE \(migrator) NOLOGIN")
        do {
            let error = await #expect(throws: PostgresError.self) {
                try await admin.transaction { connection in
                    try await connection.execute("SET LOCAL ROLE \(migrator)")
                    try await connection.execute(statement)
                }
            }
            #expect(error?.sqlState == .insufficientPrivilege)
            #expect(error?.message == "gallra migrate needs the role \(missing), and \(migrator) may not create roles")
            #expect(error?.hint?.contains("CREATE ROLE \(missing) NOLOGIN;") == true, "\(error?.hint ?? "")")
            #expect(
                try await scalar(
                    "SELECT count(*) FROM pg_roles WHERE rolname = $1", [.text(missing)], as: Int.self, on: admin) == 0)
        } catch {
            _ = try? await admin.execute("DROP ROLE IF EXISTS \(migrator)")
            await admin.close()
            throw error
        }
        try await admin.execute("DROP ROLE \(migrator)")
        await admin.close()
    }

    @Test("a database migrated by a newer gallra is refused with a clear error and left unchanged")
    func newerSchemaRefused() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            try await connection.execute(
                "INSERT INTO gallra.schema_version (version, description) VALUES (999, 'from the future')")
            // A binary that would have a pending migration of its own applies nothing either.
            let pending = Migration(
                version: Schema.latestVersion + 1, description: "test: never applied",
                statements: ["CREATE TABLE gallra.never (id int)"])
            let error = await #expect(throws: SchemaError.self) {
                try await Schema.migrate(
                    on: connection, migrations: Schema.migrations + [pending], appliedBy: nil,
                    logger: .init(label: "test"))
            }
            #expect(error?.code == .newerThanBinary)
            #expect(
                error?.description
                    == "the gallra schema in this database is version 999, this gallra knows up to \(Schema.latestVersion + 1); upgrade gallra"
            )
            await #expect(throws: SchemaError.self) { try await Schema.migrate(on: connection) }
            await #expect(throws: SchemaError.self) { try await Schema.requireCurrent(on: connection) }
            #expect(try await Schema.status(on: connection).isNewerThanBinary)
            #expect(
                try await scalar("SELECT count(*) FROM gallra.schema_version", as: Int.self, on: connection)
                    == Schema.migrations.count + 1)
            #expect(
                try await scalar("SELECT to_regclass('gallra.never') IS NULL", as: Bool.self, on: connection))
        }
    }

    @Test("version 11 adds the append-only record of extracts to a version 10 database, keeping its audit trail")
    func auditExports() async throws {
        try await TestDatabase.with { _, connection in
            let throughTen = Array(Schema.migrations.prefix { $0.version <= 10 })
            _ = try await Schema.migrate(
                on: connection, migrations: throughTen, appliedBy: nil, logger: .init(label: "test"))
            #expect(try await Schema.migrate(on: connection).map(\.version) == Array(11...Schema.latestVersion))
            let record = try await AuditExports.append(
                subjectTable: "shop.customer", subjectDigest: String(repeating: "ab", count: 32), format: "json",
                osUser: "clerk", on: connection)
            #expect(record.sequence == 1)
            #expect(record.previousHash == AuditChain.genesisHash)
            let second = try await AuditExports.append(
                subjectTable: "shop.customer", subjectDigest: nil, format: "json", osUser: "clerk", on: connection)
            #expect(second.previousHash == record.hash)
            let stored = try await AuditExports.all(on: connection)
            #expect(stored == [record, second])
            #expect(AuditExports.firstBreak(in: stored) == nil)
            for statement in [
                "UPDATE gallra.audit_export SET os_user = 'x'", "DELETE FROM gallra.audit_export",
                "TRUNCATE gallra.audit_export",
            ] {
                let error = await #expect(throws: PostgresError.self, "\(statement)") {
                    try await connection.execute(statement)
                }
                #expect(error?.sqlState == "23001")
            }
            let refused = await #expect(throws: PostgresError.self) {
                try await connection.execute(
                    """
                    INSERT INTO gallra.audit_export VALUES
                        (3, now(), 't', 'not-a-digest', 'json', 'r', 'u', repeat('0', 64), repeat('1', 64))
                    """)
            }
            #expect(refused?.sqlState == "23514")
            var edited = stored
            edited[0].osUser = "someone"
            #expect(AuditExports.firstBreak(in: edited)?.sequence == 1)
            #expect(AuditExports.firstBreak(in: [second])?.problem.contains("follows 0") == true)
        }
    }

    @Test("gallra.policy keeps its rows: UPDATE, DELETE and TRUNCATE are refused")
    func policyRowsAreImmutable() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let store = PolicyStore(connection: connection)
            _ = try await store.apply([(try policy("kept"), source: "kept.yaml")])
            for statement in [
                "UPDATE gallra.policy SET state = 'disabled'", "DELETE FROM gallra.policy",
                "TRUNCATE gallra.policy",
            ] {
                let error = await #expect(throws: PostgresError.self, "\(statement)") {
                    try await connection.execute(statement)
                }
                #expect(error?.sqlState == "23001")
                #expect(error?.message.hasPrefix("gallra.policy is immutable:") == true, "\(error?.message ?? "")")
            }
            let error = await #expect(throws: PostgresError.self) {
                try await connection.execute("DELETE FROM gallra.policy WHERE name = 'kept'")
            }
            #expect(error?.message == "gallra.policy is immutable: DELETE of policy kept version 1 refused")
            #expect(try await scalar("SELECT count(*) FROM gallra.policy", as: Int.self, on: connection) == 1)
        }
    }

    @Test("version 13 names the audit key of each new block, and the chain still verifies")
    func auditKeyCheck() async throws {
        try await TestDatabase.with { _, connection in
            let throughTwelve = Array(Schema.migrations.prefix { $0.version <= 12 })
            _ = try await Schema.migrate(
                on: connection, migrations: throughTwelve, appliedBy: nil, logger: .init(label: "test"))
            let digester = SubjectDigester(key: Array(repeating: 7, count: 32))
            let records = [AuditRecord(subjectDigest: digester.digest(table: "shop.customer", key: "1"), counts: [])]
            let run = UUID().uuidString
            #expect(try await Schema.migrate(on: connection).map(\.version) == Array(13...Schema.latestVersion))
            try await connection.transaction { connection in
                try await AuditTrail.append(records: records, run: run, policy: "p", policyVersion: 1, on: connection)
                try await AuditTrail.append(
                    records: records, run: run, policy: "p", policyVersion: 1, keyCheck: digester.keyCheck,
                    on: connection)
            }
            let checks = try await connection.query(
                "SELECT coalesce(key_check, 'none') AS key_check FROM gallra.audit_block ORDER BY sequence")
            #expect(try checks.map { try $0.decode("key_check", as: String.self) } == ["none", digester.keyCheck])
            let expected = Digest.hex(
                Digest.hmacSHA256(key: Array(repeating: 7, count: 32), message: Array("gallra audit key check".utf8)))
            #expect(digester.keyCheck == String(expected.prefix(16)))
            #expect(digester.keyCheck != SubjectDigester(key: Array(repeating: 8, count: 32)).keyCheck)
            let result = try await AuditTrail.verify(on: connection)
            #expect(result.blocks == 2)
        }
    }

    @Test("version 14 names replay among a run's triggers, keeping the runs recorded before")
    func replayTrigger() async throws {
        try await TestDatabase.with { _, connection in
            let throughThirteen = Array(Schema.migrations.prefix { $0.version <= 13 })
            _ = try await Schema.migrate(
                on: connection, migrations: throughThirteen, appliedBy: nil, logger: .init(label: "test"))
            try await connection.execute(
                """
                INSERT INTO gallra.run (id, mode, trigger, as_of) VALUES (gen_random_uuid(), 'live', 'erase', now())
                """)
            #expect(try await Schema.migrate(on: connection).map(\.version) == Array(14...Schema.latestVersion))
            let comment = try await scalar(
                """
                SELECT col_description(attrelid, attnum) FROM pg_attribute
                WHERE attrelid = 'gallra.run'::regclass AND attname = 'trigger'
                """, as: String.self, on: connection)
            #expect(comment.contains("replay (gallra ledger replay after a restore"))
            #expect(try await scalar("SELECT count(*) FROM gallra.run", as: Int.self, on: connection) == 1)
        }
    }

    @Test("version 15 indexes the audit records' digests by hash, and a subject's records are still found by it")
    func digestHashIndex() async throws {
        try await TestDatabase.with { _, connection in
            let throughFourteen = Array(Schema.migrations.prefix { $0.version <= 14 })
            _ = try await Schema.migrate(
                on: connection, migrations: throughFourteen, appliedBy: nil, logger: .init(label: "test"))
            let digest = String(repeating: "ab", count: 32)
            try await connection.execute(
                """
                INSERT INTO gallra.audit_subject (block, ordinal, subject_digest, counts)
                SELECT 1, n, CASE WHEN n = 7 THEN $1 ELSE encode(sha256(n::text::bytea), 'hex') END, '[]'
                FROM generate_series(1, 2000) AS n
                """, [.text(digest)])
            #expect(try await Schema.migrate(on: connection).map(\.version) == Array(15...Schema.latestVersion))
            let method = try await scalar(
                """
                SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam
                WHERE c.oid = 'gallra.audit_subject_digest'::regclass
                """, as: String.self, on: connection)
            #expect(method == "hash")
            try await connection.execute("ANALYZE gallra.audit_subject")
            let plan = try await connection.query(
                "EXPLAIN (COSTS off) SELECT ordinal FROM gallra.audit_subject WHERE subject_digest = $1",
                [.text(digest)]
            ).map { try $0.decode("QUERY PLAN", as: String.self) }.joined(separator: "\n")
            #expect(plan.contains("audit_subject_digest"), "\(plan)")
            let found = try await connection.query(
                "SELECT ordinal FROM gallra.audit_subject WHERE subject_digest = ANY ($1::text[])",
                [.text("{\(digest)}")]
            ).map { try $0.decode("ordinal", as: Int.self) }
            #expect(found == [7])
        }
    }

    @Test("every table, view and column of the gallra schema is documented (COMMENT ON)")
    func everythingCommented() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let undocumented = try await connection.query(
                """
                SELECT c.relname || coalesce('.' || a.attname, '') AS what
                FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'gallra'
                LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND c.relkind = 'r'
                WHERE c.relkind IN ('r', 'v')
                  AND (CASE WHEN a.attname IS NULL THEN obj_description(c.oid, 'pg_class')
                            ELSE col_description(c.oid, a.attnum) END) IS NULL
                """)
            #expect(try undocumented.map { try $0.decode("what", as: String.self) } == [])
        }
    }
}
