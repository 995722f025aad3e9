/// Why a schedule's text could not be read: what is wrong, where, and a correct schedule like it.
///
/// The text of a schedule comes from a policy file, never from rows, so it may appear in messages.
public struct ScheduleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem. Compare with the static members; more may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case empty
            case unknownForm
            case invalidTime
            case invalidInterval
            case intervalTooShort
            case invalidField
            case fieldOutOfRange
            case wrongFieldCount
            case invalidStep
            case unknownName
            case unknownTimeZone
            case timeZoneNotAllowed
            case neverFires
            case unexpectedText
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The text is empty or only white space.
        public static let empty = Self(.empty)
        /// The text starts with none of the known forms (`every`, `hourly`, `daily`, `weekly`, `monthly`, cron).
        public static let unknownForm = Self(.unknownForm)
        /// A time of day is malformed or out of range (`24:00`, `03:60`, `3pm`).
        public static let invalidTime = Self(.invalidTime)
        /// An interval is zero, too long, or has an unknown unit.
        public static let invalidInterval = Self(.invalidInterval)
        /// An interval is shorter than one minute.
        public static let intervalTooShort = Self(.intervalTooShort)
        /// A cron field or a list of days is malformed.
        public static let invalidField = Self(.invalidField)
        /// A number is outside its field's range (minute 60, day 32).
        public static let fieldOutOfRange = Self(.fieldOutOfRange)
        /// A cron expression does not have exactly five fields.
        public static let wrongFieldCount = Self(.wrongFieldCount)
        /// A step (`*/0`) is not a whole number of at least 1.
        public static let invalidStep = Self(.invalidStep)
        /// A day or month name is not known.
        public static let unknownName = Self(.unknownName)
        /// The time zone is not a known IANA identifier.
        public static let unknownTimeZone = Self(.unknownTimeZone)
        /// A time zone was given where it has no effect (`every 6h Europe/Stockholm`).
        public static let timeZoneNotAllowed = Self(.timeZoneNotAllowed)
        /// The calendar pattern matches no day at all (`0 0 30 2 *`).
        public static let neverFires = Self(.neverFires)
        /// Text follows a complete schedule.
        public static let unexpectedText = Self(.unexpectedText)

        public var description: String { base.rawValue }
    }

    /// The kind of problem.
    public let code: Code
    /// The schedule as written.
    public let text: String
    /// 1-based column (in characters) in `text` where the problem is, when it has a place.
    public let column: Int?
    /// What is wrong, e.g. "hour 24 is out of range 0-23".
    public let message: String
    /// A correct schedule close to what was meant, e.g. "daily at 03:00".
    public let example: String

    public init(code: Code, text: String, column: Int?, message: String, example: String) {
        self.code = code
        self.text = text
        self.column = column
        self.message = message
        self.example = example
    }

    public var description: String {
        let place = column.map { " (column \($0))" } ?? ""
        return "invalid schedule \"\(text)\"\(place): \(message); for example: \(example)"
    }
}
