import Foundation
import GallraCore

/// A time zone's offsets from UTC, read from the system's time zone database (TZif files, RFC 8536, in
/// `/usr/share/zoneinfo` or `$TZDIR`), as the C library, cron and systemd timers read it: a schedule follows the
/// rules the operator's system updates (Debian's `tzdata`), and a process does not load ICU and its own copy of
/// the rules, megabytes of memory, to compute a few offsets.
///
/// Instants after the last transition a file lists follow its footer, a POSIX `TZ` rule
/// (`CET-1CEST,M3.5.0,M10.5.0/3`).
public struct ZoneRules: Sendable, Hashable {
    /// The IANA identifier, e.g. `Europe/Stockholm`, or `UTC`.
    public let identifier: String
    /// Transition instants (Unix seconds), ascending, and the offset (seconds east of UTC) from each on.
    private let transitions: [Int64]
    private let offsets: [Int64]
    /// The offset before the first transition.
    private let initialOffset: Int64
    /// The rule after the last transition; nil when the last offset holds for good.
    private let rule: PosixZoneRule?

    public static let utc = ZoneRules(identifier: "UTC", transitions: [], offsets: [], initialOffset: 0, rule: nil)

    private init(identifier: String, transitions: [Int64], offsets: [Int64], initialOffset: Int64, rule: PosixZoneRule?)
    {
        self.identifier = identifier
        self.transitions = transitions
        self.offsets = offsets
        self.initialOffset = initialOffset
        self.rule = rule
    }

    /// The directory of the time zone database: `$TZDIR`, else `/usr/share/zoneinfo`.
    public static var directory: String {
        ProcessInfo.processInfo.environment["TZDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/share/zoneinfo"
    }

    /// The zone named `identifier` (as IANA spells it, case included); nil if the database has no such zone or
    /// its file cannot be read.
    public init?(identifier: String) {
        guard Self.isPlausibleIdentifier(identifier),
            let bytes = FileManager.default.contents(atPath: Self.directory + "/" + identifier),
            let parsed = Self.parse([UInt8](bytes), identifier: identifier)
        else { return nil }
        self = parsed
    }

    /// Offset from UTC in seconds (east positive) at an instant given in Unix seconds.
    public func offset(at instant: Int64) -> Int64 {
        guard let first = transitions.first, instant >= first else { return initialOffset }
        if let rule, instant >= transitions[transitions.count - 1] {
            return rule.offset(at: instant)
        }
        // The last transition at or before the instant.
        var low = 0
        var high = transitions.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if transitions[middle] <= instant { low = middle } else { high = middle - 1 }
        }
        return offsets[low]
    }

    /// Every zone identifier the database holds (for suggestions): its TZif files, without the `posix/` and
    /// `right/` copies.
    public static func knownIdentifiers() -> [String] {
        let root = directory
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var identifiers: [String] = []
        while let path = walker.nextObject() as? String {
            if path == "posix" || path == "right" {
                walker.skipDescendants()
                continue
            }
            guard isPlausibleIdentifier(path), path.first?.isUppercase == true,
                let handle = FileHandle(forReadingAtPath: root + "/" + path)
            else { continue }
            let magic = try? handle.read(upToCount: 4)
            try? handle.close()
            if magic.map(Array.init) == Array("TZif".utf8) { identifiers.append(path) }
        }
        return identifiers.sorted()
    }

    /// Letters, digits, `_`, `-`, `+` and `/` between names: no path that leaves the database.
    static func isPlausibleIdentifier(_ identifier: String) -> Bool {
        let parts = identifier.split(separator: "/", omittingEmptySubsequences: false)
        return !identifier.isEmpty && identifier.utf8.count < 256
            && parts.allSatisfy { part in
                !part.isEmpty && part != "." && part != ".."
                    && part.unicodeScalars.allSatisfy {
                        $0.isASCII
                            && ($0.properties.isAlphabetic || ("0"..."9").contains($0)
                                || "_-+.".unicodeScalars.contains($0))
                    }
            }
    }

    // MARK: TZif (RFC 8536)

