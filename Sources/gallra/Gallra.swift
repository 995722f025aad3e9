import ArgumentParser
import GallraPostgres

@main
struct Gallra: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gallra",
        abstract: "Retention and purge daemon for PostgreSQL.",
        version: "gallra 0.1.0 (libpq \(LibPQ.versionString))"
    )
}
