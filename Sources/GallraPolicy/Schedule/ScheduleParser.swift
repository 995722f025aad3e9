#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Reads the text of a schedule (see `Schedule` for the forms) into a rule and a zone.
struct ScheduleParser {
    struct Parsed {
        var rule: Schedule.Rule
        var phrase: String
        var timeZone: ZoneRules
        var timeZoneName: String
    }

    /// A word of the text and where it starts (1-based character column).
    struct Token {
        var text: Substring
        var column: Int
        var lowercased: String { text.lowercased() }
    }

    static let forms = ["every", "hourly", "daily", "weekly", "monthly"]
    static let generalExample = "daily at 03:00"

    let text: String
    let tokens: [Token]

    init(text: String) {
        self.text = text
        var tokens: [Token] = []
        var current: Substring.Index?
        var startColumn = 0
        var column = 0
        for index in text.indices {
            column += 1
            if text[index].isWhitespace {
                if let start = current {
                    tokens.append(Token(text: text[start..<index], column: startColumn))
                    current = nil
                }
            } else if current == nil {
                current = index
                startColumn = column
            }
        }
        if let start = current {
            tokens.append(Token(text: text[start...], column: startColumn))
        }
        self.tokens = tokens
    }

    func parse() throws(ScheduleError) -> Parsed {
        guard let first = tokens.first else {
            throw error(.empty, nil, "the schedule is empty", Self.generalExample)
        }
        switch first.lowercased {
        case "every": return try parseEvery()
        case "hourly": return try parseHourly()
        case "daily": return try parseDaily()
        case "weekly": return try parseWeekly()
        case "monthly": return try parseMonthly()
        default:
            if let character = first.text.first, character.isASCII, character.isNumber || character == "*" {
                return try parseCron()
            }
            var message = "unknown schedule form '\(first.text)'"
            if let suggestion = Suggestions.closest(
                to: first.lowercased, among: Self.forms, matching: Self.wordMatching)
            {
                message += "; did you mean '\(suggestion)'?"
            } else {
                message += "; a schedule starts with every, hourly, daily, weekly, monthly, or is a cron expression"
            }
            throw error(.unknownForm, first.column, message, Self.generalExample)
        }
    }

    // MARK: Forms

    private func parseEvery() throws(ScheduleError) -> Parsed {
        let example = "every 6h"
        var index = 1
        guard index < tokens.count else {
            throw error(.invalidInterval, nil, "'every' needs an interval such as 30m, 6h or 1d", example)
        }
        let amountToken = tokens[index]
        let digits = amountToken.text.prefix { $0.isASCII && $0.isNumber }
        var unitText = String(amountToken.text.dropFirst(digits.count)).lowercased()
        var unitColumn = amountToken.column + digits.count
        index += 1
        if !digits.isEmpty && unitText.isEmpty {
            guard index < tokens.count else {
                throw error(
                    .invalidInterval, nil, "'every \(digits)' needs a unit: m, h or d (e.g. every \(digits)h)", example)
            }
            unitText = tokens[index].lowercased
            unitColumn = tokens[index].column
            index += 1
        }
        guard digits.count <= 9, let amount = digits.isEmpty ? 1 : Int64(digits) else {
            throw error(.invalidInterval, amountToken.column, "the interval \(amountToken.text) is too long", example)
        }
        guard let unit = DurationUnitWords.scheduleInterval.unit(named: unitText), let length = unit.length else {
            var message = "unknown interval unit '\(unitText)'; use m (minutes), h (hours) or d (days)"
            // Weeks, months and years: say which calendar form to use instead.
            if (DurationUnitWords.calendarUnits.words + ["mo"]).contains(unitText) {
                message += ", or a calendar form such as weekly on monday at 02:00 or monthly on 1 at 04:00"
            }
            throw error(.invalidInterval, unitColumn, message, example)
        }
        guard amount > 0 else {
            throw error(
                .invalidInterval, amountToken.column, "the interval must be longer than zero (every 0\(unitText))",
                example)
        }
        let seconds = amount * length.components.seconds
        guard seconds >= 60 else {
            throw error(
                .intervalTooShort, amountToken.column,
                "an interval of \(amount) \(unit.rawValue)\(amount == 1 ? "" : "s") is shorter than the minimum of one minute",
                "every 1m")
        }
        guard seconds <= 366 * 86_400 else {
            throw error(.invalidInterval, amountToken.column, "an interval can be at most 366 days", "every 30d")
        }
        if index < tokens.count {
            let zoneToken = tokens[index]
            let (_, name) = try timeZone(zoneToken, example: example)
            guard name == "UTC" else {
                throw error(
                    .timeZoneNotAllowed, zoneToken.column,
                    "a time zone has no effect on 'every', which counts elapsed time from 1970-01-01 00:00 UTC; "
                        + "for a time of day in \(name) write a daily schedule",
                    "daily at 00:00 \(name)")
            }
            index += 1
        }
        try expectEnd(at: index, example: example)
        return Parsed(
            rule: .interval(seconds: seconds), phrase: Self.intervalPhrase(seconds), timeZone: Self.utc,
            timeZoneName: "UTC")
    }

