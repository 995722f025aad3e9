#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPostgres

extension Schema {
    /// Version 3: the daemon's schedule state, so that a missed schedule runs once after downtime.
    static let migration3 = Migration(
        version: 3,
        description: "schedule_state (when the daemon last started each policy)",
        statements: [
            """
            CREATE TABLE gallra.schedule_state (
                policy           text PRIMARY KEY,
                scheduled_since  timestamptz NOT NULL DEFAULT now(),
                last_started_at  timestamptz,
                last_finished_at timestamptz,
                last_outcome     text,
                last_run         uuid
            )
            """,
            """
            COMMENT ON TABLE gallra.schedule_state IS
                'The daemon''s schedule per policy: a fire time later than the last start (or, before any start, '
                'than scheduled_since) is due and runs once, however many fire times were missed.'
            """,
            "COMMENT ON COLUMN gallra.schedule_state.policy IS 'The policy name (gallra.policy.name).'",
            """
            COMMENT ON COLUMN gallra.schedule_state.scheduled_since IS
                'When the daemon first scheduled the policy: fire times before it are not due (a new policy waits '
                'for its first fire time, or gallra trigger).'
            """,
            """
            COMMENT ON COLUMN gallra.schedule_state.last_started_at IS
                'When the daemon last started a run of the policy (scheduled or triggered); null: never.'
            """,
            """
            COMMENT ON COLUMN gallra.schedule_state.last_finished_at IS
                'When that run ended; null while it runs, or when the daemon stopped or lost the database during it.'
            """,
            """
            COMMENT ON COLUMN gallra.schedule_state.last_outcome IS
                'How it ended: a gallra.run outcome (done, partial, refused, failed, interrupted), or dry for a dry run.'
            """,
            "COMMENT ON COLUMN gallra.schedule_state.last_run IS 'The live run (gallra.run.id); null for a dry run.'",
        ]
    )
}

/// When the daemon last started each policy (`gallra.schedule_state`).
public struct ScheduleState: Sendable, Hashable {
    public var policy: String
    public var scheduledSince: Date
    public var lastStartedAt: Date?
    public var lastFinishedAt: Date?
    public var lastOutcome: String?
}

/// Reads and writes `gallra.schedule_state`.
public struct ScheduleStateStore: Sendable {
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// The state of each of `policies`, recording `now` as `scheduled_since` for those seen for the first time.
    public func load(policies: [String], now: Date) async throws -> [String: ScheduleState] {
        try await connection.execute(
            """
            INSERT INTO gallra.schedule_state (policy, scheduled_since)
            SELECT p, $2 FROM jsonb_array_elements_text($1::jsonb) AS p
            ON CONFLICT (policy) DO NOTHING
            """, [.jsonb(Engine.jsonArray(policies)), .timestamptz(PostgresTimestamp(now))])
        var states: [String: ScheduleState] = [:]
        for row in try await connection.query(
            """
            SELECT policy, scheduled_since, last_started_at, last_finished_at, last_outcome
            FROM gallra.schedule_state WHERE policy IN (SELECT jsonb_array_elements_text($1::jsonb))
            """, [.jsonb(Engine.jsonArray(policies))])
        {
            let state = ScheduleState(
                policy: try row.decode("policy"), scheduledSince: try row.decode("scheduled_since"),
                lastStartedAt: try row.decode("last_started_at"), lastFinishedAt: try row.decode("last_finished_at"),
                lastOutcome: try row.decode("last_outcome"))
            states[state.policy] = state
        }
        return states
    }

    /// Records that a run of `policies` started at `at`.
    public func started(_ policies: [String], at: Date) async throws {
        try await connection.execute(
            """
            INSERT INTO gallra.schedule_state AS s (policy, scheduled_since, last_started_at)
            SELECT p, $2, $2 FROM jsonb_array_elements_text($1::jsonb) AS p
            ON CONFLICT (policy) DO UPDATE
                SET last_started_at = EXCLUDED.last_started_at, last_finished_at = NULL, last_outcome = NULL,
                    last_run = NULL
            """, [.jsonb(Engine.jsonArray(policies)), .timestamptz(PostgresTimestamp(at))])
    }

    /// Records how the run of `policies` ended.
    public func finished(_ policies: [String], outcome: String, run: String?) async throws {
        try await connection.execute(
            """
            UPDATE gallra.schedule_state
            SET last_finished_at = clock_timestamp(), last_outcome = $2, last_run = $3::uuid
            WHERE policy IN (SELECT jsonb_array_elements_text($1::jsonb))
            """, [.jsonb(Engine.jsonArray(policies)), .text(outcome), run.map { .text($0) } ?? .null])
    }
}
