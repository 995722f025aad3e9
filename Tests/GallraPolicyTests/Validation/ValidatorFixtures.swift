import GallraPolicy
import Testing

// The demo shop's catalog, written by hand from config/demo/schema.sql (as the engine would read it from
// pg_catalog: type names are pg_type.typname, constraint names PostgreSQL's defaults), and edge-case tables.

extension CatalogColumn {
    static func int8(_ name: String, null: Bool = false) -> CatalogColumn {
        CatalogColumn(name: name, type: "bigint", baseType: "int8", category: .numeric, isNullable: null)
    }
    static func int4(_ name: String, null: Bool = false) -> CatalogColumn {
        CatalogColumn(name: name, type: "integer", baseType: "int4", category: .numeric, isNullable: null)
    }
    static func int2(_ name: String, null: Bool = false) -> CatalogColumn {
        CatalogColumn(name: name, type: "smallint", baseType: "int2", category: .numeric, isNullable: null)
    }
    static func numeric(_ name: String, null: Bool = false) -> CatalogColumn {
        CatalogColumn(name: name, type: "numeric(12,2)", baseType: "numeric", category: .numeric, isNullable: null)
    }
    static func text(_ name: String, null: Bool = false) -> CatalogColumn {
        CatalogColumn(name: name, type: "text", baseType: "text", category: .string, isNullable: null)
    }
    static func varchar(_ name: String, _ length: Int, null: Bool = false) -> CatalogColumn {
        CatalogColumn(
            name: name, type: "character varying(\(length))", baseType: "varchar", category: .string,
            maximumLength: length, isNullable: null)
    }
    static func char(_ name: String, _ length: Int, null: Bool = false) -> CatalogColumn {
        CatalogColumn(
            name: name, type: "character(\(length))", baseType: "bpchar", category: .string, maximumLength: length,
            isNullable: null)
    }
    static func timestamptz(_ name: String, null: Bool = false) -> CatalogColumn {
        CatalogColumn(
            name: name, type: "timestamp with time zone", baseType: "timestamptz", category: .dateTime,
            isNullable: null)
    }
    static func date(_ name: String, null: Bool = false) -> CatalogColumn {
        CatalogColumn(name: name, type: "date", baseType: "date", category: .dateTime, isNullable: null)
    }
    static func bool(_ name: String, null: Bool = false) -> CatalogColumn {
        CatalogColumn(name: name, type: "boolean", baseType: "bool", category: .boolean, isNullable: null)
    }
}

func shop(_ name: String) -> QualifiedName { QualifiedName(schema: "shop", name: name) }

func key(
    _ name: String, _ columns: [String], _ table: QualifiedName, _ referenced: [String] = ["id"],
    _ onDelete: ForeignKey.Action = .noAction
) -> ForeignKey {
    ForeignKey(name: name, columns: columns, referencedTable: table, referencedColumns: referenced, onDelete: onDelete)
}

func index(_ name: String, _ columns: String...) -> CatalogIndex { CatalogIndex(name: name, columns: columns) }

enum Fixtures {
    static let address = CatalogTable(
        name: shop("address"),
        columns: [
            .int8("id"), .text("street"), .text("postal_code"), .text("city"), .char("country", 2),
            .text("phone", null: true),
        ],
        primaryKey: ["id"], indexes: [index("address_pkey", "id")], estimatedRows: 9000)

    static let customer = CatalogTable(
        name: shop("customer"),
        columns: [
            .int8("id"), .text("email"), .text("full_name"), .text("phone", null: true),
            .date("birth_date", null: true), .timestamptz("created_at"), .timestamptz("last_seen_at", null: true),
            .bool("legal_hold"), .int8("address_id", null: true),
        ],
        primaryKey: ["id"], uniqueKeys: [["email"]],
        foreignKeys: [key("customer_address_id_fkey", ["address_id"], shop("address"))],
        indexes: [
            index("customer_pkey", "id"), index("customer_email_key", "email"),
            index("customer_last_seen_at_idx", "last_seen_at"), index("customer_address_id_idx", "address_id"),
        ],
        estimatedRows: 10000)

    static let store = CatalogTable(
        name: shop("store"), columns: [.int8("id"), .text("name"), .int8("address_id")], primaryKey: ["id"],
        uniqueKeys: [["name"]], foreignKeys: [key("store_address_id_fkey", ["address_id"], shop("address"))],
        indexes: [index("store_address_id_idx", "address_id")])