    private func parseHourly() throws(ScheduleError) -> Parsed {
        let example = "hourly at :15"
        var index = 1
        var minute = 0
        if index < tokens.count, tokens[index].lowercased == "at" {
            index += 1
            guard index < tokens.count else {
                throw error(.invalidTime, nil, "'hourly at' needs minutes past the hour, such as :15", example)
            }
            let token = tokens[index]
            let digits = token.text.hasPrefix(":") ? token.text.dropFirst() : token.text[...]
            guard (1...2).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(digits)
            else {
                throw error(
                    .invalidTime, token.column, "expected minutes past the hour such as :15, found '\(token.text)'",
                    example)
            }
            guard value <= 59 else {
                throw error(.invalidTime, token.column, "minute \(value) is out of range 0-59", example)
            }
            minute = value
            index += 1
        }
        let zone = try optionalTimeZone(at: &index, example: example)
        try expectEnd(at: index, example: example)
        let pattern = ScheduleCalendarPattern(
            minutes: 1 << UInt64(minute), hours: ScheduleCalendarPattern.allHours,
            daysOfMonth: ScheduleCalendarPattern.allDaysOfMonth, months: ScheduleCalendarPattern.allMonths,
            daysOfWeek: ScheduleCalendarPattern.allDaysOfWeek, dayOfMonthRestricted: false, dayOfWeekRestricted: false)
        return Parsed(
            rule: .calendar(pattern), phrase: "hourly at :\(Self.twoDigits(minute))", timeZone: zone.zone,
            timeZoneName: zone.name)
    }

    private func parseDaily() throws(ScheduleError) -> Parsed {
        let example = "daily at 03:00"
        var index = 1
        let time = try timeOfDay(at: &index, after: "daily", example: example)
        let zone = try optionalTimeZone(at: &index, example: example)
        try expectEnd(at: index, example: example)
        let pattern = ScheduleCalendarPattern(
            minutes: 1 << UInt64(time.minute), hours: 1 << UInt64(time.hour),
            daysOfMonth: ScheduleCalendarPattern.allDaysOfMonth, months: ScheduleCalendarPattern.allMonths,
            daysOfWeek: ScheduleCalendarPattern.allDaysOfWeek, dayOfMonthRestricted: false, dayOfWeekRestricted: false)
        return Parsed(
            rule: .calendar(pattern), phrase: "daily at \(Self.clock(time))", timeZone: zone.zone,
            timeZoneName: zone.name)
    }

    private func parseWeekly() throws(ScheduleError) -> Parsed {
        let example = "weekly on monday at 02:00"
        var index = 1
        if index < tokens.count, tokens[index].lowercased == "on" { index += 1 }
        var days: UInt64 = 0
        var sawDay = false
        while index < tokens.count, tokens[index].lowercased != "at", !tokens[index].text.contains(":") {
            let token = tokens[index]
            for (item, offset) in Self.items(of: token.text) where !item.isEmpty {
                sawDay = true
                let column = token.column + offset
                let bounds = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
                let first = try weekday(bounds[0], column: column, example: example)
                if bounds.count == 2 {
                    let last = try weekday(bounds[1], column: column + bounds[0].count + 1, example: example)
                    // A range may wrap the week: fri-mon is Friday to Monday.
                    var day = first
                    while true {
                        days |= 1 << UInt64(day)
                        if day == last { break }
                        day = (day + 1) % 7
                    }
                } else {
                    days |= 1 << UInt64(first)
                }
            }
            index += 1
        }
        guard sawDay else {
            throw error(
                .invalidField, tokens.count > index ? tokens[index].column : nil,
                "'weekly' needs days, such as: on monday", example)
        }
        let time = try timeOfDay(at: &index, after: "the days", example: example)
        let zone = try optionalTimeZone(at: &index, example: example)
        try expectEnd(at: index, example: example)
        let pattern = ScheduleCalendarPattern(
            minutes: 1 << UInt64(time.minute), hours: 1 << UInt64(time.hour),
            daysOfMonth: ScheduleCalendarPattern.allDaysOfMonth, months: ScheduleCalendarPattern.allMonths,
            daysOfWeek: days, dayOfMonthRestricted: false, dayOfWeekRestricted: true)
        // Listed from Monday, as a week reads in Sweden (and in ISO 8601).
        let names = [1, 2, 3, 4, 5, 6, 0].filter { days & (1 << UInt64($0)) != 0 }.map { Self.dayNames[$0] }
        return Parsed(
            rule: .calendar(pattern), phrase: "weekly on \(names.joined(separator: ", ")) at \(Self.clock(time))",
            timeZone: zone.zone, timeZoneName: zone.name)
    }

