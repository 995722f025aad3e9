import Foundation
import GallraPostgres
import Testing

/// The service and erasure requests: the demo shop with its on-request policy (`config/policies/
/// erasure-requests.yaml`), requests recorded by the shop's login role through `gallra.request_erasure`, the built
/// `gallra run` with a recording NOTIFY_SOCKET.
@Suite("gallra run: erasure requests", .serialized)
struct DaemonRequestTests {
    /// The demo shop, a login role of the shop's in `gallra_app`, and a connection of that role.
    private func withShop(
        _ body: (_ shop: DemoShop, _ app: PostgresConnection) async throws -> Void
    ) async throws {
        try await DemoShop.with(customers: 40) { shop in
            let role = "shop_app_\(UUID().uuidString.prefix(8).lowercased())"
            _ = try await Harness.psql("CREATE ROLE \(role) LOGIN IN ROLE gallra_app")
            do {
                let app = try await PostgresConnection.connect(shop.conninfo + " user=\(role)")
                do {
                    try await body(shop, app)
                } catch {
                    await app.close()
                    throw error
                }
                await app.close()
            } catch {
                _ = try? await Harness.psql("DROP ROLE IF EXISTS \(role)")
                throw error
            }
            _ = try await Harness.psql("DROP ROLE IF EXISTS \(role)")
        }
    }

    /// Customers without a legal hold that have orders, in key order.
    private func customers(_ shop: DemoShop, count: Int) async throws -> [Int] {
        let text = try await Harness.psql(
            """
            SELECT string_agg(id::text, ',' ORDER BY id) FROM (
                SELECT c.id FROM shop.customer AS c
                WHERE c.legal_hold IS NOT TRUE AND EXISTS (SELECT FROM shop."order" AS o WHERE o.customer_id = c.id)
                ORDER BY c.id LIMIT \(count)) AS s
            """, database: shop.database)
        let keys = text.split(separator: ",").compactMap { Int($0) }
        try #require(keys.count == count, "the demo shop has \(keys.count) such customers")
        return keys
    }

    private func request(
        _ customer: Int, after: String? = nil, as app: PostgresConnection
    ) async throws -> Int64 {
        let row = try await app.query(
            "SELECT gallra.request_erasure('shop.customer', $1, 'ticket', $2::interval) AS id",
            [.text(String(customer)), after.map { .text($0) } ?? .null]
        ).first
        return try #require(row).decode("id", as: Int64.self)
    }

    private func status(_ id: Int64, as app: PostgresConnection) async throws -> String {
        let row = try await app.query("SELECT status FROM gallra.erasure_status($1)", [.int64(id)]).first
        return try #require(row).decode("status", as: String.self)
    }

    private func daemon(_ shop: DemoShop, sweep: Int? = nil) async throws -> DaemonProcess {
        let daemon = try DaemonProcess(
            database: shop.conninfo, keyFile: shop.keyFile,
            environment: sweep.map { ["GALLRA_REQUESTS_SWEEP": "\($0)"] } ?? [:])
        try await daemon.notify.wait(for: "READY=1")
        // The look at the queue the service takes once it leads: what follows is seen by a later one.
        try await waitUntil("the service has looked at the queue", within: 10) {
            daemon.log.contains("erasure requests: next look in")
        }
        return daemon
    }

    private func stop(_ daemon: DaemonProcess) async throws {
        daemon.signal(SIGTERM)
        #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
    }

