import Foundation
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Logging
import Testing

@testable import GallraEngine

private func standby(_ name: String = "r1", lag: Double? = nil, bytes: Int64? = nil, visible: Bool = true)
    -> StandbyLag
{
    StandbyLag(
        name: name, replayLag: lag.map { .milliseconds(Int64($0 * 1000)) }, replayBytes: bytes, visible: visible)
}

@Suite("Replica lag: the bounds")
struct ReplicaLagLimitsTests {
    static let limits = ReplicaLagLimits(replayLag: .seconds(10), replayBytes: 256 << 20)

    @Test(
        arguments: [
            ("no standby", ReplicaLagReading(standbys: []), nil),
            ("within both bounds", ReplicaLagReading(standbys: [standby(lag: 9.9, bytes: 1 << 20)]), nil),
            ("caught up and idle: no lag measured", ReplicaLagReading(standbys: [standby(lag: nil, bytes: 0)]), nil),
            ("lag unknown", ReplicaLagReading(standbys: [standby(lag: nil, bytes: nil)]), nil),
            (
                "hidden from the role", ReplicaLagReading(standbys: [standby(lag: nil, bytes: nil, visible: false)]),
                nil
            ),
            (
                "connected to a standby",
                ReplicaLagReading(inRecovery: true, standbys: [standby(lag: 99, bytes: 1 << 40)]), nil
            ),
            (
                "time over", ReplicaLagReading(standbys: [standby(lag: 42, bytes: 0)]),
                "replica r1 replay lag 42 s exceeds throttle.replica_lag 10 s"
            ),
            (
                "bytes over", ReplicaLagReading(standbys: [standby(lag: 1.5, bytes: 300 << 20)]),
                "replica r1 replay 300 MB behind exceeds throttle.replica_lag_bytes 256 MB"
            ),
            (
                "the worst of several", ReplicaLagReading(standbys: [standby("a", lag: 11), standby("b", lag: 30)]),
                "replica b replay lag 30 s exceeds throttle.replica_lag 10 s"
            ),
        ] as [(String, ReplicaLagReading, String?)])
    func excess(_ situation: (name: String, reading: ReplicaLagReading, expected: String?)) {
        #expect(Self.limits.excess(in: situation.reading)?.description == situation.expected, "\(situation.name)")
    }

    @Test func zeroMeansNoBound() {
        #expect(!ReplicaLagLimits(replayLag: .zero, replayBytes: 0).isEnabled)
        #expect(!ReplicaLagLimits().isEnabled)
        let timeOnly = ReplicaLagLimits(replayLag: .seconds(10))
        #expect(timeOnly.excess(in: ReplicaLagReading(standbys: [standby(lag: 1, bytes: 1 << 40)])) == nil)
    }

    @Test(
        arguments: [
            ("256MB", 268_435_456), ("256 MB", 268_435_456), ("64kB", 65536), ("64KB", 65536), ("1GB", 1 << 30),
            ("2TB", 2 << 40), ("1048576", 1_048_576), ("512B", 512), ("512 bytes", 512), ("0", 0),
        ] as [(String, Int64)])
    func sizesParse(_ text: String, bytes: Int64) throws {
        #expect(try ByteSize.parse(text) == bytes)
    }

    @Test(arguments: ["", "MB", "-1MB", "12XB", "1.5GB", "99999999999TB"])
    func badSizesSayWhy(_ text: String) {
        #expect(throws: ByteSize.ParseError.self) { try ByteSize.parse(text) }
    }

    @Test func sizesReadLikePgSizePretty() {
        #expect(ByteSize.format(512) == "512 bytes")
        #expect(ByteSize.format(65536) == "64 kB")
        #expect(ByteSize.format(300 << 20) == "300 MB")
        #expect(ByteSize.format(734_824) == "718 kB")
        #expect(ByteSize.format(1 << 30) == "1 GB")
    }
}

@Suite("Replica lag: the throttle between batches")
struct ReplicaThrottleTests {
    static let metadata: Logger.Metadata = ["policy": "p"]

