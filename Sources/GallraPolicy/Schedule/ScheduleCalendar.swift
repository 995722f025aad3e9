import GallraCore

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
            || (lastDayOfMonth && day.day == CivilCalendar.daysInMonth(day.year, day.month))
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
            let longest = CivilCalendar.daysInMonth(2000, month)
            if daysOfMonth & (((1 << UInt64(longest + 1)) - 1) & ~1) != 0 { return true }
        }
        return false
    }

    /// The instants (Unix seconds) at which the pattern fires on one local day in `zone`, ascending.
    func fireInstants(onLocalDay dayNumber: Int64, in zone: ZoneRules) -> [Int64] {
        guard matches(ScheduleCivilDay(dayNumber: dayNumber)) else { return [] }
        let midnight = dayNumber * 86_400
        let before = zone.offset(at: midnight - 86_400)
        let after = zone.offset(at: midnight + 2 * 86_400)
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

/// A proleptic Gregorian date and its weekday, from days since 1970-01-01 (``CivilCalendar`` does the arithmetic).
struct ScheduleCivilDay: Sendable, Hashable {
    let dayNumber: Int64
    let year: Int
    let month: Int
    let day: Int

    init(dayNumber: Int64) {
        self.dayNumber = dayNumber
        (year, month, day) = CivilCalendar.civilFromDays(dayNumber)
    }

    /// 0 is Sunday; 1970-01-01 was a Thursday.
    var weekday: Int { Int(((dayNumber % 7) + 11) % 7) }
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
    /// Maps a wall-clock time (seconds since 1970-01-01 00:00 local) to instants. Assumes at most one
    /// change of offset within a day either side, true of every zone in the tz database.
    func scheduleResolve(wallClock: Int64) -> ScheduleWallClockResolution {
        let earlierOffset = offset(at: wallClock - 86_400)
        let laterOffset = offset(at: wallClock + 86_400)
        let candidates = Set([earlierOffset, laterOffset]).map { wallClock - $0 }
        let valid = candidates.filter { wallClock - offset(at: $0) == $0 }.sorted()
        if valid.count >= 2 { return .repeated(first: valid[0], second: valid[valid.count - 1]) }
        if let only = valid.first { return .unique(only) }
        // A gap: find the first second with the new offset between the two readings.
        var low = wallClock - Swift.max(earlierOffset, laterOffset)
        var high = wallClock - Swift.min(earlierOffset, laterOffset)
        let oldOffset = offset(at: low)
        guard offset(at: high) != oldOffset else { return .skipped(gapEnd: high) }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(at: middle) == oldOffset { low = middle } else { high = middle }
        }
        return .skipped(gapEnd: high)
    }
}
