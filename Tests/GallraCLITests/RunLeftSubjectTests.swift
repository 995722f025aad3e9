import Foundation
import Testing

@Suite("gallra run --once: a refused or locked subject is left alone")
struct RunLeftSubjectTests {
    /// One customer's order row locked by the shop, another customer refused by a trigger: the run processes every
    /// other due customer, names the two it left by key on the terminal (the log names them by digest), and ends
    /// partial: exit 75.
    @Test func theRunNamesEachLeftSubjectAndEndsPartial() async throws {
        try await DemoShop.with(customers: 600) { shop in
            let keys = try await shop.psql("\(expiringCustomersSQL) ORDER BY id").split(separator: "\n").map {
                String($0)
            }
            try #require(keys.count > 20)
            let refused = keys[keys.count / 3]
            let list = keys.joined(separator: ",")
            let withOrder = try await shop.psql(
                #"SELECT customer_id || ' ' || min(id) FROM shop."order" WHERE customer_id IN (\#(list)) AND customer_id <> \#(refused) GROUP BY customer_id ORDER BY customer_id LIMIT 1"#
            ).split(separator: " ").map(String.init)
            try #require(withOrder.count == 2)
            let (locked, order) = (withOrder[0], withOrder[1])
            _ = try await shop.psql(
                """
                CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF OLD.id = \(refused) THEN RAISE EXCEPTION 'customer kept by the shop'; END IF;
                    RETURN OLD;
                END $$;
                CREATE TRIGGER refuse BEFORE DELETE ON shop.customer FOR EACH ROW EXECUTE FUNCTION public.refuse();
                """)
            let holder = try BackgroundProcess(
                "/usr/bin/psql",
                [
                    "\(shop.conninfo) application_name=row_holder", "-qAtX", "-c", "BEGIN",
                    "-c", #"SELECT id FROM shop."order" WHERE id = \#(order) FOR UPDATE"#, "-c", "SELECT pg_sleep(60)",
                ],
                output: shop.directory + "/holder.log")
            defer { holder.kill() }
            try await waitFor("the other session holds the row", shop) {
                "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'row_holder' AND wait_event = 'PgSleep'"
            }

            let run = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--policy", "inactive-customers",
                environment: shop.keyEnvironment)
            try await shop.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'row_holder'")
            _ = await holder.wait()
            #expect(run.status == 75, "\(run.stdout) \(run.stderr)")
            #expect(run.stdout.contains(": partial"))
            #expect(run.stdout.contains("\(keys.count - 2) processed"), "\(run.stdout)")
            #expect(
                run.stdout.contains("subject \(locked) left: row locked by another transaction (shop.order)"),
                "\(run.stdout)")
            #expect(
                run.stdout.contains(
                    "subject \(refused) left: refused by the database, SQLSTATE P0001: PostgreSQL ERROR P0001: customer kept by the shop"
                ), "\(run.stdout)")
            // The log names them by digest.
            for key in [locked, refused] {
                let digest = shop.digest(customer: Int(key) ?? 0)
                #expect(run.stderr.contains("subject \(digest) left"), "\(run.stderr)")
            }
            #expect(
                try await shop.psql("SELECT count(*) FROM shop.customer WHERE id IN (\(locked), \(refused))") == "2")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_subject") == "\(keys.count - 2)")
        }
    }
}