    /// A throttle with a 10 s bound that polls every 10 ms.
    static func throttle(_ source: FakeLagSource, reminder: Duration = .seconds(60)) -> ReplicaThrottle {
        ReplicaThrottle(
            limits: ReplicaLagLimits(replayLag: .seconds(10)), source: source, pollInterval: .milliseconds(10),
            reminderInterval: reminder)
    }

    @Test func underTheBoundNothingPauses() async throws {
        let source = FakeLagSource(lag: .seconds(9))
        let log = LogRecorder()
        var throttled = 0.0
        var waits = 0
        try await Self.throttle(source).waitWhileLagging(
            logger: log.logger, metadata: Self.metadata, throttledSeconds: &throttled
        ) { _ in waits += 1 }
        #expect(source.reads == 1)
        #expect(throttled == 0)
        #expect(waits == 0)
        #expect(log.all.isEmpty)
    }

    @Test func withoutBoundsTheSourceIsNotEvenAsked() async throws {
        let source = FakeLagSource(lag: .seconds(999))
        var throttled = 0.0
        try await ReplicaThrottle(limits: ReplicaLagLimits(), source: source).waitWhileLagging(
            logger: LogRecorder().logger, metadata: [:], throttledSeconds: &throttled
        ) { _ in }
        #expect(source.reads == 0)
    }

    /// New bounds reach a throttle that is paused: removing them, or raising them above the lag, ends the pause
    /// at the next poll although the standby still lags.
    @Test(arguments: [ReplicaLagLimits(), ReplicaLagLimits(replayLag: .seconds(60))])
    func newBoundsEndAPauseTheyNoLongerCallFor(limits: ReplicaLagLimits) async throws {
        let source = FakeLagSource(lag: .seconds(42))
        let log = LogRecorder()
        let throttle = Self.throttle(source)
        let waiting = Task {
            var throttled = 0.0
            try await throttle.waitWhileLagging(
                logger: log.logger, metadata: Self.metadata, throttledSeconds: &throttled
            ) { _ in }
            return throttled
        }
        try await log.wait(for: "batches paused")
        throttle.update(limits)
        let throttled = try await waiting.value
        #expect(throttled > 0)
        #expect(throttle.limits == limits)
        #expect(log.messages(at: .notice).contains { $0.hasPrefix("batches resumed") })
    }