    private func parseMonthly() throws(ScheduleError) -> Parsed {
        let example = "monthly on 1 at 04:00"
        var index = 1
        if index < tokens.count, tokens[index].lowercased == "on" { index += 1 }
        var days: UInt64 = 0
        var last = false
        var sawDay = false
        while index < tokens.count, tokens[index].lowercased != "at", !tokens[index].text.contains(":") {
            let token = tokens[index]
            for (item, offset) in Self.items(of: token.text) where !item.isEmpty {
                sawDay = true
                let column = token.column + offset
                let lowered = item.lowercased()
                if lowered == "last" {
                    last = true
                    continue
                }
                var number = Substring(lowered)
                for suffix in ["st", "nd", "rd", "th"] where number.hasSuffix(suffix) {
                    number = number.dropLast(2)
                }
                guard !number.isEmpty, number.count <= 3, number.allSatisfy({ $0.isASCII && $0.isNumber }),
                    let day = Int(number)
                else {
                    throw error(
                        .invalidField, column, "expected a day of the month (1-31 or last), found '\(item)'", example)
                }
                guard (1...31).contains(day) else {
                    throw error(.fieldOutOfRange, column, "day \(day) is out of range 1-31", "monthly on last at 04:00")
                }
                days |= 1 << UInt64(day)
            }
            index += 1
        }
        guard sawDay else {
            throw error(
                .invalidField, tokens.count > index ? tokens[index].column : nil,
                "'monthly' needs days of the month, such as: on 1", example)
        }
        let time = try timeOfDay(at: &index, after: "the days", example: example)
        let zone = try optionalTimeZone(at: &index, example: example)
        try expectEnd(at: index, example: example)
        let pattern = ScheduleCalendarPattern(
            minutes: 1 << UInt64(time.minute), hours: 1 << UInt64(time.hour), daysOfMonth: days, lastDayOfMonth: last,
            months: ScheduleCalendarPattern.allMonths, daysOfWeek: ScheduleCalendarPattern.allDaysOfWeek,
            dayOfMonthRestricted: true, dayOfWeekRestricted: false)
        var names = ScheduleCalendarPattern.members(of: days, in: 1...31).map(String.init)
        if last { names.append("last") }
        return Parsed(
            rule: .calendar(pattern), phrase: "monthly on \(names.joined(separator: ", ")) at \(Self.clock(time))",
            timeZone: zone.zone, timeZoneName: zone.name)
    }

    // MARK: Pieces

    private func timeOfDay(at index: inout Int, after what: String, example: String) throws(ScheduleError) -> (
        hour: Int, minute: Int
    ) {
        if index < tokens.count, tokens[index].lowercased == "at" { index += 1 }
        guard index < tokens.count else {
            throw error(.invalidTime, nil, "expected a time of day after \(what), such as at 03:00", example)
        }
        let token = tokens[index]
        let parts = token.text.split(separator: ":", omittingEmptySubsequences: false)
        let isDigits: (Substring) -> Bool = { $0.allSatisfy { $0.isASCII && $0.isNumber } }
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2, isDigits(parts[0]),
            isDigits(parts[1]), let hour = Int(parts[0]), let minute = Int(parts[1])
        else {
            throw error(
                .invalidTime, token.column,
                "expected a time of day as HH:MM on the 24-hour clock, found '\(token.text)'",
                example)
        }
        guard hour <= 23 else {
            throw error(
                .invalidTime, token.column, "hour \(hour) is out of range 0-23 (midnight is 00:00)",
                example.replacing("03:00", with: "00:00"))
        }
        guard minute <= 59 else {
            throw error(
                .invalidTime, token.column + parts[0].count + 1, "minute \(minute) is out of range 0-59", example)
        }
        index += 1
        return (hour, minute)
    }

