import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

/// gallra's reading of the system's time zone database against PostgreSQL's (Debian builds the server with
/// `--with-system-tzdata`): the offset at an instant every week and an hour from 1890 to 2200, in zones with
/// daylight time in either hemisphere, negative daylight time, half and quarter hours, and rules that changed.
@Suite("Time zone rules agree with PostgreSQL")
struct ZoneRulesServerTests {
    @Test(arguments: [
        "Europe/Stockholm", "America/New_York", "Australia/Sydney", "America/Sao_Paulo", "Asia/Kolkata",
        "Pacific/Chatham", "Europe/Dublin", "Africa/Casablanca", "America/Nuuk", "Asia/Tehran", "Pacific/Apia",
        "America/Santiago",
    ])
    func offsetsAgree(zone: String) async throws {
        let rules = try #require(ZoneRules(identifier: zone))
        try await TestDatabase.with { _, connection in
            try await connection.execute("SELECT set_config('TimeZone', $1, false)", [.text(zone)])
            let rows = try await connection.query(
                """
                SELECT e, extract(timezone FROM to_timestamp(e))::int8 AS offset_seconds
                FROM generate_series(-2524521600::int8, 7258118400::int8, 608400) AS e
                """)
            #expect(rows.count > 15_000)
            let disagreements = try Self.disagreements(of: rules, with: rows)
            #expect(disagreements.isEmpty, "\(zone): \(disagreements.joined(separator: "; "))")
        }
    }

    /// Every hour (and a second past it) of years where the file lists the transitions and of years only its
    /// footer rule covers.
    @Test(arguments: ["Europe/Stockholm", "Australia/Sydney", "America/Santiago", "America/New_York"])
    func hourlyAroundTheChanges(zone: String) async throws {
        let rules = try #require(ZoneRules(identifier: zone))
        try await TestDatabase.with { _, connection in
            try await connection.execute("SELECT set_config('TimeZone', $1, false)", [.text(zone)])
            let rows = try await connection.query(
                """
                SELECT h + d AS e, extract(timezone FROM to_timestamp(h + d))::int8 AS offset_seconds
                FROM (SELECT generate_series(1735689600::int8, 1798761600::int8, 3600) AS h
                      UNION ALL SELECT generate_series(4102444800::int8, 4165516800::int8, 3600)) AS hours,
                     (VALUES (-1::int8), (0), (1)) AS shift(d)
                """)
            #expect(rows.count > 100_000)
            let disagreements = try Self.disagreements(of: rules, with: rows)
            #expect(disagreements.isEmpty, "\(zone): \(disagreements.joined(separator: "; "))")
        }
    }

    /// The first instants (`e`) at which `rules` and the server's offset (`offset_seconds`) differ.
    static func disagreements(of rules: ZoneRules, with rows: PostgresResult) throws -> [String] {
        var disagreements: [String] = []
        for row in rows where disagreements.count < 5 {
            let instant = try row.decode("e", as: Int64.self)
            let expected = try row.decode("offset_seconds", as: Int64.self)
            if rules.offset(at: instant) != expected {
                disagreements.append("at \(instant): \(rules.offset(at: instant)) s, the server says \(expected) s")
            }
        }
        return disagreements
    }
}
