/// Why a text is not a duration.
public struct DurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text that was given.
    public var text: String
    /// What is wrong and how to write it instead.
    public var message: String

    public var description: String { message }
}

/// A retention period, calendar-aware like PostgreSQL's `interval`: months, days and time are kept apart,
/// so "1 year" is 12 months (not 365 days) and "1 day" is a calendar day (23 or 25 hours across a DST change).
///
/// Written as "1 year", "18 months", "90 days", "36 hours", "2 weeks", "1 year 6 months", "30 minutes",
/// or ISO 8601: "P1Y6M", "P2W", "PT36H", "P1DT12H". Always positive.
public struct RetentionPeriod: Sendable, Hashable, CustomStringConvertible {
    /// Calendar months (a year is 12).
    public var months: Int32
    /// Calendar days (a week is 7).
    public var days: Int32
    /// Time of day part, in microseconds (an hour is 3 600 000 000).
    public var microseconds: Int64

    /// A period from its parts; `parsing` is how user text becomes a period.
    public init(months: Int32 = 0, days: Int32 = 0, microseconds: Int64 = 0) {
        self.months = months
        self.days = days
        self.microseconds = microseconds
    }

    static let microsecondsPerSecond: Int64 = 1_000_000
    static let microsecondsPerMinute: Int64 = 60 * microsecondsPerSecond
    static let microsecondsPerHour: Int64 = 60 * microsecondsPerMinute

    /// Parses a positive period (see the type's documentation for the forms).
    public init(parsing text: String) throws(DurationError) {
        let trimmed = text.trimmingWhitespace
        func failure(_ why: String) -> DurationError {
            DurationError(text: text, message: "not a period: \(text.quotedForMessage) (\(why))")
        }
        guard !trimmed.isEmpty else {
            throw failure("it is empty; write for example \"1 year\", \"90 days\" or \"P1Y\"")
        }
        if trimmed.hasPrefix("-") || trimmed.hasPrefix("P-") || trimmed.hasPrefix("p-") {
            throw failure("a period must be positive; write for example \"3 days\"")
        }
        let first = trimmed.unicodeScalars.first!
        let second = trimmed.unicodeScalars.dropFirst().first
        if first == "P" || first == "p", second.map({ ("0"..."9").contains($0) || $0 == "T" || $0 == "t" }) ?? true {
            self = try Self.parseISO(trimmed, failure: failure)
        } else {
            self = try Self.parseWords(trimmed, failure: failure)
        }
        guard months > 0 || days > 0 || microseconds > 0 else {
            throw failure("a period must be longer than zero; write for example \"30 days\"")
        }
    }

    private static func parseWords(_ text: String, failure: (String) -> DurationError) throws(DurationError) -> Self {
        var result = RetentionPeriod()
        var seen: Set<DurationUnit> = []
        let scalars = Array(text.unicodeScalars)
        var index = 0
        func skipSeparators() {
            while index < scalars.count, scalars[index] == " " || scalars[index] == "," || scalars[index] == "\t" {
                index += 1
            }
        }
        skipSeparators()
        while index < scalars.count {
            if scalars[index] == "-" { throw failure("a period must be positive; write for example \"3 days\"") }
            if scalars[index] == "+" { index += 1 }
            var digits = ""
            while index < scalars.count, ("0"..."9").contains(scalars[index]) {
                digits.unicodeScalars.append(scalars[index])
                index += 1
            }
            guard !digits.isEmpty else {
                throw failure("expected a whole number before each unit, as in \"18 months\"")
            }
            if index < scalars.count, scalars[index] == "." {
                throw failure("use whole numbers: write \"36 hours\" rather than \"1.5 days\"")
            }
            while index < scalars.count, scalars[index] == " " || scalars[index] == "\t" { index += 1 }
            var word = ""
            while index < scalars.count, scalars[index].properties.isAlphabetic {
                word.unicodeScalars.append(scalars[index])
                index += 1
            }
            guard !word.isEmpty else {
                throw failure("\(digits) has no unit; write for example \"\(digits) days\"")
            }
            let lower = word.lowercased()
            guard let unit = DurationUnitWords.retentionPeriod.unit(named: lower) else {
                if lower == "m" {
                    throw failure("\"m\" is ambiguous; write \"\(digits) months\" or \"\(digits) minutes\"")
                }
                let names = DurationUnitWords.retentionPeriod.units.flatMap { [$0.rawValue, $0.rawValue + "s"] }
                if let suggestion = Suggestions.closest(to: lower, among: names) {
                    throw failure("unknown unit \"\(word)\"; did you mean \"\(suggestion)\"?")
                }
                throw failure(
                    "unknown unit \"\(word)\"; use years, months, weeks, days, hours, minutes or seconds")
            }
            guard seen.insert(unit).inserted else {
                throw failure("\(unit.rawValue)s given twice")
            }
            guard let value = Int64(digits) else { throw failure("\(digits) is too large") }
            try result.add(value, unit, failure: failure)
            skipSeparators()
            if index + 3 <= scalars.count, scalars[index..<index + 3].elementsEqual("and".unicodeScalars) {
                index += 3
                skipSeparators()
            }
        }
        return result
    }

