import Foundation
import GallraPolicy
import Testing

/// A policy that breaks one rule, and the diagnostic it must give.
struct RuleCase: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var catalog: Catalog
    var severity: PolicyDiagnostic.Severity
    var line: Int
    var message: String
    var testDescription: String { name }

    init(
        _ name: String, _ yaml: String, catalog: Catalog = Fixtures.demoShop,
        _ severity: PolicyDiagnostic.Severity = .error,
        line: Int, _ message: String
    ) {
        self.name = name
        self.yaml = yaml
        self.catalog = catalog
        self.severity = severity
        self.line = line
        self.message = message
    }
}

/// The demo shop seen with `shop` on the search path.
let shopOnSearchPath = Catalog(tables: Fixtures.demoTables, searchPath: ["shop"], role: "gallra")

@Suite("Validator: rules")
struct ValidatorRuleTests {
    static let errors: [RuleCase] = [
        // Names.
        RuleCase(
            "a misspelt table", customerPolicy("  - { table: shop.wishlist_itme, delete: true }"), line: 7,
            "data point table shop.wishlist_itme does not exist; did you mean shop.wishlist_item?"),
        RuleCase(
            "a misspelt schema", customerPolicy("  - { table: shpo.cart, delete: true }"), line: 7,
            "data point table shpo.cart does not exist: schema shpo holds no table gallra can see; did you mean shop.cart?"
        ),
        RuleCase(
            "an unqualified name off the search path", customerPolicy("  - { table: cart, delete: true }"), line: 7,
            "data point table cart is not in a schema on the search path (public); write it with its schema: shop.cart"),
        RuleCase(
            "a misspelt column", customerPolicy("  - { table: shop.order, anonymize: { emial: redact } }"), line: 7,
            "anonymize: column emial does not exist in shop.order; did you mean email?"),
        RuleCase(
            "a mixed-case name written without quotes",
            customerPolicy("  - { table: Sales.OrderItems, delete: true }"), catalog: Fixtures.edgeCases, line: 7,
            "data point table sales.orderitems does not exist: schema sales holds no table gallra can see; did you mean \"Sales\".\"OrderItems\"? Names without double quotes are folded to lower case: write \"Sales\".\"OrderItems\" (in YAML, put single quotes around a value that starts with a double quote)"
        ),
        RuleCase(
            "a view as a data point", customerPolicy("  - { table: shop.customer_summary, via: id, delete: true }"),
            catalog: Fixtures.edgeCases, line: 7,
            "data point table shop.customer_summary is a view; gallra deletes and updates rows of tables only. Name the table that holds the rows"
        ),
        RuleCase(
            "a partition named instead of its parent", customerPolicy("  - { table: shop.events_2024, delete: true }"),
            catalog: Fixtures.edgeCases, line: 7,
            "data point table shop.events_2024 is a partition of shop.events; name the partitioned table shop.events; gallra acts through it"
        ),
        // Subject.
        RuleCase(
            "a subject key that is not unique",
            customerPolicy("  - { table: shop.customer, delete: true }").replacingOccurrences(
                of: "key: id", with: "key: full_name"), line: 3,
            "subject key full_name does not identify one row of shop.customer: it must be the primary key or a unique NOT NULL column (the primary key is (id))"
        ),
        // Rules.
        RuleCase(
            "an activity column that is not a timestamp",
            customerPolicy("  - { table: shop.customer, delete: true }").replacingOccurrences(
                of: "activity: last_seen_at", with: "activity: email"), line: 4,
            "activity: email is text; it must be a date or timestamp column (timestamptz, timestamp or date)"),
        RuleCase(
            "a latest-row table with no link",
            customerPolicy("  - { table: shop.customer, delete: true }").replacingOccurrences(
                of: "activity: last_seen_at", with: "activity: { table: shop.newsletter_log, column: at }"), line: 4,
            "no foreign key links shop.newsletter_log and shop.customer; name the column that links them with via: customer_ref, or the tables between them with through: [TABLE, ...]"
        ),
        // Exemptions.
        RuleCase(
            "is: true on a text column",
            customerPolicy(
                "  - { table: shop.customer, delete: true }", except: "except: [ { column: email, is: true } ]"),
            line: 5,
            "is: true and is: false need a boolean column; email is text. Compare with equals: VALUE or in: [...]"),
        RuleCase(
            "a number compared with a text column",
            customerPolicy(
                "  - { table: shop.customer, delete: true }", except: "except: [ { column: full_name, equals: 42 } ]"),
            line: 5, "equals: 42 is a number, full_name is text; quote it to compare text: \"42\""),
        RuleCase(
            "text compared with a number column",
            customerPolicy(
                "  - { table: shop.customer, delete: true }", except: "except: [ { column: id, in: [1, abc] } ]"),
            line: 5, "in: \"abc\" is text, id is bigint; write the value without quotes"),
        RuleCase(
            "a misspelt column in a related-row exemption",
            customerPolicy(
                "  - { table: shop.customer, delete: true }",
                except: "except: [ { exists: shop.order, where: { statuss: open } } ]"), line: 5,
            "where: column statuss does not exist in shop.order; did you mean status?"),
        // Links.
        RuleCase(
            "two foreign keys between the same tables", customerPolicy("  - { table: shop.ticket, delete: true }"),
            catalog: Fixtures.edgeCases, line: 7,
            "shop.ticket and shop.customer are linked by 2 foreign keys: ticket_opened_by_fkey (shop.ticket.opened_by -> shop.customer.id), ticket_closed_by_fkey (shop.ticket.closed_by -> shop.customer.id); say which one to follow with via: opened_by or via: closed_by"
        ),
        RuleCase(
            "no link at all", customerPolicy("  - { table: shop.newsletter_log, delete: true }"), line: 7,
            "no foreign key links shop.newsletter_log and shop.customer; name the column that links them with via: customer_ref, or the tables between them with through: [TABLE, ...]"
        ),
        RuleCase(
            "a via column of another type", customerPolicy("  - { table: shop.ticket, via: ref_text, delete: true }"),
            catalog: Fixtures.edgeCases, line: 7,
            "via: shop.ticket.ref_text is text but shop.customer.id is bigint; a link needs the same kind of type (both numbers, both text, ...)"
        ),
        RuleCase(
            "a via column in neither table",
            customerPolicy("  - { table: shop.newsletter_log, via: customer_rfe, delete: true }"),
            line: 7,
            "via: column customer_rfe is in neither shop.newsletter_log nor shop.customer; did you mean customer_ref?; via names the column that links them"
        ),
        RuleCase(
            "a path back through the subject table, written differently",
            customerPolicy("  - { table: shop.order_line, through: [customer, shop.order], delete: true }"),
            catalog: shopOnSearchPath, line: 7,
            "through: shop.customer is the subject table; a path visits each table once (a cycle is not a path). Remove it from through"
        ),
        // Strategies.
        RuleCase(
            "truncate on text", customerPolicy("  - { table: shop.order, anonymize: { email: truncate(year) } }"),
            line: 7,
            "anonymize: truncate(year) needs a date or timestamp column; email is text. Use redact, null or set(VALUE)"),
        RuleCase(
            "fake_email on a number", customerPolicy("  - { table: shop.order, anonymize: { total: fake_email } }"),
            line: 7, "anonymize: fake_email needs a text column; total is numeric(12,2)"),
        RuleCase(
            "fake_email on a short varchar",
            customerPolicy("  - { table: '\"Sales\".\"OrderItems\"', anonymize: { '\"ShortMail\"': fake_email } }"),
            catalog: Fixtures.edgeCases, line: 7,
            "anonymize: fake_email writes addresses of up to 40 characters; \"ShortMail\" is character varying(30) (at most 30). Widen the column, or use redact"
        ),
        RuleCase(
            "hash on a varchar too short for its hex",
            customerPolicy("  - { table: '\"Sales\".\"OrderItems\"', anonymize: { '\"Digest\"': hash } }"),
            catalog: Fixtures.edgeCases, line: 7,
            "anonymize: hash writes 64 hexadecimal characters (HMAC-SHA-256); \"Digest\" is character varying(50) (at most 50). Widen the column, or use redact"
        ),
        RuleCase(
            "null on a NOT NULL column", customerPolicy("  - { table: shop.order, anonymize: { email: null } }"),
            line: 7,
            "anonymize: email is NOT NULL in shop.order, so null cannot be written; use redact, or delete the rows"),
        RuleCase(
            "a constant on a UNIQUE column",
            customerPolicy("  - { table: shop.customer, anonymize: { email: redact } }"),
            line: 7,
            "anonymize: redact writes the same value into email of every anonymized row, but email is unique in shop.customer, so the second row would fail; use fake_email or hash (unique per row), or null"
        ),
        RuleCase(
            "set with a value of the wrong type",
            customerPolicy("  - { table: shop.order, anonymize: { total: { set: abc } } }"), line: 7,
            "anonymize: set: \"abc\" is text, total is numeric(12,2); write the value without quotes"),
        RuleCase(
            "a generated column",
            customerPolicy("  - { table: shop.ticket, via: opened_by, anonymize: { body_length: null } }"),
            catalog: Fixtures.edgeCases, line: 7,
            "anonymize: body_length is a generated column of shop.ticket; PostgreSQL computes it. Anonymize the columns it is computed from"
        ),
        RuleCase(
            "a primary-key column", customerPolicy("  - { table: shop.order, anonymize: { id: { set: 0 } } }"),
            line: 7,
            "anonymize: id is part of the primary key of shop.order; changing it would make the row another row. Delete the rows instead (delete: true), or anonymize other columns"
        ),
        RuleCase(
            "a foreign-key column given a value",
            customerPolicy("  - { table: shop.order, anonymize: { customer_id: redact } }"),
            line: 7,
            "anonymize: customer_id links shop.order to shop.customer (order_customer_id_fkey); only null may change it, which detaches the row. redact would point it at another row or break the reference"
        ),
        RuleCase(
            "a via column given a value",
            customerPolicy(
                "  - { table: shop.newsletter_log, via: customer_ref, anonymize: { customer_ref: { set: 0 } } }"),
            line: 7,
            "anonymize: customer_ref links shop.newsletter_log to the subject (via); only null may change it, which detaches the row. set(0) would point it at another row or break the reference"
        ),
        // Deletes blocked by kept rows.
        RuleCase(
            "a delete blocked by kept children further down",
            customerPolicy("  - { table: shop.order, delete: true }"), line: 7,
            "deleting shop.order (data[0]) is blocked by shop.order_line through order_line_order_id_fkey (ON DELETE NO ACTION): the policy keeps those rows. Delete them too: add the data point - { table: shop.order_line, through: shop.order, delete: true }"
        ),
        RuleCase(
            "a subject delete blocked by a child that cannot be detached",
            customerPolicy(
                """
                  - { table: shop.order, anonymize: { customer_id: null } }
                  - { table: shop.customer, delete: true }
                """), line: 8,
            "deleting shop.customer (data[1]) is blocked by shop.wishlist_item through wishlist_item_customer_id_fkey (ON DELETE NO ACTION): the policy keeps those rows. Delete them too: add the data point - { table: shop.wishlist_item, delete: true }"
        ),
        RuleCase(
            "a subject delete blocked by a child the policy does not name",
            customerPolicy(
                """
                  - { table: shop.wishlist_item, delete: true }
                  - { table: shop.customer, delete: true }
                """), line: 8,
            "deleting shop.customer (data[1]) is blocked by shop.order through order_customer_id_fkey (ON DELETE RESTRICT): the policy keeps those rows. Delete them too: add the data point - { table: shop.order, delete: true }, or detach them: - { table: shop.order, anonymize: { customer_id: null } }"
        ),
        // Privileges.
        RuleCase(
            "a table the role may not delete from",
            customerPolicy("  - { table: shop.newsletter_log, via: customer_ref, delete: true }"),
            catalog: Catalog(
                tables: Fixtures.demoTables.map { table in
                    var table = table
                    if table.name == shop("newsletter_log") { table.privileges = [.select] }
                    return table
                }, role: "gallra"), line: 7,
            "role gallra lacks DELETE on shop.newsletter_log, needed for data[0]; run: GRANT DELETE ON shop.newsletter_log TO gallra;"
        ),
        RuleCase(
            "a reserved word in the GRANT it proposes",
            customerPolicy("  - { table: shop.order, anonymize: { phone: null } }"),
            catalog: Catalog(
                tables: Fixtures.demoTables.map { table in
                    var table = table
                    if table.name == shop("order") { table.privileges = [] }
                    return table
                }, role: "gallra"), line: 7,
            "role gallra lacks SELECT, UPDATE on shop.order, needed for data[0]; run: GRANT SELECT, UPDATE ON shop.\"order\" TO gallra;"
        ),
    ]

