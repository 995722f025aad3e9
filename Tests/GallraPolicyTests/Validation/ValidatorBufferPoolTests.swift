@testable import GallraPolicy
import Testing

@Suite("Validator: tables larger than the buffer pool")
struct ValidatorBufferPoolTests {
    /// The demo shop with every table at `bytes`, the server's `shared_buffers` at `pool` and its background
    /// writer `writer`.
    static func shop(tablesOf bytes: Int64?, pool: Int64?, writer: BackgroundWriter? = nil) -> Catalog {
        var catalog = Fixtures.demoShop
        for name in catalog.tables.keys { catalog.tables[name]?.bytes = bytes }
        catalog.sharedBuffers = pool
        catalog.backgroundWriter = writer
        return catalog
    }

    /// PostgreSQL's own settings: 100 buffers every 200 ms.
    static let defaultWriter = BackgroundWriter(delayMilliseconds: 200, maxPages: 100)

    static let mebibyte: Int64 = 1024 * 1024

    @Test("tables larger than shared_buffers: a warning at limits.batch_size with both sizes")
    func largerThanPool() throws {
        // The fixed example changes six tables (the subject table among them) of 300 MB each: 1.8 GB.
        let result = validation(
            fixedExample, against: Self.shop(tablesOf: 300 * Self.mebibyte, pool: 128 * Self.mebibyte))
        #expect(result.errors.isEmpty, "\(result.errors)")
        let warning = try #require(result.warnings.first { $0.path == "limits.batch_size" })
        #expect(
            warning.message
                == "the tables this policy changes take 1.8 GB with their indexes, more than shared_buffers (128 MB): its batches read back in, and write out again, the pages that earlier batches changed (rows that lie in another order than the subjects' keys, such as orders by date), which one statement over all subjects would visit once; a shared_buffers that holds these tables keeps those pages in memory (docs/scaling.md)"
        )
        #expect(warning.location?.line == 20)
        #expect(result.resolved != nil)
    }

    @Test("tables that fit in shared_buffers, or sizes unknown: no such warning")
    func fitsOrUnknown() {
        for catalog in [
            Self.shop(tablesOf: 10 * Self.mebibyte, pool: 128 * Self.mebibyte),
            Self.shop(tablesOf: nil, pool: 128 * Self.mebibyte),
            Self.shop(tablesOf: 300 * Self.mebibyte, pool: nil),
        ] {
            let result = validation(fixedExample, against: catalog)
            #expect(result.errors.isEmpty, "\(result.errors)")
            #expect(!result.warnings.contains { $0.path == "limits.batch_size" })
        }
    }

    @Test("a background writer slower than the purge, with tables larger than shared_buffers: a second warning")
    func slowBackgroundWriter() throws {
        let result = validation(
            fixedExample,
            against: Self.shop(tablesOf: 300 * Self.mebibyte, pool: 128 * Self.mebibyte, writer: Self.defaultWriter))
        #expect(result.errors.isEmpty, "\(result.errors)")
        let warnings = result.warnings.filter { $0.path == "limits.batch_size" }
        #expect(warnings.count == 2)
        #expect(
            warnings.last?.message
                == "the server's background writer writes out at most 500 buffers a second (bgwriter_lru_maxpages 100 every bgwriter_delay 200ms): with tables larger than shared_buffers, the server process running the batches writes out most of the pages they changed itself, before it can read the next (a ninth of a run's time in docs/benchmark.md); a writer that keeps up, such as bgwriter_lru_maxpages 1000 every bgwriter_delay 10ms, does that on a core of its own (docs/scaling.md)"
        )
        #expect(warnings.last?.location?.line == 20)

        // A writer allowed 20,000 buffers a second still left most of them to the purge.
        let slower = Self.lastWarning(writer: BackgroundWriter(delayMilliseconds: 50, maxPages: 1000))
        #expect(
            slower?.hasPrefix(
                "the server's background writer writes out at most 20000 buffers a second (bgwriter_lru_maxpages 1000 every bgwriter_delay 50ms):"
            ) == true, "\(slower ?? "no warning")")
        let off = Self.lastWarning(writer: BackgroundWriter(delayMilliseconds: 200, maxPages: 0))
        #expect(
            off?.hasPrefix(
                "the server's background writer is off (bgwriter_lru_maxpages 0): with tables larger than shared_buffers"
            ) == true, "\(off ?? "no warning")")
    }

    /// The last warning for the fixed example, its tables taking 1.8 GB and the buffer pool 128 MB, with `writer`.
    static func lastWarning(writer: BackgroundWriter) -> String? {
        validation(fixedExample, against: shop(tablesOf: 300 * mebibyte, pool: 128 * mebibyte, writer: writer))
            .warnings.last?.message
    }

    @Test("a background writer that keeps up, or tables that fit: no warning about it")
    func backgroundWriterKeepsUpOrNotNeeded() {
        let fast = BackgroundWriter(delayMilliseconds: 10, maxPages: 1000)
        let justFastEnough = BackgroundWriter(delayMilliseconds: 20, maxPages: 1000)
        #expect(fast.pagesPerSecond == 100_000)
        #expect(justFastEnough.pagesPerSecond == 50_000)
        #expect(Self.defaultWriter.pagesPerSecond == 500)
        for catalog in [
            Self.shop(tablesOf: 300 * Self.mebibyte, pool: 128 * Self.mebibyte, writer: fast),
            Self.shop(tablesOf: 300 * Self.mebibyte, pool: 128 * Self.mebibyte, writer: justFastEnough),
            Self.shop(tablesOf: 10 * Self.mebibyte, pool: 128 * Self.mebibyte, writer: Self.defaultWriter),
            Self.shop(tablesOf: 300 * Self.mebibyte, pool: 128 * Self.mebibyte, writer: nil),
        ] {
            let result = validation(fixedExample, against: catalog)
            #expect(!result.warnings.contains { $0.message.contains("background writer") })
        }
    }

    @Test("sizes read as pg_size_pretty prints them")
    func sizes() {
        #expect(PolicyValidator.size(512) == "512 bytes")
        #expect(PolicyValidator.size(128 * Self.mebibyte) == "128 MB")
        #expect(PolicyValidator.size(1_932 * Self.mebibyte) == "1.9 GB")
        #expect(PolicyValidator.size(9 * 1024 + 512) == "9.5 kB")
    }
}
