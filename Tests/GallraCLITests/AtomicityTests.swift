import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The oracle of the kill test, written by hand and kept in schema `oracle` of the shop's database: a snapshot
/// of every due customer and of the rows that hang on them, taken before the first run.
private let snapshotSQL = """
    CREATE SCHEMA oracle;
    CREATE TABLE oracle.subject (id bigint PRIMARY KEY, digest text NOT NULL UNIQUE);
    -- (the digests are inserted by the test, computed from the key file)
    """

private let snapshotRowsSQL = """
    ALTER TABLE oracle.subject
        ADD customer_md5 text, ADD related_md5 text NOT NULL DEFAULT '',
        ADD wishlist int, ADD carts int, ADD cart_items int, ADD consents int, ADD logs int, ADD orders int;
    UPDATE oracle.subject s SET customer_md5 = md5(c::text) FROM shop.customer AS c WHERE c.id = s.id;

    -- Addresses only the customer uses (their own, their orders' shipping addresses): anonymized when the
    -- customer is processed, unchanged while not. Shared ones may be acted on for another subject: left out.
    CREATE TABLE oracle.address_before AS
        WITH uses AS (
            SELECT address_id AS address, id AS owner FROM shop.customer WHERE address_id IS NOT NULL
            UNION ALL SELECT shipping_address_id, customer_id FROM shop."order" WHERE shipping_address_id IS NOT NULL
            UNION ALL SELECT address_id, NULL FROM shop.store),
        exclusive AS (
            -- one owner, and no store or order without an owner
            SELECT address, min(owner) AS owner FROM uses GROUP BY address
            HAVING count(DISTINCT owner) = 1 AND count(*) = count(owner))
        SELECT e.owner, a.*
        FROM exclusive AS e JOIN oracle.subject AS s ON s.id = e.owner JOIN shop.address AS a ON a.id = e.address;
    CREATE TABLE oracle.order_before AS
        SELECT o.* FROM shop."order" AS o JOIN oracle.subject AS s ON s.id = o.customer_id;

    -- Every row that hangs on a due customer, as text: unchanged while the customer is untouched.
    CREATE VIEW oracle.related AS
        SELECT owner AS id, md5(string_agg(line, ';' ORDER BY line)) AS md5
        FROM (SELECT w.customer_id AS owner, 'wishlist ' || w::text AS line FROM shop.wishlist_item AS w
              UNION ALL SELECT c.customer_id, 'cart ' || c::text FROM shop.cart AS c
              UNION ALL SELECT c.customer_id, 'cart_item ' || i::text
                        FROM shop.cart_item AS i JOIN shop.cart AS c ON c.id = i.cart_id
              UNION ALL SELECT n.customer_id, 'consent ' || n::text FROM shop.newsletter_consent AS n
              UNION ALL SELECT l.customer_ref, 'log ' || l::text FROM shop.newsletter_log AS l
              UNION ALL SELECT o.customer_id, 'order ' || o::text FROM shop."order" AS o WHERE o.customer_id IS NOT NULL
              UNION ALL SELECT b.owner, 'address ' || a::text
                        FROM oracle.address_before AS b JOIN shop.address AS a ON a.id = b.id) AS rows
        WHERE owner IN (SELECT id FROM oracle.subject)
        GROUP BY owner;
    UPDATE oracle.subject AS s SET related_md5 = r.md5 FROM oracle.related AS r WHERE r.id = s.id;

    UPDATE oracle.subject AS s SET
        wishlist = (SELECT count(*) FROM shop.wishlist_item WHERE customer_id = s.id),
        carts = (SELECT count(*) FROM shop.cart WHERE customer_id = s.id),
        cart_items = (SELECT count(*) FROM shop.cart_item AS i JOIN shop.cart AS c ON c.id = i.cart_id
                      WHERE c.customer_id = s.id),
        consents = (SELECT count(*) FROM shop.newsletter_consent WHERE customer_id = s.id),
        orders = (SELECT count(*) FROM shop."order" WHERE customer_id = s.id);
    UPDATE oracle.subject AS s SET logs = coalesce(l.n, 0)
        FROM (SELECT customer_ref AS id, count(*) AS n FROM shop.newsletter_log GROUP BY customer_ref) AS l
        WHERE l.id = s.id;
    UPDATE oracle.subject SET logs = 0 WHERE logs IS NULL;

    -- What the policy never touches, and the customers that are not due.
    CREATE TABLE oracle.bystanders AS SELECT md5(concat(
        (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM shop.customer AS c
         WHERE c.id NOT IN (SELECT id FROM oracle.subject)),
        (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM shop.order_line AS x),
        (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM shop.product AS x),
        (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM shop.store AS x),
        (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM shop.employee AS x))) AS md5;

    -- Rows of one table and action in an audit record's counts.
    CREATE FUNCTION oracle.audited(counts jsonb, tab text, act text) RETURNS bigint LANGUAGE sql IMMUTABLE
    RETURN (SELECT coalesce(sum((e->>'rows')::bigint), 0) FROM jsonb_array_elements(counts) AS e
            WHERE e->>'table' = tab AND e->>'action' = act);

    -- Waits (server side, every 2 ms) until at least `blocks` audit blocks are committed and, if `writing`, the
    -- session application_name = app is in a transaction that holds a transaction id (it has locked or written
    -- rows). Returns that xid ('' when not `writing`), or null after `seconds` or once the session is gone.
    CREATE FUNCTION oracle.wait_for(app text, blocks bigint, writing boolean, seconds float8) RETURNS text
    LANGUAGE plpgsql AS $$
    DECLARE
        xid text;
        seen boolean := false;
        deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
    BEGIN
        LOOP
            PERFORM pg_stat_clear_snapshot();
            SELECT backend_xid::text INTO xid FROM pg_stat_activity WHERE application_name = app;
            IF FOUND THEN
                seen := true;
            ELSIF seen OR clock_timestamp() > deadline THEN
                RETURN NULL;
            END IF;
            IF (xid IS NOT NULL OR NOT writing) AND (SELECT count(*) FROM gallra.audit_block) >= blocks THEN
                RETURN CASE WHEN writing THEN xid ELSE '' END;
            END IF;
            IF clock_timestamp() > deadline THEN
                RETURN NULL;
            END IF;
            PERFORM pg_sleep(0.002);
        END LOOP;
    END
    $$;
    """