    static let product = CatalogTable(
        name: shop("product"), columns: [.int8("id"), .text("sku"), .text("name"), .numeric("price")],
        primaryKey: ["id"], uniqueKeys: [["sku"]])

    static let order = CatalogTable(
        name: shop("order"),
        columns: [
            .int8("id"), .int8("customer_id", null: true), .timestamptz("placed_at"), .text("status"),
            .text("email"), .text("full_name"), .text("phone", null: true), .date("birth_date", null: true),
            .int8("shipping_address_id", null: true), .numeric("total"),
        ],
        primaryKey: ["id"],
        foreignKeys: [
            key("order_customer_id_fkey", ["customer_id"], shop("customer"), ["id"], .restrict),
            key("order_shipping_address_id_fkey", ["shipping_address_id"], shop("address")),
        ],
        indexes: [
            index("order_customer_id_idx", "customer_id"),
            index("order_shipping_address_id_idx", "shipping_address_id"),
            index("order_placed_at_idx", "placed_at"),
        ])

    static let orderLine = CatalogTable(
        name: shop("order_line"),
        columns: [
            .int8("id"), .int8("order_id"), .int2("line_no"), .int8("product_id"), .int4("qty"),
            .numeric("unit_price"),
        ],
        primaryKey: ["id"], uniqueKeys: [["order_id", "line_no"]],
        foreignKeys: [
            key("order_line_order_id_fkey", ["order_id"], shop("order")),
            key("order_line_product_id_fkey", ["product_id"], shop("product")),
        ],
        indexes: [
            index("order_line_order_id_line_no_key", "order_id", "line_no"),
            index("order_line_product_id_idx", "product_id"),
        ])

    static let wishlistItem = CatalogTable(
        name: shop("wishlist_item"), columns: [.int8("customer_id"), .int8("product_id"), .timestamptz("added_at")],
        primaryKey: ["customer_id", "product_id"],
        foreignKeys: [
            key("wishlist_item_customer_id_fkey", ["customer_id"], shop("customer")),
            key("wishlist_item_product_id_fkey", ["product_id"], shop("product"), ["id"], .cascade),
        ],
        indexes: [index("wishlist_item_product_id_idx", "product_id")])

    static let cart = CatalogTable(
        name: shop("cart"),
        columns: [.int8("id"), .int8("customer_id"), .timestamptz("created_at"), .timestamptz("updated_at")],
        primaryKey: ["id"], uniqueKeys: [["customer_id"]],
        foreignKeys: [key("cart_customer_id_fkey", ["customer_id"], shop("customer"), ["id"], .cascade)],
        indexes: [index("cart_customer_id_key", "customer_id")])

    static let cartItem = CatalogTable(
        name: shop("cart_item"),
        columns: [.int8("cart_id"), .int8("product_id"), .int4("qty"), .timestamptz("added_at")],
        primaryKey: ["cart_id", "product_id"],
        foreignKeys: [
            key("cart_item_cart_id_fkey", ["cart_id"], shop("cart"), ["id"], .cascade),
            key("cart_item_product_id_fkey", ["product_id"], shop("product"), ["id"], .cascade),
        ],
        indexes: [index("cart_item_product_id_idx", "product_id")])

    static let newsletterLog = CatalogTable(
        name: shop("newsletter_log"),
        columns: [.int8("id"), .int8("customer_ref"), .text("event"), .timestamptz("at")], primaryKey: ["id"])

    static let newsletterConsent = CatalogTable(
        name: shop("newsletter_consent"),
        columns: [
            .int8("id"), .int8("customer_id"), .text("channel"), .timestamptz("given_at"),
            .timestamptz("revoked_at", null: true),
        ],
        primaryKey: ["id"], uniqueKeys: [["customer_id", "channel"]],
        foreignKeys: [
            key("newsletter_consent_customer_id_fkey", ["customer_id"], shop("customer"), ["id"], .cascade)
        ],
        indexes: [index("newsletter_consent_customer_id_channel_key", "customer_id", "channel")])