    /// Reads a TZif file: the 64-bit data block of version 2 and later (the 32-bit one of version 1), and the
    /// footer rule. Nil for anything malformed.
    static func parse(_ bytes: [UInt8], identifier: String) -> ZoneRules? {
        var reader = TZifReader(bytes: bytes)
        guard let first = reader.header() else { return nil }
        var header = first
        var timeSize = 4
        if first.version >= 2 {
            // Skip the version 1 block; the second header introduces the 64-bit one.
            guard reader.skip(first.dataLength(timeSize: 4)), let second = reader.header() else { return nil }
            header = second
            timeSize = 8
        }
        // Counts the bytes cannot hold are refused before anything is reserved for them.
        guard header.typeCount > 0, reader.remaining >= header.dataLength(timeSize: timeSize) else { return nil }
        var transitions: [Int64] = []
        transitions.reserveCapacity(header.timeCount)
        for _ in 0..<header.timeCount {
            guard let time = timeSize == 8 ? reader.int64() : reader.int32().map(Int64.init) else { return nil }
            transitions.append(time)
        }
        var typeIndices: [Int] = []
        for _ in 0..<header.timeCount {
            guard let index = reader.byte(), Int(index) < header.typeCount else { return nil }
            typeIndices.append(Int(index))
        }
        var typeOffsets: [Int64] = []
        for _ in 0..<header.typeCount {
            // RFC 8536: an offset lies within -25 and +26 hours; anything else is a damaged file.
            guard let offset = reader.int32(), (-89_999...93_599).contains(offset), reader.skip(2) else { return nil }
            typeOffsets.append(Int64(offset))
        }
        let rest = header.charCount + header.leapCount * (timeSize + 4) + header.isStdCount + header.isUTCount
        guard reader.skip(rest) else { return nil }
        var rule: PosixZoneRule?
        if first.version >= 2, let footer = reader.footer(), !footer.isEmpty {
            guard let parsed = PosixZoneRule(footer) else { return nil }
            rule = parsed
        }
        guard zip(transitions, transitions.dropFirst()).allSatisfy({ $0 < $1 }) else { return nil }
        return ZoneRules(
            identifier: identifier, transitions: transitions, offsets: typeIndices.map { typeOffsets[$0] },
            initialOffset: typeOffsets[0], rule: rule)
    }
}

/// Reads big-endian fields of a TZif file.
private struct TZifReader {
    let bytes: [UInt8]
    var position = 0

    struct Header {
        var version: Int
        var isUTCount: Int
        var isStdCount: Int
        var leapCount: Int
        var timeCount: Int
        var typeCount: Int
        var charCount: Int

        func dataLength(timeSize: Int) -> Int {
            timeCount * timeSize + timeCount + typeCount * 6 + charCount + leapCount * (timeSize + 4) + isStdCount
                + isUTCount
        }
    }

    mutating func header() -> Header? {
        guard position + 44 <= bytes.count, Array(bytes[position..<position + 4]) == Array("TZif".utf8) else {
            return nil
        }
        let versionByte = bytes[position + 4]
        let version = versionByte == 0 ? 1 : Int(versionByte) - Int(UInt8(ascii: "0"))
        guard (1...9).contains(version) else { return nil }
        position += 20
        var counts: [Int] = []
        for _ in 0..<6 {
            guard let count = int32(), count >= 0 else { return nil }
            counts.append(Int(count))
        }
        return Header(
            version: version, isUTCount: counts[0], isStdCount: counts[1], leapCount: counts[2], timeCount: counts[3],
            typeCount: counts[4], charCount: counts[5])
    }

    var remaining: Int { bytes.count - position }

    mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, position + count <= bytes.count else { return false }
        position += count
        return true
    }

    mutating func byte() -> UInt8? {
        guard position < bytes.count else { return nil }
        position += 1
        return bytes[position - 1]
    }

    mutating func int32() -> Int32? { bigEndian() }

    mutating func int64() -> Int64? { bigEndian() }

    private mutating func bigEndian<T: FixedWidthInteger>() -> T? {
        let size = T.bitWidth / 8
        guard position + size <= bytes.count else { return nil }
        var value = T.zero
        for byte in bytes[position..<position + size] { value = value << 8 | T(truncatingIfNeeded: byte) }
        position += size
        return value
    }

    /// The text between the newlines after the data.
    mutating func footer() -> String? {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\n") else { return nil }
        let start = position + 1
        guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }
}

/// A POSIX `TZ` rule (POSIX.1-2017 8.3, with RFC 8536's extensions: hours -167 to 167 in transition times):
/// a standard offset and, optionally, a daylight offset with the dates and times it starts and ends each year.
struct PosixZoneRule: Sendable, Hashable {
    /// Seconds east of UTC (POSIX writes them west: `CET-1` is one hour east).
    var standardOffset: Int64
    var daylight: Daylight?

    struct Daylight: Sendable, Hashable {
        var offset: Int64
        var start: Transition
        var end: Transition
    }

    /// A day of the year and a local time of day (seconds, may be negative or past 24 hours).
    struct Transition: Sendable, Hashable {
        enum Day: Sendable, Hashable {
            /// `Jn`: day 1-365, February 29 never counted.
            case julianNoLeap(Int)
            /// `n`: day 0-365, February 29 counted in leap years.
            case zeroBased(Int)
            /// `Mm.w.d`: weekday d (0 Sunday) of week w (5: the last) of month m.
            case monthWeekDay(month: Int, week: Int, weekday: Int)
        }
        var day: Day
        var time: Int64

