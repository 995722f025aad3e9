import ArgumentParser
import GallraCore
import GallraDaemon
import GallraEngine
import GallraPolicy
import GallraPostgres
import Logging

#if canImport(Glibc)
    import Glibc
#endif

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the active policies now: delete and anonymize what has expired, with an audit record.",
        discussion: """
            Without --once, runs as the service (what gallra.service starts): connects (retrying while the \
            database is down), migrates, and runs each active policy on its schedule (schedule.default when it \
            names none) and drafts as logged dry runs; a schedule missed while it was down runs once at start. \
            One gallra per database runs policies, others wait as standbys. SIGHUP re-reads the configuration and \
            policies, SIGUSR1 or `gallra trigger` runs now, SIGTERM stops after the batch in flight. \
            Erasure requests (gallra.request_erasure, gallra erase --queue) are processed as soon as they are \
            due, by the on-request policies of their table, and looked for at least every requests.sweep seconds. It speaks \
            sd_notify (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1) and logs to the journal.

            With --once, evaluates every active policy (or those named with --policy) at one instant and \
            processes the expiring subjects in batches (a policy with expires: on_request is left to its \
            erasure requests, which `gallra erase` and the service process): each batch is one transaction that acts on every data \
            point of its subjects and appends a block to the audit trail. A policy that would touch more \
            subjects than its limits allow is refused (exit 75) unless --allow-large is given. Only one live \
            run per database at a time. With throttle.replica_lag or throttle.replica_lag_bytes set, batches \
            wait while a streaming standby replays further behind (docs/scaling.md). --dry-run does what \
            `gallra plan` does. Progress goes to standard error: a line rewritten after each batch on a terminal, \
            elsewhere a plain `progress:` line every 10 seconds; the time left is estimated once three batches \
            are done. SIGINT (Ctrl-C) or SIGTERM stops the run: the batch in flight is rolled back, \
            the committed ones stay done and audited, and the report shows how far it got (exit 75); a second \
            signal stops at once.

            Exit status: 0 done; 65 a policy is invalid (the others ran); 75 a policy was refused by its \
            limits, batches were skipped, or due subjects were locked by another transaction (run again \
            later); 69 the database cannot be reached; 78 no audit key, or the schema needs `gallra migrate`.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var selection: RunSelection

    @Flag(help: "Run the due policies once and exit.")
    var once = false

    @Flag(help: "Show what would happen; change nothing.")
    var dryRun = false

    @Flag(help: "Override the policies' max_subjects_per_run and max_fraction limits for this run.")
    var allowLarge = false

    func validate() throws {
        guard once || dryRun else {
            if !selection.policies.isEmpty || selection.asOf != nil || allowLarge || selection.output.format != .text {
                throw ValidationError(
                    "--policy, --as-of, --allow-large and --format go with --once or --dry-run; the service "
                        + "(gallra run alone) runs every policy on its schedule")
            }
            return
        }
    }

    func run() async throws {
        guard once || dryRun else {
            try await reportingFailures { try await runService() }
            return
        }
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let key = dryRun ? nil : try context.auditKey()
            let connection = try await context.connectToCurrentSchema()
            if !dryRun {
                guard try await Engine.acquireRunnerLock(on: connection) else {
                    await connection.close()
                    throw CommandFailure(
                        .temporaryFailure,
                        "another gallra is running policies on this database; try again when it has finished")
                }
                let abandoned = try await Engine.closeAbandonedRuns(on: connection)
                if abandoned > 0 {
                    context.logger.warning(
                        "\(abandoned) earlier run(s) had stopped without finishing (killed?); marked interrupted",
                        metadata: ["runs": "\(abandoned)"])
                }
            }
            let keeper = context.ledgerKeeper()
            if !dryRun {
                do {
                    try await keeper.refuseDuringRestore(on: connection)
                } catch {
                    await connection.close()
                    throw error
                }
            }
            let runnable = try await RunnablePolicies.load(
                on: connection, names: selection.policies, includeDrafts: dryRun)
            let limits = context.settings.replicaLag
            let throttle =
                !dryRun && limits.isEnabled
                ? ReplicaThrottle(limits: limits, source: PostgresReplicaLagSource(connection: connection)) : nil
            let options = RunOptions(
                mode: dryRun ? .dry : .live, asOf: selection.instant, allowLarge: allowLarge, trigger: "manual",
                gallraVersion: BuildInfo.version, throttle: throttle, connect: { try await context.connect() })
            let progress = ProgressLine(enabled: selection.output.format == .text, terminal: isatty(2) == 1)
            let engine = Engine(connection: connection, auditKey: key, logger: context.logger)
            // Live, a policy with expires: on_request acts only through its requests (gallra erase, the service),
            // which decide each request with the run; a dry run shows what the due requests would come to.
            let onRequest = dryRun ? [] : runnable.policies.filter { $0.resolved.policy.rule == .onRequest }
            let policies = runnable.policies.filter { dryRun || $0.resolved.policy.rule != .onRequest }
            if !onRequest.isEmpty {
                let names = onRequest.map(\.resolved.name.rawValue).joined(separator: ", ")
                context.logger.notice(
                    "\(names) act(s) on erasure requests, which the service or gallra erase processes; left out of this run"
                )
            }
            let run = { @Sendable in try await engine.run(policies, options: options, progress: { progress.show($0) }) }
            // A dry run changes nothing: the signals' default action ends it.
            let report: RunReport
            do {
                report = try await dryRun ? run() : StopSignals.cancelling(logger: context.logger, run)
            } catch let interruption as RunInterruption {
                // The server ended the run: what was done before, then the error's status and advice.
                progress.finish()
                _ = await keeper.catchUp(on: connection, keyCheck: key?.digester.keyCheck)
                await connection.close()
                try RunOutput.print(
                    interruption.report, invalid: runnable.invalid, warnings: [:], format: selection.output.format)
                throw interruption
            }
            progress.finish()
            let ledgerFailure = dryRun ? nil : await keeper.catchUp(on: connection, keyCheck: key?.digester.keyCheck)
            await connection.close()
            // A dry run is a plan: it shows the validator's warnings as `gallra plan` does.
            try RunOutput.print(
                report, invalid: runnable.invalid, warnings: dryRun ? runnable.warnings : [:],
                format: selection.output.format,
                stored: selection.policies.isEmpty && onRequest.isEmpty ? runnable.stored : nil)
            if let ledgerFailure { throw CommandFailure.ledger(ledgerFailure) }
            try RunOutput.exitStatus(
                report, invalid: runnable.invalid, lackingPrivileges: runnable.lackingPrivileges)
        }
    }
}

extension Run {
    /// `gallra run` as the long-running service.
    func runService() async throws {
        let context = try await CommandContext.start(global)
        let configuration = try Self.daemonConfiguration(context)
        if configuration.ledger.isNone { context.logger.notice("\(LedgerLocation.noLedgerNotice)") }
        let global = self.global
        let logger = context.logger
        try await Daemon.run(
            configuration: configuration,
            reloadConfiguration: {
                let settings = try await Settings.load(global)
                return try Self.daemonConfiguration(CommandContext(settings: settings, logger: logger))
            }, logger: context.logger)
    }

    static func daemonConfiguration(_ context: CommandContext) throws -> DaemonConfiguration {
        let settings = context.settings
        let schedule: Schedule
        do {
            schedule = try Schedule(parsing: settings.defaultSchedule)
        } catch {
            throw CommandFailure(.configuration, "schedule.default: \(error)")
        }
        var configuration = DaemonConfiguration(
            database: settings.database, password: settings.databasePassword,
            idleInTransactionTimeout: settings.idleInTransactionTimeout, auditKey: try context.auditKey(),
            defaultSchedule: schedule, reconnect: Backoff(initial: .seconds(1), maximum: settings.retryMax),
            standbyRetry: settings.standbyRetry, gallraVersion: BuildInfo.version, logLevel: settings.logLevel,
            replicaLag: settings.replicaLag, requestSweep: settings.requestSweep)
        configuration.ledger = settings.ledger
        return configuration
    }
}