    @Test func pausesWhileAboveAndResumesBelowSayingSoOnce() async throws {
        let over = ReplicaLagReading(standbys: [standby(lag: 42)])
        let source = FakeLagSource(lag: .seconds(2), script: [over, over, over])
        let log = LogRecorder()
        var throttled = 0.0
        var reasons: [String] = []
        try await Self.throttle(source).waitWhileLagging(
            logger: log.logger, metadata: Self.metadata, throttledSeconds: &throttled
        ) { reasons.append("\($0)") }
        #expect(source.reads == 4)
        #expect(reasons.count == 3, "called at every poll while paused (the daemon's watchdog heartbeat)")
        #expect(throttled >= 0.03 && throttled < 5, "\(throttled) s")
        let notices = log.all.filter { $0.level == .notice }
        #expect(notices.count == 2)
        #expect(
            notices.first?.message == "batches paused: replica r1 replay lag 42 s exceeds throttle.replica_lag 10 s")
        #expect(notices.first?.metadata["policy"] == "p")
        #expect(notices.first?.metadata["replica"] == "r1")
        #expect(notices.first?.metadata["MESSAGE_ID"] == JournalEvent.batchesPaused.id)
        #expect(notices.last?.message.hasPrefix("batches resumed: replica lag is within the bounds again") == true)
        #expect(notices.last?.metadata["MESSAGE_ID"] == JournalEvent.batchesResumed.id)
        #expect(notices.last?.metadata["throttle.paused_seconds"] != nil)
    }

    @Test func aLongPauseIsRecalledAtMostEveryReminderInterval() async throws {
        let over = ReplicaLagReading(standbys: [standby(lag: 42)])
        let source = FakeLagSource(lag: .seconds(2), script: Array(repeating: over, count: 30))
        let log = LogRecorder()
        var throttled = 0.0
        try await Self.throttle(source, reminder: .milliseconds(100)).waitWhileLagging(
            logger: log.logger, metadata: Self.metadata, throttledSeconds: &throttled
        ) { _ in }
        let reminders = log.messages(at: .notice).filter { $0.hasPrefix("batches still paused after") }
        let allowed = Int(throttled / 0.1)
        #expect(reminders.count >= 1 && reminders.count <= allowed, "\(reminders.count) reminders in \(throttled) s")
    }

    @Test func cancellationEndsTheWaitPromptlyAndCountsThePause() async throws {
        let source = FakeLagSource(lag: .seconds(600))
        let throttle = ReplicaThrottle(
            limits: ReplicaLagLimits(replayLag: .seconds(10)), source: source, pollInterval: .seconds(1))
        let waiting = Task { () -> (Double, Bool) in
            var throttled = 0.0
            do {
                try await throttle.waitWhileLagging(
                    logger: LogRecorder().logger, metadata: [:], throttledSeconds: &throttled
                ) { _ in }
                return (throttled, false)
            } catch is CancellationError {
                return (throttled, true)
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = ContinuousClock.now
        waiting.cancel()
        let (throttled, threw) = try await waiting.value
        let took = ContinuousClock.now - cancelled
        #expect(threw, "cancellation ends the wait with CancellationError")
        #expect(took < .milliseconds(500), "ended \(took) after the cancellation, not at the next 1 s poll")
        #expect(throttled > 0.05, "the time paused before the cancellation is counted: \(throttled) s")
    }

    @Test func unknownLagDoesNotThrottle() async throws {
        for reading in [
            ReplicaLagReading(standbys: [standby(lag: nil, bytes: nil)]),
            ReplicaLagReading(inRecovery: true, standbys: []),
            ReplicaLagReading(standbys: []),
        ] {
            let source = FakeLagSource(script: [reading])
            var throttled = 0.0
            try await ReplicaThrottle(
                limits: ReplicaLagLimits(replayLag: .seconds(1), replayBytes: 1), source: source
            ).waitWhileLagging(logger: LogRecorder().logger, metadata: [:], throttledSeconds: &throttled) { _ in }
            #expect(source.reads == 1)
            #expect(throttled == 0)
        }
    }

    @Test func hiddenLagDoesNotThrottleAndIsWarnedAboutOncePerThrottle() async throws {
        let hidden = ReplicaLagReading(standbys: [standby(visible: false)], role: "gallra_app")
        let source = FakeLagSource(script: [hidden, hidden])
        let log = LogRecorder()
        let throttle = ReplicaThrottle(limits: ReplicaLagLimits(replayBytes: 1), source: source)
        var throttled = 0.0
        for _ in 0..<2 {
            try await throttle.waitWhileLagging(logger: log.logger, metadata: [:], throttledSeconds: &throttled) {
                _ in
            }
        }
        #expect(source.reads == 2)
        #expect(throttled == 0)
        let warnings = log.messages(at: .warning)
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("GRANT pg_monitor TO gallra_app") == true, "\(warnings)")
        #expect(log.all.first?.metadata["MESSAGE_ID"] == JournalEvent.replicaLagHidden.id)
    }
}

@Suite("Replica lag: live runs")
struct ReplicaThrottleRunTests {
    /// A live run of inactive-customers in batches of 50 with `throttle`.
    static func options(_ throttle: ReplicaThrottle) -> RunOptions {
        var options = DemoShop.options(.live)
        options.throttle = throttle
        return options
    }

    static func policy(on connection: PostgresConnection) async throws -> RunPolicy {
        try await DemoShop.policy("inactive-customers", on: connection) { $0.policy.limits.batchSize = 50 }
    }

