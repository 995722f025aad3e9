import Foundation
import PropertyBased
import Testing

@testable import GallraPolicy

/// The TZif reader is hand-written and reads files from disk: whatever the bytes, it must refuse them cleanly or
/// give offsets a clock can have, and a well-formed file must read back as written.
@Suite("Time zone files, property-based")
struct ZoneRulesPropertyTests {
    /// RFC 8536's bounds on an offset are -25 and +26 hours; nothing read may lie outside ±26 hours.
    static let offsetBound: Int64 = 26 * 3600

    /// Real files to damage: one with a daylight saving rule, one with odd offsets, one without transitions.
    static let realFiles: [[UInt8]] = ["Europe/Stockholm", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"].compactMap {
        FileManager.default.contents(atPath: ZoneRules.directory + "/" + $0).map { [UInt8]($0) }
    }

    /// Instants from year 1000 to year 5000, where every caller's arithmetic stays far from overflow.
    static let instants = Gen<Int64>.int64(in: -30_000_000_000...95_000_000_000)

    static func expectPlausibleOffsets(_ rules: ZoneRules, at instants: [Int64]) {
        for instant in instants {
            let offset = rules.offset(at: instant)
            #expect(abs(offset) <= offsetBound, "offset \(offset) at \(instant)")
        }
    }