/// Each due customer's state: `untouched` (row, every row hanging on it, no audit record), `processed` (row and
/// children gone, orders detached and anonymized, own addresses anonymized, exactly one audit record whose
/// counts are the rows it had) or `broken`. One line per verdict: `verdict|count|first ids`.
private let verdictSQL = """
    WITH related AS MATERIALIZED (SELECT * FROM oracle.related),
    records AS MATERIALIZED (
        SELECT s.id, count(a.*) AS n,
               bool_and(oracle.audited(a.counts, 'shop.customer', 'deleted') = 1
                        AND oracle.audited(a.counts, 'shop.wishlist_item', 'deleted') = s.wishlist
                        AND oracle.audited(a.counts, 'shop.cart', 'deleted') = s.carts
                        AND oracle.audited(a.counts, 'shop.cart_item', 'deleted') = s.cart_items
                        AND oracle.audited(a.counts, 'shop.newsletter_consent', 'deleted') = s.consents
                        AND oracle.audited(a.counts, 'shop.newsletter_log', 'deleted') = s.logs
                        AND oracle.audited(a.counts, 'shop.order', 'anonymized') = s.orders) AS counts_match
        FROM oracle.subject AS s LEFT JOIN gallra.audit_subject AS a ON a.subject_digest = s.digest
        GROUP BY s.id),
    leftovers AS MATERIALIZED (
        SELECT s.id, count(r.owner) AS n
        FROM oracle.subject AS s
        LEFT JOIN (SELECT customer_id AS owner FROM shop.wishlist_item
                   UNION ALL SELECT customer_id FROM shop.cart
                   UNION ALL SELECT customer_id FROM shop.newsletter_consent
                   UNION ALL SELECT customer_ref FROM shop.newsletter_log
                   UNION ALL SELECT customer_id FROM shop."order") AS r ON r.owner = s.id
        GROUP BY s.id),
    orders AS MATERIALIZED (
        SELECT b.customer_id AS id,
               bool_and(o.id IS NOT NULL AND o.customer_id IS NULL AND o.phone IS NULL
                        AND o.email <> b.email AND o.email LIKE 'anon-%@example.invalid' AND o.full_name <> b.full_name
                        AND o.birth_date IS NOT DISTINCT FROM date_trunc('year', b.birth_date)::date
                        AND (o.placed_at, o.status, o.total) = (b.placed_at, b.status, b.total)
                        AND o.shipping_address_id IS NOT DISTINCT FROM b.shipping_address_id) AS anonymized
        FROM oracle.order_before AS b LEFT JOIN shop."order" AS o ON o.id = b.id
        GROUP BY b.customer_id),
    addresses AS MATERIALIZED (
        SELECT b.owner AS id,
               bool_and(a.id IS NOT NULL AND a.street <> b.street AND a.phone IS NULL
                        AND (a.postal_code, a.city, a.country) = (b.postal_code, b.city, b.country)) AS anonymized
        FROM oracle.address_before AS b LEFT JOIN shop.address AS a ON a.id = b.id
        GROUP BY b.owner),
    verdicts AS (
        SELECT s.id,
               CASE
                   WHEN c.id IS NOT NULL AND md5(c::text) = s.customer_md5
                        AND coalesce(r.md5, '') = s.related_md5 AND rec.n = 0 THEN 'untouched'
                   WHEN c.id IS NULL AND l.n = 0 AND coalesce(o.anonymized, true) AND coalesce(ad.anonymized, true)
                        AND rec.n = 1 AND rec.counts_match THEN 'processed'
                   ELSE 'broken'
               END AS verdict
        FROM oracle.subject AS s
        LEFT JOIN shop.customer AS c ON c.id = s.id
        LEFT JOIN related AS r ON r.id = s.id
        JOIN records AS rec ON rec.id = s.id
        JOIN leftovers AS l ON l.id = s.id
        LEFT JOIN orders AS o ON o.id = s.id
        LEFT JOIN addresses AS ad ON ad.id = s.id)
    SELECT verdict, count(*), (array_agg(id ORDER BY id))[1:10]::text FROM verdicts GROUP BY verdict ORDER BY verdict
    """

