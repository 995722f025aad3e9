#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore

/// When a policy runs: a fixed interval, a time of day, week or month, or a 5-field cron expression,
/// in UTC unless an IANA time zone ends the text.
///
/// Forms (keywords, day and month names are case-insensitive; a zone identifier is as IANA spells it):
///
/// - `every 6h`, `every 30m`, `every 2 hours`, `every 1d`, `every hour`: real elapsed time, at the
///   multiples of the interval since the Unix epoch (1970-01-01 00:00 UTC), so the fire times are the
///   same after every restart and DST changes do not affect them (`every 1d` fires at 00:00 UTC). At
///   least one minute, at most 366 days. A time zone would have no effect and is refused (except `UTC`).
/// - `hourly` (at :00), `hourly at :15`.
/// - `daily at 03:00`, `daily at 3:30` (24-hour clock).
/// - `weekly on monday at 02:00`, `weekly on mon,thu at 02:00`, `weekly on mon-fri at 06:00`.
/// - `monthly on 1 at 04:00`, `monthly on 1,15 at 04:00`, `monthly on last at 04:00`; a day a month
///   does not have (31 in April) is skipped that month, as in cron.
/// - cron: `minute hour day-of-month month day-of-week`, with lists `1,15`, ranges `1-5`, steps `*/15`,
///   `0-30/10` and `5/15` (5 to the end, every 15), names `jan`-`dec` and `sun`-`sat`, and 7 also
///   Sunday. As in Vixie cron, when both day fields are restricted (neither starts with `*`) a day
///   matches if EITHER matches: `0 0 13 * 5` fires on every 13th and every Friday; when one starts
///   with `*` (even `*/2`) both must match.
/// - a zone suffix: `daily at 03:00 Europe/Stockholm`, `0 3 * * * Europe/Stockholm`, `... UTC`. Zones are read
///   from the system's time zone database (Debian's `tzdata`, or `$TZDIR`), as the C library, cron and systemd
///   timers read them, so a schedule follows the rules the system's updates bring.
///
/// Daylight saving time, for schedules naming fixed times of day: a time the clocks skip (02:30 when
/// they jump 02:00 → 03:00) fires once at the end of the gap (03:00), like cronie and systemd; a time
/// that occurs twice (02:30 when they go back 03:00 → 02:00) fires once, at its first occurrence.
/// A schedule naming every hour (`hourly at :15`, `*/15 * * * *`) follows the clock instead: nothing
/// fires in the skipped hour and the repeated hour fires twice, an hour apart, so it keeps its pace.
public struct Schedule: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The schedule as written, without surrounding white space.
    public let text: String
    /// The zone whose wall clock the calendar forms follow (UTC when none is given).
    public let timeZone: ZoneRules

    /// The zone as written, or "UTC".
    let timeZoneName: String
    let rule: Rule
    /// The normalized phrase without the zone, e.g. "daily at 03:00".
    let phrase: String

    enum Rule: Sendable, Hashable {
        case interval(seconds: Int64)
        case calendar(ScheduleCalendarPattern)
    }

    /// Reads a schedule; the error says what is wrong, where, and gives a correct example.
    public init(parsing text: String) throws(ScheduleError) {
        let parsed = try ScheduleParser(text: text).parse()
        self.text = text.trimmingWhitespace(newlines: true)
        self.timeZone = parsed.timeZone
        self.timeZoneName = parsed.timeZoneName
        self.rule = parsed.rule
        self.phrase = parsed.phrase
    }

    /// A phrase for listings that reads back as the same schedule: "daily at 03:00 Europe/Stockholm",
    /// "every 6 hours", "30 2 * * * UTC".
    public var description: String {
        switch rule {
        case .interval: return phrase
        case .calendar: return "\(phrase) \(timeZoneName)"
        }
    }

    /// The first fire time strictly after `instant`, or nil past the year 9999.
    public func nextFire(after instant: Date) -> Date? {
        guard let seconds = Self.supportedSeconds(instant) else { return nil }
        switch rule {
        case .interval(let interval):
            let next = (seconds / Double(interval)).rounded(.down) + 1
            return Date(timeIntervalSince1970: next * Double(interval))
        case .calendar(let pattern):
            let whole = Int64(seconds.rounded(.down))
            let firstDay = Self.localDay(of: whole, in: timeZone) - 1
            for day in firstDay...(firstDay + Self.searchDays) {
                guard
                    let found = pattern.fireInstants(onLocalDay: day, in: timeZone).first(where: {
                        Double($0) > seconds
                    })
                else { continue }
                // Across a DST change the next day could in principle hold an earlier instant.
                let following = pattern.fireInstants(onLocalDay: day + 1, in: timeZone).first { Double($0) > seconds }
                return Date(timeIntervalSince1970: TimeInterval(Swift.min(found, following ?? found)))
            }
            return nil
        }
    }

    /// The last fire time at or before `instant`, or nil before the year 1.
    ///
    /// The daemon compares it with the start of the policy's last run: a later fire time was missed
    /// (e.g. during downtime) and runs once at start, however many were missed.
    public func previousFire(atOrBefore instant: Date) -> Date? {
        guard let seconds = Self.supportedSeconds(instant) else { return nil }
        switch rule {
        case .interval(let interval):
            let previous = (seconds / Double(interval)).rounded(.down)
            return Date(timeIntervalSince1970: previous * Double(interval))
        case .calendar(let pattern):
            let whole = Int64(seconds.rounded(.down))
            let lastDay = Self.localDay(of: whole, in: timeZone) + 1
            for day in stride(from: lastDay, through: lastDay - Self.searchDays, by: -1) {
                guard let found = pattern.fireInstants(onLocalDay: day, in: timeZone).last(where: { $0 <= whole })
                else { continue }
                let preceding = pattern.fireInstants(onLocalDay: day - 1, in: timeZone).last { $0 <= whole }
                return Date(timeIntervalSince1970: TimeInterval(Swift.max(found, preceding ?? found)))
            }
            return nil
        }
    }

    /// A Gregorian 400-year cycle: every (month, day, weekday) combination occurs within it.
    private static let searchDays: Int64 = 146_097

    /// Seconds since the epoch for instants within years 1-9999, where the calendar arithmetic is meaningful.
    private static func supportedSeconds(_ instant: Date) -> Double? {
        let seconds = instant.timeIntervalSince1970
        guard seconds.isFinite, seconds >= -62_135_596_800, seconds < 253_402_300_800 else { return nil }
        return seconds
    }

    private static func localDay(of instant: Int64, in zone: ZoneRules) -> Int64 {
        (instant + zone.offset(at: instant)).floorDivided(by: 86_400)
    }

    // MARK: Codable, as its text

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try Schedule(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}
