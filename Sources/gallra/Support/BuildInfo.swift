import GallraPostgres

/// What this binary is: its version, the commit it was built from, and the libpq it runs with.
enum BuildInfo {
    static let version = "0.1.0"

    /// The git commit of the source tree, when the build knew it (see Plugins/BuildInfoPlugin).
    static var commit: String? { gitCommit.isEmpty ? nil : gitCommit }

    static var versionLine: String {
        "gallra \(version)" + (commit.map { " (\($0))" } ?? "")
    }

    static var report: String {
        """
        gallra \(version)
        commit \(commit ?? "unknown")
        libpq  \(LibPQ.versionString)
        """
    }
}
