import GallraPolicy
import GallraPostgres

extension Coverage {
    /// What the stored policies (the latest version of each) leave out of the live database, read in one snapshot.
    public static func read(on connection: PostgresConnection) async throws -> Coverage {
        try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            let catalog = try await CatalogReader.read(on: connection)
            let policies = try await PolicyStore(connection: connection).loadAll().policies.map(\.policy)
            return Coverage(policies: policies, catalog: catalog)
        }
    }
}
