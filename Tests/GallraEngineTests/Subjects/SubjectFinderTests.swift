import GallraCore
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

/// A shop whose customers are the subjects of stored policies; `shop.supplier` is in no policy, and the two
/// policies over `shop.account` name different keys.
private func withShop(_ body: (PostgresConnection) async throws -> Void) async throws {
    try await TestDatabase.with { _, connection in
        try await execute(
            [
                "CREATE SCHEMA shop",
                """
                CREATE TABLE shop.customer (
                    id bigint PRIMARY KEY, email text NOT NULL, city text, born date, "E-Mail" text,
                    "a=b" text, profile json, code varchar(5), score numeric(6, 2), last_seen_at timestamptz)
                """,
                "CREATE TABLE shop.wishlist_item (id int PRIMARY KEY, customer_id bigint REFERENCES shop.customer)",
                "CREATE TABLE shop.supplier (id bigint PRIMARY KEY, email text)",
                "CREATE TABLE shop.account (id bigint PRIMARY KEY, handle text UNIQUE NOT NULL, created_at timestamptz)",
                """
                INSERT INTO shop.customer (id, email, city, born, "E-Mail", "a=b", code, score) VALUES
                    (1, 'ada@example.org', 'Oslo', '1990-01-02', 'Ada@Example.org', 'x=y', 'abcde', 1.23),
                    (2, 'bob@example.org', 'Oslo', NULL, NULL, NULL, NULL, NULL),
                    (3, 'carl@example.org', 'Bergen', NULL, NULL, NULL, NULL, NULL)
                """,
                "INSERT INTO shop.supplier VALUES (1, 'sales@example.com')",
                "INSERT INTO shop.account VALUES (7, 'ada', now())",
            ], on: connection)
        try await Schema.migrate(on: connection)
        func account(_ name: String, key: String) throws -> Policy {
            try Policy(
                parsing: """
                    policy: \(name)
                    state: active
                    subject: { table: shop.account, key: \(key) }
                    expires: { older_than: 2 years, created: created_at }
                    data:
                      - { table: shop.account, delete: true }
                    """)
        }
        _ = try await PolicyStore(connection: connection).apply([
            (try policy("inactive-customers"), source: "inactive.yaml"),
            (try account("accounts-by-id", key: "id"), source: "a.yaml"),
            (try account("accounts-by-handle", key: "handle"), source: "b.yaml"),
        ])
        try await body(connection)
    }
}

private let customer = QualifiedName(schema: "shop", name: "customer")

/// The error `find` throws, which must never name the key or value given.
private func refusal(
    _ match: SubjectMatch, in table: QualifiedName = customer, on connection: PostgresConnection,
    sourceLocation: Testing.SourceLocation = #_sourceLocation
) async throws -> SubjectFinderError {
    do {
        let found = try await SubjectFinder.find(table: table, match, on: connection)
        Issue.record("found \(found.key)", sourceLocation: sourceLocation)
        throw CancellationError()
    } catch let error as SubjectFinderError {
        let given: String
        switch match {
        case .key(let key): given = key
        case .column(_, let value): given = value
        }
        #expect(!error.description.contains(given), "\(error)", sourceLocation: sourceLocation)
        return error
    }
}

@Suite("SubjectFinder", .serialized)
struct SubjectFinderTests {
    @Test func aUniqueEmailFindsTheSubjectsKey() async throws {
        try await withShop { connection in
            let found = try await SubjectFinder.find(
                table: customer, .column(ColumnName("email"), value: "bob@example.org"), on: connection)
            #expect(found == FoundSubject(table: customer, keyColumn: ColumnName("id"), key: "2"))
            // A quoted column, and a value that holds =.
            let quoted = try await SubjectFinder.find(
                table: customer, .column(ColumnName("E-Mail"), value: "Ada@Example.org"), on: connection)
            #expect(quoted.key == "1")
            let equals = try await SubjectFinder.find(
                table: customer, .column(ColumnName("a=b"), value: "x=y"), on: connection)
            #expect(equals.key == "1")
            // The value is cast to the column's type: a date in another spelling.
            let born = try await SubjectFinder.find(
                table: customer, .column(ColumnName("born"), value: "January 2, 1990"), on: connection)
            #expect(born.key == "1")
        }
    }

    @Test func aKeyIsFoundAsPostgreSQLPrintsIt() async throws {
        try await withShop { connection in
            let found = try await SubjectFinder.find(table: customer, .key("0003"), on: connection)
            #expect(found.key == "3")
            #expect(found.keyColumn == ColumnName("id"))
        }
    }