/// Audit records of subjects that are not due customers, and blocks whose subject count is not their records'.
private let strayAuditSQL = """
    SELECT (SELECT count(*) FROM gallra.audit_subject AS a
            WHERE NOT EXISTS (SELECT FROM oracle.subject AS s WHERE s.digest = a.subject_digest))
         + (SELECT count(*) FROM gallra.audit_block AS b
            WHERE b.subjects <> (SELECT count(*) FROM gallra.audit_subject AS a WHERE a.block = b.sequence)
               OR b.subjects = 0)
    """

private let bystandersChangedSQL = """
    SELECT md5 <> (SELECT md5(concat(
        (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM shop.customer AS c
         WHERE c.id NOT IN (SELECT id FROM oracle.subject)),
        (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM shop.order_line AS x),
        (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM shop.product AS x),
        (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM shop.store AS x),
        (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM shop.employee AS x))))
    FROM oracle.bystanders
    """

@Suite("A live run killed at any instant")
struct AtomicityTests {
    /// Where a round kills the run.
    enum Moment: CustomStringConvertible {
        /// This long after the process started (start-up: connecting, reading the policies, counting).
        case after(milliseconds: Int)
        /// As soon as `blocks` more audit blocks are committed in this round: between batches, or as the next
        /// one picks its subjects.
        case afterBlocks(Int)
        /// As soon as a batch holds a transaction id (it has locked or written rows), once `blocks` more audit
        /// blocks are committed in this round.
        case inBatch(afterBlocks: Int)

        var description: String {
            switch self {
            case .after(let ms): "\(ms) ms after start"
            case .afterBlocks(let blocks): "right after \(blocks) more block(s)"
            case .inBatch(let blocks): "inside a writing batch after \(blocks) more block(s)"
            }
        }
    }

