import ArgumentParser
import GallraCore

#if canImport(CMalloc)
    import CMalloc
#endif

@main
struct Gallra: AsyncParsableCommand {
    static func main() async {
        #if canImport(CMalloc)
            // glibc gives each thread that allocates its own heap arena; gallra's few threads (one per database
            // connection, the concurrency pool) gain nothing from that, and two arenas keep the resident set
            // about 1.3 MB smaller with parallel batches.
            mallopt(M_ARENA_MAX, 2)
            // A batch's larger buffers (statement results, the audit records' JSON) are mapped and unmapped on
            // their own, and free memory at the heap's top goes back to the system: without fixed thresholds
            // glibc raises both after the first large free, and the heap keeps about 2 MB it no longer uses.
            mallopt(M_MMAP_THRESHOLD, 64 * 1024)
            mallopt(M_TRIM_THRESHOLD, 128 * 1024)
        #endif
        if let error = HelpTopic.unknownCommand(in: Array(CommandLine.arguments.dropFirst()), root: Gallra.self) {
            StandardError.write("gallra: \(error)\n")
            Self.exit(withError: ExitCode(ExitStatus.usage.rawValue))
        }
        await main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "gallra",
        abstract: "Retention and purge daemon for PostgreSQL.",
        discussion: """
            gallra enforces retention policies on a PostgreSQL database: it finds the subjects whose \
            retention has ended, deletes or anonymizes their data in small transactions, and keeps a \
            tamper-evident audit trail.

            CONFIGURATION:
              --config PATH (or $GALLRA_CONFIG, else /etc/gallra/gallra.yaml when present) is a YAML file; \
            every key can be overridden by a GALLRA_* environment variable (database -> GALLRA_DATABASE, \
            log.level -> GALLRA_LOG_LEVEL) and by the command line.

            \(ExitStatus.helpText)
            """,
        version: BuildInfo.versionLine,
        subcommands: [
            Run.self, Trigger.self, Plan.self, Explain.self, PolicyCommand.self, AuditCommand.self, ConsentCommand.self,
            HoldCommand.self, LedgerCommand.self,
            Export.self, Erase.self, RequestsCommand.self, Correct.self,
            Migrate.self,
            Check.self,
            Version.self,
        ]
    )
}
