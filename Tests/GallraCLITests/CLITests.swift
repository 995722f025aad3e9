import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("gallra command line")
struct CommandLineTests {
    @Test func helpListsCommandsAndExitStatuses() async throws {
        let result = try await gallra("--help")
        #expect(result.status == 0)
        for command in ["check", "version"] {
            #expect(result.stdout.contains(command), "help lists \(command)")
        }
        for status in ["64", "65", "69", "70", "75", "78"] {
            #expect(result.stdout.contains("  \(status)  "), "help explains exit status \(status)")
        }
        #expect(result.stdout.contains("GALLRA_DATABASE"))
    }

    @Test func everyCommandHasHelp() async throws {
        for command in ["check", "version"] {
            let result = try await gallra(command, "--help")
            #expect(result.status == 0)
            #expect(result.stdout.contains("USAGE: gallra \(command)"))
            #expect(result.stdout.contains("--help"))
        }
    }

    @Test func versionNamesTheLibpqItRunsWith() async throws {
        let result = try await gallra("version")
        #expect(result.status == 0)
        // pkg-config reads libpq's own metadata: an oracle independent of PQlibVersion().
        let libpq = try await run("/usr/bin/pkg-config", ["--modversion", "libpq"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(result.stdout.contains("libpq  \(libpq)"))
        #expect(result.stdout.hasPrefix("gallra "))

        let json = try await gallra("version", "--format", "json")
        #expect(json.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["libpq"] as? String == libpq)
        #expect(result.stdout.hasPrefix("gallra \(object["version"] as? String ?? "?")\n"))
    }

    @Test func versionNamesTheCommitItWasBuiltFrom() async throws {
        guard let root = ProcessInfo.processInfo.environment["GALLRA_SOURCE_ROOT"] else {
            Issue.record("GALLRA_SOURCE_ROOT is not set: run the tests through `make test`")
            return
        }
        let head = try await run("/usr/bin/git", ["-C", root, "rev-parse", "--short=12", "HEAD"])
        try #require(head.status == 0, "the source tree is a git checkout")
        let result = try await gallra("version")
        let commit = head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(result.stdout.contains("commit \(commit)"))
    }

    @Test func checkHelpShowsTheGlobalOptions() async throws {
        let result = try await gallra("check", "--help")
        for option in ["--config", "--database", "--log-format", "--log-level", "--format"] {
            #expect(result.stdout.contains(option), "check --help shows \(option)")
        }
    }

    @Test func unknownOptionIsAUsageError() async throws {
        let result = try await gallra("check", "--no-such-option")
        #expect(result.status == 64)
        #expect(result.stderr.contains("--no-such-option"))
    }

    @Test func badLogLevelOnTheCommandLineIsAUsageError() async throws {
        let result = try await gallra("check", "--log-level", "loud")
        #expect(result.status == 64)
        #expect(result.stderr.contains("--log-level"))
        #expect(result.stderr.contains("warning"), "the error lists the valid levels")
    }
}

@Suite("gallra check")
struct CheckTests {
    @Test func reportsServerUserAndSchema() async throws {
        try await Harness.withDatabase { name, conninfo in
            let result = try await gallra("check", "--database", conninfo)
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let version = try await Harness.psql("SHOW server_version")
            #expect(result.stdout.contains("PostgreSQL \(version)"))
            #expect(result.stdout.contains("database  \(name)"))
            #expect(result.stdout.contains("user      postgres"))
            #expect(result.stdout.contains("schema    gallra does not exist yet"))

            try await Harness.psql("CREATE SCHEMA gallra", database: name)
            let again = try await gallra("check", "--database", conninfo)
            #expect(again.stdout.contains("schema    gallra exists"))
        }
    }

    @Test func jsonReport() async throws {
        try await Harness.withDatabase { name, conninfo in
            let result = try await gallra("check", "--format", "json", "--database", conninfo)
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            #expect(object?["database"] as? String == name)
            #expect(object?["user"] as? String == "postgres")
            #expect(object?["gallra_schema"] as? Bool == false)
            let number = try await Harness.psql("SHOW server_version_num")
            #expect(object?["server_version_number"] as? Int == Int(number))
        }
    }

    @Test func databaseFromEnvironmentConfigFileAndCommandLine() async throws {
        try await Harness.withDatabase { first, firstConninfo in
            try await Harness.withDatabase { second, secondConninfo in
                try await Harness.withTemporaryDirectory { dir in
                    let config = "\(dir)/gallra.yaml"
                    try "database: \"\(firstConninfo)\"\nlog:\n  level: warning\n"
                        .write(toFile: config, atomically: true, encoding: .utf8)

                    let fromFile = try await gallra("check", "--config", config)
                    #expect(fromFile.stdout.contains("database  \(first)"), "stderr: \(fromFile.stderr)")

                    let env = ["GALLRA_DATABASE": secondConninfo]
                    let envOverFile = try await gallra("check", "--config", config, environment: env)
                    #expect(envOverFile.stdout.contains("database  \(second)"), "stderr: \(envOverFile.stderr)")

                    let flagOverEnv = try await gallra(
                        "check", "--config", config, "--database", firstConninfo, environment: env)
                    #expect(flagOverEnv.stdout.contains("database  \(first)"), "stderr: \(flagOverEnv.stderr)")

                    let configFromEnv = try await gallra("check", environment: ["GALLRA_CONFIG": config])
                    #expect(configFromEnv.stdout.contains("database  \(first)"), "stderr: \(configFromEnv.stderr)")
                }
            }
        }
    }

    @Test func libpqEnvironmentAndServiceFilesWorkAsWithPsql() async throws {
        let host = try Harness.serverSetting("host")
        let port = try Harness.serverSetting("port")
        try await Harness.withDatabase { name, _ in
            // Plain libpq variables, no gallra setting at all.
            let plain = try await gallra(
                "check", environment: ["PGHOST": host, "PGPORT": port, "PGUSER": "postgres", "PGDATABASE": name])
            #expect(plain.status == 0, "stderr: \(plain.stderr)")
            #expect(plain.stdout.contains("database  \(name)"))

            // A password from PGPASSWORD, over TCP.
            let password = try await gallra(
                "check",
                environment: [
                    "PGHOST": "127.0.0.1", "PGPORT": port, "PGUSER": "password_user", "PGPASSWORD": "secret-pw",
                    "PGDATABASE": name,
                ])
            #expect(password.status == 0, "stderr: \(password.stderr)")
            #expect(password.stdout.contains("user      password_user"))

            try await Harness.withTemporaryDirectory { dir in
                // A service file and a password file, over TCP with a password-protected role.
                let services = "\(dir)/pg_service.conf"
                try "[shop]\nhost=127.0.0.1\nport=\(port)\ndbname=\(name)\nuser=password_user\n"
                    .write(toFile: services, atomically: true, encoding: .utf8)
                let passwords = "\(dir)/pgpass"
                try "127.0.0.1:\(port):*:password_user:secret-pw\n"
                    .write(toFile: passwords, atomically: true, encoding: .utf8)
                chmod(passwords, 0o600)
                let service = try await gallra(
                    "check", "--database", "service=shop",
                    environment: ["PGSERVICEFILE": services, "PGPASSFILE": passwords])
                #expect(service.status == 0, "stderr: \(service.stderr)")
                #expect(service.stdout.contains("user      password_user"))
                #expect(service.stdout.contains("127.0.0.1"))

                let noPassword = try await gallra(
                    "check", "--database", "service=shop", environment: ["PGSERVICEFILE": services])
                #expect(noPassword.status == 77, "the server asked for a password: \(noPassword.stderr)")
                #expect(noPassword.stderr.contains("password"))
                #expect(!noPassword.stderr.contains("secret-pw"))
            }
        }
    }

    @Test func thePasswordCredentialReachesLibpq() async throws {
        let port = try Harness.serverSetting("port")
        try await Harness.withTemporaryDirectory { credentials in
            let target = "host=127.0.0.1 port=\(port) user=password_user dbname=postgres connect_timeout=5"
            let without = try await gallra("check", "--database", target)
            #expect(without.status == 77, "\(without.stderr)")
            #expect(without.stderr.contains("asks for a password"))

            // systemd's LoadCredential=db-password: the file's content, one trailing newline stripped.
            try "secret-pw\n".write(toFile: "\(credentials)/db-password", atomically: true, encoding: .utf8)
            let with = try await gallra(
                "check", "--database", target, environment: ["CREDENTIALS_DIRECTORY": credentials])
            #expect(with.status == 0, "stderr: \(with.stderr)")
            #expect(with.stdout.contains("user      password_user"))
            #expect(!with.stdout.contains("secret-pw") && !with.stderr.contains("secret-pw"))

            // A password written in the connection string wins over the credential.
            let wrong = try await gallra(
                "check", "--database", target + " password=not-it", environment: ["CREDENTIALS_DIRECTORY": credentials])
            #expect(wrong.status == 77, "\(wrong.stderr)")
            #expect(wrong.stderr.contains("password authentication failed"))
        }
    }

    @Test func refusedConnectionIsUnavailableAndNamesTheTarget() async throws {
        let port = try unusedPort()
        let result = try await gallra("check", "--database", "host=127.0.0.1 port=\(port) connect_timeout=2 dbname=x")
        #expect(result.status == 69)
        #expect(result.stderr.contains("127.0.0.1"))
        #expect(result.stderr.contains("\(port)"))
        #expect(result.stderr.lowercased().contains("refused"), "the libpq message is kept: \(result.stderr)")
        #expect(result.seconds < 5, "a refused connection fails at once, not after a timeout")
    }

    @Test func silentServerTimesOutWithinConnectTimeout() async throws {
        // A socket that listens but never speaks: the kernel completes the TCP handshake and
        // libpq then waits for the server's answer until connect_timeout.
        let listener = try SilentListener()
        defer { listener.close() }
        let result = try await gallra(
            "check", "--database", "host=127.0.0.1 port=\(listener.port) connect_timeout=2 dbname=x")
        #expect(result.status == 69)
        #expect(result.stderr.contains("\(listener.port)"))
        #expect(result.seconds >= 1.5 && result.seconds < 6, "took \(result.seconds) s")
    }

    @Test func missingConfigFileIsAConfigurationError() async throws {
        let result = try await gallra("check", "--config", "/nonexistent/gallra.yaml")
        #expect(result.status == 78)
        #expect(result.stderr.contains("/nonexistent/gallra.yaml"))
        #expect(result.stderr.contains("No such file"))
    }

    @Test func malformedConfigFileIsAConfigurationError() async throws {
        try await Harness.withTemporaryDirectory { dir in
            let config = "\(dir)/gallra.yaml"
            try "database: [unclosed\n  : :\n".write(toFile: config, atomically: true, encoding: .utf8)
            let result = try await gallra("check", "--config", config)
            #expect(result.status == 78)
            #expect(result.stderr.contains(config))
        }
    }

    @Test func anIdleInTransactionTimeoutThatIsNotWholeSecondsIsAConfigurationError() async throws {
        for bad in ["-1", "10s", "soon", "2147484"] {
            let result = try await gallra("check", environment: ["GALLRA_SESSION_IDLE_IN_TRANSACTION_TIMEOUT": bad])
            #expect(result.status == 78, "\(bad): \(result.stderr)")
            #expect(result.stderr.contains("GALLRA_SESSION_IDLE_IN_TRANSACTION_TIMEOUT"), "\(result.stderr)")
        }
    }

    @Test func badLogLevelInTheEnvironmentIsAConfigurationError() async throws {
        let result = try await gallra("check", environment: ["GALLRA_LOG_LEVEL": "loud"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("GALLRA_LOG_LEVEL"))
    }

    @Test(arguments: ["gallra shop", "gallra\tshop", "gallra\nshop"])
    func aLogIdentifierWithSpacesOrControlCharactersIsAConfigurationError(bad: String) async throws {
        let result = try await gallra("check", environment: ["GALLRA_LOG_IDENTIFIER": bad])
        #expect(result.status == 78, "\(result.stderr)")
        #expect(result.stderr.contains("log.identifier"), "\(result.stderr)")
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
func unusedPort() throws -> Int {
    let listener = try SilentListener()
    listener.close()
    return listener.port
}

/// A TCP socket on 127.0.0.1 that accepts connections in the kernel and never answers.
final class SilentListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            _ = Glibc.close(fd)
            throw HarnessError.noServer
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        _ = Glibc.close(fd)
    }
}