        /// The local instant (seconds since 1970-01-01 00:00 local) of the transition in `year`.
        func localSeconds(in year: Int) -> Int64 {
            let january1 = CivilCalendar.daysFromCivil(year, 1, 1)
            let dayNumber: Int64
            switch day {
            case .julianNoLeap(let n):
                let leap = CivilCalendar.daysInMonth(year, 2) == 29
                dayNumber = january1 + Int64(n - 1) + (leap && n >= 60 ? 1 : 0)
            case .zeroBased(let n):
                dayNumber = january1 + Int64(n)
            case .monthWeekDay(let month, let week, let weekday):
                let first = CivilCalendar.daysFromCivil(year, month, 1)
                let firstWeekday = Int64(ScheduleCivilDay(dayNumber: first).weekday)
                var candidate = first + (Int64(weekday) - firstWeekday + 7) % 7 + Int64(week - 1) * 7
                let length = Int64(CivilCalendar.daysInMonth(year, month))
                while candidate >= first + length { candidate -= 7 }
                dayNumber = candidate
            }
            return dayNumber * 86_400 + time
        }
    }

    func offset(at instant: Int64) -> Int64 {
        guard let daylight else { return standardOffset }
        let year = ScheduleCivilDay(dayNumber: (instant + standardOffset).floorDivided(by: 86_400)).year
        // The latest start or end at or before the instant, of this year or the ones either side: a start happens
        // at standard time, an end at daylight time.
        var latest: (instant: Int64, offset: Int64)?
        for candidate in (year - 1)...(year + 1) {
            let start = daylight.start.localSeconds(in: candidate) - standardOffset
            let end = daylight.end.localSeconds(in: candidate) - daylight.offset
            for (at, offset) in [(start, daylight.offset), (end, standardOffset)]
            where at <= instant && at >= (latest?.instant ?? .min) {
                latest = (at, offset)
            }
        }
        return latest?.offset ?? standardOffset
    }

    /// Parses `std offset [dst [offset] [,start[/time],end[/time]]]`; nil if malformed or without the dates.
    init?(_ text: String) {
        var scanner = PosixRuleScanner(text: Array(text.utf8))
        guard scanner.name(), let standardWest = scanner.offset(maximumHours: 24) else { return nil }
        standardOffset = -standardWest
        guard !scanner.atEnd else {
            daylight = nil
            return
        }
        guard scanner.name() else { return nil }
        var daylightOffset = standardOffset + 3600
        if !scanner.peek(","), let west = scanner.offset(maximumHours: 24) { daylightOffset = -west }
        guard scanner.consume(","), let start = scanner.transition(), scanner.consume(","),
            let end = scanner.transition(), scanner.atEnd
        else { return nil }
        daylight = Daylight(offset: daylightOffset, start: start, end: end)
    }
}

/// Reads the parts of a POSIX `TZ` rule.
private struct PosixRuleScanner {
    let text: [UInt8]
    var position = 0

    var atEnd: Bool { position == text.count }

    func peek(_ character: Character) -> Bool {
        position < text.count && text[position] == character.asciiValue
    }

    mutating func consume(_ character: Character) -> Bool {
        guard peek(character) else { return false }
        position += 1
        return true
    }

    /// A zone abbreviation: three or more letters, or `<...>` with letters, digits, `+` and `-`.
    mutating func name() -> Bool {
        let start = position
        if consume("<") {
            while position < text.count, text[position] != UInt8(ascii: ">") { position += 1 }
            guard consume(">") else { return false }
            return position - start >= 5
        }
        while position < text.count,
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(text[position] & ~0x20)
        {
            position += 1
        }
        return position - start >= 3
    }

    mutating func number() -> Int? {
        let start = position
        var value = 0
        while position < text.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[position]) {
            value = value * 10 + Int(text[position] - UInt8(ascii: "0"))
            position += 1
            guard value < 1_000_000 else { return nil }
        }
        return position > start ? value : nil
    }

    /// `[+-]hh[:mm[:ss]]` in seconds.
    mutating func offset(maximumHours: Int) -> Int64? {
        var sign: Int64 = 1
        if consume("-") { sign = -1 } else { _ = consume("+") }
        guard let hours = number(), hours <= maximumHours else { return nil }
        var seconds = Int64(hours) * 3600
        if consume(":") {
            guard let minutes = number(), minutes < 60 else { return nil }
            seconds += Int64(minutes) * 60
            if consume(":") {
                guard let secs = number(), secs < 60 else { return nil }
                seconds += Int64(secs)
            }
        }
        return sign * seconds
    }

    /// `Jn`, `n` or `Mm.w.d`, then an optional `/time` (02:00 by default).
    mutating func transition() -> PosixZoneRule.Transition? {
        let day: PosixZoneRule.Transition.Day
        if consume("J") {
            guard let n = number(), (1...365).contains(n) else { return nil }
            day = .julianNoLeap(n)
        } else if consume("M") {
            guard let month = number(), (1...12).contains(month), consume("."), let week = number(),
                (1...5).contains(week), consume("."), let weekday = number(), (0...6).contains(weekday)
            else { return nil }
            day = .monthWeekDay(month: month, week: week, weekday: weekday)
        } else {
            guard let n = number(), (0...365).contains(n) else { return nil }
            day = .zeroBased(n)
        }
        var time: Int64 = 7200
        if consume("/") {
            guard let parsed = offset(maximumHours: 167) else { return nil }
            time = parsed
        }
        return PosixZoneRule.Transition(day: day, time: time)
    }
}
