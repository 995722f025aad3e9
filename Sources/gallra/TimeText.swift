import Foundation
import GallraCore
import GallraPostgres

/// Times as the commands print and read them, in UTC, without Foundation's formatters (they load ICU and its
/// locale data for nothing but a fixed format).
enum TimeText {
    /// RFC 3339 for JSON: `2026-03-01T03:00:00Z`, `2026-03-01T03:00:00.123456Z`; the fraction of a second
    /// appears only when it is not zero, to the microsecond, without trailing zeros.
    static func rfc3339(_ timestamp: PostgresTimestamp) -> String {
        guard !timestamp.isInfinite else { return timestamp.description }
        return timestamp.description.replacingOccurrences(of: " ", with: "T") + "Z"
    }

    /// RFC 3339 of a Foundation `Date`, rounded to the microsecond.
    static func rfc3339(_ date: Date) -> String {
        rfc3339(PostgresTimestamp(date))
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
