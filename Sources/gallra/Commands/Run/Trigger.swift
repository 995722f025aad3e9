import ArgumentParser
import GallraDaemon
import GallraEngine
import GallraPolicy
import GallraPostgres

struct Trigger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the running gallra service run policies now.",
        discussion: """
            Sends a notification (NOTIFY gallra_trigger) on the database; the service that runs the policies \
            there runs the named policies (default: every active policy, and drafts as dry runs) at once, \
            whatever their schedules. Policies with expires: on_request act on erasure requests only: naming \
            one makes the service process the due requests. `systemctl kill -s USR1 gallra` does the same for every policy. \
            Follow the run with `journalctl -u gallra -f` or `gallra audit runs`. A name that is not a stored \
            policy is refused (exit 65).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("policy"), help: "Run this policy (repeatable). Default: every active policy.")
    var policies: [String] = []

    func validate() throws {
        for name in policies {
            if (try? PolicyName(name)) == nil { throw ValidationError("--policy \(name): not a policy name") }
        }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connect()
            let holder: Int32?
            do {
                if !policies.isEmpty {
                    // A name the service does not know would be dropped there, in its journal: refuse it here.
                    try await Schema.requireCurrent(on: connection)
                    let stored = try await PolicyStore(connection: connection).list().map(\.name)
                    try UnknownPolicyError.check(policies, stored: stored)
                }
                holder = try await Engine.runnerLockHolder(on: connection)
            } catch {
                await connection.close()
                throw error
            }
            try await connection.notify(
                NotificationChannel.trigger, payload: TriggerRequest(policies: policies).payload)
            await connection.close()
            let what = policies.isEmpty ? "every active policy" : policies.joined(separator: ", ")
            if holder == nil {
                StandardError.write(
                    "gallra: warning: no gallra service is running policies on this database now; the trigger "
                        + "(\(what)) is lost unless one starts listening\n")
            } else {
                Swift.print("triggered: \(what)")
            }
        }
    }
}
