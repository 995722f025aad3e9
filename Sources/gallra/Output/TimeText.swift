#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraPostgres

/// Times as the commands print and read them, always in UTC: the text for people, RFC 3339 for JSON, and the
/// instants given on the command line. Written without Foundation's formatters, which load ICU and its locale
/// data for nothing but a fixed format.
enum TimeText {
    /// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
    private static let microsecondsFrom1970To2000 = CivilCalendar.unixSecondsAt2000 * 1_000_000

    // MARK: For people

    /// `2026-11-29 03:00:00 UTC`: whole seconds (truncated), for schedules and policy versions.
    static func readable(_ date: Date) -> String {
        PostgresTimestamp(date).secondsText + " UTC"
    }

    /// `2026-03-01 03:00:00.123456 UTC`: to the microsecond, as the audit trail stores it (microseconds
    /// since 1970 UTC).
    static func readable(unixMicroseconds microseconds: Int64) -> String {
        timestamp(unixMicroseconds: microseconds).description + " UTC"
    }

    // MARK: For JSON

    /// RFC 3339: `2026-03-01T03:00:00Z`, `2026-03-01T03:00:00.123456Z`; the fraction of a second appears only
    /// when it is not zero, to the microsecond, without trailing zeros.
    static func rfc3339(_ timestamp: PostgresTimestamp) -> String {
        guard !timestamp.isInfinite else { return timestamp.description }
        return timestamp.description.replacing(" ", with: "T") + "Z"
    }

    /// RFC 3339 of a Foundation `Date`, rounded to the microsecond.
    static func rfc3339(_ date: Date) -> String {
        rfc3339(PostgresTimestamp(date))
    }

    /// RFC 3339 of a time of the audit trail (microseconds since 1970 UTC).
    static func rfc3339(unixMicroseconds microseconds: Int64) -> String {
        rfc3339(timestamp(unixMicroseconds: microseconds))
    }

    // MARK: From the command line

    /// An instant given on the command line: a date (midnight), or a date and a time (`T` or a space between
    /// them), UTC unless an offset is given (`2027-01-01`, `'2026-03-01 14:00'`, `2026-03-01T14:00:00+01:00`).
    /// Nil for anything else.
    static func parseInstant(_ text: String) -> Date? {
        PostgresTimestamp(iso8601: text)?.date
    }

    private static func timestamp(unixMicroseconds microseconds: Int64) -> PostgresTimestamp {
        PostgresTimestamp(microsecondsSince2000: microseconds - microsecondsFrom1970To2000)
    }
}

extension JSONEncoder.DateEncodingStrategy {
    /// Every `Date` of the commands' JSON as ``TimeText/rfc3339(_:)-(Date)`` writes it.
    static var rfc3339: Self {
        .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(TimeText.rfc3339(date))
        }
    }
}
