import Foundation

/// The wall-clock times a calendar schedule names, as cron fields (every calendar form compiles to one).
///
/// Days match as in Vixie cron: when both day-of-month and day-of-week are restricted (their cron
/// fields do not start with `*`), a day matches if EITHER matches; otherwise both must match.
struct ScheduleCalendarPattern: Sendable, Hashable {
    /// Bits 0-59.
    var minutes: UInt64
    /// Bits 0-23.
    var hours: UInt64
    /// Bits 1-31.
    var daysOfMonth: UInt64
    /// Also match the last day of each month (`monthly on last`).
    var lastDayOfMonth: Bool = false
    /// Bits 1-12.
    var months: UInt64
    /// Bits 0-6, 0 is Sunday.
    var daysOfWeek: UInt64
    var dayOfMonthRestricted: Bool
    var dayOfWeekRestricted: Bool

    static let allMinutes: UInt64 = (1 << 60) - 1
    static let allHours: UInt64 = (1 << 24) - 1
    static let allDaysOfMonth: UInt64 = ((1 << 32) - 1) & ~1
    static let allMonths: UInt64 = ((1 << 13) - 1) & ~1
    static let allDaysOfWeek: UInt64 = (1 << 7) - 1

    /// A pattern that names every hour follows the clock through DST changes: times in a skipped
    /// hour do not happen and a repeated hour runs twice, an hour apart (as Vixie cron treats
    /// "wildcard" jobs). Any other pattern names fixed times of day: a skipped time runs once at
    /// the end of the gap, a repeated time runs only at its first occurrence.
    var followsClock: Bool { hours == Self.allHours }

    func matches(_ day: ScheduleCivilDay) -> Bool {
        guard months & (1 << UInt64(day.month)) != 0 else { return false }
        let dayOfMonth =
            daysOfMonth & (1 << UInt64(day.day)) != 0
            || (lastDayOfMonth && day.day == ScheduleCivilDay.daysIn(month: day.month, year: day.year))
        let dayOfWeek = daysOfWeek & (1 << UInt64(day.weekday)) != 0
        if dayOfMonthRestricted && dayOfWeekRestricted {
            return dayOfMonth || dayOfWeek
        }
        return dayOfMonth && dayOfWeek
    }

    /// Whether some day of some year matches. Under the OR rule every month has a matching weekday;
    /// under the AND rule a matching (month, day) pair falls on every weekday within 400 years.
    var canMatch: Bool {
        if dayOfMonthRestricted && dayOfWeekRestricted { return true }
        if lastDayOfMonth { return true }
        for month in 1...12 where months & (1 << UInt64(month)) != 0 {
            let longest = ScheduleCivilDay.daysIn(month: month, year: 2000)
            if daysOfMonth & (((1 << UInt64(longest + 1)) - 1) & ~1) != 0 { return true }
        }
        return false
    }

    /// The instants (Unix seconds) at which the pattern fires on one local day in `zone`, ascending.
    func fireInstants(onLocalDay dayNumber: Int64, in zone: ZoneRules) -> [Int64] {
        guard matches(ScheduleCivilDay(dayNumber: dayNumber)) else { return [] }
        let midnight = dayNumber * 86_400
        let before = zone.scheduleOffset(at: midnight - 86_400)
        let after = zone.scheduleOffset(at: midnight + 2 * 86_400)
        var instants: [Int64] = []
        for hour in Self.members(of: hours, in: 0...23) {
            for minute in Self.members(of: minutes, in: 0...59) {
                let wallClock = midnight + Int64(hour * 3600 + minute * 60)
                if before == after {
                    // No change of offset near this day (almost every day): one instant per time.
                    instants.append(wallClock - before)
                    continue
                }
                switch zone.scheduleResolve(wallClock: wallClock) {
                case .unique(let instant):
                    instants.append(instant)
                case .skipped(let gapEnd):
                    if !followsClock { instants.append(gapEnd) }
                case .repeated(let first, let second):
                    instants.append(first)
                    if followsClock { instants.append(second) }
                }
            }
        }
        if before != after {
            instants = Array(Set(instants)).sorted()
        }
        return instants
    }

    static func members(of mask: UInt64, in range: ClosedRange<Int>) -> [Int] {
        range.filter { mask & (1 << UInt64($0)) != 0 }
    }
}

/// A proleptic Gregorian date, from and to days since 1970-01-01 (H. Hinnant's civil algorithms).
struct ScheduleCivilDay: Sendable, Hashable {
    var year: Int64
    var month: Int
    var day: Int

    init(dayNumber: Int64) {
        let z = dayNumber + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        day = Int(dayOfYear - (153 * shiftedMonth + 2) / 5 + 1)
        month = Int(shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9)
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        self.dayNumber = dayNumber
    }

    let dayNumber: Int64

    /// Days since 1970-01-01 of a date (month 1-12, day 1-31).
    static func dayNumber(year: Int64, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// 0 is Sunday; 1970-01-01 was a Thursday.
    var weekday: Int { Int(((dayNumber % 7) + 11) % 7) }

    static func daysIn(month: Int, year: Int64) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// How a local wall-clock time maps to instants in a zone.
enum ScheduleWallClockResolution: Equatable {
    case unique(Int64)
    /// The time does not exist (clocks jumped over it); `gapEnd` is the instant the clocks jumped.
    case skipped(gapEnd: Int64)
    /// The time occurs twice (clocks were turned back).
    case repeated(first: Int64, second: Int64)
}

extension ZoneRules {
    /// Offset from UTC in seconds at an instant given in Unix seconds.
    func scheduleOffset(at instant: Int64) -> Int64 {
        offset(at: instant)
    }

    /// Maps a wall-clock time (seconds since 1970-01-01 00:00 local) to instants. Assumes at most one
    /// change of offset within a day either side, true of every zone in the tz database.
    func scheduleResolve(wallClock: Int64) -> ScheduleWallClockResolution {
        let earlierOffset = scheduleOffset(at: wallClock - 86_400)
        let laterOffset = scheduleOffset(at: wallClock + 86_400)
        let candidates = Set([earlierOffset, laterOffset]).map { wallClock - $0 }
        let valid = candidates.filter { wallClock - scheduleOffset(at: $0) == $0 }.sorted()
        if valid.count >= 2 { return .repeated(first: valid[0], second: valid[valid.count - 1]) }
        if let only = valid.first { return .unique(only) }
        // A gap: find the first second with the new offset between the two readings.
        var low = wallClock - Swift.max(earlierOffset, laterOffset)
        var high = wallClock - Swift.min(earlierOffset, laterOffset)
        let oldOffset = scheduleOffset(at: low)
        guard scheduleOffset(at: high) != oldOffset else { return .skipped(gapEnd: high) }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if scheduleOffset(at: middle) == oldOffset { low = middle } else { high = middle }
        }
        return .skipped(gapEnd: high)
    }
}