    @Test func batchesPauseWhileAStandbyLagsAndTheRunReportsThePause() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection, customers: 1000)
            let policy = try await Self.policy(on: connection)
            // Two batches go through, then the standby lags until the test lets it catch up.
            let within = ReplicaLagReading(standbys: [standby(lag: 1)])
            let source = FakeLagSource(lag: .seconds(60), script: [within, within])
            let log = LogRecorder()
            let throttle = ReplicaThrottle(
                limits: ReplicaLagLimits(replayLag: .seconds(10)), source: source, pollInterval: .milliseconds(50))
            let progress = ProgressLog()
            let engine = Engine(connection: connection, auditKey: try DemoShop.auditKey(), logger: log.logger)
            let run = Task {
                try await engine.run([policy], options: Self.options(throttle)) { progress.append($0) }
            }
            try await log.wait(for: "batches paused")
            let observer = try await database.connect()
            let blocks = try await scalar("SELECT count(*) FROM gallra.audit_block", as: Int.self, on: observer)
            #expect(blocks == 2)
            try await Task.sleep(for: .milliseconds(500))
            #expect(
                try await scalar("SELECT count(*) FROM gallra.audit_block", as: Int.self, on: observer) == 2,
                "no batch while paused")
            #expect(progress.all.last?.pausedBy?.contains("replica r1 replay lag 60 s") == true)
            #expect(progress.all.last?.subjectsDone == 100)

            source.set(lag: .seconds(1))
            let report = try await run.value
            await observer.close()
            let result = try #require(report.policies.first)
            #expect(report.outcome == .done)
            #expect(result.processed == result.expiring)
            #expect(result.throttledSeconds >= 0.5 && result.throttledSeconds < 30, "\(result.throttledSeconds) s")
            let notices = log.all.filter { $0.message.hasPrefix("batches ") }
            #expect(notices.count == 2, "\(notices.map(\.message))")
            #expect(
                notices.allSatisfy { $0.metadata["policy"] == "inactive-customers" && $0.metadata["run.id"] != nil })
            #expect(progress.all.last?.pausedBy == nil, "progress after the pause is ordinary again")
        }
    }

    @Test func stoppingDuringAPauseEndsTheRunPromptlyAsInterrupted() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection, customers: 500)
            let policy = try await Self.policy(on: connection)
            let log = LogRecorder()
            let throttle = ReplicaThrottle(
                limits: ReplicaLagLimits(replayLag: .seconds(10)), source: FakeLagSource(lag: .seconds(60)))
            let engine = Engine(connection: connection, auditKey: try DemoShop.auditKey(), logger: log.logger)
            let run = Task { try await engine.run([policy], options: Self.options(throttle)) }
            try await log.wait(for: "batches paused")
            let cancelled = ContinuousClock.now
            run.cancel()
            let report = try await run.value
            #expect(ContinuousClock.now - cancelled < .seconds(1))
            #expect(report.outcome == .interrupted)
            #expect(report.policies.first?.processed == 0)
            #expect((report.policies.first?.throttledSeconds ?? 0) > 0)
            #expect(
                try await scalar("SELECT outcome FROM gallra.run", as: String.self, on: connection) == "interrupted")
        }
    }

    @Test func dryRunsAreNeverThrottled() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection, customers: 200)
            let policy = try await Self.policy(on: connection)
            let source = FakeLagSource(lag: .seconds(600))
            var options = DemoShop.options(.dry)
            options.throttle = ReplicaThrottle(limits: ReplicaLagLimits(replayLag: .seconds(1)), source: source)
            let report = try await DemoShop.engine(connection, key: false).run([policy], options: options)
            #expect(report.policies.first?.processed ?? 0 > 0)
            #expect(source.reads == 0)
        }
    }
}

/// The throttle against the streaming standby `make test` starts (scripts/pg.sh replica).
@Suite(
    "Replica lag: a real streaming standby", .serialized,
    .enabled(if: TestReplica.conninfo != nil, Comment(rawValue: TestReplica.skipNote)))
