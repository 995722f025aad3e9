import Foundation
import Testing

/// `gallra correct`: one subject's values changed in the tables its policies map to it, in one transaction, with
/// an audit event; refused, changing nothing, for anything else.
@Suite("gallra correct")
struct CorrectCommandTests {
    /// The customer with the most orders (ties: the lowest id), and its order ids.
    static func customerWithOrders(_ shop: DemoShop) async throws -> (id: Int, orders: [Int]) {
        let id = try #require(
            Int(
                try await shop.psql(
                    """
                    SELECT customer_id FROM shop."order" WHERE customer_id IS NOT NULL
                    GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 1
                    """)))
        let orders = try await shop.psql("SELECT id FROM shop.\"order\" WHERE customer_id = \(id) ORDER BY id")
            .split(separator: "\n").compactMap { Int($0) }
        try #require(orders.count >= 2, "customer \(id) has orders \(orders)")
        return (id, orders)
    }

    /// The subject row and its orders corrected: old and new values shown per row, the rows changed and no
    /// other, one chained audit event with the subject's digest, tables, columns and counts, and no value.
    @Test func correctsTheSubjectRowAndItsOrders() async throws {
        try await DemoShop.with(customers: 40) { shop in
            let (id, orders) = try await Self.customerWithOrders(shop)
            let oldName = try await shop.psql("SELECT full_name FROM shop.customer WHERE id = \(id)")
            let oldPhones = try await shop.psql(
                "SELECT coalesce(phone, 'NULL') FROM shop.\"order\" WHERE customer_id = \(id) ORDER BY id"
            ).split(separator: "\n").map(String.init)
            let otherOrders = try await shop.psql(
                "SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM shop.\"order\" AS o WHERE customer_id <> \(id)")

            let result = try await shop.gallra(
                "correct", "--subject", "shop.customer:\(id)", "--set", "shop.customer.full_name=Ada King",
                "--set", "shop.order.phone=+46 70 000 00 00", "--yes", "--audit-key-file", shop.keyFile)
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
            #expect(result.stdout.contains("shop.customer:\(id): \(orders.count + 1) rows change"))
            #expect(result.stdout.contains("full_name: \"\(oldName)\" → \"Ada King\""), "\(result.stdout)")
            for (order, phone) in zip(orders, oldPhones) {
                #expect(result.stdout.contains("    id \(order):\n      phone: "), "order \(order)")
                if phone != "NULL" { #expect(result.stdout.contains("phone: \"\(phone)\" → \"+46 70 000 00 00\"")) }
            }
            #expect(result.stdout.contains("recorded as audit event 1"))
            #expect(result.stderr.isEmpty, "\(result.stderr)")

            #expect(try await shop.psql("SELECT full_name FROM shop.customer WHERE id = \(id)") == "Ada King")
            #expect(
                try await shop.psql(
                    "SELECT count(*) FROM shop.\"order\" WHERE customer_id = \(id) AND phone = '+46 70 000 00 00'")
                    == "\(orders.count)")
            #expect(try await shop.psql("SELECT count(*) FROM shop.customer WHERE full_name = 'Ada King'") == "1")
            #expect(
                try await shop.psql(
                    "SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM shop.\"order\" AS o WHERE customer_id <> \(id)"
                ) == otherOrders)

            let event = try await shop.psql(
                """
                SELECT sequence, kind, subject_table, subject_digest, detail, previous_hash = repeat('0', 64)
                FROM gallra.audit_event
                """)
            #expect(
                event
                    == "1|correction|shop.customer|\(shop.digest(customer: id))|"
                    + "{\"tables\":[{\"columns\":[\"full_name\"],\"rows\":1,\"table\":\"shop.customer\"},"
                    + "{\"columns\":[\"phone\"],\"rows\":\(orders.count),\"table\":\"shop.order\"}]}|t")
            #expect(!event.contains("Ada King") && !event.contains("+46"))

            // A second correction, as JSON: chained to the first. Orders already holding the value are left alone.
            let oldBirth = try await shop.psql(
                "SELECT coalesce(birth_date::text, 'NULL') FROM shop.customer WHERE id = \(id)")
            let json = try await shop.gallra(
                "correct", "--subject", "shop.customer:\(id)", "--set", "shop.customer.birth_date=1815-12-10",
                "--set", "shop.order.phone=+46 70 000 00 00", "--yes", "--format", "json", "--audit-key-file",
                shop.keyFile)
            #expect(json.status == 0, "\(json.stderr)")
            let document = try jsonObject(json)
            #expect(document["applied"] as? Bool == true)
            #expect(document["audit_event"] as? Int == 2)
            #expect(document["row_count"] as? Int == 1)
            let tables = try #require(document["tables"] as? [[String: Any]])
            #expect(tables.map { $0["table"] as? String } == ["shop.customer", "shop.order"])
            let row = try #require((tables.first?["rows"] as? [[String: Any]])?.first)
            #expect(row["key"] as? [String: String] == ["id": "\(id)"])
            let change = try #require((row["changes"] as? [[String: Any]])?.first)
            #expect(change["column"] as? String == "birth_date")
            #expect((change["old"] as? String ?? "NULL") == oldBirth)
            #expect(change["new"] as? String == "1815-12-10")
            #expect((tables.last?["rows"] as? [Any])?.isEmpty == true)
            #expect(
                try await shop.psql(
                    """
                    SELECT e2.previous_hash = e1.hash AND e2.hash <> e1.hash AND e2.subject_digest = e1.subject_digest
                    FROM gallra.audit_event e1, gallra.audit_event e2 WHERE e1.sequence = 1 AND e2.sequence = 2
                    """) == "t")

            // The same again changes nothing and records nothing.
            let again = try await shop.gallra(
                "correct", "--subject", "shop.customer:\(id)", "--set", "shop.customer.birth_date=1815-12-10",
                "--audit-key-file", shop.keyFile)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("nothing to change"))
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_event") == "2")
        }
    }

    /// A value of the wrong type is the server's error (exit 65, the SQLSTATE named, the value not echoed), and so
    /// is a value a constraint refuses after an earlier table of the same correction was updated: nothing changes,
    /// no event is written.
    @Test func aRefusedValueChangesNothing() async throws {
        try await DemoShop.with(customers: 30) { shop in
            let (id, _) = try await Self.customerWithOrders(shop)
            let before = try await shop.checksums()

            let date = try await shop.gallra(
                "correct", "--subject", "shop.customer:\(id)", "--set", "shop.order.phone=+46 70 111 11 11",
                "--set", "shop.customer.birth_date=not-a-date", "--yes", "--audit-key-file", shop.keyFile)
            #expect(date.status == 65, "\(date.stdout) \(date.stderr)")
            #expect(date.stderr.contains("SQLSTATE 22007 invalid_datetime_format"), "\(date.stderr)")
            #expect(date.stderr.contains("shop.customer (birth_date)"))
            #expect(!date.stderr.contains("not-a-date") && !date.stdout.contains("not-a-date"))

            // The orders come first and are updated; the e-mail of another customer then breaks a unique key.
            let taken = try await shop.psql("SELECT email FROM shop.customer WHERE id <> \(id) ORDER BY id LIMIT 1")
            let unique = try await shop.gallra(
                "correct", "--subject", "shop.customer:\(id)", "--set", "shop.order.phone=+46 70 111 11 11",
                "--set", "shop.customer.email=\(taken)", "--yes", "--audit-key-file", shop.keyFile)
            #expect(unique.status == 65, "\(unique.stdout) \(unique.stderr)")
            #expect(unique.stderr.contains("SQLSTATE 23505 unique_violation"), "\(unique.stderr)")
            #expect(unique.stdout.contains("phone: "), "the diff was shown: \(unique.stdout)")
            #expect(!unique.stderr.contains(taken))

            #expect(try await shop.checksums() == before)
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_event") == "0")
        }
    }

    /// Tables the policies do not map to the subject, key and link columns, unknown columns, and a
    /// row the subject shares with another: refused with what is wrong, nothing changed.
    @Test func refusesWhatIsNotTheSubjectsToCorrect() async throws {
        try await DemoShop.with(customers: 40) { shop in
            let (id, _) = try await Self.customerWithOrders(shop)
            // Another customer moves in with a customer who has an address: that address row is shared.
            let sharing = try await shop.psql(
                "SELECT id FROM shop.customer WHERE address_id IS NOT NULL AND id <> \(id) ORDER BY id LIMIT 1")
            try #require(!sharing.isEmpty, "a customer with an address")
            try await shop.psql(
                """
                UPDATE shop.customer SET address_id = (SELECT address_id FROM shop.customer WHERE id = \(sharing))
                WHERE id = (SELECT max(id) FROM shop.customer WHERE id NOT IN (\(id), \(sharing)))
                """)
            let before = try await shop.checksums()
            let cases: [(subject: String, set: String, status: Int32, says: String)] = [
                (
                    "\(id)", "shop.product.name=x", 65,
                    "shop.product is not a table the policies over shop.customer map to its subjects"
                ),
                ("\(id)", "shop.product.name=x", 65, "may change: shop.customer, "),
                ("\(id)", "shop.customer.id=1", 65, "id is part of the key of shop.customer's rows"),
                ("\(id)", "shop.order.customer_id=1", 65, "customer_id links shop.order's rows to the subject"),
                ("\(id)", "shop.customer.address_id=1", 65, "address_id links shop.customer's rows to the subject"),
                ("\(id)", "shop.customer.shoe_size=44", 65, "shop.customer has no column shoe_size"),
                ("\(id)", "shop.nowhere.name=x", 65, "there is no table shop.nowhere"),
                (
                    sharing, "shop.address.street=x", 65,
                    "is also used by another subject or by rows that are no subject's"
                ),
                ("\(id)", "full_name=x", 64, "name the table and the column"),
            ]
            for item in cases {
                let result = try await shop.gallra(
                    "correct", "--subject", "shop.customer:\(item.subject)", "--set", item.set, "--yes")
                #expect(result.status == item.status, "\(item.set): \(result.stderr)")
                #expect(result.stderr.contains(item.says), "\(item.set): \(result.stderr)")
            }
            let twice = try await shop.gallra(
                "correct", "--subject", "shop.customer:\(id)", "--set", "shop.customer.phone=1", "--set",
                "shop.customer.phone=2", "--yes")
            #expect(twice.status == 65 && twice.stderr.contains("twice"), "\(twice.stderr)")
            let none = try await shop.gallra("correct", "--subject", "shop.customer:\(id)")
            #expect(none.status == 64 && none.stderr.contains("--set"), "\(none.stderr)")
            let missing = try await shop.gallra(
                "correct", "--subject", "shop.customer:999999", "--set", "shop.customer.phone=1", "--yes")
            #expect(missing.status == 66, "\(missing.stderr)")

            #expect(try await shop.checksums() == before)

            // An address only its customer uses (no other customer, store or other customer's order points to it)
            // is the customer's to correct.
            let own = try await shop.psql(
                """
                SELECT c.id || '|' || c.address_id FROM shop.customer c WHERE c.address_id IS NOT NULL
                  AND NOT EXISTS (SELECT FROM shop.customer d WHERE d.address_id = c.address_id AND d.id <> c.id)
                  AND NOT EXISTS (SELECT FROM shop.store s WHERE s.address_id = c.address_id)
                  AND NOT EXISTS (SELECT FROM shop."order" o WHERE o.shipping_address_id = c.address_id
                                  AND o.customer_id IS DISTINCT FROM c.id)
                ORDER BY c.id LIMIT 1
                """
            ).split(separator: "|").map(String.init)
            try #require(own.count == 2, "a customer with an address of its own")
            let address = try await shop.gallra(
                "correct", "--subject", "shop.customer:\(own[0])", "--set", "shop.address.street=Storgatan 1", "--yes")
            #expect(address.status == 0, "\(address.stderr)")
            #expect(address.stdout.contains("  shop.address\n    id \(own[1]):\n      street: "), "\(address.stdout)")
            #expect(
                try await shop.psql("SELECT count(*) FROM shop.address WHERE street = 'Storgatan 1'") == "1")
        }
    }

    /// Without --yes: on a terminal it asks (n keeps everything, y changes); without a terminal it shows the
    /// change and exits 64 asking for --yes.
    @Test func asksForConfirmation() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let (id, _) = try await Self.customerWithOrders(shop)
            let before = try await shop.checksums()
            let noTerminal = try await shop.gallra(
                "correct", "--subject", "shop.customer:\(id)", "--set", "shop.customer.full_name=Ada King")
            #expect(noTerminal.status == 64, "\(noTerminal.stderr)")
            #expect(noTerminal.stderr.contains("add --yes"))
            #expect(noTerminal.stdout.contains("→ \"Ada King\""))
            #expect(try await shop.checksums() == before)

            // On a terminal (script(1) gives it one), the answer decides.
            let command = "\(shop.directory)/correct.sh"
            try """
            exec '\(Harness.gallraPath)' correct --database '\(shop.conninfo)' --subject shop.customer:\(id) \
            --set 'shop.customer.full_name=Ada King' --audit-key-file '\(shop.keyFile)'
            """.write(toFile: command, atomically: true, encoding: .utf8)
            func answering(_ answer: String) async throws -> CommandResult {
                try await run("/bin/sh", ["-c", "printf '\(answer)\\n' | script -qec 'sh \(command)' /dev/null"])
            }
            let no = try await answering("n")
            #expect(no.status == 0, "\(no.stdout) \(no.stderr)")
            #expect(no.stdout.contains("[y/N]") && no.stdout.contains("nothing was changed"), "\(no.stdout)")
            #expect(try await shop.checksums() == before)
            let yes = try await answering("y")
            #expect(yes.status == 0, "\(yes.stdout) \(yes.stderr)")
            #expect(yes.stdout.contains("recorded as audit event 1"), "\(yes.stdout)")
            #expect(try await shop.psql("SELECT full_name FROM shop.customer WHERE id = \(id)") == "Ada King")
        }
    }
}
