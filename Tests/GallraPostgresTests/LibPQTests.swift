import GallraPostgres
import Testing

@Test func libpqVersionIsSupported() {
    #expect(LibPQ.version >= 100_000, "gallra needs libpq 10 or newer")
    #expect(LibPQ.versionString.split(separator: ".").count == 2)
}
