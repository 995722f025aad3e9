import Foundation
import GallraEngine
import Testing

/// `systemd/gallra.catalog` explains every event gallra logs, in a form journalctl accepts.
@Suite("The journal catalog")
struct CatalogFileTests {
    @Test func everyEventHasAnEntryThatJournalctlReads() async throws {
        guard let root = ProcessInfo.processInfo.environment["GALLRA_SOURCE_ROOT"] else {
            Issue.record("GALLRA_SOURCE_ROOT is not set: run the tests through `make test`")
            return
        }
        try await Harness.withTemporaryDirectory { dir in
            // journalctl builds its catalog database under --root from <root>/usr/lib/systemd/catalog.
            let catalogs = "\(dir)/usr/lib/systemd/catalog"
            try FileManager.default.createDirectory(atPath: catalogs, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: "\(root)/systemd/gallra.catalog", toPath: "\(catalogs)/gallra.catalog")
            let update = try await run("/usr/bin/journalctl", ["--root=\(dir)", "--update-catalog"])
            #expect(update.status == 0, "\(update.stderr)")
            #expect(!update.stderr.contains("gallra.catalog"), "journalctl complains: \(update.stderr)")
            let list = try await run("/usr/bin/journalctl", ["--root=\(dir)", "--list-catalog"])
            #expect(list.status == 0, "\(list.stderr)")
            let listed = Set(
                list.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
            for event in JournalEvent.allCases {
                #expect(listed.contains(event.rawValue), "no catalog entry for \(event) (\(event.rawValue))")
            }
        }
    }
}