    @Test("arbitrary bytes after a TZif magic never crash the reader; what it accepts has offsets within ±26 h")
    func arbitraryBytes() async {
        let bytes = Gen<UInt8>.value(in: 0...255).array(of: 0...200)
        let version = Gen.element(of: [UInt8(0), UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "9")])
        await propertyCheck(count: 3000, input: bytes, version, Self.instants.array(of: 8)) { body, version, instants in
            var file = Array("TZif".utf8) + [version ?? 0] + body
            if body.count > 40 { file += Array("TZif2".utf8) + body.reversed() }
            if let rules = ZoneRules.parse(file, identifier: "Test/Random") {
                Self.expectPlausibleOffsets(rules, at: instants)
            }
            _ = ZoneRules.parse(body, identifier: "Test/Random")
        }
    }

    @Test(
        "a real zone file with bytes changed, cut short or grown never crashes the reader, nor gives offsets past ±26 h"
    )
    func damagedRealFiles() async throws {
        try #require(!Self.realFiles.isEmpty)
        let files = Gen.element(of: Self.realFiles)
        let damage = zip(Gen<Int>.int(in: 0...100_000), Gen<UInt8>.value(in: 0...255)).array(of: 1...6)
        let cut = Gen<Int>.int(in: 0...100_000)
        await propertyCheck(count: 3000, input: files, damage, cut, Self.instants.array(of: 8)) {
            file, damage, cut, instants in
            guard var bytes = file else { return }
            for (position, value) in damage { bytes[position % bytes.count] = value }
            if cut % 3 == 0 { bytes = Array(bytes.prefix(cut % (bytes.count + 1))) }
            if cut % 5 == 0 { bytes += bytes.prefix(cut % 64) }
            if let rules = ZoneRules.parse(bytes, identifier: "Test/Damaged") {
                Self.expectPlausibleOffsets(rules, at: instants)
            }
        }
    }

    /// A zone as a TZif file holds it: transitions, the offset from each, and the footer's fixed offset (if any).
    struct GeneratedZone: Sendable, CustomStringConvertible {
        var version: UInt8
        var transitions: [Int64]
        /// Offsets of the local time types; type 0 is also the offset before the first transition.
        var typeOffsets: [Int32]
        /// For each transition, the index of its type.
        var typeIndices: [Int]
        /// Whole hours east of UTC the footer gives after the last transition, or nil for no footer.
        var footerHours: Int?

        var description: String {
            "v\(version) transitions \(transitions) types \(typeOffsets) indices \(typeIndices) footer \(footerHours.map(String.init) ?? "none")"
        }

        /// The file, written field by field after RFC 8536 section 3.
        var bytes: [UInt8] {
            func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
                withUnsafeBytes(of: value.bigEndian, Array.init)
            }
            func header(version: UInt8, timeCount: Int, typeCount: Int, charCount: Int) -> [UInt8] {
                Array("TZif".utf8) + [version] + [UInt8](repeating: 0, count: 15)
                    + [0, 0, 0, timeCount, typeCount, charCount].flatMap { bigEndian(Int32($0)) }
            }
            func types() -> [UInt8] { typeOffsets.flatMap { bigEndian($0) + [0, 0] } + [0] }
            if version == 0 {
                return header(version: 0, timeCount: transitions.count, typeCount: typeOffsets.count, charCount: 1)
                    + transitions.flatMap { bigEndian(Int32($0)) } + typeIndices.map(UInt8.init) + types()
            }
            // A version 1 block with no transitions, then the 64-bit block the reader uses.
            var file = header(version: version, timeCount: 0, typeCount: 1, charCount: 1) + [0, 0, 0, 0, 0, 0, 0]
            file += header(version: version, timeCount: transitions.count, typeCount: typeOffsets.count, charCount: 1)
            file += transitions.flatMap { bigEndian($0) } + typeIndices.map(UInt8.init) + types()
            let footer =
                footerHours.map { hours in
                    "<\(hours >= 0 ? "+" : "-")\(abs(hours) < 10 ? "0" : "")\(abs(hours))>\(-hours)"
                } ?? ""
            return file + Array("\n\(footer)\n".utf8)
        }
    }

    static let generatedZones: Generator<GeneratedZone, Shrink.None<GeneratedZone>> = Generator { rng in
        let version = [UInt8(0), UInt8(ascii: "2"), UInt8(ascii: "3")].randomElement(using: &rng)!
        let range: ClosedRange<Int64> = version == 0 ? -2_000_000_000...2_000_000_000 : -9_000_000_000...9_000_000_000
        let transitions = Set(
            (0..<Int.random(in: 0...40, using: &rng)).map { _ in Int64.random(in: range, using: &rng) }
        )
        .sorted()
        let typeOffsets = (0..<Int.random(in: 1...6, using: &rng)).map { _ in
            Int32.random(in: -89_999...93_599, using: &rng)
        }
        let typeIndices = transitions.map { _ in Int.random(in: 0..<typeOffsets.count, using: &rng) }
        let footerHours = version != 0 && Bool.random(using: &rng) ? Int.random(in: -12...14, using: &rng) : nil
        return GeneratedZone(
            version: version, transitions: transitions, typeOffsets: typeOffsets, typeIndices: typeIndices,
            footerHours: footerHours)
    }

    @Test("a TZif file with an offset beyond -25 or +26 hours is refused as damaged")
    func outOfBoundsOffsetsAreRefused() async {
        let wild = Gen<Int32>.int32(in: Int32.min...Int32.max).map { $0 < 0 ? min($0, -90_000) : max($0, 93_600) }
        await propertyCheck(count: 100, input: Self.generatedZones, wild, Gen<Int>.int(in: 0...5)) {
            zone, offset, index in
            var damaged = zone
            damaged.typeOffsets[index % zone.typeOffsets.count] = offset
            #expect(ZoneRules.parse(damaged.bytes, identifier: "Test/Damaged") == nil, "\(damaged)")
        }
    }

    @Test("a well-formed TZif file reads back: the written offset before, at and between each transition")
    func generatedFilesRoundTrip() async {
        await propertyCheck(count: 300, input: Self.generatedZones) { zone in
            let rules = ZoneRules.parse(zone.bytes, identifier: "Test/Generated")
            #expect(rules != nil, "\(zone)")
            guard let rules else { return }
            let initial = Int64(zone.typeOffsets[0])
            guard let first = zone.transitions.first else {
                // No transitions: type 0 holds throughout (the footer applies only after a last transition).
                #expect(rules.offset(at: 0) == initial && rules.offset(at: 5_000_000_000) == initial)
                return
            }
            #expect(rules.offset(at: first - 1) == initial)
            for (index, transition) in zone.transitions.enumerated() {
                let written = Int64(zone.typeOffsets[zone.typeIndices[index]])
                let isLast = index == zone.transitions.count - 1
                let expected = isLast ? zone.footerHours.map { Int64($0) * 3600 } ?? written : written
                #expect(rules.offset(at: transition) == expected, "at transition \(index) of \(zone)")
                if !isLast {
                    #expect(rules.offset(at: zone.transitions[index + 1] - 1) == written, "before \(index + 1)")
                }
            }
        }
    }
}
