import GallraCore

/// A POSIX `TZ` rule (POSIX.1-2017 8.3, with RFC 8536's extensions: hours -167 to 167 in transition times):
/// a standard offset and, optionally, a daylight offset with the dates and times it starts and ends each year.
struct PosixZoneRule: Sendable, Hashable {
    /// Seconds east of UTC (POSIX writes them west: `CET-1` is one hour east).
    var standardOffset: Int64
    var daylight: Daylight?

    struct Daylight: Sendable, Hashable {
        var offset: Int64
        var start: Transition
        var end: Transition
    }

    /// A day of the year and a local time of day (seconds, may be negative or past 24 hours).
    struct Transition: Sendable, Hashable {
        enum Day: Sendable, Hashable {
            /// `Jn`: day 1-365, February 29 never counted.
            case julianNoLeap(Int)
            /// `n`: day 0-365, February 29 counted in leap years.
            case zeroBased(Int)
            /// `Mm.w.d`: weekday d (0 Sunday) of week w (5: the last) of month m.
            case monthWeekDay(month: Int, week: Int, weekday: Int)
        }
        var day: Day
        var time: Int64

        /// The local instant (seconds since 1970-01-01 00:00 local) of the transition in `year`.
        func localSeconds(in year: Int) -> Int64 {
            let january1 = CivilCalendar.daysFromCivil(year, 1, 1)
            let dayNumber: Int64
            switch day {
            case .julianNoLeap(let n):
                let leap = CivilCalendar.daysInMonth(year, 2) == 29
                dayNumber = january1 + Int64(n - 1) + (leap && n >= 60 ? 1 : 0)
            case .zeroBased(let n):
                dayNumber = january1 + Int64(n)
            case .monthWeekDay(let month, let week, let weekday):
                let first = CivilCalendar.daysFromCivil(year, month, 1)
                let firstWeekday = Int64(ScheduleCivilDay(dayNumber: first).weekday)
                var candidate = first + (Int64(weekday) - firstWeekday + 7) % 7 + Int64(week - 1) * 7
                let length = Int64(CivilCalendar.daysInMonth(year, month))
                while candidate >= first + length { candidate -= 7 }
                dayNumber = candidate
            }
            return dayNumber * 86_400 + time
        }
    }

    func offset(at instant: Int64) -> Int64 {
        guard let daylight else { return standardOffset }
        let year = ScheduleCivilDay(dayNumber: (instant + standardOffset).floorDivided(by: 86_400)).year
        // The latest start or end at or before the instant, of this year or the ones either side: a start happens
        // at standard time, an end at daylight time.
        var latest: (instant: Int64, offset: Int64)?
        for candidate in (year - 1)...(year + 1) {
            let start = daylight.start.localSeconds(in: candidate) - standardOffset
            let end = daylight.end.localSeconds(in: candidate) - daylight.offset
            for (at, offset) in [(start, daylight.offset), (end, standardOffset)]
            where at <= instant && at >= (latest?.instant ?? .min) {
                latest = (at, offset)
            }
        }
        return latest?.offset ?? standardOffset
    }

    /// Parses `std offset [dst [offset] [,start[/time],end[/time]]]`; nil if malformed or without the dates.
    init?(_ text: String) {
        var scanner = PosixRuleScanner(text: Array(text.utf8))
        guard scanner.name(), let standardWest = scanner.offset(maximumHours: 24) else { return nil }
        standardOffset = -standardWest
        guard !scanner.atEnd else {
            daylight = nil
            return
        }
        guard scanner.name() else { return nil }
        var daylightOffset = standardOffset + 3600
        if !scanner.peek(","), let west = scanner.offset(maximumHours: 24) { daylightOffset = -west }
        guard scanner.consume(","), let start = scanner.transition(), scanner.consume(","),
            let end = scanner.transition(), scanner.atEnd
        else { return nil }
        daylight = Daylight(offset: daylightOffset, start: start, end: end)
    }
}

/// Reads the parts of a POSIX `TZ` rule.
private struct PosixRuleScanner {
    let text: [UInt8]
    var position = 0

    var atEnd: Bool { position == text.count }

    func peek(_ character: Character) -> Bool {
        position < text.count && text[position] == character.asciiValue
    }

    mutating func consume(_ character: Character) -> Bool {
        guard peek(character) else { return false }
        position += 1
        return true
    }

    /// A zone abbreviation: three or more letters, or `<...>` with letters, digits, `+` and `-`.
    mutating func name() -> Bool {
        let start = position
        if consume("<") {
            while position < text.count, text[position] != UInt8(ascii: ">") { position += 1 }
            guard consume(">") else { return false }
            return position - start >= 5
        }
        while position < text.count,
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(text[position] & ~0x20)
        {
            position += 1
        }
        return position - start >= 3
    }

    mutating func number() -> Int? {
        let start = position
        var value = 0
        while position < text.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[position]) {
            value = value * 10 + Int(text[position] - UInt8(ascii: "0"))
            position += 1
            guard value < 1_000_000 else { return nil }
        }
        return position > start ? value : nil
    }

    /// `[+-]hh[:mm[:ss]]` in seconds.
    mutating func offset(maximumHours: Int) -> Int64? {
        var sign: Int64 = 1
        if consume("-") { sign = -1 } else { _ = consume("+") }
        guard let hours = number(), hours <= maximumHours else { return nil }
        var seconds = Int64(hours) * 3600
        if consume(":") {
            guard let minutes = number(), minutes < 60 else { return nil }
            seconds += Int64(minutes) * 60
            if consume(":") {
                guard let secs = number(), secs < 60 else { return nil }
                seconds += Int64(secs)
            }
        }
        return sign * seconds
    }

    /// `Jn`, `n` or `Mm.w.d`, then an optional `/time` (02:00 by default).
    mutating func transition() -> PosixZoneRule.Transition? {
        let day: PosixZoneRule.Transition.Day
        if consume("J") {
            guard let n = number(), (1...365).contains(n) else { return nil }
            day = .julianNoLeap(n)
        } else if consume("M") {
            guard let month = number(), (1...12).contains(month), consume("."), let week = number(),
                (1...5).contains(week), consume("."), let weekday = number(), (0...6).contains(weekday)
            else { return nil }
            day = .monthWeekDay(month: month, week: week, weekday: weekday)
        } else {
            guard let n = number(), (0...365).contains(n) else { return nil }
            day = .zeroBased(n)
        }
        var time: Int64 = 7200
        if consume("/") {
            guard let parsed = offset(maximumHours: 167) else { return nil }
            time = parsed
        }
        return PosixZoneRule.Transition(day: day, time: time)
    }
}