    @Test func noMatchIsNoInputAndNamesTableAndColumn() async throws {
        try await withShop { connection in
            let byValue = try await refusal(
                .column(ColumnName("email"), value: "nobody@example.org"), on: connection)
            #expect(byValue.code == .noSuchSubject)
            #expect(byValue.exitStatus == .noInput)
            #expect(byValue.exitStatus.rawValue == 66)
            #expect(byValue.description == "no subject in shop.customer has that email")
            // A value longer than varchar(5), or finer than numeric(6,2), is not cut or rounded into a match.
            let code = try await SubjectFinder.find(
                table: customer, .column(ColumnName("code"), value: "abcde"), on: connection)
            #expect(code.key == "1")
            let longer = try await refusal(.column(ColumnName("code"), value: "abcdefgh"), on: connection)
            #expect(longer.code == .noSuchSubject)
            let score = try await SubjectFinder.find(
                table: customer, .column(ColumnName("score"), value: "1.230"), on: connection)
            #expect(score.key == "1")
            let finer = try await refusal(.column(ColumnName("score"), value: "1.234"), on: connection)
            #expect(finer.code == .noSuchSubject)
            let byKey = try await refusal(.key("987654"), on: connection)
            #expect(byKey.code == .noSuchSubject)
            #expect(byKey.description == "no subject in shop.customer has that key (id)")
        }
    }

    @Test func twoMatchesSayHowManyAndNameNoKey() async throws {
        try await withShop { connection in
            let error = try await refusal(.column(ColumnName("city"), value: "Oslo"), on: connection)
            #expect(error.code == .severalSubjects)
            #expect(error.exitStatus == .dataError)
            #expect(
                error.description
                    == "2 subjects in shop.customer have that city; name one by its key (shop.customer:KEY) or by a "
                    + "column whose values are unique")
        }
    }

    @Test func aValueTheTypeCannotHoldIsADataError() async throws {
        try await withShop { connection in
            let key = try await refusal(.key("abc"), on: connection)
            #expect(key.code == .valueDoesNotFit)
            #expect(key.exitStatus == .dataError)
            #expect(key.description == "the key given is not a value of shop.customer.id, of type bigint")
            let date = try await refusal(.column(ColumnName("born"), value: "not a date"), on: connection)
            #expect(date.code == .valueDoesNotFit)
            #expect(date.description == "the value given is not a value of shop.customer.born, of type date")
            let json = try await refusal(.column(ColumnName("profile"), value: "{}"), on: connection)
            #expect(json.code == .notComparable)
            #expect(json.description.hasPrefix("shop.customer.profile is of type json, which has no equality"))
        }
    }

    @Test func anUnknownColumnIsNamedWithTheTablesColumns() async throws {
        try await withShop { connection in
            let error = try await refusal(.column(ColumnName("emial"), value: "ada@example.org"), on: connection)
            #expect(error.code == .unknownColumn)
            #expect(error.exitStatus == .dataError)
            #expect(
                error.description.hasPrefix(
                    "shop.customer has no column of the name given before = (its columns: id, email, city"))
            #expect(!error.description.contains("emial"))
            #expect(error.description.contains("shop.customer:id=KEY"))
        }
    }

    @Test func aTableNoPolicyCoversIsAnError() async throws {
        try await withShop { connection in
            let error = try await refusal(
                .key("1"), in: QualifiedName(schema: "shop", name: "supplier"), on: connection)
            #expect(error.code == .uncoveredTable)
            #expect(error.exitStatus == .dataError)
            #expect(
                error.description
                    == "no stored policy has its subjects in shop.supplier, so gallra knows no key for it; the "
                    + "subject tables of the stored policies: shop.account, shop.customer")
        }
    }

    @Test func policiesDisagreeingOnTheKeyAreAnError() async throws {
        try await withShop { connection in
            let error = try await refusal(
                .column(ColumnName("handle"), value: "ada"), in: QualifiedName(schema: "shop", name: "account"),
                on: connection)
            #expect(error.code == .keysDisagree)
            #expect(
                error.description
                    == "the policies over shop.account disagree on its key column (accounts-by-handle says handle, "
                    + "accounts-by-id says id); make them name the same key and apply them")
            // Disabling one settles it: a disabled policy decides only when no other covers the table.
            try await PolicyStore(connection: connection).disable(try PolicyName("accounts-by-handle"))
            let found = try await SubjectFinder.find(
                table: QualifiedName(schema: "shop", name: "account"), .column(ColumnName("handle"), value: "ada"),
                on: connection)
            #expect(found.key == "7")
            #expect(found.keyColumn == ColumnName("id"))
        }
    }
}
