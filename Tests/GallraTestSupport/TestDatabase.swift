import Foundation
import GallraPostgres
import Logging
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The PostgreSQL server `make test` starts (`scripts/test.sh` exports its conninfo as GALLRA_TEST_DATABASE).
public enum TestServer {
    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String { "GALLRA_TEST_DATABASE is not set: run the tests through `make test`" }
    }

    /// The server's conninfo; a missing server is a test failure, never a skip.
    public static func conninfo() throws -> String {
        ProductLog.install()
        guard let value = ProcessInfo.processInfo.environment["GALLRA_TEST_DATABASE"], !value.isEmpty else {
            Issue.record("GALLRA_TEST_DATABASE is not set: run the tests through `make test` (scripts/test.sh)")
            throw NotConfigured()
        }
        return value
    }

    /// A keyword's value in the test conninfo (`port`, `host`).
    public static func setting(_ keyword: String) throws -> String {
        let conninfo = try conninfo()
        for pair in conninfo.split(separator: " ") where pair.hasPrefix(keyword + "=") {
            return String(pair.dropFirst(keyword.count + 1))
        }
        Issue.record("GALLRA_TEST_DATABASE has no \(keyword)=")
        throw NotConfigured()
    }

    public static func admin() async throws -> PostgresConnection {
        try await PostgresConnection.connect(conninfo())
    }

    /// A TCP port on 127.0.0.1 that nothing listens on (bound, read, released).
    public static func unusedPort() throws -> Int {
        let (fd, port) = try boundSocket(listening: false)
        close(fd)
        return port
    }

    /// A socket on 127.0.0.1 that accepts connections (the kernel completes the handshake) but never answers.
    /// The caller closes the returned descriptor.
    public static func silentListener() throws -> (Int32, Int) {
        try boundSocket(listening: true)
    }

    private static func boundSocket(listening: Bool) throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        try #require(bound)
        if listening { try #require(listen(fd, 16) == 0) }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}

/// A fresh database for one test, dropped afterwards even when the test fails.
public struct TestDatabase: Sendable {
    public let name: String
    /// The server's conninfo with ` dbname=<name>` appended (later keywords win in libpq conninfo strings).
    public let conninfo: String

    public static func with<T>(
        logger: Logger = Logger(label: "gallra.test", factory: { _ in SwiftLogNoOpLogHandler() }),
        _ body: (TestDatabase, PostgresConnection) async throws -> T
    ) async throws -> T {
        let base = try TestServer.conninfo()
        let name = "gallra_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = try await PostgresConnection.connect(base)
        try await admin.execute("CREATE DATABASE \(name)")
        let database = TestDatabase(name: name, conninfo: base + " dbname=" + name)
        do {
            let connection = try await PostgresConnection.connect(database.conninfo, logger: logger)
            let result: T
            do {
                result = try await body(database, connection)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            try await admin.execute("DROP DATABASE \(name) WITH (FORCE)")
            await admin.close()
            return result
        } catch {
            _ = try? await admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            await admin.close()
            throw error
        }
    }

    public func connect(
        logger: Logger = Logger(label: "gallra.test", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> PostgresConnection {
        try await PostgresConnection.connect(conninfo, logger: logger)
    }
}
