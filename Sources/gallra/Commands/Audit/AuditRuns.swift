import ArgumentParser
// Foundation, not FoundationEssentials: JSONSerialization writes the runs' stored JSON counts as they are.
import Foundation
import GallraEngine
import GallraPostgres

struct AuditRuns: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List live runs (gallra.run): when, why, how they ended.",
        discussion: "Newest first. Their ids are the --run of gallra audit show and GALLRA_RUN_ID in the journal."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "At most this many runs.")
    var limit = 20

    @OptionGroup var output: FormatOptions

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1.") }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let runs = try await AuditTrail.runs(limit: limit, on: connection)
            await connection.close()
            switch output.format {
            case .json:
                let objects: [[String: Any]] = runs.map { run in
                    [
                        "id": run.id, "mode": run.mode, "trigger": run.trigger, "outcome": run.outcome,
                        "as_of": TimeText.rfc3339(unixMicroseconds: run.asOfMicroseconds),
                        "started_at": TimeText.rfc3339(unixMicroseconds: run.startedAtMicroseconds),
                        "finished_at": run.finishedAtMicroseconds.map { TimeText.rfc3339(unixMicroseconds: $0) }
                            ?? NSNull(),
                        "counts": (try? JSONSerialization.jsonObject(with: Data(run.countsJSON.utf8))) ?? NSNull(),
                    ]
                }
                let data = try JSONSerialization.data(
                    withJSONObject: objects, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                Swift.print(String(decoding: data, as: UTF8.self))
            case .text:
                if runs.isEmpty {
                    Swift.print("no live runs yet")
                    return
                }
                let table = TextTable(header: ["RUN", "MODE", "TRIGGER", "STARTED", "FINISHED", "OUTCOME"])
                for run in runs {
                    table.add([
                        run.id, run.mode, run.trigger, TimeText.readable(unixMicroseconds: run.startedAtMicroseconds),
                        run.finishedAtMicroseconds.map { TimeText.readable(unixMicroseconds: $0) } ?? "-", run.outcome,
                    ])
                }
                Swift.print(table.render())
            }
        }
    }
}
