@testable import GallraPolicy
import Testing

@Suite("Validator: tables larger than the buffer pool")
struct ValidatorBufferPoolTests {
    /// The demo shop with every table at `bytes` and the server's `shared_buffers` at `pool`.
    static func shop(tablesOf bytes: Int64?, pool: Int64?) -> Catalog {
        var catalog = Fixtures.demoShop
        for name in catalog.tables.keys { catalog.tables[name]?.bytes = bytes }
        catalog.sharedBuffers = pool
        return catalog
    }

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

    @Test("sizes read as pg_size_pretty prints them")
    func sizes() {
        #expect(PolicyValidator.size(512) == "512 bytes")
        #expect(PolicyValidator.size(128 * Self.mebibyte) == "128 MB")
        #expect(PolicyValidator.size(1_932 * Self.mebibyte) == "1.9 GB")
        #expect(PolicyValidator.size(9 * 1024 + 512) == "9.5 kB")
    }
}