    @Test("each rule gives its error at the line that breaks it", arguments: errors)
    func error(_ rule: RuleCase) {
        let result = validation(rule.yaml, against: rule.catalog)
        #expect(result.resolved == nil)
        let found = result.errors.map { ($0.location?.line ?? 0, $0.message) }
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.0 == rule.line)
        #expect(found.first?.1 == rule.message)
    }

    static let warnings: [RuleCase] = [
        RuleCase(
            "a link without an index",
            customerPolicy("  - { table: shop.newsletter_log, via: customer_ref, delete: true }"), .warning, line: 7,
            "no index on shop.newsletter_log (customer_ref): finding the rows of each batch's subjects reads the whole table; create one: CREATE INDEX CONCURRENTLY ON shop.newsletter_log (customer_ref);"
        ),
        RuleCase(
            "a latest-row rule without an index on the link",
            customerPolicy("  - { table: shop.customer, anonymize: { phone: null } }").replacingOccurrences(
                of: "activity: last_seen_at",
                with: "activity: { table: shop.newsletter_log, column: at, via: customer_ref }"),
            .warning, line: 4,
            "no index on shop.newsletter_log (customer_ref, at): finding each subject's latest row reads the whole of shop.newsletter_log; create one: CREATE INDEX CONCURRENTLY ON shop.newsletter_log (customer_ref, at);"
        ),
        RuleCase(
            "an expiry column without an index",
            customerPolicy("  - { table: shop.customer, anonymize: { phone: null } }").replacingOccurrences(
                of: "inactive_for: 1 year, activity: last_seen_at", with: "older_than: 7 years, created: created_at"),
            .warning, line: 4,
            "no index on shop.customer (created_at): finding the expiring subjects reads the whole of shop.customer on every run; create one: CREATE INDEX CONCURRENTLY ON shop.customer (created_at);"
        ),
        RuleCase(
            "a partitioned table without an index on its link",
            customerPolicy("  - { table: shop.events, delete: true }"),
            catalog: Fixtures.edgeCases, .warning, line: 7,
            "no index on shop.events (customer_id): finding the rows of each batch's subjects reads the whole table; create one: CREATE INDEX ON shop.events (customer_id); (a partitioned table takes no CONCURRENTLY: to avoid locking it, create the index on each partition CONCURRENTLY first)"
        ),
        RuleCase(
            "a cascade the policy does not name",
            customerPolicy(
                """
                  - { table: shop.wishlist_item, delete: true }
                  - { table: shop.order, anonymize: { customer_id: null } }
                  - { table: shop.cart, delete: true }
                  - { table: shop.newsletter_consent, delete: true }
                  - { table: shop.customer, delete: true }
                """), .warning, line: 9,
            "deleting shop.cart also deletes rows of shop.cart_item through cart_item_cart_id_fkey (ON DELETE CASCADE); list it in the policy to make that explicit: - { table: shop.cart_item, through: shop.cart, delete: true }"
        ),
        RuleCase(
            "is: null on a NOT NULL column",
            customerPolicy(
                "  - { table: shop.customer, anonymize: { phone: null } }",
                except: "except: [ { column: email, is: null } ]"),
            .warning, line: 5, "is: null never matches: email is NOT NULL; remove this condition"),
        RuleCase(
            "deleting rows the subject points to while keeping the subject row",
            customerPolicy(
                """
                  - { table: shop.customer, anonymize: { phone: null } }
                  - { table: shop.address, delete: true }
                """), .warning, line: 8,
            "data[1] deletes rows of shop.address that shop.customer points to through customer_address_id_fkey, but the policy keeps those shop.customer rows: every such row is shared and retained, so nothing is deleted. Delete shop.customer too, or set address_id to null"
        ),
    ]

    @Test("each warning names what to do, and the policy still resolves", arguments: warnings)
    func warning(_ rule: RuleCase) {
        let result = validation(rule.yaml, against: rule.catalog)
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.resolved != nil)
        let found = result.warnings.filter { $0.message == rule.message }
        #expect(found.count == 1, "\(result.warnings.map(\.message))")
        #expect(found.first?.location?.line == rule.line)
    }
}
