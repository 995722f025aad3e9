/// What a connection reached: the server, the database and the role, for `gallra check`.
public struct ServerInfo: Sendable, Hashable {
    /// The server's version, e.g. "PostgreSQL 15.18 (Debian 15.18-0+deb12u1)".
    public var serverVersion: String
    /// `server_version_num`, e.g. 150018.
    public var serverVersionNumber: Int
    /// Where the connection went: "host:port", or the socket directory and port.
    public var address: String
    /// The database connected to.
    public var database: String
    /// The role the session runs as (`current_user`).
    public var user: String
    /// Whether the schema asked about exists.
    public var schemaExists: Bool
}

extension PostgresConnection {
    /// Facts about the server and session, and whether `schema` exists in the database.
    public func serverInfo(schema: String) async throws -> ServerInfo {
        let result = try await query(
            """
            SELECT current_setting('server_version') AS version,
                   current_setting('server_version_num')::int4 AS version_num,
                   current_database() AS database,
                   current_user AS "user",
                   EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1) AS schema_exists
            """,
            [.text(schema)]
        )
        guard let row = result.first else {
            throw PostgresError(.decoding, "the server returned no row for its own settings")
        }
        let version = try row.decode("version", as: String.self)
        return ServerInfo(
            serverVersion: "PostgreSQL \(version)",
            serverVersionNumber: Int(try row.decode("version_num", as: Int32.self)),
            address: "\(host):\(port)",
            database: try row.decode("database", as: String.self),
            user: try row.decode("user", as: String.self),
            schemaExists: try row.decode("schema_exists", as: Bool.self)
        )
    }
}
