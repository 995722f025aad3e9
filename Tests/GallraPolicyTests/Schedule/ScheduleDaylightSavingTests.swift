import Foundation
import GallraPolicy
import Testing

/// Europe/Stockholm in 2026: on 29 March the clocks jump from 02:00 CET (UTC+1) to 03:00 CEST (UTC+2),
/// at 01:00Z; on 25 October they go back from 03:00 CEST to 02:00 CET, at 01:00Z, so 02:00-02:59 happens
/// twice (00:00Z-00:59Z and 01:00Z-01:59Z). Expected instants are worked out by hand from those facts.
@Suite("Schedules across daylight saving time changes")
struct ScheduleDaylightSavingTests {
    static let springForwardCases: [ScheduleFireCase] = [
        // 02:30 does not exist on 29 March: it fires once, at the end of the gap (03:00 CEST = 01:00Z).
        .init(
            schedule: "daily at 02:30 Europe/Stockholm", after: "2026-03-27T12:00:00Z",
            fires: ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        .init(
            schedule: "30 2 * * * Europe/Stockholm", after: "2026-03-27T12:00:00Z",
            fires: ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        // 03:00 exists (it is the first minute after the gap).
        .init(
            schedule: "daily at 03:00 Europe/Stockholm", after: "2026-03-27T12:00:00Z",
            fires: ["2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"]),
        // 02:00, 02:20 and 02:40 all fall in the gap and 03:00 is not named: one fire at 03:00 CEST.
        .init(
            schedule: "*/20 2 * * * Europe/Stockholm", after: "2026-03-28T12:00:00Z",
            fires: ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:20:00Z"]),
        // A gap time and 03:00 itself coincide: one fire, not two.
        .init(
            schedule: "30 2,3 * * * Europe/Stockholm", after: "2026-03-28T12:00:00Z",
            fires: ["2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"]),
        // Elapsed time: every hour stays an hour apart while the wall clock skips 02:00-02:59.
        .init(
            schedule: "every 1h", after: "2026-03-29T00:00:00Z",
            fires: ["2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"]),
        .init(
            schedule: "every 30m", after: "2026-03-29T00:15:00Z",
            fires: ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"]),
        // A schedule naming every hour follows the clock: 01:30 CET, then 03:30 CEST (02:30 does not happen).
        .init(
            schedule: "hourly at :30 Europe/Stockholm", after: "2026-03-28T23:00:00Z",
            fires: ["2026-03-28T23:30:00Z", "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"]),
        // A gap at midnight (America/Santiago, 6 September 2026: 00:00 -04 → 01:00 -03 at 04:00Z).
        .init(
            schedule: "daily at 00:00 America/Santiago", after: "2026-09-05T00:00:00Z",
            fires: ["2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"]),
        // America/Havana, 8 March 2026: 00:00 -05 → 01:00 -04 at 05:00Z.
        .init(
            schedule: "weekly on sun at 00:00 America/Havana", after: "2026-03-01T00:00:00Z",
            fires: ["2026-03-01T05:00:00Z", "2026-03-08T05:00:00Z", "2026-03-15T04:00:00Z"]),
    ]

    static let fallBackCases: [ScheduleFireCase] = [
        // 02:30 happens twice on 25 October: only the first (02:30 CEST = 00:30Z) fires.
        .init(
            schedule: "daily at 02:30 Europe/Stockholm", after: "2026-10-24T12:00:00Z",
            fires: ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        .init(
            schedule: "daily at 02:30 Europe/Stockholm", after: "2026-10-25T00:30:00Z", fires: ["2026-10-26T01:30:00Z"],
            note: "not again at 02:30 CET"),
        .init(
            schedule: "daily at 02:30 Europe/Stockholm", after: "2026-10-25T00:15:00Z",
            fires: ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        .init(
            schedule: "30 2 * * * Europe/Stockholm", after: "2026-10-24T12:00:00Z",
            fires: ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        .init(
            schedule: "30 2 * * * Europe/Stockholm", after: "2026-10-25T00:45:00Z", fires: ["2026-10-26T01:30:00Z"],
            note: "between the two 02:30s"),
        // 03:00 happens once, in CET (02:00Z); 24 October 03:00 was CEST (01:00Z).
        .init(
            schedule: "daily at 03:00 Europe/Stockholm", after: "2026-10-23T12:00:00Z",
            fires: ["2026-10-24T01:00:00Z", "2026-10-25T02:00:00Z", "2026-10-26T02:00:00Z"]),
        // 02:00, 02:20, 02:40 fire in the first pass through the hour only.
        .init(
            schedule: "*/20 2 * * * Europe/Stockholm", after: "2026-10-24T12:00:00Z",
            fires: ["2026-10-25T00:00:00Z", "2026-10-25T00:20:00Z", "2026-10-25T00:40:00Z", "2026-10-26T01:00:00Z"]),
        .init(
            schedule: "every 1h", after: "2026-10-25T00:00:00Z",
            fires: ["2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"]),
        // Every hour follows the clock: both 02:30s fire, an hour apart.
        .init(
            schedule: "hourly at :30 Europe/Stockholm", after: "2026-10-24T23:00:00Z",
            fires: ["2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"]),
        .init(
            schedule: "*/30 * * * * Europe/Stockholm", after: "2026-10-25T00:00:00Z",
            fires: ["2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"]),
        // A repeated hour before midnight (America/Santiago, 5 April 2026: 00:00 -03 → 23:00 -04 at 03:00Z).
        .init(
            schedule: "daily at 23:30 America/Santiago", after: "2026-04-04T12:00:00Z",
            fires: ["2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"]),
        // America/Havana, 1 November 2026: 01:00 -04 → 00:00 -05 at 05:00Z, so 00:00 happens twice.
        .init(
            schedule: "weekly on sun at 00:00 America/Havana", after: "2026-10-24T00:00:00Z",
            fires: ["2026-10-25T04:00:00Z", "2026-11-01T04:00:00Z", "2026-11-08T05:00:00Z"]),
    ]

    @Test(arguments: springForwardCases) func springForward(_ fireCase: ScheduleFireCase) throws {
        try fireCase.check()
    }
    @Test(arguments: fallBackCases) func fallBack(_ fireCase: ScheduleFireCase) throws { try fireCase.check() }

    /// Over the whole fall-back day a fixed-time schedule fires exactly once.
    @Test(arguments: [
        "daily at 02:30 Europe/Stockholm", "30 2 * * * Europe/Stockholm", "daily at 02:00 Europe/Stockholm",
    ])
    func fallBackDayFiresOnce(schedule: String) throws {
        let parsed = try Schedule(parsing: schedule)
        let dayStart = try ScheduleFixture.instant("2026-10-24T22:00:00Z")  // 00:00 CEST, 25 October
        let dayEnd = try ScheduleFixture.instant("2026-10-25T23:00:00Z")  // 00:00 CET, 26 October
        var fires: [Date] = []
        var instant = dayStart
        while let next = parsed.nextFire(after: instant), next < dayEnd {
            fires.append(next)
            instant = next
        }
        #expect(fires.count == 1)
    }
}
