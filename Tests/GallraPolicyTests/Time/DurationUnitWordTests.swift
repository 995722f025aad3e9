import GallraPolicy
import Testing

/// The three duration grammars share one table of unit words but each reads its own units: these are the words
/// each one reads, written out by hand, so that a change to the shared table cannot widen or narrow one unnoticed.
@Suite("Unit words of the duration grammars")
struct DurationUnitWordTests {
    static let everyWord = [
        "ms", "millisecond", "milliseconds", "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute",
        "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day", "days", "w", "week", "weeks", "mo", "mon", "mons",
        "month", "months", "y", "yr", "yrs", "year", "years",
    ]

    static let periodWords: Set<String> = [
        "s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour",
        "hours", "d", "day", "days", "w", "week", "weeks", "mon", "mons", "month", "months", "y", "yr", "yrs",
        "year", "years",
    ]
    static let pauseWords: Set<String> = [
        "ms", "millisecond", "milliseconds", "s", "sec", "secs", "second", "seconds", "min", "mins", "minute",
        "minutes",
    ]
    static let intervalWords: Set<String> = [
        "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour",
        "hours", "d", "day", "days",
    ]

    @Test("a retention period reads seconds to years, and refuses m as ambiguous", arguments: everyWord)
    func periodReads(word: String) {
        let read = (try? RetentionPeriod(parsing: "2 \(word)")) != nil
        #expect(read == Self.periodWords.contains(word))
        #expect(((try? RetentionPeriod(parsing: "2 \(word.uppercased())")) != nil) == read)
    }

    @Test("a pause reads milliseconds to minutes, and min (never m) for minutes", arguments: everyWord)
    func pauseReads(word: String) {
        #expect(((try? PauseDuration.parse("2\(word)")) != nil) == Self.pauseWords.contains(word))
    }

    @Test("an every interval reads seconds to days", arguments: everyWord)
    func intervalReads(word: String) {
        #expect(((try? Schedule(parsing: "every 90 \(word)")) != nil) == Self.intervalWords.contains(word))
        #expect(((try? Schedule(parsing: "every 90\(word)")) != nil) == Self.intervalWords.contains(word))
    }

    @Test("an every interval in weeks, months or years points to the calendar forms", arguments: everyWord)
    func intervalPointsToCalendarForms(word: String) throws {
        guard !Self.intervalWords.contains(word), word != "ms" && !word.hasPrefix("milli") else { return }
        let error = try #require(throws: ScheduleError.self) { try Schedule(parsing: "every 2 \(word)") }
        #expect(error.message.contains("or a calendar form such as weekly on monday"))
    }
}