    private static func parseISO(_ text: String, failure: (String) -> DurationError) throws(DurationError) -> Self {
        var result = RetentionPeriod()
        var inTime = false
        var digits = ""
        var any = false
        for scalar in text.uppercased().unicodeScalars.dropFirst() {
            switch scalar {
            case "0"..."9":
                digits.unicodeScalars.append(scalar)
            case "T":
                guard !inTime, digits.isEmpty else { throw failure("misplaced T in an ISO 8601 period") }
                inTime = true
            case ".", ",":
                throw failure("use whole numbers in ISO 8601 periods, e.g. \"PT36H\" rather than \"P1.5D\"")
            default:
                let unit: DurationUnit? =
                    switch (scalar, inTime) {
                    case ("Y", false): .year
                    case ("M", false): .month
                    case ("W", false): .week
                    case ("D", false): .day
                    case ("H", true): .hour
                    case ("M", true): .minute
                    case ("S", true): .second
                    default: nil
                    }
                guard let unit else {
                    throw failure(
                        "ISO 8601 periods look like \"P1Y6M\", \"P2W\", \"PT36H\" or \"P1DT12H\" (Y, M, W, D before T; H, M, S after)"
                    )
                }
                guard !digits.isEmpty else { throw failure("a number is missing before \(scalar)") }
                guard let value = Int64(digits) else { throw failure("\(digits) is too large") }
                try result.add(value, unit, failure: failure)
                digits = ""
                any = true
            }
        }
        guard digits.isEmpty, any else {
            throw failure("ISO 8601 periods end with a unit, as in \"P1Y\" or \"PT36H\"")
        }
        return result
    }

    private mutating func add(_ value: Int64, _ unit: DurationUnit, failure: (String) -> DurationError)
        throws(DurationError)
    {
        func checked(_ a: Int64, times b: Int64, plus c: Int64) throws(DurationError) -> Int64 {
            let (product, overflow1) = a.multipliedReportingOverflow(by: b)
            let (sum, overflow2) = product.addingReportingOverflow(c)
            guard !overflow1, !overflow2 else { throw failure("\(value) \(unit.rawValue)s is too large") }
            return sum
        }
        func int32(_ v: Int64) throws(DurationError) -> Int32 {
            guard let result = Int32(exactly: v) else { throw failure("\(value) \(unit.rawValue)s is too large") }
            return result
        }
        switch unit {
        case .year: months = try int32(try checked(value, times: 12, plus: Int64(months)))
        case .month: months = try int32(try checked(value, times: 1, plus: Int64(months)))
        case .week: days = try int32(try checked(value, times: 7, plus: Int64(days)))
        case .day: days = try int32(try checked(value, times: 1, plus: Int64(days)))
        case .hour: microseconds = try checked(value, times: Self.microsecondsPerHour, plus: microseconds)
        case .minute: microseconds = try checked(value, times: Self.microsecondsPerMinute, plus: microseconds)
        case .second: microseconds = try checked(value, times: Self.microsecondsPerSecond, plus: microseconds)
        case .millisecond: microseconds = try checked(value, times: 1000, plus: microseconds)
        }
    }

    /// The canonical text: whole years, months, days, hours, minutes, seconds ("1 year 6 months", "36 hours").
    /// Parsing it gives back the same period; weeks are written as days.
    public var description: String {
        var words: [String] = []
        func add(_ value: Int64, _ unit: String) {
            if value != 0 { words.append("\(value) \(unit)\(value == 1 ? "" : "s")") }
        }
        add(Int64(months / 12), "year")
        add(Int64(months % 12), "month")
        add(Int64(days), "day")
        add(microseconds / Self.microsecondsPerHour, "hour")
        add(microseconds % Self.microsecondsPerHour / Self.microsecondsPerMinute, "minute")
        add(microseconds % Self.microsecondsPerMinute / Self.microsecondsPerSecond, "second")
        return words.isEmpty ? "0 days" : words.joined(separator: " ")
    }

