import Foundation
import GallraPolicy
import Testing

/// A schedule that must be refused, and what the error must say.
struct ScheduleErrorCase: Sendable, CustomTestStringConvertible {
    var text: String
    var code: ScheduleError.Code
    var column: Int?
    var message: String
    var example: String

    var testDescription: String { "\"\(text)\" → \(code)" }
}

@Suite("Schedules: errors say what is wrong, where, and give a correct example")
struct ScheduleErrorTests {
    static let cases: [ScheduleErrorCase] = [
        .init(text: "", code: .empty, column: nil, message: "the schedule is empty", example: "daily at 03:00"),
        .init(text: "  \n ", code: .empty, column: nil, message: "the schedule is empty", example: "daily at 03:00"),
        .init(
            text: "sometimes", code: .unknownForm, column: 1,
            message:
                "unknown schedule form 'sometimes'; a schedule starts with every, hourly, daily, weekly, monthly, or is a cron expression",
            example: "daily at 03:00"),
        .init(
            text: "daly at 03:00", code: .unknownForm, column: 1,
            message: "unknown schedule form 'daly'; did you mean 'daily'?", example: "daily at 03:00"),
        // Times of day.
        .init(
            text: "daily at 24:00", code: .invalidTime, column: 10,
            message: "hour 24 is out of range 0-23 (midnight is 00:00)", example: "daily at 00:00"),
        .init(
            text: "daily at 03:60", code: .invalidTime, column: 13, message: "minute 60 is out of range 0-59",
            example: "daily at 03:00"),
        .init(
            text: "daily at 3pm", code: .invalidTime, column: 10,
            message: "expected a time of day as HH:MM on the 24-hour clock, found '3pm'", example: "daily at 03:00"),
        .init(
            text: "daily at 3:5", code: .invalidTime, column: 10,
            message: "expected a time of day as HH:MM on the 24-hour clock, found '3:5'", example: "daily at 03:00"),
        .init(
            text: "daily", code: .invalidTime, column: nil,
            message: "expected a time of day after daily, such as at 03:00", example: "daily at 03:00"),
        .init(
            text: "weekly on monday at 25:00", code: .invalidTime, column: 21,
            message: "hour 25 is out of range 0-23 (midnight is 00:00)", example: "weekly on monday at 02:00"),
        .init(
            text: "hourly at :60", code: .invalidTime, column: 11, message: "minute 60 is out of range 0-59",
            example: "hourly at :15"),
        // Intervals.
        .init(
            text: "every 0h", code: .invalidInterval, column: 7,
            message: "the interval must be longer than zero (every 0h)", example: "every 6h"),
        .init(
            text: "every 30s", code: .intervalTooShort, column: 7,
            message: "an interval of 30 seconds is shorter than the minimum of one minute", example: "every 1m"),
        .init(
            text: "every 59 seconds", code: .intervalTooShort, column: 7,
            message: "an interval of 59 seconds is shorter than the minimum of one minute", example: "every 1m"),
        .init(
            text: "every 6 fortnights", code: .invalidInterval, column: 9,
            message: "unknown interval unit 'fortnights'; use m (minutes), h (hours) or d (days)", example: "every 6h"),
        .init(
            text: "every 2w", code: .invalidInterval, column: 8,
            message:
                "unknown interval unit 'w'; use m (minutes), h (hours) or d (days), or a calendar form such as weekly on monday at 02:00 or monthly on 1 at 04:00",
            example: "every 6h"),
        .init(
            text: "every 400d", code: .invalidInterval, column: 7, message: "an interval can be at most 366 days",
            example: "every 30d"),
        .init(
            text: "every 6", code: .invalidInterval, column: nil,
            message: "'every 6' needs a unit: m, h or d (e.g. every 6h)", example: "every 6h"),
        .init(
            text: "every 6h Europe/Stockholm", code: .timeZoneNotAllowed, column: 10,
            message:
                "a time zone has no effect on 'every', which counts elapsed time from 1970-01-01 00:00 UTC; for a time of day in Europe/Stockholm write a daily schedule",
            example: "daily at 00:00 Europe/Stockholm"),
        // Cron fields.
        .init(
            text: "60 * * * *", code: .fieldOutOfRange, column: 1, message: "minute 60 is out of range 0-59",
            example: "*/15 * * * *"),
        .init(
            text: "0 24 * * *", code: .fieldOutOfRange, column: 3, message: "hour 24 is out of range 0-23",
            example: "0 3 * * *"),
        .init(
            text: "0 0 32 * *", code: .fieldOutOfRange, column: 5, message: "day-of-month 32 is out of range 1-31",
            example: "0 4 1,15 * *"),
        .init(
            text: "0 0 0 * *", code: .fieldOutOfRange, column: 5, message: "day-of-month 0 is out of range 1-31",
            example: "0 4 1,15 * *"),
        .init(
            text: "0 0 1,5-99 * *", code: .fieldOutOfRange, column: 9, message: "day-of-month 99 is out of range 1-31",
            example: "0 4 1,15 * *"),
        .init(
            text: "0 0 * 13 *", code: .fieldOutOfRange, column: 7, message: "month 13 is out of range 1-12",
            example: "0 4 1 jan,jul *"),
        .init(
            text: "0 0 * * 8", code: .fieldOutOfRange, column: 9,
            message: "day-of-week 8 is out of range 0-7 (0 and 7 are Sunday)", example: "0 2 * * mon-fri"),
        .init(
            text: "0 3 * *", code: .wrongFieldCount, column: nil,
            message: "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 4",
            example: "0 3 * * *"),
        .init(
            text: "0 0 3 * * *", code: .wrongFieldCount, column: nil,
            message:
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 6; seconds and year fields are not supported",
            example: "0 3 * * *"),
        .init(
            text: "0 3 * * * * Europe/Stockholm", code: .wrongFieldCount, column: nil,
            message:
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found 6; seconds and year fields are not supported",
            example: "0 3 * * *"),
        .init(
            text: "*/0 * * * *", code: .invalidStep, column: 3,
            message: "the step in '*/0' must be a whole number of at least 1", example: "*/15 * * * *"),
        .init(
            text: "0 */x * * *", code: .invalidStep, column: 5,
            message: "the step in '*/x' must be a whole number of at least 1", example: "0 3 * * *"),
        .init(
            text: "0 1/2/3 * * *", code: .invalidStep, column: 3, message: "'1/2/3' has more than one step",
            example: "0 3 * * *"),
        .init(
            text: "5-1 * * * *", code: .invalidField, column: 1,
            message: "the range '5-1' in the minute field goes backwards; write 1-5 or a list", example: "*/15 * * * *"),
        .init(
            text: "0 0 1,,2 * *", code: .invalidField, column: 7,
            message: "the day-of-month field '1,,2' has an empty list item", example: "0 4 1,15 * *"),
        .init(
            text: "0 0 L * *", code: .invalidField, column: 5,
            message: "'L' (last, nearest weekday, nth weekday) is not standard cron and not supported",
            example: "monthly on last at 04:00"),
        .init(
            text: "0 0 ? * mon", code: .invalidField, column: 5, message: "'?' is not standard cron; write *",
            example: "0 4 1,15 * *"),
        .init(
            text: "0 x * * *", code: .invalidField, column: 3,
            message: "expected a number 0-23 in the hour field, found 'x'", example: "0 3 * * *"),
        .init(
            text: "0 0 30 2 *", code: .neverFires, column: 5,
            message: "no month in '2' has a day '30', so this never fires", example: "0 0 29 2 *"),
        // Names.
        .init(
            text: "0 0 * * mondy", code: .unknownName, column: 9,
            message: "unknown day name 'mondy'; did you mean 'monday'?", example: "0 2 * * mon-fri"),
        .init(
            text: "0 0 1 jna *", code: .unknownName, column: 7,
            message: "unknown month name 'jna'; did you mean 'jan'?", example: "0 4 1 jan,jul *"),
        .init(
            text: "weekly on mondy at 02:00", code: .unknownName, column: 11,
            message: "unknown day 'mondy'; did you mean 'monday'?", example: "weekly on monday at 02:00"),
        .init(
            text: "weekly on mon,thurs at 02:00", code: .unknownName, column: 15,
            message: "unknown day 'thurs'; did you mean 'thu'?", example: "weekly on monday at 02:00"),
        .init(
            text: "weekly on someday at 02:00", code: .unknownName, column: 11,
            message: "unknown day 'someday'; use monday ... sunday or mon ... sun", example: "weekly on monday at 02:00"
        ),
        .init(
            text: "weekly at 02:00", code: .invalidField, column: 8, message: "'weekly' needs days, such as: on monday",
            example: "weekly on monday at 02:00"),
        .init(
            text: "monthly on 32 at 04:00", code: .fieldOutOfRange, column: 12, message: "day 32 is out of range 1-31",
            example: "monthly on last at 04:00"),
        .init(
            text: "monthly on first at 04:00", code: .invalidField, column: 12,
            message: "expected a day of the month (1-31 or last), found 'first'", example: "monthly on 1 at 04:00"),
        // Time zones.
        .init(
            text: "daily at 03:00 Europe/Stokholm", code: .unknownTimeZone, column: 16,
            message: "unknown time zone 'Europe/Stokholm'; did you mean 'Europe/Stockholm'?",
            example: "daily at 03:00 Europe/Stockholm"),
        .init(
            text: "daily at 03:00 europe/stockholm", code: .unknownTimeZone, column: 16,
            message: "unknown time zone 'europe/stockholm'; did you mean 'Europe/Stockholm'?",
            example: "daily at 03:00 Europe/Stockholm"),
        .init(
            text: "0 3 * * * Mars/Olympus_Mons", code: .unknownTimeZone, column: 11,
            message: "unknown time zone 'Mars/Olympus_Mons'; use an IANA identifier such as Europe/Stockholm, or UTC",
            example: "0 3 * * * Europe/Stockholm"),
        .init(
            text: "daily at 03:00 Europe/Stockholm now", code: .unexpectedText, column: 33,
            message: "unexpected 'now' after the schedule", example: "daily at 03:00"),
    ]

