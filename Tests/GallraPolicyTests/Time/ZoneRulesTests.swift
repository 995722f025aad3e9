import Foundation
import Testing

@testable import GallraPolicy

/// Time zones read from the system's database. That the offsets agree with PostgreSQL's reading of the same
/// database, instant by instant across two centuries, is checked in `GallraEngineTests` (it needs a server).
@Suite("Time zone rules")
struct ZoneRulesTests {
    @Test func aZoneFromTheDatabase() throws {
        let stockholm = try #require(ZoneRules(identifier: "Europe/Stockholm"))
        #expect(stockholm.identifier == "Europe/Stockholm")
        // 2026-01-15 (CET) and 2026-07-15 (CEST).
        #expect(stockholm.offset(at: 1_768_435_200) == 3600)
        #expect(stockholm.offset(at: 1_784_073_600) == 7200)
        // The change of 2026-03-29 01:00 UTC, to the second.
        #expect(stockholm.offset(at: 1_774_745_999) == 3600)
        #expect(stockholm.offset(at: 1_774_746_000) == 7200)
        // Far beyond the file's transitions, from its footer rule: 2300-07-01.
        #expect(stockholm.offset(at: 10_429_430_400) == 7200)
        #expect(ZoneRules.utc.offset(at: 1_784_073_600) == 0)
    }

    @Test func namesThatAreNotZonesAreRefused() {
        for name in [
            "Mars/Olympus_Mons", "europe/stockholm", "../../etc/passwd", "/etc/localtime", "", "Europe//Oslo",
            "Europe/Stockholm/", "tzdata.zi",
        ] {
            #expect(ZoneRules(identifier: name) == nil, "\(name)")
        }
    }

    @Test func knownIdentifiersAreTheDatabasesZones() {
        let known = ZoneRules.knownIdentifiers()
        #expect(known.contains("Europe/Stockholm"))
        #expect(known.contains("America/Argentina/Buenos_Aires"))
        #expect(!known.contains { $0.hasPrefix("posix/") || $0.hasPrefix("right/") })
        #expect(!known.contains("zone.tab"))
    }

    @Test func posixRules() throws {
        // Northern: 2026-03-29 01:00 UTC to 2026-10-25 01:00 UTC.
        let cet = try #require(PosixZoneRule("CET-1CEST,M3.5.0,M10.5.0/3"))
        #expect(cet.offset(at: 1_774_745_999) == 3600)
        #expect(cet.offset(at: 1_774_746_000) == 7200)
        #expect(cet.offset(at: 1_792_889_999) == 7200)
        #expect(cet.offset(at: 1_792_890_000) == 3600)
        // Southern: daylight time from October to April, across the new year.
        let sydney = try #require(PosixZoneRule("AEST-10AEDT,M10.1.0,M4.1.0/3"))
        #expect(sydney.offset(at: 1_767_225_600) == 39600)  // 2026-01-01
        #expect(sydney.offset(at: 1_781_913_600) == 36000)  // 2026-06-20
        // Negative daylight saving (Irish Standard Time in summer, GMT in winter).
        let dublin = try #require(PosixZoneRule("IST-1GMT0,M10.5.0,M3.5.0/1"))
        #expect(dublin.offset(at: 1_767_225_600) == 0)
        #expect(dublin.offset(at: 1_784_073_600) == 3600)
        // No daylight time, a quoted numeric name, minutes.
        #expect(PosixZoneRule("<+0530>-5:30")?.offset(at: 0) == 19800)
        #expect(PosixZoneRule("EST5")?.offset(at: 0) == -18000)
        // Julian days: J60 is March 1 in every year.
        let julian = try #require(PosixZoneRule("AAA0BBB,J60/0,J300/0"))
        #expect(julian.offset(at: 1_709_251_199) == 0)  // 2024-02-29 23:59:59, a leap year
        #expect(julian.offset(at: 1_709_251_200) == 3600)
        for malformed in [
            "", "CET", "CET-1CEST", "CET-1CEST,M13.1.0,M10.5.0", "CET-1CEST,M3.5.0", "C-1",
            "CET-1CEST,M3.5.0,M10.5.0/3x",
        ] {
            #expect(PosixZoneRule(malformed) == nil, "\(malformed)")
        }
    }

    @Test func malformedFilesAreRefused() {
        #expect(ZoneRules.parse([], identifier: "X") == nil)
        #expect(ZoneRules.parse(Array("TZif2".utf8) + [UInt8](repeating: 0, count: 10), identifier: "X") == nil)
        let stockholm = FileManager.default.contents(atPath: ZoneRules.directory + "/Europe/Stockholm").map(Array.init)
        if let stockholm {
            #expect(ZoneRules.parse(stockholm, identifier: "X") != nil)
            #expect(ZoneRules.parse(Array(stockholm.prefix(stockholm.count / 2)), identifier: "X") == nil)
        }
    }
}