    private func optionalTimeZone(at index: inout Int, example: String) throws(ScheduleError) -> (
        zone: ZoneRules, name: String
    ) {
        guard index < tokens.count else { return (Self.utc, "UTC") }
        let zone = try timeZone(tokens[index], example: example + " Europe/Stockholm")
        index += 1
        return zone
    }

    func timeZone(_ token: Token, example: String) throws(ScheduleError) -> (zone: ZoneRules, name: String) {
        let name = String(token.text)
        if name.uppercased() == "UTC" { return (Self.utc, "UTC") }
        if let zone = ZoneRules(identifier: name) { return (zone, name) }
        var message = "unknown time zone '\(name)'"
        if let suggestion = Suggestions.closest(
            to: name, among: ZoneRules.knownIdentifiers() + ["UTC"], matching: .caseInsensitive(maximumDistance: 3))
        {
            message += "; did you mean '\(suggestion)'?"
        } else {
            message += "; use an IANA identifier such as Europe/Stockholm, or UTC"
        }
        throw error(.unknownTimeZone, token.column, message, example)
    }

    private func expectEnd(at index: Int, example: String) throws(ScheduleError) {
        guard index < tokens.count else { return }
        let rest = tokens[index...].map { String($0.text) }.joined(separator: " ")
        throw error(.unexpectedText, tokens[index].column, "unexpected '\(rest)' after the schedule", example)
    }

    func error(_ code: ScheduleError.Code, _ column: Int?, _ message: String, _ example: String)
        -> ScheduleError
    {
        ScheduleError(code: code, text: text, column: column, message: message, example: example)
    }

    // MARK: Tables and helpers

    static let utc = ZoneRules.utc
    /// Keywords, day and month names are case-insensitive; at most two edits from a suggestion.
    static let wordMatching = Suggestions.Matching.caseInsensitive(maximumDistance: 2)

    static let dayNames = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
    static let dayNumbers: [String: Int] = {
        var numbers: [String: Int] = [:]
        for (number, name) in dayNames.enumerated() {
            numbers[name] = number
            numbers[String(name.prefix(3))] = number
        }
        return numbers
    }()
    static let monthNumbers: [String: Int] = {
        let names = [
            "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
            "november", "december",
        ]
        var numbers: [String: Int] = [:]
        for (index, name) in names.enumerated() {
            numbers[name] = index + 1
            numbers[String(name.prefix(3))] = index + 1
        }
        return numbers
    }()

    private func weekday(_ word: Substring, column: Int, example: String) throws(ScheduleError) -> Int {
        let lowered = word.lowercased()
        if let number = Self.dayNumbers[lowered] { return number }
        if lowered.hasSuffix("s"), let number = Self.dayNumbers[String(lowered.dropLast())] { return number }
        var message = "unknown day '\(word)'"
        if let suggestion = Suggestions.closest(
            to: lowered, among: Self.dayNames + Self.dayNames.map { String($0.prefix(3)) }, matching: Self.wordMatching)
        {
            message += "; did you mean '\(suggestion)'?"
        } else {
            message += "; use monday ... sunday or mon ... sun"
        }
        throw error(.unknownName, column, message, example)
    }

    /// The comma-separated items of a word, with their offsets in characters.
    static func items(of word: Substring) -> [(item: Substring, offset: Int)] {
        var result: [(Substring, Int)] = []
        var offset = 0
        for item in word.split(separator: ",", omittingEmptySubsequences: false) {
            result.append((item, offset))
            offset += item.count + 1
        }
        return result
    }

    static func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    static func clock(_ time: (hour: Int, minute: Int)) -> String {
        "\(twoDigits(time.hour)):\(twoDigits(time.minute))"
    }

    static func intervalPhrase(_ seconds: Int64) -> String {
        for (size, unit) in [(Int64(86_400), "day"), (3600, "hour"), (60, "minute"), (1, "second")]
        where seconds % size == 0 {
            let count = seconds / size
            return count == 1 ? "every \(unit)" : "every \(count) \(unit)s"
        }
        return "every \(seconds) seconds"
    }
}