struct RealReplicaTests {
    @Test func theLagSourceReadsTheStandbyFromThePrimary() async throws {
        try await TestDatabase.with { _, connection in
            let name = TestReplica.name
            let reading = try await PostgresReplicaLagSource(connection: connection).read()
            #expect(!reading.inRecovery)
            let standby = try #require(reading.standbys.first { $0.name == name }, "\(reading)")
            #expect(standby.visible)
            #expect(standby.replayBytes != nil, "replay_lsn is known: \(standby)")
        }
    }

    @Test func onAStandbyThereIsNothingToThrottle() async throws {
        let connection = try await TestReplica.connect()
        let reading = try await PostgresReplicaLagSource(connection: connection).read()
        await connection.close()
        #expect(reading.inRecovery)
        #expect(reading.standbys.isEmpty)
    }

    @Test func aRoleWithoutPgMonitorSeesNoLagUntilGranted() async throws {
        let role = "gallra_t_monitor_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await TestServer.admin()
        try await admin.execute("CREATE ROLE \(role) LOGIN")
        do {
            let name = TestReplica.name
            let plain = try await PostgresConnection.connect(try TestServer.conninfo() + " user=\(role)")
            let hidden = try await PostgresReplicaLagSource(connection: plain).read()
            #expect(hidden.role == role)
            let standby = try #require(hidden.standbys.first { $0.name == name }, "\(hidden)")
            #expect(!standby.visible)
            #expect(standby.replayBytes == nil && standby.replayLag == nil)

            let log = LogRecorder()
            var throttled = 0.0
            try await ReplicaThrottle(
                limits: ReplicaLagLimits(replayBytes: 1), source: PostgresReplicaLagSource(connection: plain)
            ).waitWhileLagging(logger: log.logger, metadata: [:], throttledSeconds: &throttled) { _ in }
            #expect(throttled == 0)
            #expect(log.messages(at: .warning).first?.contains("GRANT pg_monitor TO \(role)") == true)

            try await admin.execute("GRANT pg_monitor TO \(role)")
            let granted = try await PostgresReplicaLagSource(connection: plain).read()
            #expect(granted.standbys.first { $0.name == name }?.visible == true)
            await plain.close()
        } catch {
            _ = try? await admin.execute("DROP ROLE IF EXISTS \(role)")
            await admin.close()
            throw error
        }
        try await admin.execute("DROP ROLE \(role)")
        await admin.close()
    }

    @Test func aStandbyWithReplayPausedHoldsTheBatchesBackUntilItResumes() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection, customers: 1000)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 100
            }
            let name = TestReplica.name
            let log = LogRecorder()
            let engine = Engine(connection: connection, auditKey: try DemoShop.auditKey(), logger: log.logger)
            var options = DemoShop.options(.live)
            options.throttle = ReplicaThrottle(
                limits: ReplicaLagLimits(replayBytes: 1 << 20),
                source: PostgresReplicaLagSource(connection: connection),
                pollInterval: .milliseconds(100))
            let frozen = options
            let observer = try await database.connect()
            let report = try await TestReplica.withReplayPaused {
                // WAL the paused standby cannot replay: well over the 1 MB bound.
                try await observer.execute(
                    "CREATE TABLE public.filler AS SELECT g, repeat('x', 200) AS x FROM generate_series(1, 20000) g")
                let run = Task { try await engine.run([policy], options: frozen) }
                try await log.wait(for: "batches paused: replica \(name) replay")
                try await Task.sleep(for: .seconds(1))
                #expect(try await scalar("SELECT count(*) FROM gallra.audit_block", as: Int.self, on: observer) == 0)
                #expect(
                    try await scalar(
                        "SELECT count(*) FROM gallra.run WHERE outcome = 'running'", as: Int.self, on: observer) == 1)
                try await TestReplica.resume()
                return try await run.value
            }
            await observer.close()
            let result = try #require(report.policies.first)
            #expect(report.outcome == .done)
            #expect(result.processed == result.expiring && result.processed > 0)
            #expect(result.throttledSeconds >= 1, "\(result.throttledSeconds) s")
            #expect(log.messages(at: .notice).contains { $0.hasPrefix("batches resumed") })
        }
    }
}
