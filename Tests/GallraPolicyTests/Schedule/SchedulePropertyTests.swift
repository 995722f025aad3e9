import Foundation
import GallraPolicy
import PropertyBased
import Testing

/// The schedule parser is hand-written and reads what operators type: no text may crash it, and every schedule
/// it is given in a valid form must fire exactly when its words say.
@Suite("Schedules, property-based")
struct SchedulePropertyTests {
    /// Words of every form, bits of them, and characters that are not, to build text near the grammar.
    static let words = [
        "every", "hourly", "daily", "weekly", "monthly", "at", "on", "last", "03:00", "3:30", "24:00", ":15", ":60",
        "6h", "30m", "1d", "0m", "90s", "2w", "hours", "mon", "monday,fri", "sat-sun", "fri-mon", "1,15", "31st",
        "*", "*/15", "0-30/10", "5/15", "1-5", "7", "jan,jul", "l", "15w", "1#2", "?", "0", "59", "23", "UTC",
        "Europe/Stockholm", "Mars/Base", "utc", ",", "-", "/", "", "9999999999", "-1",
    ]

    static let nearTheGrammar = Gen.element(of: words).map { $0 ?? "" }.array(of: 0...8).map {
        $0.joined(separator: " ")
    }
    static let anyText = Gen<UInt8>.value(in: 32...126).array(of: 0...40).map {
        String(decoding: $0, as: UTF8.self)
    }

    @Test("no text crashes the parser; a schedule it accepts describes itself in words it reads back the same way")
    func anyTextIsReadOrRefused() async {
        await propertyCheck(count: 2500, input: Self.nearTheGrammar, Self.anyText) { nearby, random in
            for text in [nearby, random, nearby + " " + random] {
                guard let schedule = try? Schedule(parsing: text) else { continue }
                let again = try? Schedule(parsing: schedule.description)
                #expect(again?.description == schedule.description, "\(text.debugDescription)")
            }
        }
    }

    /// A calendar schedule as sets of values, the form every calendar phrase compiles to.
    struct Calendar: Sendable, CustomStringConvertible {
        var text: String
        var minutes: Set<Int>
        var hours: Set<Int>
        /// Days of the month (1-31), nil for any; `last` adds each month's last day.
        var daysOfMonth: Set<Int>?
        var last = false
        /// Weekdays (0 Sunday), nil for any.
        var weekdays: Set<Int>?
        var months: Set<Int>?

        var description: String { text }

        /// Foundation's calendar: an oracle independent of gallra's civil arithmetic.
        static let utc: Foundation.Calendar = {
            var calendar = Foundation.Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            return calendar
        }()

        /// Whether the UTC day of `date` is one of the schedule's. Cron's rule: both day fields restricted means
        /// either may match.
        func dayMatches(_ date: Date) -> Bool {
            let parts = Self.utc.dateComponents([.month, .day, .weekday], from: date)
            if let months, !months.contains(parts.month!) { return false }
            let lastDay = Self.utc.range(of: .day, in: .month, for: date)!.upperBound - 1
            let dayOfMonth = daysOfMonth.map { $0.contains(parts.day!) || (last && parts.day! == lastDay) }
            let weekday = weekdays.map { $0.contains(parts.weekday! - 1) }
            switch (dayOfMonth, weekday) {
            case (let a?, let b?): return a || b
            case (let a?, nil): return a
            case (nil, let b?): return b
            case (nil, nil): return true
            }
        }

