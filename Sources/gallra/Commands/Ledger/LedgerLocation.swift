#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore

/// Where a ledger command finds the ledger: the file named on its command line, else `ledger.path`, else
/// `$STATE_DIRECTORY/<database>/ledger` (systemd's `StateDirectory=gallra`).
enum LedgerLocation {
    static func path(
        file: String?, settings: Settings, database: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> String {
        if let file { return file }
        if let configured = settings.ledgerPath, !configured.isEmpty { return configured }
        if let state = environment["STATE_DIRECTORY"], !state.isEmpty {
            // systemd may list several directories, separated by colons: gallra's is the first.
            let directory = state.split(separator: ":").first.map(String.init) ?? state
            return "\(directory)/\(database)/ledger"
        }
        throw CommandFailure(
            .configuration,
            "no ledger: name the file (gallra ledger replay FILE), or set ledger.path in the configuration "
                + "(GALLRA_LEDGER_PATH); under systemd the service keeps it in $STATE_DIRECTORY/<database>/ledger")
    }
}
