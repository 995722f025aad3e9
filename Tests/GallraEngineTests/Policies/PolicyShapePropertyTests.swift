import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import PropertyBased
import Testing

/// `gallra policy check` and the engine agree on every shape: over small generated schemas (foreign keys both
/// ways with every ON DELETE and ON UPDATE action, MATCH FULL and SIMPLE, CHECK constraints (a domain's too), an
/// enum, nullable and
/// NOT NULL columns) and generated policies (owned and referenced steps, delete, anonymize, both), the validator
/// accepts exactly the policies whose dry run and live run succeed on a few seeded rows; a policy it refuses gets
/// one of its known errors. `GALLRA_SHAPE_CASES` sets the number of cases (default 300, some 15 seconds here).
@Suite("Policy shapes, property-based")
struct PolicyShapePropertyTests {
    static let cases = ProcessInfo.processInfo.environment["GALLRA_SHAPE_CASES"].flatMap { Int($0) } ?? 300

    /// A case is a list of choices; each decision of the generator takes the next one, so that shrinking the list
    /// shrinks the schema and the policy (a missing choice reads as 0, the simplest option).
    static let choices = Gen<UInt8>.value(in: 0...255).array(of: 80...80).map { ShapeCase(choices: $0) }

    /// What the validator says when it refuses one of the generated shapes, each for a reason the engine or the
    /// server would otherwise meet at run time.
    static let knownRefusals = [
        "is blocked by",  // a kept child with ON DELETE NO ACTION or RESTRICT
        "(ON DELETE SET NULL), but",  // SET NULL into a NOT NULL or CHECKed column
        "is checked by",  // a CHECK constraint the written value may fail
        "is not a label of the enum",
        "is MATCH FULL over",
        "through a parent link",  // a parent hop followed by child hops
        "identifies rows ahead only for rows the subject points to",
        "is NOT NULL in",
        "is referenced by",  // a key others reference (ON UPDATE of any kind)
        "only null may change it",
        "is part of the primary key",
        "needs a text column",
        "writes addresses of up to 40 characters",
        "writes 64 hexadecimal characters",
        "hash needs a text or bytea column",
        "is a number,",
        "is text,",
        "no order of the data points works",
        "redact has no constant",
    ]

    @Test("policy check accepts a generated policy exactly when its dry and live runs succeed", .shrinking)
    func checkAgreesWithTheEngine() async throws {
        try await TestDatabase.with { database, connection in
            try await Schema.migrate(on: connection)
            let engine = try DemoShop.engine(connection)
            let number = Counter()
            await propertyCheck(count: Self.cases, input: Self.choices) { shape in
                number.increment()
                do {
                    try await Self.check(shape, name: "shape-\(number.value)", engine: engine, on: connection)
                } catch {
                    Issue.record("\(String(reflecting: error))\n\(shape)")
                }
            }
        }
    }

    static func check(_ shape: ShapeCase, name: String, engine: Engine, on connection: PostgresConnection)
        async throws
    {
        try await connection.execute("DROP SCHEMA IF EXISTS g CASCADE")
        for statement in shape.schema { try await connection.execute(statement) }
        let file = PolicyFile(parsing: shape.policy(name: name), path: "shape.yaml")
        let parsed = try #require(file.policies.first, "\(file.diagnostics)\n\(shape)")
        let validation = validate(parsed, against: try await CatalogReader.read(on: connection))
        guard let resolved = validation.resolved else {
            for error in validation.errors {
                #expect(
                    Self.knownRefusals.contains { error.message.contains($0) },
                    "an error policy check does not give for a known reason: \(error.message)\n\(shape)")
                #expect(error.location != nil, "an error without its place in the file: \(error.message)")
            }
            return
        }
        let policy = RunPolicy(resolved: resolved, version: 1, state: resolved.policy.state)
        for mode in [RunOptions.Mode.dry, .live] {
            let report = try await engine.run([policy], options: DemoShop.options(mode, allowLarge: true))
            let run = try #require(report.policies.first)
            #expect(
                report.outcome == .done && run.failure == nil && run.refused == nil && run.skippedBatches.isEmpty,
                """
                policy check accepts the policy, but its \(mode) run ends \(report.outcome.rawValue): \
                \(run.failure?.rawValue ?? "") \(String(describing: run.skippedBatches))
                \(shape)
                """)
            if mode == .live {
                #expect(run.processed == shape.dueSubjects, "processed \(run.processed) subjects\n\(shape)")
            }
        }
    }
}

/// A generated schema (in schema `g`, a subject table `g.customer` and up to four tables attached to it in a tree,
/// each by a foreign key in one direction), its rows, and a policy over it.
struct ShapeCase: Sendable, CustomStringConvertible {
    /// How a table hangs from its parent in the tree.
    enum Link: Sendable {
        /// The table references its parent (`pid`, with `pk2` for a two-column key).
        case child(parent: Int, twoColumns: Bool, matchFull: Bool, notNull: Bool)
        /// The parent references the table (`ref_N`): rows the subject points to.
        case pointedTo(parent: Int, notNull: Bool)

