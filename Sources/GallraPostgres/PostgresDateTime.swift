#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore

// PostgreSQL's own representations, so that every value the server can hold round-trips exactly:
// a date is a day count and a timestamp a microsecond count, both from 2000-01-01, with the
// extreme values standing for -infinity and infinity (DATEVAL_NOBEGIN/NOEND, DT_NOBEGIN/NOEND).
// Calendar arithmetic is the proleptic Gregorian calendar (as PostgreSQL's), in 64-bit integers.

/// A PostgreSQL `date`: days since 2000-01-01, or ±infinity.
public struct PostgresDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Days since 2000-01-01; `Int32.min` is `-infinity`, `Int32.max` is `infinity`.
    public var daysSince2000: Int32

    public init(daysSince2000: Int32) {
        self.daysSince2000 = daysSince2000
    }

    /// A calendar date; `year` 0 is 1 BC, -1 is 2 BC (astronomical numbering). Nil if the date does not exist.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...12).contains(month), (1...CivilCalendar.daysInMonth(year, month)).contains(day) else { return nil }
        let days = CivilCalendar.daysFromCivil(year, month, day) - CivilCalendar.unixDaysAt2000
        guard let value = Int32(exactly: days), value != .min, value != .max else { return nil }
        self.daysSince2000 = value
    }

    public static let infinity = PostgresDate(daysSince2000: .max)
    public static let negativeInfinity = PostgresDate(daysSince2000: .min)

    public var isInfinite: Bool { daysSince2000 == .max || daysSince2000 == .min }

    /// Year (astronomical: 0 is 1 BC), month and day; nil for ±infinity.
    public var components: (year: Int, month: Int, day: Int)? {
        guard !isInfinite else { return nil }
        return CivilCalendar.civilFromDays(Int64(daysSince2000) + CivilCalendar.unixDaysAt2000)
    }

    /// The text PostgreSQL prints with `DateStyle = ISO`: `1969-07-20`, `0044-03-15 BC`, `infinity`.
    public var description: String {
        if daysSince2000 == .max { return "infinity" }
        if daysSince2000 == .min { return "-infinity" }
        let (year, month, day) = CivilCalendar.civilFromDays(Int64(daysSince2000) + CivilCalendar.unixDaysAt2000)
        return CivilCalendar.formatDate(year, month, day) + (year <= 0 ? " BC" : "")
    }

    /// Parses PostgreSQL's ISO output (`YYYY-MM-DD[ BC]`, `infinity`, `-infinity`).
    public init?(postgresText text: Substring) {
        switch text {
        case "infinity": self = .infinity
        case "-infinity": self = .negativeInfinity
        default:
            var rest = text
            let bc = rest.hasSuffix(" BC")
            if bc { rest = rest.dropLast(3) }
            guard let (y, m, d) = CivilCalendar.parseDate(rest) else { return nil }
            self.init(year: bc ? 1 - y : y, month: m, day: d)
        }
    }

    public static func < (lhs: PostgresDate, rhs: PostgresDate) -> Bool { lhs.daysSince2000 < rhs.daysSince2000 }
}