    @Test("a request the shop records is done within 5 seconds, with one journal event naming only the digest")
    func aRequestIsDoneWithinSeconds() async throws {
        try await withShop { shop, app in
            let daemon = try await daemon(shop, sweep: 600)
            let customer = try await customers(shop, count: 1)[0]
            let id = try await request(customer, as: app)
            let started = ContinuousClock.now
            try await waitUntil("the request is done", within: 5) { try await status(id, as: app) == "done" }
            #expect(ContinuousClock.now - started < .seconds(5))

            #expect(
                try await Harness.psql(
                    "SELECT count(*) FROM shop.customer WHERE id = \(customer)", database: shop.database) == "0")
            let digest = try await Harness.psql(
                "SELECT subject_digest FROM gallra.erasure_request WHERE id = \(id) AND subject_key IS NULL",
                database: shop.database)
            #expect(digest.count == 64)
            try await waitUntil("the outcome is logged", within: 5) {
                daemon.log.contains("erasure request \(id) (shop.customer): done")
            }
            let events = daemon.log.split(separator: "\n").filter { $0.contains("erasure request \(id) ") }
            #expect(events.count == 1, "\(events)")
            #expect(events.first?.contains(digest) == true, "the event names the subject by its digest: \(events)")
            let run = try await Harness.psql(
                "SELECT trigger || ' ' || outcome FROM gallra.run WHERE id = (SELECT run FROM gallra.erasure_request WHERE id = \(id))",
                database: shop.database)
            #expect(run == "erase done")
            #expect(daemon.notify.count("STATUS=erasing on request: 1") >= 1)
            // Nor does the debug log name the audit key (swift-service-lifecycle logs the service it starts).
            #expect(!daemon.log.contains("AuditKey") && !daemon.log.contains("auditKey"), "\(daemon.log)")
            try await stop(daemon)
        }
    }

    @Test("a request with an undo window is done when it ends, woken by its not_before, not by the sweep")
    func anUndoWindowIsHonoured() async throws {
        try await withShop { shop, app in
            let daemon = try await daemon(shop, sweep: 600)
            let customer = try await customers(shop, count: 1)[0]
            let id = try await request(customer, after: "3 seconds", as: app)
            try await Task.sleep(for: .seconds(1))
            #expect(try await status(id, as: app) == "pending")
            try await waitUntil("the request is done", within: 8) { try await status(id, as: app) == "done" }
            // Decided after the window, and soon after it: the wake-up at not_before, long before a sweep.
            let late = try await Harness.psql(
                """
                SELECT decided_at >= not_before AND decided_at < not_before + interval '2 seconds'
                FROM gallra.erasure_request WHERE id = \(id)
                """, database: shop.database)
            #expect(late == "t")
            #expect(
                try await Harness.psql(
                    "SELECT attempts FROM gallra.erasure_request WHERE id = \(id)", database: shop.database) == "1")
            try await stop(daemon)
        }
    }

    @Test("a request whose subject row the shop holds stays pending, and is done within seconds after the lock goes")
    func aLockedSubjectIsRetried() async throws {
        try await withShop { shop, app in
            let daemon = try await daemon(shop)
            let customer = try await customers(shop, count: 1)[0]
            let holder = try await PostgresConnection.connect(shop.conninfo)
            try await holder.execute("BEGIN")
            try await holder.execute("SELECT id FROM shop.customer WHERE id = \(customer) FOR UPDATE")
            let id = try await request(customer, as: app)
            try await waitUntil("a second attempt", within: 10) {
                try await Harness.psql(
                    "SELECT attempts >= 2 FROM gallra.erasure_request WHERE id = \(id)", database: shop.database)
                    == "t"
            }
            #expect(try await status(id, as: app) == "pending")
            #expect(
                try await Harness.psql(
                    "SELECT count(*) FROM shop.customer WHERE id = \(customer)", database: shop.database) == "1")
            try await holder.execute("ROLLBACK")
            await holder.close()
            let released = ContinuousClock.now
            try await waitUntil("the request is done after the lock goes", within: 15) {
                try await status(id, as: app) == "done"
            }
            #expect(ContinuousClock.now - released < .seconds(10))
            #expect(daemon.log.contains("erasure request \(id) (shop.customer): still pending after 1 attempt(s)"))
            #expect(daemon.log.contains("erasure request \(id) (shop.customer): done"))
            try await stop(daemon)
        }
    }

    @Test("a request recorded without a notification is processed by the sweep")
    func theSweepCatchesALostNotification() async throws {
        try await withShop { shop, app in
            let daemon = try await daemon(shop, sweep: 2)
            let customer = try await customers(shop, count: 1)[0]
            // Written into the queue directly: no NOTIFY reaches the service.
            let id = try #require(
                Int64(
                    try await Harness.psql(
                        """
                        INSERT INTO gallra.erasure_request (subject_table, subject_key, reason)
                        VALUES ('shop.customer', '\(customer)', 'no notification') RETURNING id
                        """, database: shop.database)))
            try await waitUntil("the sweep processes it", within: 6) { try await status(id, as: app) == "done" }
            try await stop(daemon)
        }
    }

    @Test("a request recorded while no service listens is done as soon as one starts leading")
    func aRequestFromBeforeTheStartIsDone() async throws {
        try await withShop { shop, app in
            let customer = try await customers(shop, count: 1)[0]
            let id = try await request(customer, as: app)  // its notification reaches no one
            let daemon = try await daemon(shop, sweep: 600)
            try await waitUntil("the request is done", within: 5) { try await status(id, as: app) == "done" }
            try await stop(daemon)
        }
    }

    @Test("a request whose processing fails leaves the service running, and is done at a later sweep")
    func aFailureIsRetriedAtTheSweep() async throws {
        try await withShop { shop, app in
            // Deciding any request fails while this trigger is there.
            try await Harness.psql(
                """
                CREATE FUNCTION public.refuse_decisions() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'decisions refused for the test'; END $$;
                CREATE TRIGGER refuse_decisions BEFORE UPDATE ON gallra.erasure_request
                    FOR EACH ROW EXECUTE FUNCTION public.refuse_decisions();
                """, database: shop.database)
            let daemon = try await daemon(shop, sweep: 2)
            let customer = try await customers(shop, count: 1)[0]
            let id = try await request(customer, as: app)
            try await waitUntil("the failure is logged", within: 10) {
                daemon.log.contains("processing erasure requests failed: ")
                    && daemon.log.contains("decisions refused for the test")
            }
            #expect(try await status(id, as: app) == "pending")
            try await Harness.psql("DROP TRIGGER refuse_decisions ON gallra.erasure_request", database: shop.database)
            // The subject was erased before the decision failed: the audit trail shows it, and the request is done.
            try await waitUntil("a later sweep decides it", within: 10) { try await status(id, as: app) == "done" }
            #expect(daemon.process.isRunning)
            #expect(!daemon.log.contains("starting over"), "the service kept its session: \(daemon.log)")
            try await stop(daemon)
        }
    }

    @Test("requests.sweep is a whole number of seconds, at least 1: anything else is refused with exit 78")
    func aBadSweepIsRefused() async throws {
        for value in ["0", "soon"] {
            let result = try await gallra(
                "run", "--once", "--dry-run", "--database", "host=/nonexistent",
                environment: ["GALLRA_REQUESTS_SWEEP": value])
            #expect(result.status == 78, "\(result.stderr)")
            #expect(
                result.stderr.contains(
                    "invalid value \"\(value)\" for requests.sweep: expected a whole number of seconds"),
                "\(result.stderr)")
        }
    }

    @Test("on-request policies are not run on a schedule or a trigger: a trigger naming one processes the requests")
    func onRequestPoliciesAreLeftToTheSweep() async throws {
        try await withShop { shop, app in
            let daemon = try await daemon(shop, sweep: 600)
            #expect(daemon.log.contains("1 acting on erasure requests"), "\(daemon.log)")
            let customer = try await customers(shop, count: 1)[0]
            // Recorded without a notification and not yet seen by the sweep: only the trigger makes it processed.
            let id = try #require(
                Int64(
                    try await Harness.psql(
                        """
                        INSERT INTO gallra.erasure_request (subject_table, subject_key, reason)
                        VALUES ('shop.customer', '\(customer)', 'trigger') RETURNING id
                        """, database: shop.database)))
            let trigger = try await gallra("trigger", "--database", shop.conninfo, "--policy", "erasure-requests")
            #expect(trigger.status == 0, "\(trigger.stderr)")
            try await waitUntil("the trigger processes the request", within: 5) {
                try await status(id, as: app) == "done"
            }
            #expect(daemon.log.contains("act(s) on erasure requests; processing the due requests instead"))
            // The one run is the request's: the policy never ran over the whole queue.
            #expect(
                try await Harness.psql("SELECT string_agg(trigger, ',') FROM gallra.run", database: shop.database)
                    == "erase")
            try await stop(daemon)
        }
    }
}