        var parent: Int {
            switch self {
            case .child(let parent, _, _, _), .pointedTo(let parent, _): parent
            }
        }
    }

    struct Table: Sendable {
        var name: String
        var link: Link?
        var onDelete = "NO ACTION"
        var onUpdate = "NO ACTION"
        /// Attribute columns with their SQL definition.
        var columns: [(name: String, definition: String, value: String)] = []
        var checks: [String] = []
        var rows: [(id: Int, parentRow: Int?)] = []
    }

    var choices: [UInt8]
    var tables: [Table] = []
    var schema: [String] = []
    var dataPoints: [String] = []
    let dueSubjects = 2

    private var position = 0
    private mutating func next(_ options: Int) -> Int {
        defer { position += 1 }
        return position < choices.count ? Int(choices[position]) % options : 0
    }
    private mutating func chance(_ percent: Int) -> Bool { next(100) < percent }

    static let actions = ["NO ACTION", "RESTRICT", "CASCADE", "SET NULL"]

    init(choices: [UInt8]) {
        self.choices = choices
        buildTables()
        buildSchema()
        buildPolicy()
    }

    private mutating func attributes() -> ([(name: String, definition: String, value: String)], [String]) {
        var columns: [(name: String, definition: String, value: String)] = []
        var checks: [String] = []
        if chance(60) { columns.append(("note", "text" + (chance(40) ? " NOT NULL" : ""), "'n'")) }
        if chance(60) {
            columns.append(("score", "integer" + (chance(40) ? " NOT NULL" : ""), "5"))
            switch next(4) {
            case 1: checks.append("CHECK (score >= 0)")
            case 2: checks.append("CHECK (score > 0)")
            case 3: checks.append("CHECK (score IS NOT NULL)")
            default: break
            }
        }
        if chance(40) { columns.append(("mood", #"g."Mood""# + (chance(40) ? " NOT NULL" : ""), "'calm'")) }
        if chance(30) { columns.append(("qty", "g.posint", "3")) }
        if chance(40) {
            columns.append(("label", "varchar(12)", "'hello'"))
            if chance(50) { checks.append("CHECK (label <> '[redacted]')") }
        }
        let names = Set(columns.map(\.name))
        if names.contains("note"), names.contains("score"), chance(20) {
            checks.append("CHECK (score IS NULL OR note IS NOT NULL)")
        }
        return (columns, checks)
    }

    private mutating func buildTables() {
        var customer = Table(name: "customer")
        (customer.columns, customer.checks) = attributes()
        customer.rows = [(1, nil), (2, nil), (3, nil)]
        tables = [customer]
        var nextID = 100
        for index in 1...(1 + next(4)) {
            let parent = next(index)
            var table = Table(name: "t\(index)")
            table.link =
                chance(65)
                ? .child(parent: parent, twoColumns: chance(25), matchFull: chance(50), notNull: chance(50))
                : .pointedTo(parent: parent, notNull: chance(30))
            table.onDelete = Self.actions[next(Self.actions.count)]
            table.onUpdate = Self.actions[next(Self.actions.count)]
            (table.columns, table.checks) = attributes()
            switch table.link {
            case .child:
                // One row per parent row, and a second for every other one.
                for (offset, row) in tables[parent].rows.enumerated() {
                    for _ in 0..<(offset % 2 == 0 ? 2 : 1) {
                        table.rows.append((nextID, row.id))
                        nextID += 1
                    }
                }
            case .pointedTo:
                // Parent rows 1 and 2, 3 and 4, ... share a row: the second customer (due) shares with the third
                // (kept).
                for _ in 0..<(tables[parent].rows.count / 2 + 1) {
                    table.rows.append((nextID, nil))
                    nextID += 1
                }
            case nil: break
            }
            tables.append(table)
        }
    }

    private mutating func buildSchema() {
        schema = [
            "CREATE SCHEMA g", #"CREATE TYPE g."Mood" AS ENUM ('calm', 'busy')"#,
            "CREATE DOMAIN g.posint AS integer CHECK (VALUE > 0)",
        ]
        for (index, table) in tables.enumerated() {
            var columns = ["id bigint PRIMARY KEY", "k2 integer NOT NULL DEFAULT 0"]
            if index == 0 { columns.append("seen timestamptz") }
            if case .child(_, let twoColumns, _, let notNull) = table.link {
                columns.append("pid bigint" + (notNull ? " NOT NULL" : ""))
                if twoColumns { columns.append("pk2 integer" + (notNull ? " NOT NULL" : "")) }
            }
            for (other, child) in tables.enumerated() {
                if case .pointedTo(let parent, let notNull) = child.link, parent == index {
                    columns.append("ref_\(other) bigint" + (notNull ? " NOT NULL" : ""))
                }
            }
            columns += table.columns.map { "\($0.name) \($0.definition)" }
            columns.append("UNIQUE (id, k2)")
            schema.append("CREATE TABLE g.\(table.name) (\(columns.joined(separator: ", ")))")
        }
        // Rows before constraints, so that any order of the tree loads.
        for (index, table) in tables.enumerated() {
            for (offset, row) in table.rows.enumerated() {
                var names = ["id"]
                var values = ["\(row.id)"]
                if index == 0 {
                    names.append("seen")
                    values.append(row.id <= dueSubjects ? "'2024-01-01 00:00+00'" : "'2026-11-01 00:00+00'")
                }
                if case .child(_, let twoColumns, _, _) = table.link, let parentRow = row.parentRow {
                    names.append("pid")
                    values.append("\(parentRow)")
                    if twoColumns {
                        names.append("pk2")
                        values.append("0")
                    }
                }
                for (other, child) in tables.enumerated() {
                    if case .pointedTo(let parent, _) = child.link, parent == index {
                        names.append("ref_\(other)")
                        values.append("\(child.rows[(offset + 1) / 2].id)")
                    }
                }
                names += table.columns.map(\.name)
                values += table.columns.map(\.value)
                schema.append(
                    "INSERT INTO g.\(table.name) (\(names.joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))"
                )
            }
        }
        for (index, table) in tables.enumerated() {
            for check in table.checks { schema.append("ALTER TABLE g.\(table.name) ADD \(check)") }
            guard let link = table.link else { continue }
            let actions = "ON DELETE \(table.onDelete) ON UPDATE \(table.onUpdate)"
            switch link {
            case .child(let parent, let twoColumns, let matchFull, _):
                let keys = twoColumns ? ("(pid, pk2)", "(id, k2)") : ("(pid)", "(id)")
                let match = matchFull ? " MATCH FULL" : ""
                schema.append(
                    "ALTER TABLE g.\(table.name) ADD FOREIGN KEY \(keys.0) REFERENCES g.\(tables[parent].name) \(keys.1)\(match) \(actions)"
                )
            case .pointedTo(let parent, _):
                schema.append(
                    "ALTER TABLE g.\(tables[parent].name) ADD FOREIGN KEY (ref_\(index)) REFERENCES g.\(table.name) (id) \(actions)"
                )
            }
        }
    }

    /// The tables between the subject table and `index` (both left out).
    func through(_ index: Int) -> [String] {
        var path: [String] = []
        var current = tables[index].link?.parent
        while let table = current, table != 0 {
            path.insert("g.\(tables[table].name)", at: 0)
            current = tables[table].link?.parent
        }
        return path
    }

    private mutating func anonymization(of index: Int) -> String {
        var columns = tables[index].columns.map(\.name)
        switch tables[index].link {
        case .child(_, let twoColumns, _, _): columns += twoColumns ? ["pid", "pk2"] : ["pid"]
        default: break
        }
        for (other, child) in tables.enumerated() {
            if case .pointedTo(let parent, _) = child.link, parent == index { columns.append("ref_\(other)") }
        }
        if columns.isEmpty { columns = ["k2"] }
        var entries: [String] = []
        for _ in 0..<(1 + next(2)) {
            let column = columns[next(columns.count)]
            guard !entries.contains(where: { $0.hasPrefix(column + ":") }) else { continue }
            let values: [String]
            switch column {
            case "score", "qty", "k2", "pid", "pk2": values = ["0", "-1", "7"]
            case "mood": values = ["calm", "nope"]
            default: values = column.hasPrefix("ref_") ? ["0", "7"] : ["x"]
            }
            let set = "{ set: \(values[next(values.count)]) }"
            // Mostly strategies that fit the column's type, so that most policies get past the type checks to the
            // shapes under test; sometimes any strategy.
            let fitting: [String]
            switch column {
            case "note": fitting = ["null", "redact", "hash", "fake_email", set]
            case "label": fitting = ["null", "redact", set]
            case "mood": fitting = ["null", set]
            case "k2": fitting = ["redact", set]
            case "score", "qty": fitting = ["null", "redact", set]
            default: fitting = ["null"]
            }
            let any = ["null", "redact", set, "hash", "fake_email"]
            let strategies = chance(80) ? fitting : any
            entries.append("\(column): \(strategies[next(strategies.count)])")
        }
        return "{ \(entries.joined(separator: ", ")) }"
    }

    private mutating func buildPolicy() {
        dataPoints = []
        for index in tables.indices where chance(index == 0 ? 40 : 65) {
            let table = "g.\(tables[index].name)"
            let through = through(index)
            let written =
                through.isEmpty ? "" : ", through: [\(through.joined(separator: ", "))]"
            let action: String
            switch next(3) {
            case 0: action = "delete: true"
            case 1: action = "anonymize: \(anonymization(of: index))"
            default: action = "delete: true, anonymize: \(anonymization(of: index))"
            }
            dataPoints.append("  - { table: \(table)\(written), \(action) }")
        }
        if dataPoints.isEmpty { dataPoints = ["  - { table: g.customer, delete: true }"] }
    }

    func policy(name: String) -> String {
        """
        policy: \(name)
        state: active
        subject: { table: g.customer, key: id }
        expires: { inactive_for: 1 year, activity: seen }
        data:
        \(dataPoints.joined(separator: "\n"))
        limits: { max_fraction: 1 }
        """
    }

    var description: String {
        "-- schema\n" + schema.joined(separator: ";\n") + ";\n-- policy\n" + policy(name: "shape")
    }
}
