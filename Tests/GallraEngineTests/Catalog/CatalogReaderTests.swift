import GallraTestSupport
import Foundation
import GallraPolicy
import GallraPostgres
import Testing

@testable import GallraEngine

/// An edge-case schema: quoted mixed-case names, domains, a generated column, two foreign keys to one table, a
/// partitioned table with two partitions, partial and expression indexes, a view, a dropped column.
let edgeCaseSchema = [
    #"CREATE SCHEMA "Shop""#,
    "CREATE DOMAIN public.label AS text",
    #"CREATE DOMAIN "Shop".short_code AS varchar(20) NOT NULL"#,
    #"CREATE DOMAIN "Shop".code_alias AS "Shop".short_code"#,
    #"""
    CREATE TABLE "Shop"."Customer" (
        "Customer ID" bigint PRIMARY KEY,
        "E-mail"      varchar(20) NOT NULL CONSTRAINT customer_email_unique UNIQUE,
        nick          label,
        code          "Shop".code_alias,
        name_upper    text GENERATED ALWAYS AS (upper(nick)) STORED
    )
    """#,
    #"""
    CREATE TABLE "Shop"."Order Items" (
        id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        "Customer ID" bigint NOT NULL
                      CONSTRAINT buyer REFERENCES "Shop"."Customer" ("Customer ID") ON DELETE CASCADE,
        gift_for      bigint CONSTRAINT gift_recipient REFERENCES "Shop"."Customer" ON DELETE SET NULL,
        obsolete      integer,
        note          char(3),
        price         numeric(10,2),
        placed_at     timestamptz NOT NULL DEFAULT now()
    )
    """#,
    #"ALTER TABLE "Shop"."Order Items" DROP COLUMN obsolete"#,
    #"CREATE INDEX order_items_open_idx ON "Shop"."Order Items" (placed_at) WHERE note IS NULL"#,
    #"CREATE INDEX order_items_lower_idx ON "Shop"."Order Items" (lower(note), "Customer ID")"#,
    #"""
    CREATE UNIQUE INDEX order_items_unique_pair ON "Shop"."Order Items" ("Customer ID", placed_at) INCLUDE (price)
    """#,
    #"CREATE UNIQUE INDEX order_items_unique_open ON "Shop"."Order Items" (gift_for) WHERE note IS NULL"#,
    #"""
    CREATE TABLE "Shop".event (
        id       bigint NOT NULL,
        at       date NOT NULL,
        customer bigint CONSTRAINT event_customer REFERENCES "Shop"."Customer" ON DELETE RESTRICT,
        PRIMARY KEY (id, at)
    ) PARTITION BY RANGE (at)
    """#,
    #"CREATE TABLE "Shop".event_2025 PARTITION OF "Shop".event FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"#,
    #"CREATE TABLE "Shop".event_2026 PARTITION OF "Shop".event FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"#,
    #"CREATE VIEW "Shop".customer_names AS SELECT "Customer ID", nick FROM "Shop"."Customer""#,
    #"""
    CREATE TABLE public.note_log (
        id       integer PRIMARY KEY,
        customer bigint CONSTRAINT note_customer REFERENCES "Shop"."Customer"
    )
    """#,
    #"""
    INSERT INTO "Shop"."Customer" ("Customer ID", "E-mail", code) VALUES (1, 'a@x', 'A'), (2, 'b@x', 'B'), (3, 'c@x', 'C')
    """#,
    #"ANALYZE "Shop"."Customer""#,
]

@Suite("Reading the catalog")
struct CatalogReaderTests {
    static let shop = "Shop"
    static let customer = QualifiedName(schema: "Shop", name: "Customer")
    static let event = QualifiedName(schema: "Shop", name: "event")

    /// What the edge-case schema is, written by hand from its DDL.
    static var expectedEdgeCaseTables: [CatalogTable] {
        let eventColumns = [
            CatalogColumn(name: "id", type: "bigint", baseType: "int8", category: .numeric, isNullable: false),
            CatalogColumn(name: "at", type: "date", baseType: "date", category: .dateTime, isNullable: false),
            CatalogColumn(name: "customer", type: "bigint", baseType: "int8", category: .numeric),
        ]
        return [
            CatalogTable(
                name: customer,
                columns: [
                    CatalogColumn(
                        name: "Customer ID", type: "bigint", baseType: "int8", category: .numeric, isNullable: false),
                    CatalogColumn(
                        name: "E-mail", type: "character varying(20)", baseType: "varchar", category: .string,
                        maximumLength: 20, isNullable: false),
                    CatalogColumn(name: "nick", type: "label", baseType: "text", category: .string),
                    CatalogColumn(
                        name: "code", type: #""Shop".code_alias"#, baseType: "varchar", category: .string,
                        maximumLength: 20, isNullable: false),
                    CatalogColumn(
                        name: "name_upper", type: "text", baseType: "text", category: .string, isGenerated: true),
                ],
                primaryKey: ["Customer ID"],
                uniqueKeys: [["E-mail"]],
                indexes: [
                    CatalogIndex(name: "Customer_pkey", columns: ["Customer ID"], isUnique: true),
                    CatalogIndex(name: "customer_email_unique", columns: ["E-mail"], isUnique: true),
                ],
                estimatedRows: 3),
            CatalogTable(
                name: QualifiedName(schema: "Shop", name: "Order Items"),
                columns: [
                    CatalogColumn(name: "id", type: "integer", baseType: "int4", category: .numeric, isNullable: false),
                    CatalogColumn(
                        name: "Customer ID", type: "bigint", baseType: "int8", category: .numeric, isNullable: false),
                    CatalogColumn(name: "gift_for", type: "bigint", baseType: "int8", category: .numeric),
                    CatalogColumn(
                        name: "note", type: "character(3)", baseType: "bpchar", category: .string, maximumLength: 3),
                    CatalogColumn(name: "price", type: "numeric(10,2)", baseType: "numeric", category: .numeric),
                    CatalogColumn(
                        name: "placed_at", type: "timestamp with time zone", baseType: "timestamptz",
                        category: .dateTime, isNullable: false),
                ],
                primaryKey: ["id"],
                uniqueKeys: [["Customer ID", "placed_at"]],
                foreignKeys: [
                    ForeignKey(
                        name: "buyer", columns: ["Customer ID"], referencedTable: customer,
                        referencedColumns: ["Customer ID"], onDelete: .cascade),
                    ForeignKey(
                        name: "gift_recipient", columns: ["gift_for"], referencedTable: customer,
                        referencedColumns: ["Customer ID"], onDelete: .setNull),
                ],
                indexes: [
                    CatalogIndex(name: "Order Items_pkey", columns: ["id"], isUnique: true),
                    CatalogIndex(name: "order_items_lower_idx", columns: [nil, "Customer ID"]),
                    CatalogIndex(name: "order_items_open_idx", columns: ["placed_at"], isPartial: true),
                    CatalogIndex(
                        name: "order_items_unique_open", columns: ["gift_for"], isUnique: true, isPartial: true),
                    CatalogIndex(
                        name: "order_items_unique_pair", columns: ["Customer ID", "placed_at"], isUnique: true),
                ]),
            CatalogTable(
                name: event, kind: .partitioned, columns: eventColumns, primaryKey: ["id", "at"],
                foreignKeys: [
                    ForeignKey(
                        name: "event_customer", columns: ["customer"], referencedTable: customer,
                        referencedColumns: ["Customer ID"], onDelete: .restrict)
                ],
                indexes: [CatalogIndex(name: "event_pkey", columns: ["id", "at"], isUnique: true)]),
            CatalogTable(
                name: QualifiedName(schema: "Shop", name: "event_2025"), partitionOf: event, columns: eventColumns,
                primaryKey: ["id", "at"],
                indexes: [CatalogIndex(name: "event_2025_pkey", columns: ["id", "at"], isUnique: true)]),
            CatalogTable(
                name: QualifiedName(schema: "Shop", name: "event_2026"), partitionOf: event, columns: eventColumns,
                primaryKey: ["id", "at"],
                indexes: [CatalogIndex(name: "event_2026_pkey", columns: ["id", "at"], isUnique: true)]),
            CatalogTable(
                name: QualifiedName(schema: "Shop", name: "customer_names"), kind: .view,
                columns: [
                    CatalogColumn(name: "Customer ID", type: "bigint", baseType: "int8", category: .numeric),
                    CatalogColumn(name: "nick", type: "label", baseType: "text", category: .string),
                ]),
            CatalogTable(
                name: QualifiedName(schema: "public", name: "note_log"),
                columns: [
                    CatalogColumn(name: "id", type: "integer", baseType: "int4", category: .numeric, isNullable: false),
                    CatalogColumn(name: "customer", type: "bigint", baseType: "int8", category: .numeric),
                ],
                primaryKey: ["id"],
                foreignKeys: [
                    ForeignKey(
                        name: "note_customer", columns: ["customer"], referencedTable: customer,
                        referencedColumns: ["Customer ID"])
                ],
                indexes: [CatalogIndex(name: "note_log_pkey", columns: ["id"], isUnique: true)]),
        ]
    }

    @Test("an edge-case schema reads exactly as its DDL says; gallra's own schema is left out")
    func edgeCases() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            try await execute(edgeCaseSchema, on: connection)
            let catalog = try await CatalogReader.read(on: connection).withoutSizes
            let expected = Catalog(tables: Self.expectedEdgeCaseTables, searchPath: ["public"], role: "postgres")
            #expect(catalog.searchPath == ["public"])
            #expect(catalog.tables.keys.sorted() == expected.tables.keys.sorted())
            for name in expected.tables.keys.sorted() {
                #expect(catalog.tables[name] == expected.tables[name], "\(name)")
            }
            #expect(catalog == expected)
            #expect(!catalog.tables.keys.contains { $0.schema == "gallra" })
            // What the validator will ask of it.
            #expect(catalog.table(QualifiedName(schema: nil, name: "note_log"))?.name.schema == "public")
            #expect(
                catalog.foreignKeys(referencing: Self.customer).map(\.foreignKey.name).sorted() == [
                    "buyer", "event_customer", "gift_recipient", "note_customer",
                ])
        }
    }

    @Test(
        "sizes: each table with its indexes as of its last ANALYZE, the server's shared_buffers in bytes, and its background writer"
    )
    func sizes() async throws {
        try await TestDatabase.with { _, connection in
            try await execute(edgeCaseSchema, on: connection)
            try await connection.execute(
                #"INSERT INTO "Shop"."Order Items" ("Customer ID", note, placed_at) SELECT 1 + g % 3, 'abc', now() + g * interval '1s' FROM generate_series(1, 5000) AS g"#
            )
            try await connection.execute(#"ANALYZE "Shop"."Order Items""#)
            let catalog = try await CatalogReader.read(on: connection)
            let measured = try await connection.query(
                #"""
                SELECT (pg_relation_size('"Shop"."Order Items"') + pg_indexes_size('"Shop"."Order Items"'))::int8 AS bytes,
                       pg_size_bytes(current_setting('shared_buffers')) AS pool,
                       (extract(epoch FROM current_setting('bgwriter_delay')::interval) * 1000)::float8 AS delay,
                       current_setting('bgwriter_lru_maxpages') AS pages
                """#
            ).first
            let bytes = try #require(try measured?.decode("bytes", as: Int64.self))
            #expect(bytes > 8192 * 10)
            #expect(catalog.tables[QualifiedName(schema: "Shop", name: "Order Items")]?.bytes == bytes)
            #expect(catalog.sharedBuffers == (try measured?.decode("pool", as: Int64.self)))
            // The background writer's pace as the server shows it ("200ms", "100"), read in milliseconds and buffers.
            let writer = try #require(catalog.backgroundWriter)
            #expect(Double(writer.delayMilliseconds) == (try measured?.decode("delay", as: Double.self)))
            #expect("\(writer.maxPages)" == (try measured?.decode("pages", as: String.self)))
            // A view has no size, nor a partitioned table (its partitions have theirs).
            #expect(catalog.tables[QualifiedName(schema: "Shop", name: "customer_names")]?.bytes == nil)
            #expect(catalog.tables[QualifiedName(schema: "Shop", name: "event")]?.bytes == nil)
            #expect(catalog.tables[QualifiedName(schema: "Shop", name: "event_2025")]?.bytes != nil)
        }
    }

    @Test("inside an open transaction the reader uses it")
    func insideTransaction() async throws {
        try await TestDatabase.with { _, connection in
            let catalog = try await connection.transaction { connection in
                try await connection.execute("CREATE TABLE public.fresh (id int)")
                return try await CatalogReader.read(on: connection)
            }
            #expect(catalog.tables.keys.map(\.name) == ["fresh"])
        }
    }

    @Test("privileges are those of the current role: without DELETE, no .delete")
    func privileges() async throws {
        let role = "gallra_reader_" + UUID().uuidString.prefix(8).lowercased()
        try await TestDatabase.with { _, connection in
            try await execute(edgeCaseSchema, on: connection)
            try await execute(
                [
                    "CREATE ROLE \(role) NOLOGIN",
                    "GRANT SELECT, UPDATE ON public.note_log TO \(role)",
                    #"GRANT SELECT ON "Shop".customer_names TO \#(role)"#,
                    "SET ROLE \(role)",
                ], on: connection)
            let catalog = try await CatalogReader.read(on: connection)
            try await connection.execute("RESET ROLE")
            #expect(
                catalog.tables[QualifiedName(schema: "public", name: "note_log")]?.privileges == [.select, .update])
            #expect(catalog.tables[QualifiedName(schema: "Shop", name: "customer_names")]?.privileges == [.select])
            #expect(catalog.tables[Self.customer]?.privileges == [])
            // The rest of the catalog does not depend on the role.
            var asOwner = try await CatalogReader.read(on: connection)
            for name in asOwner.tables.keys {
                asOwner.tables[name]?.privileges = catalog.tables[name]?.privileges ?? []
            }
            #expect(catalog.role == role)
            asOwner.role = catalog.role
            #expect(asOwner == catalog)
        }
        let admin = try await PostgresConnection.connect(try TestServer.conninfo())
        try await admin.execute("DROP ROLE \(role)")
        await admin.close()
    }

    @Test("the demo shop schema (config/demo/schema.sql) reads as its DDL says")
    func demoShop() async throws {
        try await TestDatabase.with { database, connection in
            try database.runScript(sourceRoot.appendingPathComponent("config/demo/schema.sql").path)
            let catalog = try await CatalogReader.read(on: connection).withoutSizes
            func shop(_ name: String) -> QualifiedName { QualifiedName(schema: "shop", name: name) }
            #expect(
                catalog.tables.keys.sorted()
                    == [
                        "address", "cart", "cart_item", "customer", "employee", "newsletter_consent", "newsletter_log",
                        "order", "order_line", "product", "store", "wishlist_item",
                    ].map(shop))
            let customer = CatalogTable(
                name: shop("customer"),
                columns: [
                    CatalogColumn(name: "id", type: "bigint", baseType: "int8", category: .numeric, isNullable: false),
                    CatalogColumn(name: "email", type: "text", category: .string, isNullable: false),
                    CatalogColumn(name: "full_name", type: "text", category: .string, isNullable: false),
                    CatalogColumn(name: "phone", type: "text", category: .string),
                    CatalogColumn(name: "birth_date", type: "date", category: .dateTime),
                    CatalogColumn(
                        name: "created_at", type: "timestamp with time zone", baseType: "timestamptz",
                        category: .dateTime, isNullable: false),
                    CatalogColumn(
                        name: "last_seen_at", type: "timestamp with time zone", baseType: "timestamptz",
                        category: .dateTime),
                    CatalogColumn(
                        name: "legal_hold", type: "boolean", baseType: "bool", category: .boolean, isNullable: false),
                    CatalogColumn(name: "address_id", type: "bigint", baseType: "int8", category: .numeric),
                ],
                primaryKey: ["id"],
                uniqueKeys: [["email"]],
                foreignKeys: [
                    ForeignKey(
                        name: "customer_address_id_fkey", columns: ["address_id"], referencedTable: shop("address"),
                        referencedColumns: ["id"])
                ],
                checks: [
                    CatalogCheck(
                        name: "customer_seen_after_created", columns: ["last_seen_at", "created_at"],
                        definition: "CHECK ((last_seen_at >= created_at))")
                ],
                indexes: [
                    CatalogIndex(name: "customer_address_id_idx", columns: ["address_id"]),
                    CatalogIndex(name: "customer_email_key", columns: ["email"], isUnique: true),
                    CatalogIndex(name: "customer_last_seen_at_idx", columns: ["last_seen_at"]),
                    CatalogIndex(name: "customer_pkey", columns: ["id"], isUnique: true),
                ])
            #expect(catalog.tables[shop("customer")] == customer)

            let order = try #require(catalog.tables[shop("order")])
            #expect(
                order.foreignKeys == [
                    ForeignKey(
                        name: "order_customer_id_fkey", columns: ["customer_id"], referencedTable: shop("customer"),
                        referencedColumns: ["id"], onDelete: .restrict),
                    ForeignKey(
                        name: "order_shipping_address_id_fkey", columns: ["shipping_address_id"],
                        referencedTable: shop("address"), referencedColumns: ["id"]),
                ])
            #expect(catalog.tables[shop("order_line")]?.uniqueKeys == [["order_id", "line_no"]])
            #expect(catalog.tables[shop("address")]?.column("country")?.maximumLength == 2)
            #expect(catalog.tables[shop("address")]?.column("country")?.type == "character(2)")
            #expect(catalog.tables[shop("newsletter_log")]?.foreignKeys == [])
            #expect(catalog.tables[shop("newsletter_log")]?.indexes.map(\.name) == ["newsletter_log_pkey"])
            #expect(catalog.tables[shop("wishlist_item")]?.primaryKey == ["customer_id", "product_id"])
            #expect(
                catalog.tables[shop("cart_item")]?.foreignKeys.map(\.onDelete) == [.cascade, .cascade])
            #expect(catalog.tables[shop("newsletter_consent")]?.uniqueKeys == [["customer_id", "channel"]])
        }
    }

    @Test(
        "CHECK constraints (a domain's too) with the server's verdict on null and on redact's constant, enum labels, MATCH and ON UPDATE"
    )
    func checksEnumsAndKeyOptions() async throws {
        try await TestDatabase.with { _, connection in
            try await execute(
                [
                    "CREATE TYPE public.mood AS ENUM ('calm', 'busy')",
                    "CREATE DOMAIN public.mood_alias AS public.mood",
                    "CREATE DOMAIN public.posint AS integer CONSTRAINT posint_positive CHECK (VALUE > 0)",
                    "CREATE TABLE public.p (id bigint, k integer, PRIMARY KEY (id), UNIQUE (id, k))",
                    """
                    CREATE TABLE public.c (
                        id integer PRIMARY KEY,
                        pid bigint, pk integer,
                        score integer CONSTRAINT positive CHECK (score > 0),
                        amount integer CONSTRAINT known CHECK (amount IS NOT NULL AND amount >= 0),
                        label text CONSTRAINT not_redacted CHECK (label <> '[redacted]'),
                        mood public.mood_alias,
                        qty public.posint,
                        CONSTRAINT pair CHECK (score < amount),
                        CONSTRAINT c_full FOREIGN KEY (pid, pk) REFERENCES public.p (id, k) MATCH FULL
                            ON DELETE CASCADE ON UPDATE SET NULL,
                        CONSTRAINT c_simple FOREIGN KEY (pid) REFERENCES public.p ON UPDATE CASCADE
                    )
                    """,
                ], on: connection)
            let catalog = try await CatalogReader.read(on: connection)
            let table = try #require(catalog.tables[QualifiedName(schema: "public", name: "c")])
            #expect(
                table.checks == [
                    // A domain's constraint, read with the column; the table's, in name order.
                    CatalogCheck(
                        name: "posint_positive", columns: ["qty"], definition: "domain posint: CHECK ((VALUE > 0))",
                        acceptsNull: true, acceptsRedaction: false),
                    CatalogCheck(
                        name: "known", columns: ["amount"],
                        definition: "CHECK (((amount IS NOT NULL) AND (amount >= 0)))",
                        acceptsNull: false, acceptsRedaction: true),
                    CatalogCheck(
                        name: "not_redacted", columns: ["label"], definition: "CHECK ((label <> '[redacted]'::text))",
                        acceptsNull: true, acceptsRedaction: false),
                    CatalogCheck(name: "pair", columns: ["score", "amount"], definition: "CHECK ((score < amount))"),
                    CatalogCheck(
                        name: "positive", columns: ["score"], definition: "CHECK ((score > 0))", acceptsNull: true,
                        acceptsRedaction: false),
                ])
            #expect(table.column("mood")?.enumLabels == ["calm", "busy"])
            #expect(table.column("score")?.enumLabels == nil)
            #expect(
                table.foreignKeys.map { [$0.name, $0.onDelete.rawValue, $0.onUpdate.rawValue, "\($0.matchFull)"] } == [
                    ["c_full", "CASCADE", "SET NULL", "true"], ["c_simple", "NO ACTION", "CASCADE", "false"],
                ])
        }
    }
}

extension Catalog {
    /// The catalog without the sizes of its tables, of the server's buffer pool and its background writer, which
    /// depend on the server and on the rows (the test of sizes checks them).
    var withoutSizes: Catalog {
        var catalog = self
        catalog.sharedBuffers = nil
        catalog.backgroundWriter = nil
        for name in catalog.tables.keys { catalog.tables[name]?.bytes = nil }
        return catalog
    }
}