        /// Whether the UTC minute of `date` is one of the schedule's.
        func matches(_ date: Date) -> Bool {
            let parts = Self.utc.dateComponents([.hour, .minute], from: date)
            return minutes.contains(parts.minute!) && hours.contains(parts.hour!) && dayMatches(date)
        }
    }

    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    static let calendars: Generator<Calendar, Shrink.None<Calendar>> = Generator { rng in
        func pick(_ range: ClosedRange<Int>, upTo count: Int) -> Set<Int> {
            Set((0..<Int.random(in: 1...count, using: &rng)).map { _ in Int.random(in: range, using: &rng) })
        }
        func list(_ values: Set<Int>) -> String { values.sorted().map(String.init).joined(separator: ",") }
        let hour = Int.random(in: 0...23, using: &rng)
        let minute = Int.random(in: 0...59, using: &rng)
        let clock = String(format: "%02d:%02d", hour, minute)
        switch Int.random(in: 0...4, using: &rng) {
        case 0:
            return Calendar(text: String(format: "hourly at :%02d", minute), minutes: [minute], hours: Set(0...23))
        case 1:
            return Calendar(text: "daily at \(clock)", minutes: [minute], hours: [hour])
        case 2:
            let days = pick(0...6, upTo: 3)
            let names = days.sorted().map { dayNames[$0] }.joined(separator: ",")
            return Calendar(text: "weekly on \(names) at \(clock)", minutes: [minute], hours: [hour], weekdays: days)
        case 3:
            var days = pick(1...31, upTo: 3)
            let last = Bool.random(using: &rng)
            var words = days.sorted().map(String.init)
            if last {
                words.append("last")
            } else if days.allSatisfy({ $0 > 28 }) {
                days.insert(1); words = ["1"] + words
            }
            return Calendar(
                text: "monthly on \(words.joined(separator: ",")) at \(clock)", minutes: [minute], hours: [hour],
                daysOfMonth: days, last: last)
        default:
            // Cron: each field a list or *, days of the month kept to 1-28 so that every month has them.
            let minutes = Bool.random(using: &rng) ? pick(0...59, upTo: 4) : Set(0...59)
            let hours = Bool.random(using: &rng) ? pick(0...23, upTo: 3) : Set(0...23)
            let days: Set<Int>? = Bool.random(using: &rng) ? pick(1...28, upTo: 3) : nil
            let weekdays: Set<Int>? = Bool.random(using: &rng) ? pick(0...6, upTo: 3) : nil
            let months: Set<Int>? = Bool.random(using: &rng) ? pick(1...12, upTo: 4) : nil
            let fields = [
                minutes.count == 60 ? "*" : list(minutes), hours.count == 24 ? "*" : list(hours),
                days.map(list) ?? "*", months.map(list) ?? "*", weekdays.map(list) ?? "*",
            ]
            return Calendar(
                text: fields.joined(separator: " "), minutes: minutes, hours: hours, daysOfMonth: days,
                weekdays: weekdays, months: months)
        }
    }

    /// Reference instants from 1970 to 2100, at any second.
    static let references = Gen<Int64>.int64(in: 0...4_102_444_800)

    @Test("the next fire time of a calendar schedule is the first minute after the instant that its fields name")
    func nextFireIsTheFirstMatchingMinute() async throws {
        await propertyCheck(count: 200, input: Self.calendars, Self.references) { calendar, reference in
            let schedule = try Schedule(parsing: calendar.text)
            let instant = Date(timeIntervalSince1970: TimeInterval(reference))
            let next = try #require(schedule.nextFire(after: instant), "\(calendar)")
            #expect(next > instant)
            #expect(calendar.matches(next), "\(calendar) fired at \(next)")
            // No minute between the instant and the fire time matches: walk them, a day or an hour at a time
            // where the day or the hour cannot match.
            var minute = (reference / 60 + 1) * 60
            let end = Int64(next.timeIntervalSince1970)
            while minute < end {
                let date = Date(timeIntervalSince1970: TimeInterval(minute))
                if minute % 86_400 == 0, !calendar.dayMatches(date) {
                    minute += 86_400
                } else if minute % 3600 == 0, !calendar.hours.contains(Int(minute / 3600 % 24)) {
                    minute += 3600
                } else if calendar.matches(date) {
                    Issue.record("\(calendar) skipped \(date) on its way to \(next)")
                    break
                } else {
                    minute += 60
                }
            }
        }
    }

    @Test("an interval fires at the next multiple of its length since the epoch, after the instant")
    func intervalFiresAtTheNextMultiple() async throws {
        let units = Gen.element(of: [("m", Int64(60)), ("h", 3600), ("d", 86_400)])
        await propertyCheck(count: 200, input: Gen<Int64>.int64(in: 1...300), units, Self.references) {
            amount, unit, reference in
            let (word, size) = unit!
            guard amount * size <= 366 * 86_400 else { return }
            let schedule = try Schedule(parsing: "every \(amount)\(word)")
            let next = try #require(schedule.nextFire(after: Date(timeIntervalSince1970: TimeInterval(reference))))
            let seconds = Int64(next.timeIntervalSince1970)
            #expect(seconds > reference && seconds - reference <= amount * size)
            #expect(seconds % (amount * size) == 0)
        }
    }

    @Test("in a zone, the next fire time is after the instant and at the wall-clock time named, or at a gap's end")
    func zonedNextFireKeepsTheWallClock() async throws {
        let zones = Gen.element(of: ["Europe/Stockholm", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
        await propertyCheck(count: 200, input: Self.calendars, zones, Self.references) { calendar, zone, reference in
            let zone = zone!
            let schedule = try Schedule(parsing: "\(calendar.text) \(zone)")
            let instant = Date(timeIntervalSince1970: TimeInterval(reference))
            let next = try #require(schedule.nextFire(after: instant), "\(calendar) \(zone)")
            #expect(next > instant)
            let seconds = Int64(next.timeIntervalSince1970)
            let offset = schedule.timeZone.offset(at: seconds)
            let wallClock = Date(timeIntervalSince1970: TimeInterval(seconds + offset))
            let atGapEnd = schedule.timeZone.offset(at: seconds - 1) < offset
            #expect(calendar.matches(wallClock) || atGapEnd, "\(calendar) \(zone) fired at \(next)")
        }
    }
}