    @Test(arguments: cases)
    func refused(_ errorCase: ScheduleErrorCase) {
        do {
            let schedule = try Schedule(parsing: errorCase.text)
            Issue.record("accepted as \(schedule)")
        } catch {
            #expect(error.code == errorCase.code)
            #expect(error.column == errorCase.column)
            #expect(error.message == errorCase.message)
            #expect(error.example == errorCase.example)
            #expect(error.text == errorCase.text)
            let place = errorCase.column.map { " (column \($0))" } ?? ""
            #expect(
                error.description
                    == "invalid schedule \"\(errorCase.text)\"\(place): \(errorCase.message); for example: \(errorCase.example)"
            )
        }
    }

    @Test func exampleInEveryErrorIsItselfAValidSchedule() throws {
        for errorCase in Self.cases {
            #expect(throws: Never.self, "\(errorCase.example)") { try Schedule(parsing: errorCase.example) }
        }
    }

    @Test func descriptionReadsWell() {
        #expect(throws: ScheduleError.self) { try Schedule(parsing: "daily at 24:00") }
        do {
            _ = try Schedule(parsing: "daily at 24:00")
        } catch {
            #expect(
                error.description
                    == "invalid schedule \"daily at 24:00\" (column 10): hour 24 is out of range 0-23 (midnight is 00:00); for example: daily at 00:00"
            )
        }
    }
}