    @Test func everySubjectIsFullyProcessedWithItsRecordOrUntouched() async throws {
        try await DemoShop.with(customers: 3000) { shop in
            try await shop.applyEdited(
                "inactive-customers", [("batch_size: 500", "batch_size: 20")])
            try await shop.psql(snapshotSQL)
            let ids = try await shop.psql("\(expiringCustomersSQL) ORDER BY id").split(separator: "\n").compactMap {
                Int($0)
            }
            try #require(ids.count > 500, "the demo shop has hundreds of due customers")
            try await shop.psql(
                "INSERT INTO oracle.subject (id, digest) VALUES "
                    + ids.map { "(\($0), '\(shop.digest(customer: $0))')" }.joined(separator: ", "))
            try await shop.psql(snapshotRowsSQL)
            let start = try await shop.psql(verdictSQL)
            try #require(start.hasPrefix("untouched|\(ids.count)|") && !start.contains("\n"), "\(start)")

            let conninfo = "\(shop.conninfo) application_name=gallra_kill_test"
            let moments: [Moment] = [
                .after(milliseconds: 30), .inBatch(afterBlocks: 0), .afterBlocks(1), .after(milliseconds: 120),
                .inBatch(afterBlocks: 1), .inBatch(afterBlocks: 0), .afterBlocks(2), .inBatch(afterBlocks: 2),
                .after(milliseconds: 80), .inBatch(afterBlocks: 1), .afterBlocks(1), .inBatch(afterBlocks: 3),
            ]
            var rolledBack = 0
            var killedInBatch = 0
            var killed = 0
            var processed: [Int] = []
            let started = ContinuousClock.now
            for (round, moment) in moments.enumerated() {
                let blocks = Int(try await shop.psql("SELECT count(*) FROM gallra.audit_block")) ?? 0
                let process = try BackgroundProcess(
                    Harness.gallraPath,
                    [
                        "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--database",
                        conninfo,
                    ],
                    environment: shop.keyEnvironment, output: "\(shop.directory)/round-\(round).log")
                var xid: String?
                switch moment {
                case .after(let ms):
                    try await Task.sleep(for: .milliseconds(ms))
                case .afterBlocks(let more):
                    _ = try await shop.psql(
                        "SELECT oracle.wait_for('gallra_kill_test', \(blocks + more), false, 15)")
                case .inBatch(let more):
                    let found = try await shop.psql(
                        "SELECT oracle.wait_for('gallra_kill_test', \(blocks + more), true, 15)")
                    xid = found.isEmpty ? nil : found
                }
                process.kill()
                let exit = await process.wait()
                try await waitFor("the killed run's session is gone", shop) {
                    "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'gallra_kill_test'"
                }
                let log = (try? String(contentsOfFile: "\(shop.directory)/round-\(round).log", encoding: .utf8)) ?? ""
                #expect(exit.signalled || exit.status == 0, "round \(round): \(exit) \(log)")
                if exit.signalled { killed += 1 }
                if let xid, exit.signalled {
                    killedInBatch += 1
                    // The batch the kill interrupted: never committed (a kill between its COMMIT and the reply
                    // would leave it committed, which is as good).
                    let status = try await shop.psql("SELECT pg_xact_status('\(xid)'::xid8)")
                    #expect(["aborted", "committed"].contains(status), "round \(round): xid \(xid) \(status)")
                    if status == "aborted" { rolledBack += 1 }
                }

                let verdicts = try await shop.psql(verdictSQL)
                #expect(!verdicts.contains("broken"), "round \(round) (\(moment)): \(verdicts)")
                #expect(try await shop.psql(strayAuditSQL) == "0", "round \(round): audit records without subjects")
                #expect(try await shop.psql(bystandersChangedSQL) == "f", "round \(round): other rows changed")
                let verify = try await shop.gallra("audit", "verify")
                #expect(verify.status == 0, "round \(round): \(verify.stdout) \(verify.stderr)")
                let done =
                    verdicts.split(separator: "\n").first { $0.hasPrefix("processed|") }
                    .flatMap { Int($0.split(separator: "|")[1]) } ?? 0
                processed.append(done)
                print(
                    "round \(round) (\(moment)): \(exit.signalled ? "killed" : "exited \(exit.status)"), xid \(xid ?? "-"), \(done) processed, at \(ContinuousClock.now - started)"
                )
                if !exit.signalled { break }
            }
            // The rounds really interrupted runs, inside batches too, and the work advanced between them.
            #expect(killed >= 10, "runs killed: \(killed) of \(moments.count)")
            #expect(killedInBatch >= 5, "kills inside a batch: \(killedInBatch)")
            #expect(rolledBack >= 3, "batches rolled back by a kill: \(rolledBack) of \(killedInBatch)")
            #expect(processed.last ?? 0 > 0, "processed after each round: \(processed)")

            let rest = try await shop.gallra(
                "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf,
                environment: shop.keyEnvironment)
            #expect(rest.status == 0, "\(rest.stdout) \(rest.stderr)")
            #expect(try await shop.psql(verdictSQL).hasPrefix("processed|\(ids.count)|"))
            #expect(try await shop.psql(strayAuditSQL) == "0")
            #expect(try await shop.psql(bystandersChangedSQL) == "f")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_subject") == "\(ids.count)")
            let verify = try await shop.gallra("audit", "verify")
            #expect(verify.status == 0)
            #expect(verify.stdout.contains("\(ids.count) subject records"), "\(verify.stdout)")
            let plan = try await shop.gallra(
                "plan", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--format", "json")
            let report = try #require(try jsonObject(plan)["report"] as? [String: Any])
            #expect((report["policies"] as? [[String: Any]])?.first?["expiring"] as? Int == 0)
            // A killed run cannot close its row in gallra.run; the next run, holding the runner lock, marks it
            // interrupted (without finished_at: nobody knows when it died).
            #expect(try await shop.psql("SELECT count(*) FROM gallra.run WHERE outcome = 'running'") == "0")
            let interrupted = try await shop.psql(
                "SELECT count(*) FROM gallra.run WHERE outcome = 'interrupted' AND finished_at IS NULL")
            #expect((Int(interrupted) ?? 0) >= 1)
            #expect((Int(interrupted) ?? 0) <= killed)
            print(
                "kill rounds: processed after each \(processed); \(killedInBatch) kills in a batch, \(rolledBack) rolled back"
            )
        }
    }
}
