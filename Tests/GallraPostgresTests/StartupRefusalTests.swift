import GallraCore
import GallraPostgres
import GallraTestSupport
import Testing

/// A server that answers and refuses the session: its SQLSTATE is read back from libpq's message, which is all
/// libpq keeps of an error during start-up.
@Suite("A refused session carries the server's SQLSTATE")
struct StartupRefusalTests {
    struct Admitted: Error {}

    private func refusal(_ conninfo: String) async throws -> PostgresError {
        do {
            let connection = try await PostgresConnection.connect(conninfo)
            await connection.close()
        } catch let error as PostgresError {
            return error
        }
        Issue.record("the server let \(conninfo) in")
        throw Admitted()
    }

    @Test func noSuchDatabaseIs3D000() async throws {
        let error = try await refusal(try TestServer.conninfo() + " dbname=gallra_no_such_database")
        #expect(error.code == .connectionFailed)
        #expect(error.sqlState == .invalidCatalogName)
        #expect(error.message.contains("database \"gallra_no_such_database\" does not exist"))
    }

    @Test func noSuchRoleIs28000() async throws {
        let error = try await refusal(try TestServer.conninfo() + " user=gallra_no_such_role")
        #expect(error.sqlState == .invalidAuthorizationSpecification)
    }

    @Test func aWrongPasswordIs28P01() async throws {
        let port = try TestServer.setting("port")
        let error = try await refusal(
            "host=127.0.0.1 port=\(port) user=password_user password=not-it dbname=postgres connect_timeout=5")
        #expect(error.sqlState == .invalidPassword)
        #expect(!error.description.contains("not-it"))
    }

    @Test func anUnreachableServerHasNoSQLState() async throws {
        let port = try TestServer.unusedPort()
        let error = try await refusal("host=127.0.0.1 port=\(port) dbname=x connect_timeout=2")
        #expect(error.sqlState == nil)
        #expect(error.exitStatus == .unavailable)
    }
}
