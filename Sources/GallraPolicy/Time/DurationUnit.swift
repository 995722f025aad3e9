/// A unit of time as durations are written in policies and schedules, with every word any of gallra's duration
/// grammars reads as it. Each grammar takes some of the units and may refuse some of their words
/// (``DurationUnitWords``), so the words themselves are listed once, here.
enum DurationUnit: String, Sendable, Hashable, CaseIterable {
    case millisecond, second, minute, hour, day, week, month, year

    /// The words for the unit, in any grammar that takes it (compared lower-cased).
    var words: [String] {
        switch self {
        case .millisecond: ["ms", "millisecond", "milliseconds"]
        case .second: ["s", "sec", "secs", "second", "seconds"]
        case .minute: ["m", "min", "mins", "minute", "minutes"]
        case .hour: ["h", "hr", "hrs", "hour", "hours"]
        case .day: ["d", "day", "days"]
        case .week: ["w", "week", "weeks"]
        case .month: ["mon", "mons", "month", "months"]
        case .year: ["y", "yr", "yrs", "year", "years"]
        }
    }

    /// The elapsed time of one unit; nil for months and years, whose length varies.
    var length: Duration? {
        switch self {
        case .millisecond: .milliseconds(1)
        case .second: .seconds(1)
        case .minute: .seconds(60)
        case .hour: .seconds(3600)
        case .day: .seconds(86_400)
        case .week: .seconds(7 * 86_400)
        case .month, .year: nil
        }
    }
}

/// The unit words one grammar reads: the words of the units it takes, less those it refuses.
struct DurationUnitWords: Sendable {
    /// The units, in the order their names are offered as suggestions.
    let units: [DurationUnit]
    /// Words of those units the grammar does not read (each grammar explains why in its message).
    let refused: Set<String>

    init(_ units: [DurationUnit], refusing refused: Set<String> = []) {
        self.units = units
        self.refused = refused
    }

    /// The unit a (lower-cased) word names in this grammar.
    func unit(named word: String) -> DurationUnit? {
        guard !refused.contains(word) else { return nil }
        return units.first { $0.words.contains(word) }
    }

    /// The unit's shortest word in this grammar (`min` for pauses, which refuse `m`).
    func abbreviation(_ unit: DurationUnit) -> String {
        unit.words.first { !refused.contains($0) } ?? unit.rawValue
    }

    /// Every word the grammar reads.
    var words: [String] { units.flatMap { $0.words.filter { !refused.contains($0) } } }

    /// `every 6h` (``Schedule``): seconds to days of elapsed time; months and years are calendar forms.
    static let scheduleInterval = DurationUnitWords([.second, .minute, .hour, .day])
    /// The units `every` refuses for the calendar forms that take them (`weekly`, `monthly`).
    static let calendarUnits = DurationUnitWords([.week, .month, .year])
    /// Retention periods (``RetentionPeriod``): seconds to years. `m` is refused as ambiguous (months or minutes).
    static let retentionPeriod = DurationUnitWords(
        [.year, .month, .week, .day, .hour, .minute, .second], refusing: ["m"])
    /// Pauses between batches (``PauseDuration``): milliseconds to minutes; `min`, never `m`, for minutes.
    static let pause = DurationUnitWords([.millisecond, .second, .minute], refusing: ["m"])
}
