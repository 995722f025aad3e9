import GallraPolicy
import Testing

@Suite("Retention periods")
struct RetentionPeriodTests {
    static let hour: Int64 = 3_600_000_000

    @Test(
        "periods in words and ISO 8601",
        arguments: [
            ("1 year", 12, 0, 0, "1 year"),
            ("18 months", 18, 0, 0, "1 year 6 mons"),
            ("90 days", 0, 90, 0, "90 days"),
            ("36 hours", 0, 0, 36 * hour, "36:00:00"),
            ("2 weeks", 0, 14, 0, "14 days"),
            ("1 year 6 months", 18, 0, 0, "1 year 6 mons"),
            ("1 year, 6 months and 3 days", 18, 3, 0, "1 year 6 mons 3 days"),
            ("30 minutes", 0, 0, hour / 2, "00:30:00"),
            ("45 seconds", 0, 0, 45_000_000, "00:00:45"),
            ("2 Years", 24, 0, 0, "2 years"),
            ("1 day", 0, 1, 0, "1 day"),
            ("36h", 0, 0, 36 * hour, "36:00:00"),
            ("90d", 0, 90, 0, "90 days"),
            ("P1Y", 12, 0, 0, "1 year"),
            ("P1Y6M", 18, 0, 0, "1 year 6 mons"),
            ("P2W", 0, 14, 0, "14 days"),
            ("PT36H", 0, 0, 36 * hour, "36:00:00"),
            ("P1DT12H", 0, 1, 12 * hour, "1 day 12:00:00"),
            ("PT30M", 0, 0, hour / 2, "00:30:00"),
            ("p3m", 3, 0, 0, "3 mons"),
            ("P10Y2M3DT4H5M6S", 122, 3, 4 * hour + 5 * 60_000_000 + 6_000_000, "10 years 2 mons 3 days 04:05:06"),
        ] as [(String, Int32, Int32, Int64, String)])
    func parses(text: String, months: Int32, days: Int32, microseconds: Int64, interval: String) throws {
        let period = try RetentionPeriod(parsing: text)
        #expect(period == RetentionPeriod(months: months, days: days, microseconds: microseconds))
        #expect(period.postgresInterval == interval)
        // Both written forms read back to the same period.
        #expect(try RetentionPeriod(parsing: period.description) == period)
        #expect(try RetentionPeriod(parsing: period.iso8601) == period)
    }

    @Test("a year is twelve months, not 365 days")
    func yearIsCalendar() throws {
        #expect(try RetentionPeriod(parsing: "1 year") == RetentionPeriod(parsing: "12 months"))
        #expect(try RetentionPeriod(parsing: "1 year") != RetentionPeriod(parsing: "365 days"))
        #expect(try RetentionPeriod(parsing: "1 day") != RetentionPeriod(parsing: "24 hours"))
    }

    @Test(
        "zero, negative and unparsable periods are errors that say why",
        arguments: [
            ("1 yaer", "did you mean \"year\"?"),
            ("3 dyas", "did you mean \"days\"?"),
            ("2 mnoths", "did you mean \"months\"?"),
            ("-3 days", "must be positive"),
            ("P-1D", "must be positive"),
            ("0 days", "longer than zero"),
            ("P0D", "longer than zero"),
            ("PT0S", "longer than zero"),
            ("", "empty"),
            ("90", "has no unit"),
            ("days", "whole number"),
            ("1.5 days", "whole numbers"),
            ("3 m", "ambiguous"),
            ("1 fortnight", "unknown unit"),
            ("1 year 2 years", "twice"),
            ("P1H", "ISO 8601"),
            ("PT1D", "ISO 8601"),
            ("P", "ISO 8601"),
            ("P1", "end with a unit"),
            ("99999999999 years", "too large"),
            ("300000000 years", "too large"),
        ])
    func rejects(text: String, fragment: String) {
        #expect {
            try RetentionPeriod(parsing: text)
        } throws: { error in
            guard let error = error as? DurationError else { return false }
            return error.message.contains(fragment)
        }
    }

    @Test(
        "pauses between batches",
        arguments: [
            ("200ms", Duration.milliseconds(200), "200ms"),
            ("2s", .seconds(2), "2s"),
            ("2 seconds", .seconds(2), "2s"),
            ("1500ms", .milliseconds(1500), "1500ms"),
            ("1min", .seconds(60), "60s"),
            ("0", .zero, "0"),
            ("0ms", .zero, "0"),
        ])
    func pauses(text: String, duration: Duration, canonical: String) throws {
        #expect(try PauseDuration.parse(text) == duration)
        #expect(PauseDuration.format(duration) == canonical)
    }

    @Test(
        "pauses in proportion to each batch's time",
        arguments: [
            ("100%", Pause.proportional(percent: 100), "100%"),
            ("50 %", .proportional(percent: 50), "50%"),
            ("1000%", .proportional(percent: 1000), "1000%"),
            ("0%", .fixed(.zero), "0"),
            ("250ms", .fixed(.milliseconds(250)), "250ms"),
        ])
    func proportionalPauses(text: String, pause: Pause, canonical: String) throws {
        #expect(try PauseDuration.parsePause(text) == pause)
        #expect(pause.description == canonical)
    }

    @Test func aProportionalPauseFollowsTheBatch() {
        #expect(Pause.proportional(percent: 100).after(batch: .milliseconds(400)) == .milliseconds(400))
        #expect(Pause.proportional(percent: 50).after(batch: .seconds(3)) == .milliseconds(1500))
        #expect(Pause.proportional(percent: 1000).after(batch: .seconds(1000)) == PauseDuration.maximum)
        #expect(Pause.fixed(.seconds(2)).after(batch: .seconds(30)) == .seconds(2))
    }

    @Test("bad proportional pauses", arguments: ["1001%", "-5%", "12.5%", "%", "half%"])
    func badProportionalPauses(text: String) {
        #expect(throws: DurationError.self) { try PauseDuration.parsePause(text) }
    }

    @Test("bad pauses", arguments: ["-1s", "200", "2 sec ago", "2 hrs", "fast", "2h"])
    func badPauses(text: String) {
        #expect(throws: DurationError.self) { try PauseDuration.parse(text) }
    }
}
