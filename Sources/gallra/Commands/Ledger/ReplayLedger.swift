#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ArgumentParser
import GallraCore
import GallraEngine
import GallraPostgres

struct ReplayLedger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "After a restore: process again the subjects erased since the backup, as the ledger records them.",
        discussion: """
            Compares the database with the ledger: the blocks of the ledger after the last block both agree on \
            (the fork point) hold the subjects processed since the backup was taken. Those whose digest the \
            restored audit trail does not record under the same policy are looked for: each subject table is read \
            once with a cursor, its keys digested with the audit key and matched against the ledger's digests, \
            never the whole table in memory. The subjects found are processed again under the policy version \
            recorded in the ledger (its current version when the database no longer stores that one: said so), in \
            one run with trigger replay: the same batches, locks, legal holds and audit blocks as any live run, but \
            the policy's rule and exemptions are not asked (the erasure was due when it was done) and the \
            blast-radius guard does not refuse. Subjects without a row now are counted as gone.

            Once every subject found was processed, a restore line (resolution replay) is appended to the ledger \
            and the ledger catches up with the database's new blocks; the service then resumes live runs.

            --dry-run changes nothing: it prints per policy the subjects to process again, those found, those \
            gone, and up to five keys found (on this terminal only; never logged).

            EXIT STATUS: 0 done, or nothing to replay (the database is at or ahead of the ledger); 75 some \
            subjects found were not processed (a legal hold in force, a row the shop held locked, a change the \
            database refused): resolve it and replay again, or gallra ledger accept; 78 a policy of the ledger is \
            not stored here or does not fit the database (apply its file, then replay again), no audit key, or \
            the ledger is another database's; 65 the ledger is damaged (gallra ledger verify says where); 74 the \
            ledger cannot be written; 64 bad arguments.

            EXAMPLES:
              gallra ledger replay --dry-run
              gallra ledger replay
              gallra ledger replay /var/backups/gallra/shop.ledger --format json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(
        help: ArgumentHelp(
            "The ledger file; the configured one (ledger.path, or $STATE_DIRECTORY/<database>/ledger) when left out.",
            valueName: "file"))
    var file: String?

    @Flag(help: "Show what replay would process again; change nothing.")
    var dryRun = false

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let auditKey = try context.auditKey()
            try await context.withCurrentSchema { connection in
                try await replay(auditKey: auditKey, on: connection, context: context)
            }
        }
    }

    private func replay(auditKey: AuditKey, on connection: PostgresConnection, context: CommandContext) async throws {
        let path: String
        if let file { path = file } else { path = try await context.configuredLedgerPath(on: connection) }
        let contents = try LedgerFile.read(path: path)
        let fork = try await LedgerComparison.forkPoint(of: contents, on: connection, path: path)
        guard fork.isRestore else {
            let summary = ReplaySummary(ledger: path, fork: fork, report: nil, restoreRecorded: false, caughtUp: 0)
            switch output.format {
            case .json: try JSONOutput.print(summary)
            case .text:
                Swift.print(
                    "nothing to replay: the database is at or ahead of the ledger \(path) (fork point block "
                        + "\(fork.forkPoint.sequence))")
            }
            return
        }
        let blocks = fork.missingBlocks.map {
            ReplayBlock(
                sequence: $0.sequence, policy: $0.policy, policyVersion: $0.policyVersion,
                subjectTable: $0.subjectTable, digests: $0.records.map(\.subjectDigest), keyCheck: $0.keyCheck)
        }
        let engine = Engine(connection: connection, auditKey: auditKey, logger: context.logger)
        let options = RunOptions(
            mode: .live, trigger: "replay", gallraVersion: BuildInfo.version, connect: { try await context.connect() })
        let report = try await engine.replay(blocks, dryRun: dryRun, options: options)
        var summary = ReplaySummary(ledger: path, fork: fork, report: report, restoreRecorded: false, caughtUp: 0)
        if !dryRun, report.outcome == .done {
            try LedgerFile.appendRestore(
                to: path, resolution: .replay, fork: fork, by: Self.operatingSystemUser(), replayed: report.replayed)
            summary.restoreRecorded = true
            summary.caughtUp = try await LedgerFile.catchUp(
                path: path, on: connection, keyCheck: auditKey.digester.keyCheck)
        }
        switch output.format {
        case .json: try JSONOutput.print(summary)
        case .text: Swift.print(summary.text)
        }
        switch report.outcome {
        case .done: return
        case .partial where !dryRun:
            throw CommandFailure(
                .temporaryFailure,
                "some subjects found were not processed (see above); the ledger keeps the restore open and the "
                    + "service holds off: resolve what stopped them and run gallra ledger replay again, or "
                    + "gallra ledger accept")
        case .partial: return
        case .unresolved:
            throw CommandFailure(
                .configuration,
                "some policies of the ledger cannot run on this database (see above); apply their files "
                    + "(gallra policy apply) and run gallra ledger replay again")
        }
    }

    /// The operating-system user who resolved the restore, for the ledger's restore line.
    static func operatingSystemUser() -> String {
        let environment = ProcessInfo.processInfo.environment
        return environment["SUDO_USER"] ?? environment["USER"] ?? environment["LOGNAME"] ?? "unknown"
    }
}

/// What `gallra ledger replay` prints: the ledger and the fork, the replay's report, what was written to the ledger.
struct ReplaySummary: Encodable {
    var ledger: String
    var fork: LedgerFork
    var report: ReplayReport?
    var restoreRecorded: Bool
    /// Blocks the ledger caught up with after the restore line.
    var caughtUp: Int

    enum CodingKeys: String, CodingKey {
        case ledger, forkPoint, ledgerHead, databaseHead, missingBlocks, dryRun, outcome, replayed, policies, run
        case restoreRecorded, caughtUp
    }

    struct Head: Encodable {
        var sequence: Int64
        var hash: String
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ledger, forKey: .ledger)
        try container.encode(Head(sequence: fork.forkPoint.sequence, hash: fork.forkPoint.hash), forKey: .forkPoint)
        try container.encode(Head(sequence: fork.ledgerHead.sequence, hash: fork.ledgerHead.hash), forKey: .ledgerHead)
        try container.encode(
            Head(sequence: fork.databaseHead.sequence, hash: fork.databaseHead.hash), forKey: .databaseHead)
        try container.encode(fork.missingBlocks.count, forKey: .missingBlocks)
        try container.encode(report?.dryRun ?? false, forKey: .dryRun)
        try container.encode(report?.outcome.rawValue ?? "nothing_to_replay", forKey: .outcome)
        try container.encode(report?.replayed ?? 0, forKey: .replayed)
        try container.encode(report?.policies ?? [], forKey: .policies)
        try container.encodeIfPresent(report?.run, forKey: .run)
        try container.encode(restoreRecorded, forKey: .restoreRecorded)
        try container.encode(caughtUp, forKey: .caughtUp)
    }

    var text: String {
        guard let report else { return "nothing to replay" }
        var lines = [
            "ledger \(ledger): \(fork.missingBlocks.count) blocks after the fork point (block \(fork.forkPoint.sequence)); "
                + "database head block \(fork.databaseHead.sequence), ledger head block \(fork.ledgerHead.sequence)"
        ]
        let table = TextTable(
            header: report.dryRun
                ? ["policy", "version", "recorded", "in trail", "to process", "found", "gone"]
                : [
                    "policy", "version", "recorded", "in trail", "to process", "found", "gone", "processed",
                    "not processed",
                ])
        for policy in report.policies {
            var row = [
                policy.policy, policy.version.map { "\($0)" } ?? "-", "\(policy.recorded)", "\(policy.inTrail)",
                "\(policy.subjects)", "\(policy.found)", "\(policy.gone)",
            ]
            if !report.dryRun { row += ["\(policy.processed ?? 0)", "\(policy.notProcessed ?? 0)"] }
            table.add(row)
        }
        lines.append(table.render())
        for policy in report.policies {
            if let note = policy.note {
                lines.append("\(policy.policy) v\(policy.recordedVersion): \(note)")
            }
            if let keys = policy.sampleKeys, !keys.isEmpty {
                lines.append(
                    "\(policy.policy) v\(policy.recordedVersion): keys found, first \(keys.count): "
                        + keys.joined(separator: ", "))
            }
        }
        if report.dryRun {
            lines.append(
                "dry run: \(report.replayed) subjects would be processed again; nothing was changed "
                    + "(gallra ledger replay does it)")
        } else {
            lines.append(
                "\(report.replayed) subjects processed again"
                    + (report.run.map { " in run \($0.runID) (outcome \($0.outcome.rawValue))" } ?? ""))
            if restoreRecorded {
                lines.append(
                    "restore recorded in the ledger (resolution replay); the ledger caught up with \(caughtUp) blocks; "
                        + "the service resumes live runs")
            }
        }
        return lines.joined(separator: "\n")
    }
}