/// A PostgreSQL `timestamp` or `timestamptz`: microseconds since 2000-01-01 00:00:00 (UTC for `timestamptz`), or ±infinity.
public struct PostgresTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Microseconds since 2000-01-01 00:00:00; `Int64.min` is `-infinity`, `Int64.max` is `infinity`.
    public var microsecondsSince2000: Int64

    public init(microsecondsSince2000: Int64) {
        self.microsecondsSince2000 = microsecondsSince2000
    }

    /// A calendar date and time of day (astronomical years: 0 is 1 BC). Nil if a field is out of range.
    public init?(
        year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, microsecond: Int = 0
    ) {
        guard let date = PostgresDate(year: year, month: month, day: day), (0...23).contains(hour),
            (0...59).contains(minute), (0...59).contains(second), (0...999_999).contains(microsecond)
        else { return nil }
        let seconds = Int64(date.daysSince2000) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        self.microsecondsSince2000 = seconds * 1_000_000 + Int64(microsecond)
    }

    /// The instant of a Foundation `Date`, rounded to the microsecond.
    public init(_ date: Date) {
        let seconds = date.timeIntervalSince1970 - Double(CivilCalendar.unixSecondsAt2000)
        self.microsecondsSince2000 = Int64((seconds * 1_000_000).rounded())
    }

    public static let infinity = PostgresTimestamp(microsecondsSince2000: .max)
    public static let negativeInfinity = PostgresTimestamp(microsecondsSince2000: .min)

    public var isInfinite: Bool { microsecondsSince2000 == .max || microsecondsSince2000 == .min }

    /// The Foundation `Date` of this instant (read as UTC); nil for ±infinity. May lose sub-microsecond precision far from 2001.
    public var date: Date? {
        guard !isInfinite else { return nil }
        let whole = microsecondsSince2000.floorDivided(by: 1_000_000)
        let fraction = microsecondsSince2000 - whole * 1_000_000
        return Date(
            timeIntervalSince1970: Double(whole + CivilCalendar.unixSecondsAt2000) + Double(fraction) / 1_000_000)
    }

    /// The text PostgreSQL prints for a `timestamp` with `DateStyle = ISO`: `2024-02-29 12:34:56.000001`.
    public var description: String { format(utcOffsetSuffix: "") }

    /// The text for a `timestamptz` in UTC: `2024-02-29 12:34:56.000001+00`.
    var timestamptzText: String { format(utcOffsetSuffix: "+00") }

    private func format(utcOffsetSuffix: String) -> String {
        if microsecondsSince2000 == .max { return "infinity" }
        if microsecondsSince2000 == .min { return "-infinity" }
        let days = microsecondsSince2000.floorDivided(by: 86_400_000_000)
        var rest = microsecondsSince2000 - days * 86_400_000_000
        let (year, month, day) = CivilCalendar.civilFromDays(days + CivilCalendar.unixDaysAt2000)
        let microsecond = Int(rest % 1_000_000)
        rest /= 1_000_000
        var text = CivilCalendar.formatDate(year, month, day)
        text += " " + CivilCalendar.pad(Int(rest / 3600), 2) + ":" + CivilCalendar.pad(Int(rest / 60 % 60), 2) + ":"
        text += CivilCalendar.pad(Int(rest % 60), 2)
        if microsecond != 0 {
            var fraction = CivilCalendar.pad(microsecond, 6)
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text + utcOffsetSuffix + (year <= 0 ? " BC" : "")
    }

    /// Parses PostgreSQL's ISO output: `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]][ BC]`, `infinity`, `-infinity`.
    /// A UTC offset, when present, is applied, so the result is the UTC instant.
    public init?(postgresText text: Substring) {
        switch text {
        case "infinity": self = .infinity; return
        case "-infinity": self = .negativeInfinity; return
        default: break
        }
        var rest = text
        let bc = rest.hasSuffix(" BC")
        if bc { rest = rest.dropLast(3) }
        guard let space = rest.firstIndex(of: " "), let (y, m, d) = CivilCalendar.parseDate(rest[..<space]) else {
            return nil
        }
        var time = rest[rest.index(after: space)...]
        var offsetSeconds = 0
        if let sign = time.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let parts = time[time.index(after: sign)...].split(separator: ":", omittingEmptySubsequences: false)
            guard (1...3).contains(parts.count), parts.allSatisfy({ $0.count == 2 }) else { return nil }
            var seconds = 0
            for (part, scale) in zip(parts, [3600, 60, 1]) {
                guard let value = Int(part) else { return nil }
                seconds += value * scale
            }
            offsetSeconds = time[sign] == "-" ? -seconds : seconds
            time = time[..<sign]
        }
        let hms = time.split(separator: ":", omittingEmptySubsequences: false)
        guard hms.count == 3, hms[0].count == 2, hms[1].count == 2, let hour = Int(hms[0]), let minute = Int(hms[1])
        else { return nil }
        let secondParts = hms[2].split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(secondParts.count), secondParts[0].count == 2, let second = Int(secondParts[0]) else {
            return nil
        }
        var microsecond = 0
        if secondParts.count == 2 {
            let digits = secondParts[1]
            guard (1...6).contains(digits.count), digits.allSatisfy(\.isASCII), let value = Int(digits) else {
                return nil
            }
            microsecond = value * [1, 100_000, 10_000, 1000, 100, 10, 1][digits.count]
        }
        guard
            let local = PostgresTimestamp(
                year: bc ? 1 - y : y, month: m, day: d, hour: hour, minute: minute, second: second,
                microsecond: microsecond)
        else { return nil }
        self.microsecondsSince2000 = local.microsecondsSince2000 - Int64(offsetSeconds) * 1_000_000
    }

    public static func < (lhs: PostgresTimestamp, rhs: PostgresTimestamp) -> Bool {
        lhs.microsecondsSince2000 < rhs.microsecondsSince2000
    }
}

// Times as people and other programs write them, without Foundation's formatters (which load ICU and its
// locale data, several megabytes of a long-running service's memory, for nothing but a fixed format).
extension PostgresTimestamp {
    /// RFC 3339 in UTC with milliseconds, `2026-11-29T03:00:00.000Z`; ±infinity as `infinity` and `-infinity`.
    public var iso8601Milliseconds: String {
        guard !isInfinite else { return description }
        let millisecond = microsecondsSince2000 - microsecondsSince2000.floorDivided(by: 1_000_000) * 1_000_000
        let whole = PostgresTimestamp(microsecondsSince2000: microsecondsSince2000 - millisecond)
        return whole.description.replacing(" ", with: "T") + "."
            + CivilCalendar.pad(Int(millisecond / 1000), 3) + "Z"
    }

    /// `2026-11-29 03:00:00` in UTC, whole seconds (truncated); ±infinity as `infinity` and `-infinity`.
    public var secondsText: String {
        guard !isInfinite else { return description }
        let fraction = microsecondsSince2000 - microsecondsSince2000.floorDivided(by: 1_000_000) * 1_000_000
        return PostgresTimestamp(microsecondsSince2000: microsecondsSince2000 - fraction).description
    }

    /// An instant as ISO 8601 and people write it: a date (`2026-11-29`, midnight), or a date and a time
    /// (`T` or a space between them; `03:00`, `03:00:00`, `03:00:00.123456`), with an offset (`Z`, `+01`,
    /// `+01:00`) or without one, which means UTC. Nil for anything else, or a date or time that does not exist.
    public init?(iso8601 text: some StringProtocol) {
        let text = Substring(text)
        guard let separator = text.firstIndex(where: { $0 == "T" || $0 == " " }) else {
            guard CivilCalendar.parseDate(text) != nil else { return nil }
            self.init(postgresText: text + " 00:00:00")
            return
        }
        let date = text[..<separator]
        var time = text[text.index(after: separator)...]
        var offset: Substring = ""
        if time.hasSuffix("Z") {
            time = time.dropLast()
        } else if let sign = time.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            offset = time[sign...]
            time = time[..<sign]
        }
        let fields = time.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 2 || fields.count == 3, !date.contains(" "), !time.contains(" ") else { return nil }
        self.init(postgresText: date + " " + time + (fields.count == 2 ? ":00" : "") + offset)
    }
}
