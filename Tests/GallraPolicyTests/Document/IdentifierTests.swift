import GallraPolicy
import Testing

@Suite("Identifiers")
struct IdentifierTests {
    @Test(
        "table names in PostgreSQL syntax",
        arguments: [
            ("shop.customer", "shop", "customer"),
            ("customer", nil, "customer"),
            ("Shop.Customer", "shop", "customer"),
            ("SHOP.order", "shop", "order"),
            ("\"Mixed Case\".\"Order Items\"", "Mixed Case", "Order Items"),
            ("\"x\"\"y\"", nil, "x\"y"),
            ("shop.\"x\"\"y\"", "shop", "x\"y"),
            ("_private.t$1", "_private", "t$1"),
            ("\"shop.customer\"", nil, "shop.customer"),
            ("\"a;b\"", nil, "a;b"),
            ("kund.öppen_order", "kund", "öppen_order"),
            ("\"ÅÄÖ\".Tabell", "ÅÄÖ", "tabell"),
        ] as [(String, String?, String)])
    func validTableNames(text: String, schema: String?, name: String) throws {
        let parsed = try QualifiedName(parsing: text)
        #expect(parsed == QualifiedName(schema: schema, name: name))
        // The rendered form reads back to the same name.
        #expect(try QualifiedName(parsing: parsed.description) == parsed)
    }

    @Test(
        "texts that are not table names",
        arguments: [
            ("shop.customer; DROP TABLE shop.order", "not a table name"),
            ("", "empty"),
            ("shop.", "missing after the dot"),
            (".customer", "missing before the dot"),
            ("a.b.c", "more than two"),
            ("a..b", "missing"),
            ("\"\"", "empty name"),
            ("\"open", "not closed"),
            ("1table", "starts with a letter"),
            ("shop customer", "unexpected"),
            ("shop.customer--", "unexpected"),
            ("shop.'customer'", "starts with a letter"),
            (String(repeating: "a", count: 64), "at most 63"),
            ("\"" + String(repeating: "é", count: 32) + "\"", "64 bytes"),
        ])
    func invalidTableNames(text: String, fragment: String) {
        #expect {
            try QualifiedName(parsing: text)
        } throws: { error in
            guard let error = error as? IdentifierError else { return false }
            return error.message.contains(fragment) && error.message.hasPrefix("not a table name")
        }
    }

    @Test("63 bytes is the longest name")
    func longestName() throws {
        let name = String(repeating: "a", count: 63)
        #expect(try ColumnName(parsing: name).name == name)
    }

    @Test(
        "column names",
        arguments: [
            ("email", "email"), ("Email", "email"), ("\"Email\"", "Email"), ("\"a.b\"", "a.b"),
            ("\"x\"\"y\"", "x\"y"),
        ])
    func columnNames(text: String, name: String) throws {
        let column = try ColumnName(parsing: text)
        #expect(column.name == name)
        #expect(try ColumnName(parsing: column.description) == column)
    }

    @Test("a column is one identifier")
    func columnWithDot() {
        #expect(throws: IdentifierError.self) { try ColumnName(parsing: "customer.email") }
    }

    @Test("names are rendered with quotes only where needed")
    func rendering() {
        #expect(QualifiedName(schema: "shop", name: "order").description == "shop.order")
        #expect(QualifiedName(schema: "Shop", name: "Order Items").description == "\"Shop\".\"Order Items\"")
        #expect(QualifiedName(schema: nil, name: "x\"y").description == "\"x\"\"y\"")
        #expect(ColumnName("1st").description == "\"1st\"")
    }
}
