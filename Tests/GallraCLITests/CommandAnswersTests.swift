import Foundation
import Testing

/// Answers that used to be silent, doubled or wrong: each says what holds, once, with the fitting exit status.
@Suite("Commands say what holds, once")
struct CommandAnswersTests {
    @Test func planWithNothingStoredSaysHowToStorePolicies() async throws {
        try await Harness.withDatabase { _, conninfo in
            let migrate = try await gallra("migrate", "--database", conninfo)
            try #require(migrate.status == 0, "\(migrate.stderr)")
            let plan = try await gallra("plan", "--database", conninfo)
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(
                plan.stdout.contains(
                    "\nno policies stored yet, so nothing to plan; store some with gallra policy "
                        + "apply FILE\n"), "\(plan.stdout)")
        }
    }

    @Test func planWithOnlyDisabledPoliciesSaysSo() async throws {
        try await DemoShop.with(customers: 5) { shop in
            let stored = try await shop.psql("SELECT count(*) FROM gallra.policy_latest")
            for name in try await shop.psql("SELECT name FROM gallra.policy_latest").split(separator: "\n") {
                let disable = try await shop.gallra("policy", "disable", String(name))
                try #require(disable.status == 0, "\(disable.stderr)")
            }
            let plan = try await shop.gallra("plan")
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(
                plan.stdout.contains(
                    "none of the \(stored) stored policies is active or a draft, so nothing to plan; gallra policy "
                        + "list shows their states"), "\(plan.stdout)")
        }
    }

    @Test func migrateSaysEachMigrationOnce() async throws {
        try await Harness.withDatabase { _, conninfo in
            let migrate = try await gallra("migrate", "--database", conninfo)
            #expect(migrate.status == 0, "\(migrate.stderr)")
            #expect(migrate.stdout.components(separatedBy: "applied migration 1: ").count == 2)
            #expect(!migrate.stderr.contains("applied gallra schema migration"), "\(migrate.stderr)")
            #expect(migrate.stderr.isEmpty, "\(migrate.stderr)")
        }
        // At debug level the log shows the migrations as well.
        try await Harness.withDatabase { _, conninfo in
            let debug = try await gallra("migrate", "--database", conninfo, "--log-level", "debug")
            #expect(debug.status == 0, "\(debug.stderr)")
            #expect(debug.stderr.contains("applied gallra schema migration"), "\(debug.stderr)")
        }
    }

    @Test func triggerRefusesAPolicyThatIsNotStored() async throws {
        try await DemoShop.with(customers: 5) { shop in
            let misspelt = try await shop.gallra("trigger", "--policy", "inactive-customer")
            #expect(misspelt.status == 65, "\(misspelt.stderr)")
            #expect(
                misspelt.stderr.contains(
                    "no policy inactive-customer is stored; did you mean inactive-customers? gallra policy list"),
                "\(misspelt.stderr)")
            #expect(!misspelt.stderr.contains("no gallra service is running"), "refused before anything is sent")
        }
        try await Harness.withDatabase { _, conninfo in
            try #require(try await gallra("migrate", "--database", conninfo).status == 0)
            let none = try await gallra("trigger", "--policy", "nosuch", "--database", conninfo)
            #expect(none.status == 65)
            #expect(none.stderr.contains("no policy nosuch is stored; no policy is stored at all"), "\(none.stderr)")
        }
    }

    @Test func aServerThatRefusesTheSessionIsQuoted() async throws {
        let conninfo = try Harness.serverConninfo()
        let database = try await gallra("plan", "--database", conninfo + " dbname=gallra_no_such_database")
        #expect(database.status == 78, "\(database.stderr)")
        #expect(database.stderr.contains("database \"gallra_no_such_database\" does not exist"), "\(database.stderr)")
        #expect(database.stderr.contains("The server runs but has no such database"))
        #expect(!database.stderr.contains("Check that the server runs"))

        let role = try await gallra("check", "--database", conninfo + " user=gallra_no_such_role")
        #expect(role.status == 78, "\(role.stderr)")
        #expect(role.stderr.contains("role \"gallra_no_such_role\" does not exist"), "\(role.stderr)")
        #expect(role.stderr.contains("The server runs but has no such role"))

        let port = try Harness.serverSetting("port")
        let password = try await gallra(
            "check", "--database",
            "host=127.0.0.1 port=\(port) user=password_user password=not-it dbname=postgres connect_timeout=5")
        #expect(password.status == 77, "\(password.stderr)")
        #expect(password.stderr.contains("password authentication failed"), "\(password.stderr)")
        #expect(!password.stderr.contains("not-it"))
    }

    @Test func helpForAnUnknownCommandIsAUsageError() async throws {
        let unknown = try await gallra("help", "erse")
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("gallra has no command erse; did you mean erase?"), "\(unknown.stderr)")
        #expect(unknown.stdout.isEmpty)
        let nested = try await gallra("help", "policy", "aply")
        #expect(nested.status == 64)
        #expect(nested.stderr.contains("gallra policy has no command aply; did you mean apply?"), "\(nested.stderr)")
        let known = try await gallra("help", "policy", "apply")
        #expect(known.status == 0)
        #expect(known.stdout.contains("USAGE: gallra policy apply"))
    }

    @Test func policyFilesWithErrorsOfTheirOwnAreNotCalledUnchecked() async throws {
        try await Harness.withDatabase { _, conninfo in
            try #require(try await gallra("migrate", "--database", conninfo).status == 0)
            try await Harness.withTemporaryDirectory { directory in
                let file = "\(directory)/broken.yaml"
                try "policy: broken\nsubject: { table: shop.customer, key: id }\nexpire: { inactive_for: 1 year }\n"
                    .write(toFile: file, atomically: true, encoding: .utf8)
                let apply = try await gallra("policy", "apply", "--database", conninfo, file)
                #expect(apply.status == 65, "\(apply.stderr)")
                #expect(!apply.stdout.contains("configure a database"), "\(apply.stdout)")
                #expect(
                    apply.stdout.contains(
                        "(the files have errors of their own, so they were not checked against the database's "
                            + "catalog yet; fix those and apply again)"), "\(apply.stdout)")
                let offline = try await gallra("policy", "validate", "--offline", "--database", conninfo, file)
                #expect(offline.status == 65)
                #expect(offline.stdout.contains("(the files alone were checked (--offline)"), "\(offline.stdout)")
            }
        }
    }
}
