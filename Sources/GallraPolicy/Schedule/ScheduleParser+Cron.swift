/// The cron form: `minute hour day-of-month month day-of-week`, with lists, ranges, steps and names, and a zone.
extension ScheduleParser {
    fileprivate struct CronField {
        var name: String
        var range: ClosedRange<Int>
        var names: [String: Int] = [:]
        var example: String
    }

    fileprivate static let cronFields = [
        CronField(name: "minute", range: 0...59, example: "*/15 * * * *"),
        CronField(name: "hour", range: 0...23, example: "0 3 * * *"),
        CronField(name: "day-of-month", range: 1...31, example: "0 4 1,15 * *"),
        CronField(name: "month", range: 1...12, names: monthNumbers, example: "0 4 1 jan,jul *"),
        CronField(name: "day-of-week", range: 0...7, names: dayNumbers, example: "0 2 * * mon-fri"),
    ]

    func parseCron() throws(ScheduleError) -> Parsed {
        let example = "0 3 * * *"
        var fieldTokens = tokens
        var zone = (zone: Self.utc, name: "UTC")
        // The last word is a zone when it looks like one, or when it is a sixth word that is no cron field.
        if let last = tokens.last, tokens.count > 1, !Self.looksLikeCronField(last.text),
            tokens.count == 6 || Self.looksLikeTimeZone(last.text)
        {
            zone = try timeZone(last, example: "0 3 * * * Europe/Stockholm")
            fieldTokens.removeLast()
        }
        guard fieldTokens.count == 5 else {
            var message =
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found \(fieldTokens.count)"
            if fieldTokens.count == 6 { message += "; seconds and year fields are not supported" }
            throw error(.wrongFieldCount, nil, message, example)
        }
        var masks: [UInt64] = []
        var restricted: [Bool] = []
        for (token, field) in zip(fieldTokens, Self.cronFields) {
            masks.append(try cronField(token, field))
            restricted.append(!token.text.hasPrefix("*"))
        }
        // 7 is also Sunday.
        let daysOfWeek = (masks[4] & ScheduleCalendarPattern.allDaysOfWeek) | (masks[4] >> 7 & 1)
        let pattern = ScheduleCalendarPattern(
            minutes: masks[0], hours: masks[1], daysOfMonth: masks[2], months: masks[3], daysOfWeek: daysOfWeek,
            dayOfMonthRestricted: restricted[2], dayOfWeekRestricted: restricted[4])
        guard pattern.canMatch else {
            throw error(
                .neverFires, fieldTokens[2].column,
                "no month in '\(fieldTokens[3].text)' has a day '\(fieldTokens[2].text)', so this never fires",
                "0 0 29 2 *")
        }
        return Parsed(
            rule: .calendar(pattern), phrase: fieldTokens.map { String($0.text) }.joined(separator: " "),
            timeZone: zone.zone, timeZoneName: zone.name)
    }

    /// Whether the last word is a cron field rather than a zone: digits and `*,/-` only, or day/month names.
    fileprivate static func looksLikeCronField(_ word: Substring) -> Bool {
        if word.allSatisfy({ "0123456789*,/-".contains($0) }) { return true }
        let names = word.lowercased().split { ",-/".contains($0) }
        return names.allSatisfy { dayNumbers[String($0)] != nil || monthNumbers[String($0)] != nil || Int($0) != nil }
    }

    fileprivate static func looksLikeTimeZone(_ word: Substring) -> Bool {
        if word.uppercased() == "UTC" || ZoneRules(identifier: String(word)) != nil { return true }
        return word.first?.isLetter == true && word.contains("/")
    }

    fileprivate func cronField(_ token: Token, _ field: CronField) throws(ScheduleError) -> UInt64 {
        var mask: UInt64 = 0
        let example = field.example
        for (item, offset) in Self.items(of: token.text) {
            let column = token.column + offset
            guard !item.isEmpty else {
                throw error(
                    .invalidField, column, "the \(field.name) field '\(token.text)' has an empty list item", example)
            }
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else {
                throw error(.invalidStep, column, "'\(item)' has more than one step", example)
            }
            var step = 1
            if parts.count == 2 {
                let stepText = parts[1]
                guard !stepText.isEmpty, stepText.count <= 3, stepText.allSatisfy({ $0.isASCII && $0.isNumber }),
                    let value = Int(stepText), value >= 1
                else {
                    throw error(
                        .invalidStep, column + parts[0].count + 1,
                        "the step in '\(item)' must be a whole number of at least 1", example)
                }
                step = value
            }
            let base = parts[0]
            var low = field.range.lowerBound
            var high = field.range.upperBound
            if base == "*" {
                if field.name == "day-of-week" { high = 6 }  // */2 means Sunday, Tuesday, ...; 7 would repeat Sunday
            } else {
                let bounds = base.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
                low = try cronValue(bounds[0], field, column: column, example: example)
                if bounds.count == 2 {
                    high = try cronValue(bounds[1], field, column: column + bounds[0].count + 1, example: example)
                    guard low <= high else {
                        throw error(
                            .invalidField, column,
                            "the range '\(base)' in the \(field.name) field goes backwards; write \(bounds[1])-\(bounds[0]) or a list",
                            example)
                    }
                } else if parts.count == 1 {
                    high = low
                }
            }
            for value in stride(from: low, through: high, by: step) {
                mask |= 1 << UInt64(value)
            }
        }
        return mask
    }

    fileprivate func cronValue(_ text: Substring, _ field: CronField, column: Int, example: String)
        throws(ScheduleError)
        -> Int
    {
        let range = "\(field.range.lowerBound)-\(field.range.upperBound)"
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard text.count <= 3, let value = Int(text), field.range.contains(value) else {
                var message = "\(field.name) \(text) is out of range \(range)"
                if field.name == "day-of-week" { message += " (0 and 7 are Sunday)" }
                throw error(.fieldOutOfRange, column, message, example)
            }
            return value
        }
        let lowered = text.lowercased()
        if let value = field.names[lowered] { return value }
        if lowered == "l" || lowered.hasSuffix("w") && lowered.dropLast().allSatisfy(\.isNumber)
            || lowered.contains("#")
        {
            throw error(
                .invalidField, column,
                "'\(text)' (last, nearest weekday, nth weekday) is not standard cron and not supported",
                "monthly on last at 04:00")
        }
        if lowered == "?" {
            throw error(.invalidField, column, "'?' is not standard cron; write *", example)
        }
        if !field.names.isEmpty, !lowered.isEmpty, lowered.allSatisfy(\.isLetter) {
            let kind = field.name == "month" ? "month" : "day"
            var message = "unknown \(kind) name '\(text)'"
            if let suggestion = Suggestions.closest(
                to: lowered, among: Array(field.names.keys), matching: Self.wordMatching)
            {
                message += "; did you mean '\(suggestion)'?"
            }
            throw error(.unknownName, column, message, example)
        }
        let expected = field.names.isEmpty ? "a number \(range)" : "a number \(range) or a name"
        throw error(.invalidField, column, "expected \(expected) in the \(field.name) field, found '\(text)'", example)
    }
}
