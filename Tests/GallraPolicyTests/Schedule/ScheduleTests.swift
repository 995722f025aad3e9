import Foundation
import GallraPolicy
import Testing

/// A schedule, an instant, and the fire times that follow it, written by hand as ISO 8601 instants.
struct ScheduleFireCase: Sendable, CustomTestStringConvertible {
    var schedule: String
    var after: String
    var fires: [String]
    var note: String = ""

    var testDescription: String { "\(schedule) after \(after)\(note.isEmpty ? "" : " (\(note))")" }

    /// Follows `nextFire(after:)` from `after`, each fire time feeding the next call.
    func check(sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let parsed = try Schedule(parsing: schedule)
        var instant = try ScheduleFixture.instant(after)
        for expected in fires {
            let next = try #require(parsed.nextFire(after: instant), sourceLocation: sourceLocation)
            #expect(
                ScheduleFixture.iso(next) == expected, "after \(ScheduleFixture.iso(instant))",
                sourceLocation: sourceLocation)
            #expect(next > instant, "strictly after", sourceLocation: sourceLocation)
            instant = next
        }
    }
}

enum ScheduleFixture {
    static func instant(_ text: String) throws -> Date {
        try Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: text.contains(".")))
    }

    static func iso(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }
}

@Suite("Schedules: forms and next fire times")
struct ScheduleFormTests {
    static let intervals: [ScheduleFireCase] = [
        // Multiples of the interval since 1970-01-01T00:00:00Z.
        .init(
            schedule: "every 6h", after: "2026-04-01T07:00:00Z",
            fires: ["2026-04-01T12:00:00Z", "2026-04-01T18:00:00Z", "2026-04-02T00:00:00Z"]),
        .init(
            schedule: "every 30m", after: "2026-04-01T10:10:00Z",
            fires: ["2026-04-01T10:30:00Z", "2026-04-01T11:00:00Z"]),
        .init(
            schedule: "every 2 hours", after: "2026-04-01T01:00:00Z",
            fires: ["2026-04-01T02:00:00Z", "2026-04-01T04:00:00Z"]),
        .init(
            schedule: "every 1d", after: "2026-04-01T12:00:00Z",
            fires: ["2026-04-02T00:00:00Z", "2026-04-03T00:00:00Z"]),
        .init(
            schedule: "every day", after: "2026-04-01T00:00:00Z", fires: ["2026-04-02T00:00:00Z"],
            note: "exactly at a fire time"),
        // 2026-04-01T00:00:00Z is 1775001600 s = 70436.57 × 7 h; 70437 × 25200 s = 03:00Z.
        .init(
            schedule: "every 7h", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-01T03:00:00Z", "2026-04-01T10:00:00Z"]),
        // 1775001600 s is exactly 328704 × 90 min.
        .init(
            schedule: "every 90 minutes", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-01T01:30:00Z", "2026-04-01T03:00:00Z"]),
        .init(schedule: "every 6 h UTC", after: "2026-04-01T05:59:59.500Z", fires: ["2026-04-01T06:00:00Z"]),
    ]

    static let timesOfDay: [ScheduleFireCase] = [
        .init(schedule: "hourly", after: "2026-04-01T10:15:00Z", fires: ["2026-04-01T11:00:00Z"]),
        .init(
            schedule: "hourly at :15", after: "2026-04-01T10:15:00Z",
            fires: ["2026-04-01T11:15:00Z", "2026-04-01T12:15:00Z"]),
        .init(
            schedule: "daily at 03:00", after: "2026-04-01T03:00:00Z",
            fires: ["2026-04-02T03:00:00Z", "2026-04-03T03:00:00Z"], note: "exactly at a fire time"),
        .init(schedule: "daily at 03:00", after: "2026-04-01T02:59:59.900Z", fires: ["2026-04-01T03:00:00Z"]),
        .init(schedule: "daily at 03:00", after: "2026-04-01T03:00:00.001Z", fires: ["2026-04-02T03:00:00Z"]),
        .init(schedule: "daily at 3:30", after: "2026-04-01T00:00:00Z", fires: ["2026-04-01T03:30:00Z"]),
        .init(schedule: "Daily At 23:59", after: "2026-12-31T23:59:00Z", fires: ["2027-01-01T23:59:00Z"]),
        // 2026-04-01 is a Wednesday.
        .init(
            schedule: "weekly on monday at 02:00", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-06T02:00:00Z", "2026-04-13T02:00:00Z"]),
        .init(schedule: "weekly on mon at 02:00", after: "2026-04-06T02:00:00Z", fires: ["2026-04-13T02:00:00Z"]),
        .init(
            schedule: "weekly on mon,thu at 02:00", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-02T02:00:00Z", "2026-04-06T02:00:00Z", "2026-04-09T02:00:00Z"]),
        .init(
            schedule: "WEEKLY ON Mon, Thursday AT 02:00", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-02T02:00:00Z", "2026-04-06T02:00:00Z"]),
        .init(
            schedule: "weekly on mon-fri at 06:00", after: "2026-04-03T06:00:00Z",
            fires: ["2026-04-06T06:00:00Z", "2026-04-07T06:00:00Z"]),
        .init(
            schedule: "weekly on fri-mon at 06:00", after: "2026-04-01T00:00:00Z",
            fires: [
                "2026-04-03T06:00:00Z", "2026-04-04T06:00:00Z", "2026-04-05T06:00:00Z", "2026-04-06T06:00:00Z",
                "2026-04-10T06:00:00Z",
            ], note: "a range wrapping the week"),
        .init(
            schedule: "monthly on 1 at 04:00", after: "2026-04-01T04:00:00Z",
            fires: ["2026-05-01T04:00:00Z", "2026-06-01T04:00:00Z"]),
        .init(
            schedule: "monthly on 1,15 at 04:00", after: "2026-04-01T04:00:00Z",
            fires: ["2026-04-15T04:00:00Z", "2026-05-01T04:00:00Z"]),
        .init(
            schedule: "monthly on 31 at 04:00", after: "2026-04-01T00:00:00Z",
            fires: ["2026-05-31T04:00:00Z", "2026-07-31T04:00:00Z"], note: "months without a 31st are skipped"),
        .init(
            schedule: "monthly on last at 04:00", after: "2026-02-01T00:00:00Z",
            fires: ["2026-02-28T04:00:00Z", "2026-03-31T04:00:00Z", "2026-04-30T04:00:00Z"]),
        .init(
            schedule: "monthly on last at 04:00", after: "2028-02-01T00:00:00Z", fires: ["2028-02-29T04:00:00Z"],
            note: "leap year"),
        // A zone without DST: 03:00 in Tokyo (UTC+9) is 18:00Z the day before, all year.
        .init(
            schedule: "daily at 03:00 Asia/Tokyo", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-01T18:00:00Z", "2026-04-02T18:00:00Z"]),
        .init(
            schedule: "daily at 03:00 Asia/Tokyo", after: "2026-10-24T00:00:00Z",
            fires: ["2026-10-24T18:00:00Z", "2026-10-25T18:00:00Z"]),
        // A half-hour offset (UTC+5:30): :15 local is :45Z.
        .init(
            schedule: "hourly at :15 Asia/Kolkata", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-01T00:45:00Z", "2026-04-01T01:45:00Z"]),
        .init(schedule: "daily at 03:00 UTC", after: "2026-04-01T00:00:00Z", fires: ["2026-04-01T03:00:00Z"]),
    ]

    static let cron: [ScheduleFireCase] = [
        .init(
            schedule: "*/15 * * * *", after: "2026-04-01T10:07:00Z",
            fires: ["2026-04-01T10:15:00Z", "2026-04-01T10:30:00Z", "2026-04-01T10:45:00Z", "2026-04-01T11:00:00Z"]),
        .init(
            schedule: "0-30/10 * * * *", after: "2026-04-01T12:00:00Z",
            fires: ["2026-04-01T12:10:00Z", "2026-04-01T12:20:00Z", "2026-04-01T12:30:00Z", "2026-04-01T13:00:00Z"]),
        .init(
            schedule: "5/20 * * * *", after: "2026-04-01T12:00:00Z",
            fires: ["2026-04-01T12:05:00Z", "2026-04-01T12:25:00Z", "2026-04-01T12:45:00Z", "2026-04-01T13:05:00Z"]),
        .init(schedule: "0 3 * * *", after: "2026-04-01T03:00:00Z", fires: ["2026-04-02T03:00:00Z"]),
        .init(
            schedule: "30 2 1,15 * *", after: "2026-04-01T02:30:00Z",
            fires: ["2026-04-15T02:30:00Z", "2026-05-01T02:30:00Z"]),
        .init(
            schedule: "0 8-10 * * *", after: "2026-04-01T08:00:00Z",
            fires: ["2026-04-01T09:00:00Z", "2026-04-01T10:00:00Z", "2026-04-02T08:00:00Z"]),
        // 2027-01-01 is a Friday.
        .init(
            schedule: "0 9 * jan-mar mon-fri", after: "2026-03-31T09:00:00Z",
            fires: ["2027-01-01T09:00:00Z", "2027-01-04T09:00:00Z"]),
        .init(
            schedule: "0 9 1 JUL,Dec *", after: "2026-04-01T00:00:00Z",
            fires: ["2026-07-01T09:00:00Z", "2026-12-01T09:00:00Z"]),
        // 2026-04-05 is a Sunday: 0, 7 and sun all name it.
        .init(
            schedule: "0 0 * * 0", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-05T00:00:00Z", "2026-04-12T00:00:00Z"]),
        .init(
            schedule: "0 0 * * 7", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-05T00:00:00Z", "2026-04-12T00:00:00Z"]),
        .init(schedule: "0 0 * * SUN", after: "2026-04-01T00:00:00Z", fires: ["2026-04-05T00:00:00Z"]),
        .init(
            schedule: "0 0 * * 5-7", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-03T00:00:00Z", "2026-04-04T00:00:00Z", "2026-04-05T00:00:00Z", "2026-04-10T00:00:00Z"]),
        .init(
            schedule: "0 0 * * */2", after: "2026-04-01T00:00:00Z",
            fires: ["2026-04-02T00:00:00Z", "2026-04-04T00:00:00Z", "2026-04-05T00:00:00Z"],
            note: "Sunday, Tuesday, Thursday, Saturday"),
        // Leap day: the next 29 February after 2026 is in 2028, then 2032.
        .init(
            schedule: "0 0 29 2 *", after: "2026-01-01T00:00:00Z",
            fires: ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
        // Last day of the month: a 31st only in months that have one.
        .init(
            schedule: "0 0 31 * *", after: "2026-04-01T00:00:00Z",
            fires: ["2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"]),
        // Both day fields restricted: the 13th OR a Friday (2026-04-13 is a Monday; 3, 10, 17, 24 April and 1 May Fridays).
        .init(
            schedule: "0 0 13 * 5", after: "2026-04-10T00:00:00Z",
            fires: ["2026-04-13T00:00:00Z", "2026-04-17T00:00:00Z", "2026-04-24T00:00:00Z", "2026-05-01T00:00:00Z"],
            note: "OR rule"),
        .init(
            schedule: "0 0 1 * mon", after: "2026-03-01T00:00:00Z",
            fires: [
                "2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z", "2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z",
                "2026-03-30T00:00:00Z", "2026-04-01T00:00:00Z", "2026-04-06T00:00:00Z",
            ], note: "OR rule"),
        // A day field starting with * is unrestricted in Vixie cron even with a step: then both must match.
        .init(
            schedule: "0 0 */2 * 5", after: "2026-04-03T00:00:00Z",
            fires: ["2026-04-17T00:00:00Z", "2026-05-01T00:00:00Z"], note: "odd days that are Fridays"),
        .init(schedule: "0 0 * * 5", after: "2026-04-03T00:00:00Z", fires: ["2026-04-10T00:00:00Z"]),
        // New York in winter is UTC-5.
        .init(schedule: "0 3 * * * America/New_York", after: "2026-01-15T00:00:00Z", fires: ["2026-01-15T08:00:00Z"]),
        .init(schedule: "  0  3 * * *   UTC ", after: "2026-01-15T00:00:00Z", fires: ["2026-01-15T03:00:00Z"]),
    ]

    @Test(arguments: intervals) func fixedIntervals(_ fireCase: ScheduleFireCase) throws { try fireCase.check() }
    @Test(arguments: timesOfDay) func timesOfDayWeekAndMonth(_ fireCase: ScheduleFireCase) throws {
        try fireCase.check()
    }
    @Test(arguments: cron) func cronExpressions(_ fireCase: ScheduleFireCase) throws { try fireCase.check() }

    @Test(arguments: [
        ("every 6h", "every 6 hours"),
        ("every 1d", "every day"),
        ("every 120m", "every 2 hours"),
        ("every 90 minutes", "every 90 minutes"),
        ("every 1h UTC", "every hour"),
        ("hourly", "hourly at :00 UTC"),
        ("hourly at 5", "hourly at :05 UTC"),
        ("daily at 3:30", "daily at 03:30 UTC"),
        ("daily at 03:00 Europe/Stockholm", "daily at 03:00 Europe/Stockholm"),
        ("daily 03:00 utc", "daily at 03:00 UTC"),
        ("weekly on thu,MON at 2:00", "weekly on monday, thursday at 02:00 UTC"),
        ("weekly on sundays at 02:00", "weekly on sunday at 02:00 UTC"),
        ("monthly on 15th,1st,last at 04:00", "monthly on 1, 15, last at 04:00 UTC"),
        ("  0  3 * * *   Europe/Stockholm ", "0 3 * * * Europe/Stockholm"),
    ])
    func descriptionIsAPhraseThatReadsBack(text: String, phrase: String) throws {
        let schedule = try Schedule(parsing: text)
        #expect(schedule.description == phrase)
        let reread = try Schedule(parsing: schedule.description)
        #expect(reread.description == phrase)
        var instant = try ScheduleFixture.instant("2026-03-20T00:00:00Z")
        for _ in 0..<5 {
            let next = try #require(schedule.nextFire(after: instant))
            #expect(reread.nextFire(after: instant) == next)
            instant = next
        }
    }

    @Test func textAndTimeZone() throws {
        let stockholm = try Schedule(parsing: " daily at 03:00 Europe/Stockholm\n")
        #expect(stockholm.text == "daily at 03:00 Europe/Stockholm")
        #expect(stockholm.timeZone.identifier == "Europe/Stockholm")
        let utc = try Schedule(parsing: "daily at 03:00")
        #expect(utc.timeZone.identifier == "UTC")
        #expect(utc.timeZone.offset(at: 0) == 0)
        #expect(
            utc.timeZone.offset(at: Int64(try ScheduleFixture.instant("2026-07-01T00:00:00Z").timeIntervalSince1970))
                == 0)
    }

    @Test func codableAsItsText() throws {
        struct Holder: Codable, Equatable { var schedule: Schedule }
        let json = Data(#"{"schedule":"weekly on mon,thu at 02:00 Europe/Stockholm"}"#.utf8)
        let holder = try JSONDecoder().decode(Holder.self, from: json)
        #expect(holder.schedule == (try Schedule(parsing: "weekly on mon,thu at 02:00 Europe/Stockholm")))
        let encoded = try String(decoding: JSONEncoder().encode(holder), as: UTF8.self)
        #expect(encoded == #"{"schedule":"weekly on mon,thu at 02:00 Europe\/Stockholm"}"#)
        #expect(try JSONDecoder().decode(Holder.self, from: Data(encoded.utf8)) == holder)

        let bad = Data(#"{"schedule":"daily at 24:00"}"#.utf8)
        do {
            _ = try JSONDecoder().decode(Holder.self, from: bad)
            Issue.record("decoding an invalid schedule must fail")
        } catch let DecodingError.dataCorrupted(context) {
            #expect(context.debugDescription.contains("hour 24 is out of range 0-23"))
            #expect(context.codingPath.map(\.stringValue) == ["schedule"])
        }
    }

    @Test func equalTextsAreEqualSchedules() throws {
        #expect(try Schedule(parsing: "every 6h") == Schedule(parsing: "every 6h"))
        #expect(try Schedule(parsing: "every 6h") != Schedule(parsing: "every 7h"))
        #expect(try Schedule(parsing: "daily at 03:00") != Schedule(parsing: "daily at 03:00 Europe/Stockholm"))
        let set: Set<Schedule> = [try Schedule(parsing: "every 6h"), try Schedule(parsing: "every 6h")]
        #expect(set.count == 1)
    }

    @Test func instantsOutsideYears1To9999HaveNoFireTime() throws {
        let schedule = try Schedule(parsing: "daily at 03:00")
        #expect(schedule.nextFire(after: Date(timeIntervalSince1970: 1e12)) == nil)  // year 33658
        #expect(ScheduleFixture.iso(try #require(schedule.nextFire(after: .distantFuture))) == "4001-01-01T03:00:00Z")
        #expect(schedule.previousFire(atOrBefore: .distantPast) == nil)
        #expect(schedule.nextFire(after: Date(timeIntervalSince1970: .infinity)) == nil)
        #expect(schedule.nextFire(after: Date(timeIntervalSince1970: .nan)) == nil)
    }
}

@Suite("Schedules: previous fire time (missed runs after downtime)")
struct SchedulePreviousFireTests {
    @Test(arguments: [
        ("daily at 03:00", "2026-04-01T03:00:00Z", "2026-04-01T03:00:00Z"),  // at a fire time: that one
        ("daily at 03:00", "2026-04-01T02:59:59.999Z", "2026-03-31T03:00:00Z"),
        ("daily at 03:00", "2026-04-01T12:00:00Z", "2026-04-01T03:00:00Z"),
        ("every 6h", "2026-04-01T07:00:00Z", "2026-04-01T06:00:00Z"),
        ("every 6h", "2026-04-01T06:00:00Z", "2026-04-01T06:00:00Z"),
        ("every 7h", "2026-04-01T09:59:59Z", "2026-04-01T03:00:00Z"),
        ("weekly on monday at 02:00", "2026-04-01T00:00:00Z", "2026-03-30T02:00:00Z"),
        ("monthly on last at 04:00", "2026-03-15T00:00:00Z", "2026-02-28T04:00:00Z"),
        ("monthly on 31 at 04:00", "2026-07-01T00:00:00Z", "2026-05-31T04:00:00Z"),
        ("0 0 29 2 *", "2026-04-01T00:00:00Z", "2024-02-29T00:00:00Z"),
        ("0 0 13 * 5", "2026-04-16T00:00:00Z", "2026-04-13T00:00:00Z"),
        ("*/15 * * * *", "2026-04-01T10:14:59Z", "2026-04-01T10:00:00Z"),
        ("daily at 03:00 Asia/Tokyo", "2026-04-01T17:59:59Z", "2026-03-31T18:00:00Z"),
        // DST in Stockholm: the gap's time fired at 03:00 CEST; the repeated time fired only the first time.
        ("daily at 02:30 Europe/Stockholm", "2026-03-29T12:00:00Z", "2026-03-29T01:00:00Z"),
        ("daily at 02:30 Europe/Stockholm", "2026-10-25T12:00:00Z", "2026-10-25T00:30:00Z"),
        ("30 2 * * * Europe/Stockholm", "2026-10-25T01:45:00Z", "2026-10-25T00:30:00Z"),
    ])
    func previousFire(schedule: String, atOrBefore: String, expected: String) throws {
        let parsed = try Schedule(parsing: schedule)
        let previous = try #require(parsed.previousFire(atOrBefore: try ScheduleFixture.instant(atOrBefore)))
        #expect(ScheduleFixture.iso(previous) == expected)
    }

    /// After downtime, a schedule was missed when its last fire time is later than the last run began.
    @Test func missedDuringDowntime() throws {
        let schedule = try Schedule(parsing: "daily at 03:00 Europe/Stockholm")
        let lastRun = try ScheduleFixture.instant("2026-04-01T01:00:00Z")  // ran at 03:00 CEST on 1 April
        let start = try ScheduleFixture.instant("2026-04-04T12:00:00Z")  // down for three days
        let previous = try #require(schedule.previousFire(atOrBefore: start))
        #expect(previous > lastRun)
        #expect(ScheduleFixture.iso(previous) == "2026-04-04T01:00:00Z")
        // Restarted later the same day, after that run: nothing was missed.
        let ranToday = try ScheduleFixture.instant("2026-04-04T01:00:05Z")
        let restart = try ScheduleFixture.instant("2026-04-04T18:00:00Z")
        #expect(try #require(schedule.previousFire(atOrBefore: restart)) <= ranToday)
    }

    /// previousFire and nextFire describe the same set of instants (a consistency check, not an oracle).
    @Test(arguments: [
        "every 7h", "hourly at :30 Europe/Stockholm", "daily at 02:30 Europe/Stockholm",
        "*/20 2 * * * Europe/Stockholm",
        "0 0 13 * 5", "monthly on last at 23:30 America/Santiago", "weekly on sun at 00:00 America/Havana",
    ])
    func previousAndNextAgree(schedule: String) throws {
        let parsed = try Schedule(parsing: schedule)
        for start in [
            "2026-03-06T00:00:00Z", "2026-03-27T00:00:00Z", "2026-04-04T00:00:00Z", "2026-09-04T00:00:00Z",
            "2026-10-23T00:00:00Z", "2026-10-30T00:00:00Z",
        ] {
            var instant = try ScheduleFixture.instant(start)
            for _ in 0..<40 {
                let next = try #require(parsed.nextFire(after: instant))
                #expect(next > instant)
                #expect(parsed.previousFire(atOrBefore: next) == next)
                let justBefore = next.addingTimeInterval(-1)
                let previous = try #require(parsed.previousFire(atOrBefore: justBefore))
                #expect(previous < next)
                #expect(parsed.nextFire(after: previous) == next)
                instant = next
            }
        }
    }
}