    static let employee = CatalogTable(
        name: shop("employee"),
        columns: [
            .int8("id"), .text("full_name"), .text("email"), .text("national_id"), .date("hired_on"),
            .date("employment_ended_on", null: true), .int8("store_id", null: true),
        ],
        primaryKey: ["id"], uniqueKeys: [["email"], ["national_id"]],
        foreignKeys: [key("employee_store_id_fkey", ["store_id"], shop("store"))],
        indexes: [
            index("employee_store_id_idx", "store_id"),
            index("employee_employment_ended_on_idx", "employment_ended_on"),
        ])

    static let demoTables = [
        address, customer, store, product, order, orderLine, wishlistItem, cart, cartItem, newsletterLog,
        newsletterConsent, employee,
    ]

    /// The demo shop as gallra sees it connected as role `gallra`.
    static let demoShop = Catalog(tables: demoTables, searchPath: ["public"], role: "gallra")

    /// The demo shop with edge cases: quoted mixed-case names, a partitioned table and its partition, two
    /// foreign keys between the same tables, a view, a generated column, narrow text columns.
    static let edgeCases = Catalog(
        tables: demoTables + [
            CatalogTable(
                name: QualifiedName(schema: "Sales", name: "OrderItems"),
                columns: [
                    .int8("Id"), .int8("CustomerId"), .text("Note", null: true),
                    .varchar("ShortMail", 30, null: true), .varchar("Digest", 50, null: true),
                ],
                primaryKey: ["Id"],
                foreignKeys: [key("OrderItems_CustomerId_fkey", ["CustomerId"], shop("customer"))],
                indexes: [index("OrderItems_CustomerId_idx", "CustomerId")]),
            CatalogTable(
                name: shop("events"), kind: .partitioned,
                columns: [.int8("id"), .int8("customer_id"), .timestamptz("at"), .text("payload", null: true)],
                primaryKey: ["id", "at"],
                foreignKeys: [key("events_customer_id_fkey", ["customer_id"], shop("customer"))]),
            CatalogTable(
                name: shop("events_2024"), partitionOf: shop("events"),
                columns: [.int8("id"), .int8("customer_id"), .timestamptz("at"), .text("payload", null: true)],
                primaryKey: ["id", "at"],
                foreignKeys: [key("events_customer_id_fkey", ["customer_id"], shop("customer"))]),
            CatalogTable(
                name: shop("ticket"),
                columns: [
                    .int8("id"), .int8("opened_by"), .int8("closed_by", null: true), .text("body"),
                    CatalogColumn(
                        name: "body_length", type: "integer", baseType: "int4", category: .numeric,
                        isGenerated: true),
                    .text("ref_text", null: true), .int4("ref_int", null: true),
                ],
                primaryKey: ["id"],
                foreignKeys: [
                    key("ticket_opened_by_fkey", ["opened_by"], shop("customer"), ["id"], .cascade),
                    key("ticket_closed_by_fkey", ["closed_by"], shop("customer"), ["id"], .cascade),
                ],
                indexes: [index("ticket_opened_by_idx", "opened_by"), index("ticket_closed_by_idx", "closed_by")]),
            CatalogTable(
                name: shop("customer_summary"), kind: .view, columns: [.int8("id"), .text("email", null: true)]),
        ], searchPath: ["public"], role: "gallra")
}

/// A policy file holding one valid policy (parse errors fail the test).
func parsed(_ yaml: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> ParsedPolicy? {
    let file = PolicyFile(parsing: yaml, path: "p.yaml")
    #expect(
        file.diagnostics.filter { $0.severity == .error }.isEmpty, "\(file.diagnostics)", sourceLocation: sourceLocation
    )
    #expect(file.policies.count == 1, sourceLocation: sourceLocation)
    return file.policies.first
}

/// Validates one policy document.
func validation(
    _ yaml: String, against catalog: Catalog = Fixtures.demoShop,
    sourceLocation: Testing.SourceLocation = #_sourceLocation
) -> Validation {
    guard let policy = parsed(yaml, sourceLocation: sourceLocation) else {
        return Validation(diagnostics: [], resolved: nil)
    }
    return validate(policy, against: catalog)
}

/// A policy on the demo shop's customers with the given data points (`data:` lines, indented by two).
func customerPolicy(_ data: String, except: String = "", name: String = "p") -> String {
    """
    policy: \(name)
    state: active
    subject: { table: shop.customer, key: id }
    expires: { inactive_for: 1 year, activity: last_seen_at }
    \(except)
    data:
    \(data)
    """
}
