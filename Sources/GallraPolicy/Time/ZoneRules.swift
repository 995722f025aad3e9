// Foundation, not FoundationEssentials: walking the zoneinfo directory and reading the head of each file.
import Foundation

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
