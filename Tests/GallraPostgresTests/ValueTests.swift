import GallraTestSupport
import Foundation
import GallraPostgres
import Testing

/// One value bound as a parameter, cast to `type` by the server, and read back.
struct RoundTrip: Sendable, CustomTestStringConvertible {
    let value: PostgresValue
    let type: String
    var testDescription: String { "\(type): \(value)" }

    init(_ value: PostgresValue, _ type: String) {
        self.value = value
        self.type = type
    }
}

private func date(_ y: Int, _ m: Int, _ d: Int) -> PostgresDate {
    PostgresDate(year: y, month: m, day: d)!
}

private func timestamp(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, _ us: Int) -> PostgresTimestamp {
    PostgresTimestamp(year: y, month: mo, day: d, hour: h, minute: mi, second: s, microsecond: us)!
}

private let roundTrips: [RoundTrip] = [
    RoundTrip(.bool(true), "bool"), RoundTrip(.bool(false), "bool"),
    RoundTrip(.int16(.min), "int2"), RoundTrip(.int16(.max), "int2"),
    RoundTrip(.int32(.min), "int4"), RoundTrip(.int32(.max), "int4"),
    RoundTrip(.int64(.min), "int8"), RoundTrip(.int64(.max), "int8"), RoundTrip(.int64(0), "int8"),
    RoundTrip(.oid(.max), "oid"),
    RoundTrip(.float4(0.1), "float4"), RoundTrip(.float4(-.greatestFiniteMagnitude), "float4"),
    RoundTrip(.float8(1.0 / 3.0), "float8"), RoundTrip(.float8(.leastNonzeroMagnitude), "float8"),
    RoundTrip(.float8(.infinity), "float8"), RoundTrip(.float8(-.infinity), "float8"),
    RoundTrip(.numeric("-123456789012345678901234567890.123456789012345678901234567890"), "numeric"),
    RoundTrip(.numeric("0.000001000"), "numeric"), RoundTrip(.numeric("NaN"), "numeric"),
    RoundTrip(.text("héllo 👋🏽 e\u{301} 中文 \u{1F1F8}\u{1F1EA} 'quoted' \"double\" \\ $1"), "text"),
    RoundTrip(.text(""), "text"), RoundTrip(.text("varchar ✓"), "varchar"),
    RoundTrip(.bytea((0...255).map { UInt8($0) }), "bytea"), RoundTrip(.bytea([]), "bytea"),
    RoundTrip(.bytea([0, 0, 0]), "bytea"),
    RoundTrip(.uuid(UUID(uuidString: "0F5C2E61-7A1B-4C3D-9E8F-A0B1C2D3E4F5")!), "uuid"),
    RoundTrip(.date(date(1969, 7, 20)), "date"), RoundTrip(.date(date(2000, 2, 29)), "date"),
    RoundTrip(.date(date(1, 1, 1)), "date"), RoundTrip(.date(date(-43, 3, 15)), "date"),
    RoundTrip(.date(date(-4712, 1, 1)), "date"), RoundTrip(.date(date(99999, 12, 31)), "date"),
    RoundTrip(.date(.infinity), "date"), RoundTrip(.date(.negativeInfinity), "date"),
    RoundTrip(.timestamp(timestamp(2024, 2, 29, 12, 34, 56, 1)), "timestamp"),
    RoundTrip(.timestamp(timestamp(1969, 12, 31, 23, 59, 59, 999_999)), "timestamp"),
    RoundTrip(.timestamp(timestamp(1900, 1, 1, 0, 0, 0, 0)), "timestamp"),
    RoundTrip(.timestamp(timestamp(-43, 3, 15, 12, 0, 0, 500_000)), "timestamp"),
    RoundTrip(.timestamp(.infinity), "timestamp"), RoundTrip(.timestamp(.negativeInfinity), "timestamp"),
    RoundTrip(.timestamptz(timestamp(2024, 6, 1, 23, 59, 59, 123_456)), "timestamptz"),
    RoundTrip(.timestamptz(timestamp(1950, 1, 1, 0, 0, 0, 10)), "timestamptz"),
    RoundTrip(.timestamptz(.infinity), "timestamptz"),
    RoundTrip(.interval("P1Y2M3DT4H5M6.789S"), "interval"), RoundTrip(.interval("PT0S"), "interval"),
    RoundTrip(.interval("P-1Y-2M3DT-4H-5M-6S"), "interval"),
    RoundTrip(.json(#"{"b": 1,   "a": [1, 2, "ü"]}"#), "json"),
    RoundTrip(.jsonb(#"{"a": [1, 2, "ü"], "b": null}"#), "jsonb"),
    RoundTrip(.null, "int4"), RoundTrip(.null, "text"), RoundTrip(.null, "timestamptz"),
]

@Suite("Values round-trip through bound parameters")
struct ValueTests {
    @Test(arguments: roundTrips)
    func roundTrip(_ roundTrip: RoundTrip) async throws {
        try await TestDatabase.with { _, connection in
            let result = try await connection.query("SELECT $1::\(roundTrip.type) AS v", [roundTrip.value])
            #expect(result.count == 1)
            #expect(result[0, "v"] == roundTrip.value)
            #expect(result.columns.map(\.name) == ["v"])
        }
    }

    /// An array literal reads back element for element, whatever the texts hold, and each element is read by the
    /// type the statement casts the literal to.
    @Test func arrayLiteralsReadBackAsTheirElements() async throws {
        let texts = [
            "plain", "", "NULL", "null", "a,b", "{braces}", "\"quoted\"", #"back\slash"#, #"\""#, "  spaced  ",
            "tab\there", "line\nbreak", "héllo 👋🏽 中文", "'single'", "[1]", "=ANY",
        ]
        try await TestDatabase.with { _, connection in
            let rows = try await connection.query(
                "SELECT t, n FROM unnest($1::text[]) WITH ORDINALITY AS a(t, n) ORDER BY n",
                [.text(PostgresArrayLiteral.text(texts))])
            #expect(try rows.map { try $0.decode("t", as: String.self) } == texts)
            #expect(try rows.map { try $0.decode("n", as: Int.self) } == Array(1...texts.count))
            let numbers = try await connection.query(
                "SELECT $1::bigint[] = ARRAY[-9223372036854775808, 0, 42]::bigint[] AS same, cardinality($2::uuid[]) AS n",
                [
                    .text(PostgresArrayLiteral.text(["-9223372036854775808", "0", "42"])),
                    .text(PostgresArrayLiteral.text([])),
                ])[0]
            #expect(numbers["same"] == .bool(true))
            #expect(numbers["n"] == .int32(0))
            // A text that is not of the type is the type's own error, naming the text.
            await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT $1::bigint[]", [.text(PostgresArrayLiteral.text(["1", "x"]))])
            }
        }
    }

    @Test func nanRoundTrips() async throws {
        try await TestDatabase.with { _, connection in
            let row = try await connection.query(
                "SELECT $1::float8 AS d, $2::float4 AS f", [.float8(.nan), .float4(.nan)])[0]
            #expect(row["d"]?.double?.isNaN == true)
            #expect(row["f"]?.double?.isNaN == true)
        }
    }

    /// Decoding is checked against literals written by hand, not against the encoder.
    @Test func literalsDecodeAsExpected() async throws {
        try await TestDatabase.with { _, connection in
            let row = try await connection.query(
                """
                SELECT 42::int2 AS small, 'x'::char(3) AS padded, 'tbl'::name AS n, 'a'::"char" AS c,
                       '\\x00ff'::bytea AS b, '1969-07-20'::date AS d, '0044-03-15 BC'::date AS bc,
                       '2024-02-29 12:34:56.000001'::timestamp AS ts, 12.50::numeric(5,2) AS money,
                       '1 day 02:03:04.5'::interval AS i, NULL::int AS missing, 16384::oid AS o,
                       '12:00'::time AS t, ARRAY[1,2] AS arr
                """)[0]
            #expect(row["small"] == .int16(42))
            #expect(row["padded"] == .text("x  "))
            #expect(row["n"] == .text("tbl"))
            #expect(row["c"] == .text("a"))
            #expect(row["b"] == .bytea([0, 255]))
            #expect(row["d"] == .date(date(1969, 7, 20)))
            #expect(row["bc"] == .date(date(-43, 3, 15)))
            #expect(row["ts"] == .timestamp(timestamp(2024, 2, 29, 12, 34, 56, 1)))
            #expect(row["money"] == .numeric("12.50"))
            #expect(row["i"] == .interval("P1DT2H3M4.5S"))
            #expect(row["missing"] == .null)
            #expect(row["o"] == .oid(16384))
            #expect(row["t"] == .text("12:00:00"))
            #expect(row["arr"] == .text("{1,2}"))
            #expect(try row["money", as: Decimal.self] == Decimal(string: "12.5"))
            #expect(try row["small", as: Int.self] == 42)
            #expect(try row["missing", as: Int?.self] == nil)
            #expect(throws: PostgresError.self) { try row["missing", as: Int.self] }
            #expect(throws: PostgresError.self) { try row["n", as: Int.self] }
            #expect(throws: PostgresError.self) { try row["no_such_column", as: Int.self] }
        }
    }

    /// A timestamptz is the same instant whatever the session's TimeZone (offsets, including historic
    /// seconds offsets, are applied); the oracle is the server's own epoch.
    @Test(arguments: ["UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam"])
    func timestamptzIsTheSameInstantInAnyTimeZone(zone: String) async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("SELECT set_config('TimeZone', $1, false)", [.text(zone)])
            let rows = try await connection.query(
                """
                SELECT t, (extract(epoch FROM t) * 1000000)::int8 AS micros
                FROM (VALUES ('2024-03-31 01:30:00.000007+00'::timestamptz), ('1900-06-01 12:00:00+00'),
                             ('1969-12-31 23:59:59.5+00')) AS v(t)
                """)
            #expect(rows.count == 3)
            for row in rows {
                let decoded = try #require(row["t"]?.postgresTimestamp)
                let micros = try #require(row["micros"]?.int64)
                #expect(decoded.microsecondsSince2000 == micros - 946_684_800_000_000)
            }
        }
    }

    @Test func textWithNulIsRejectedBeforeSending() async throws {
        try await TestDatabase.with { _, connection in
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT $1::text", [.text("a\u{0}b")])
            }
            #expect(error?.code == .clientMisuse)
            let one = try await connection.query("SELECT 1 AS one")[0, "one"]
            #expect(one == .int32(1))
        }
    }

    @Test func rowsAffectedAndCommandTag() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE item (id int8 PRIMARY KEY, name text)")
            let inserted = try await connection.execute(
                "INSERT INTO item SELECT g, 'item ' || g FROM generate_series(1, $1::int4) g", [.int32(5)])
            #expect(inserted == 5)
            #expect(try await connection.execute("DELETE FROM item WHERE id > $1", [.int64(3)]) == 2)
            let result = try await connection.query("SELECT id, name FROM item ORDER BY id")
            #expect(result.commandTag == "SELECT 3")
            #expect(result.map { $0["id"]?.int64 } == [1, 2, 3])
            #expect(try result[2]["name", as: String.self] == "item 3")
        }
    }

    @Test func dateTimeTextMatchesPostgres() {
        #expect(date(1969, 7, 20).description == "1969-07-20")
        #expect(date(-43, 3, 15).description == "0044-03-15 BC")
        #expect(timestamp(2024, 2, 29, 1, 2, 3, 450_000).description == "2024-02-29 01:02:03.45")
        #expect(PostgresTimestamp.infinity.description == "infinity")
        #expect(PostgresDate(year: 2023, month: 2, day: 29) == nil)
        #expect(PostgresTimestamp(postgresText: "2024-01-01 00:00:00+05:30:15")?.description == "2023-12-31 18:29:45")
        let now = Date(timeIntervalSince1970: 1_717_286_399.123456)
        #expect(PostgresTimestamp(now).description == "2024-06-01 23:59:59.123456")
    }

    @Test func iso8601TextIsReadAsTheServerReadsIt() async throws {
        let accepted = [
            "2026-11-29", "2026-11-29T03:00", "2026-11-29 03:00", "2026-11-29T03:00:05", "2026-11-29T03:00:05Z",
            "2026-11-29T03:00:05.5Z", "2026-11-29T03:00:05.123456+01:00", "2024-02-29T23:59:59-05", "1999-12-31 23:59",
            "2026-11-29T03:00+05:30",
        ]
        try await TestDatabase.with { _, connection in
            try await connection.execute("SET TimeZone = 'UTC'")
            for text in accepted {
                let rows = try await connection.query(
                    "SELECT (extract(epoch FROM $1::timestamptz) * 1000000)::int8 AS micros", [.text(text)])
                let micros = try #require(rows.first?["micros"]?.int64)
                #expect(
                    PostgresTimestamp(iso8601: text)?.microsecondsSince2000 == micros - 946_684_800_000_000, "\(text)")
            }
        }
        for text in [
            "", "2026-11-31", "2026-02-29", "2026-11-29T24:00", "2026-11-29T03", "2026-11-29T03:00:05 BC", "29.11.2026",
            "2026-11-29T03:00:05.1234567Z", "2026-11-29T03:00:05+0100", "2026-11-29  03:00", "2026-11-29T03:00Z ",
        ] {
            #expect(PostgresTimestamp(iso8601: text) == nil, "\(text)")
        }
    }

    @Test func iso8601OutputInUTC() {
        #expect(timestamp(2026, 11, 29, 3, 0, 5, 123_999).iso8601Milliseconds == "2026-11-29T03:00:05.123Z")
        #expect(timestamp(1969, 12, 31, 23, 59, 59, 999_999).iso8601Milliseconds == "1969-12-31T23:59:59.999Z")
        #expect(timestamp(2026, 11, 29, 3, 0, 0, 0).iso8601Milliseconds == "2026-11-29T03:00:00.000Z")
        #expect(timestamp(2026, 11, 29, 3, 4, 5, 999_999).secondsText == "2026-11-29 03:04:05")
        #expect(PostgresTimestamp.negativeInfinity.iso8601Milliseconds == "-infinity")
    }
}
