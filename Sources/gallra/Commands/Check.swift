import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPostgres

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that gallra can reach its database.",
        discussion: """
            Connects with the configured database settings and prints the server's version, the user \
            gallra is connected as, and whether gallra's own schema exists. Exits 69 when the server \
            cannot be reached, naming the host and port it tried; when it answers and refuses, says what it \
            said: 78 for a database or role it does not have, 77 for a wrong or missing password or no right \
            to connect.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connect()
            defer { Task { await connection.close() } }
            let info = try await connection.serverInfo(schema: "gallra")
            switch output.format {
            case .text:
                print(
                    """
                    server    \(info.serverVersion) at \(info.address)
                    database  \(info.database)
                    user      \(info.user)
                    schema    gallra \(info.schemaExists ? "exists" : "does not exist yet")
                    """
                )
            case .json:
                try JSONOutput.print(
                    CheckReport(
                        serverVersion: info.serverVersion,
                        serverVersionNumber: info.serverVersionNumber,
                        address: info.address,
                        database: info.database,
                        user: info.user,
                        gallraSchema: info.schemaExists
                    )
                )
            }
        }
    }
}

/// `gallra check --format json`.
private struct CheckReport: Encodable {
    let serverVersion: String
    let serverVersionNumber: Int
    let address: String
    let database: String
    let user: String
    let gallraSchema: Bool
}