    /// The period as PostgreSQL writes an `interval` (IntervalStyle `postgres`): "1 year 6 mons", "90 days",
    /// "36:00:00", "1 day 12:00:00". Bind it as an `interval` parameter; it is never spliced into SQL.
    public var postgresInterval: String {
        var words: [String] = []
        let years = months / 12
        let mons = months % 12
        if years != 0 { words.append("\(years) year\(years == 1 ? "" : "s")") }
        if mons != 0 { words.append("\(mons) mon\(mons == 1 ? "" : "s")") }
        if days != 0 { words.append("\(days) day\(days == 1 ? "" : "s")") }
        if microseconds != 0 || words.isEmpty {
            let hours = microseconds / Self.microsecondsPerHour
            let minutes = microseconds % Self.microsecondsPerHour / Self.microsecondsPerMinute
            let seconds = microseconds % Self.microsecondsPerMinute / Self.microsecondsPerSecond
            let fraction = microseconds % Self.microsecondsPerSecond
            var time = "\(hours.twoDigits):\(minutes.twoDigits):\(seconds.twoDigits)"
            if fraction != 0 {
                var digits = String(fraction)
                digits = String(repeating: "0", count: 6 - digits.count) + digits
                while digits.hasSuffix("0") { digits.removeLast() }
                time += "." + digits
            }
            words.append(time)
        }
        return words.joined(separator: " ")
    }

    /// ISO 8601 form ("P1Y6M", "PT36H", "P1DT12H").
    public var iso8601: String {
        var text = "P"
        if months / 12 != 0 { text += "\(months / 12)Y" }
        if months % 12 != 0 { text += "\(months % 12)M" }
        if days != 0 { text += "\(days)D" }
        if microseconds != 0 {
            text += "T"
            let hours = microseconds / Self.microsecondsPerHour
            let minutes = microseconds % Self.microsecondsPerHour / Self.microsecondsPerMinute
            let seconds = microseconds % Self.microsecondsPerMinute / Self.microsecondsPerSecond
            if hours != 0 { text += "\(hours)H" }
            if minutes != 0 { text += "\(minutes)M" }
            if seconds != 0 { text += "\(seconds)S" }
        }
        return text == "P" ? "PT0S" : text
    }
}

extension RetentionPeriod: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try RetentionPeriod(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Parses the short durations used for pauses: "200ms", "2s", "1min", "0".
public enum PauseDuration {
    /// The longest pause between batches: a longer one would hold a run open for no benefit.
    public static let maximum = Duration.seconds(3600)

    /// Parses "200ms", "2s", "2 seconds", "1min", or "0"; whole numbers, at most an hour.
    public static func parse(_ text: String) throws(DurationError) -> Duration {
        let trimmed = text.trimmingWhitespace
        func failure(_ why: String) -> DurationError {
            DurationError(text: text, message: "not a pause: \(text.quotedForMessage) (\(why))")
        }
        if trimmed.hasPrefix("-") { throw failure("a pause cannot be negative") }
        var digits = Substring(trimmed).prefix(while: { $0.isASCII && $0.isNumber })
        let rest = trimmed.dropFirst(digits.count).trimmingWhitespace.lowercased()
        guard !digits.isEmpty else { throw failure("write for example \"200ms\" or \"2s\"") }
        if digits.count > 9 { digits = digits.prefix(10) }
        guard let value = Int64(digits) else { throw failure("\(digits) is too large") }
        let duration: Duration
        if rest.isEmpty {
            guard value == 0 else { throw failure("\(digits) has no unit; write \"\(digits)ms\" or \"\(digits)s\"") }
            duration = .zero
        } else if let length = DurationUnitWords.pause.unit(named: rest)?.length {
            duration = length * value
        } else {
            let words = DurationUnitWords.pause
            let names = words.units.map(words.abbreviation) + words.units.map { $0.rawValue + "s" }
            let hint = Suggestions.didYouMean(rest, among: names)
            throw failure("unknown unit \"\(rest)\"\(hint); use ms, s or min")
        }
        guard duration <= maximum else { throw failure("a pause is at most 1 hour") }
        return duration
    }

    /// Parses a pause: a duration (``parse(_:)``), or a percentage of each batch's own time ("100%", at most
    /// ``Pause/maximumPercent``).
    public static func parsePause(_ text: String) throws(DurationError) -> Pause {
        let trimmed = text.trimmingWhitespace
        guard trimmed.hasSuffix("%") else { return .fixed(try parse(text)) }
        let number = trimmed.dropLast().trimmingWhitespace
        guard let percent = Int(number), percent >= 0, percent <= Pause.maximumPercent else {
            throw DurationError(
                text: text,
                message:
                    "not a pause: \(text.quotedForMessage) (a proportional pause is a whole percentage of each batch's time, from 0% to \(Pause.maximumPercent)%, like \"100%\")"
            )
        }
        return percent == 0 ? .fixed(.zero) : .proportional(percent: percent)
    }

    /// Canonical text of a pause: "0", "200ms", "2s". Parsing it gives back the same duration.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return "0" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}

extension Int64 {
    fileprivate var twoDigits: String { self < 10 ? "0\(self)" : "\(self)" }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars[start...end])
        return result
    }
}
