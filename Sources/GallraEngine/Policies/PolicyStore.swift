// The policy store: every version of every policy in `gallra.policy` (immutable rows; see Migrations.swift).
//
// Versions are decided by digest: the SHA-256 of a policy's canonical JSON text (UTF-8), computed by gallra
// (`Digest.sha256Hex`, equal to PostgreSQL's `sha256(convert_to(text, 'UTF8'))`). Re-applying an unchanged document
// stores nothing; a changed one becomes the next version. Writers take `LOCK TABLE gallra.policy IN SHARE ROW
// EXCLUSIVE MODE` (it conflicts with itself and with plain INSERTs, not with readers), so two concurrent
// applies cannot both create version N.
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPolicy
import GallraPostgres

/// One stored version of a policy: a row of `gallra.policy`.
public struct PolicyVersion: Sendable, Hashable {
    /// The policy name (the row's `name`).
    public var name: String
    public var version: Int
    public var state: Policy.State
    /// SHA-256 (hex) of the canonical JSON text of the definition, as stored.
    public var digest: String
    /// The file the version was applied from, or `database`.
    public var source: String
    public var appliedAt: Date
    public var appliedBy: String
    /// The stored document, as PostgreSQL prints the `jsonb`.
    public var definition: String

    public init(
        name: String, version: Int, state: Policy.State, digest: String, source: String, appliedAt: Date,
        appliedBy: String, definition: String
    ) {
        self.name = name
        self.version = version
        self.state = state
        self.digest = digest
        self.source = source
        self.appliedAt = appliedAt
        self.appliedBy = appliedBy
        self.definition = definition
    }
}

/// A stored version that decoded into a usable policy.
public struct StoredPolicy: Sendable, Hashable {
    public var policy: Policy
    /// The row it was read from.
    public var stored: PolicyVersion

    public init(policy: Policy, stored: PolicyVersion) {
        self.policy = policy
        self.stored = stored
    }
}

/// A stored version that cannot be used (written by other means than gallra, or altered), and why.
public struct InvalidStoredPolicy: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var version: Int
    /// What is wrong and what to do; quotes the policy text, never table rows.
    public var reason: String

    public init(name: String, version: Int, reason: String) {
        self.name = name
        self.version = version
        self.reason = reason
    }

    public var description: String { "policy \(name) version \(version) in gallra.policy is skipped: \(reason)" }
}

/// The latest versions read from the store: the usable ones, and the ones skipped with their reasons.
public struct PolicyLoad: Sendable, Hashable {
    /// Usable policies, by name.
    public var policies: [StoredPolicy]
    /// Skipped versions, by name. One never stops the others.
    public var invalid: [InvalidStoredPolicy]

    public init(policies: [StoredPolicy], invalid: [InvalidStoredPolicy]) {
        self.policies = policies
        self.invalid = invalid
    }
}

/// What storing one policy did (or, in a dry run, would do).
public enum PolicyChange: Sendable, Hashable {
    /// A new name: stored as version 1.
    case created(PolicyName, version: Int)
    /// Identical to the latest version (same digest): nothing stored.
    case unchanged(PolicyName, version: Int)
    /// Different from the latest version: stored as the next one.
    case updated(PolicyName, from: Int, to: Int, diff: PolicyDiff)

    public var name: PolicyName {
        switch self {
        case .created(let name, _), .unchanged(let name, _), .updated(let name, _, _, _): name
        }
    }

    /// The version in force after the change.
    public var version: Int {
        switch self {
        case .created(_, let version), .unchanged(_, let version), .updated(_, _, let version, _): version
        }
    }

    /// Whether a version was (or would be) stored.
    public var storesVersion: Bool {
        if case .unchanged = self { false } else { true }
    }
}

/// How a new version differs from the one before, member by member of the canonical documents.
public struct PolicyDiff: Sendable, Hashable {
    /// One difference, at a path in the policy file's notation (`expires.inactive_for`, `data[2].anonymize.email`).
    public struct Change: Sendable, Hashable, CustomStringConvertible {
        public enum Kind: String, Sendable, Hashable {
            case added, removed, changed
        }

        public var path: String
        public var kind: Kind
        /// The canonical JSON text of the value before (nil when added).
        public var old: String?
        /// The canonical JSON text of the value after (nil when removed).
        public var new: String?

        public init(path: String, kind: Kind, old: String? = nil, new: String? = nil) {
            self.path = path
            self.kind = kind
            self.old = old
            self.new = new
        }

        /// `expires.inactive_for: "1 year" → "2 years"`.
        public var description: String {
            let place = path.isEmpty ? "(document)" : path
            return switch kind {
            case .added: "\(place): added \(new ?? "")"
            case .removed: "\(place): removed (was \(old ?? ""))"
            case .changed: "\(place): \(old ?? "") → \(new ?? "")"
            }
        }
    }

    public var oldState: Policy.State
    public var newState: Policy.State
    /// Every difference, in document order (keys sorted).
    public var changes: [Change]

    public init(oldState: Policy.State, newState: Policy.State, changes: [Change]) {
        self.oldState = oldState
        self.newState = newState
        self.changes = changes
    }

    /// The paths that differ.
    public var changedPaths: [String] { changes.map(\.path) }
    /// Whether anything but the state differs.
    public var definitionChanged: Bool { changes.contains { $0.path != "state" } }
}

/// Why the store refused a request.
public struct PolicyStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CustomStringConvertible {
        /// Two policies of one apply have the same name (nothing was stored).
        case duplicateName
        /// No version of that policy is stored.
        case unknownPolicy
        /// A table a consent guard is installed on or removed from stayed locked by another transaction.
        case guardedTableBusy
        /// An active policy with `collect: with_consent` was given without its resolved guards (validate it first).
        case unresolvedGuards
        /// Two on-request policies not disabled have the same subject table and purpose (nothing was stored).
        case secondOnRequestPolicy

        public var description: String { rawValue }
    }

    public var code: Code
    /// The policy concerned.
    public var policy: String
    /// What is wrong and what to do.
    public var message: String

    public init(_ code: Code, policy: String, _ message: String) {
        self.code = code
        self.policy = policy
        self.message = message
    }

    public var description: String { message }
}

/// The versions of every policy, in the database's `gallra.policy`.
public struct PolicyStore: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    // MARK: - Writing

    /// Stores the policies that differ from their latest version, all in one transaction (all or none), and
    /// says what changed for each, in the order given. With `dryRun` the same work is done and rolled back.
    ///
    /// - Parameters:
    ///   - policies: each policy with where it came from (a file path, or `database`).
    ///   - guards: the consent guards of each active policy with `collect: with_consent`
    ///     (`ConsentGuard.guards(of:)` of its resolved form). The transaction installs them, replaces the ones that
    ///     differ and removes every other guard of the policies given, so that each policy's guards are its own.
    ///   - appliedBy: recorded in `applied_by`; nil records the database role (`current_user`).
    /// - Throws: `PolicyStoreError` `.duplicateName` before writing anything if two policies share a name,
    ///   `.unresolvedGuards` if an active policy that collects with consent has no entry in `guards`,
    ///   `.guardedTableBusy` if a guarded table stays locked; `PostgresError` if the database refuses (nothing is
    ///   stored then either).
    public func apply(
        _ policies: [(policy: Policy, source: String)], guards: [PolicyName: [ConsentGuard]] = [:],
        appliedBy: String? = nil, dryRun: Bool = false
    ) async throws -> [PolicyChange] {
        var firstSource: [PolicyName: String] = [:]
        for (policy, source) in policies {
            if let earlier = firstSource[policy.name] {
                throw PolicyStoreError(
                    .duplicateName, policy: policy.name.rawValue,
                    "policy \(policy.name.rawValue) is given twice (in \(earlier) and in \(source)); "
                        + "policy names must be unique: rename one. Nothing was stored")
            }
            firstSource[policy.name] = source
            if ConsentGuard.wantsGuards(policy), guards[policy.name] == nil {
                throw PolicyStoreError(
                    .unresolvedGuards, policy: policy.name.rawValue,
                    "policy \(policy.name.rawValue) collects with consent, and its guards were not resolved against the catalog; validate it first. Nothing was stored"
                )
            }
        }
        let documents = policies.map {
            Document(
                name: $0.policy.name, state: $0.policy.state, canonical: $0.policy.canonicalJSON, source: $0.source,
                guards: ConsentGuard.wantsGuards($0.policy) ? guards[$0.policy.name] ?? [] : [])
        }
        do {
            return try await connection.transaction { connection in
                let changes = try await Self.store(documents, appliedBy: appliedBy, on: connection)
                try await Self.checkOnRequestPolicies(on: connection)
                if dryRun { throw DryRunRollback(changes: changes) }
                return changes
            }
        } catch let rollback as DryRunRollback {
            return rollback.changes
        }
    }

    /// Stores a new version of `name` in state `disabled`, its definition otherwise unchanged. Already disabled:
    /// nothing is stored (`.unchanged`).
    ///
    /// - Throws: `PolicyStoreError` `.unknownPolicy` if no version of `name` is stored.
    @discardableResult
    public func disable(_ name: PolicyName, appliedBy: String? = nil, source: String = "database") async throws
        -> PolicyChange
    {
        try await connection.transaction { connection in
            try await Self.lock(connection)
            guard let latest = try await Self.versions(on: connection, latestOnly: true, name: name.rawValue).first
            else {
                throw PolicyStoreError(
                    .unknownPolicy, policy: name.rawValue,
                    "no policy named \(name.rawValue) is stored; gallra policy list shows the stored ones")
            }
            if latest.state == .disabled {
                try await ConsentGuards.reconcile(policy: name, version: latest.version, wanted: [], on: connection)
                return .unchanged(name, version: latest.version)
            }
            let old = try JSONValue(parsing: latest.definition)
            guard case .object(var members) = old else {
                throw PolicyStoreError(
                    .unknownPolicy, policy: name.rawValue,
                    "the stored definition of \(name.rawValue) version \(latest.version) is not a JSON object")
            }
            members["state"] = .string(Policy.State.disabled.rawValue)
            let new = JSONValue.object(members)
            let version = latest.version + 1
            try await Self.insert(
                Document(name: name, state: .disabled, canonical: new.canonicalText, source: source, guards: []),
                version: version, appliedBy: appliedBy, on: connection)
            try await ConsentGuards.reconcile(policy: name, version: version, wanted: [], on: connection)
            let diff = PolicyDiff(
                oldState: latest.state, newState: .disabled, changes: JSONValue.differences(from: old, to: new))
            return .updated(name, from: latest.version, to: version, diff: diff)
        }
    }

    // MARK: - Reading

    /// The latest version of each policy, by name.
    public func list() async throws -> [PolicyVersion] {
        try await Self.versions(on: connection, latestOnly: true, name: nil)
    }

    /// The latest version of `name`, or nil if none is stored.
    public func latest(_ name: PolicyName) async throws -> PolicyVersion? {
        try await Self.versions(on: connection, latestOnly: true, name: name.rawValue).first
    }

    /// Version `version` of `name`, or nil.
    public func version(_ name: PolicyName, _ version: Int) async throws -> PolicyVersion? {
        try await Self.versions(on: connection, latestOnly: false, name: name.rawValue).first { $0.version == version }
    }

    /// Every version of `name`, oldest first; empty if none is stored.
    public func history(_ name: PolicyName) async throws -> [PolicyVersion] {
        try await Self.versions(on: connection, latestOnly: false, name: name.rawValue)
    }

    /// The latest version of every policy (draft, active and disabled), decoded; invalid ones are reported.
    public func loadAll() async throws -> PolicyLoad {
        load(try await list())
    }

    /// Decodes stored versions into policies. A version is used when its definition decodes as a policy whose
    /// name and state agree with the row, and its digest is the SHA-256 of the definition's canonical text, either
    /// as this gallra writes it or as stored (a version written by an older gallra, whose canonical form differed).
    func load(_ versions: [PolicyVersion]) -> PolicyLoad {
        struct Candidate {
            var stored: PolicyVersion
            var storedCanonical: String?
            var policy: Policy?
            var reasons: [String]
        }
        var candidates: [Candidate] = versions.map { stored in
            var candidate = Candidate(stored: stored, reasons: [])
            do {
                candidate.storedCanonical = try JSONValue(parsing: stored.definition).canonicalText
            } catch {
                candidate.reasons.append("the definition is \(error)")
                return candidate
            }
            do throws(PolicyError) {
                let policy = try Policy(
                    parsing: candidate.storedCanonical ?? "", file: "gallra.policy \(stored.name) v\(stored.version)")
                candidate.policy = policy
                if policy.name.rawValue != stored.name {
                    candidate.reasons.append(
                        "the definition names policy \(policy.name.rawValue), the row \(stored.name)")
                }
                if policy.state != stored.state {
                    candidate.reasons.append(
                        "the row's state is \(stored.state.rawValue) but the definition says \(policy.state.rawValue)")
                }
            } catch {
                let problems = error.diagnostics.filter { $0.severity == .error }.map(\.message)
                candidate.reasons.append("the definition is not a valid policy: " + problems.joined(separator: "; "))
            }
            return candidate
        }
        // The stored digest must be that of the stored canonical form or of this gallra's canonical form.
        for index in candidates.indices {
            var expected: [String] = []
            if let storedCanonical = candidates[index].storedCanonical {
                expected.append(Digest.sha256Hex(storedCanonical))
            }
            if let policy = candidates[index].policy { expected.append(Digest.sha256Hex(policy.canonicalJSON)) }
            if !expected.isEmpty, !expected.contains(candidates[index].stored.digest) {
                candidates[index].reasons.insert(
                    "its digest is not the SHA-256 of its definition: the row was altered or not written by gallra; "
                        + "apply the policy file again (gallra policy apply) to store a correct version", at: 0)
            }
        }
        var load = PolicyLoad(policies: [], invalid: [])
        for candidate in candidates {
            if let policy = candidate.policy, candidate.reasons.isEmpty {
                load.policies.append(StoredPolicy(policy: policy, stored: candidate.stored))
            } else {
                load.invalid.append(
                    InvalidStoredPolicy(
                        name: candidate.stored.name, version: candidate.stored.version,
                        reason: candidate.reasons.joined(separator: "; ")))
            }
        }
        return load
    }

    // MARK: - SQL

    /// A policy about to be stored, reduced to Sendable text.
    private struct Document: Sendable {
        var name: PolicyName
        var state: Policy.State
        var canonical: String
        var source: String
        /// The consent guards the policy wants installed.
        var guards: [ConsentGuard]
    }

    /// Thrown inside the transaction of a dry run so that it rolls back; carries the changes out.
    private struct DryRunRollback: Error {
        var changes: [PolicyChange]
    }

    private static func lock(_ connection: PostgresConnection) async throws {
        try await connection.execute("LOCK TABLE gallra.policy IN SHARE ROW EXCLUSIVE MODE")
    }

    private static func store(
        _ documents: [Document], appliedBy: String?, on connection: PostgresConnection
    ) async throws -> [PolicyChange] {
        try await lock(connection)
        var latest: [String: PolicyVersion] = [:]
        for stored in try await versions(on: connection, latestOnly: true, name: nil) {
            latest[stored.name] = stored
        }
        var changes: [PolicyChange] = []
        for document in documents {
            let digest = Digest.sha256Hex(document.canonical)
            guard let current = latest[document.name.rawValue] else {
                try await insert(document, version: 1, appliedBy: appliedBy, on: connection)
                try await ConsentGuards.reconcile(
                    policy: document.name, version: 1, wanted: document.guards, on: connection)
                changes.append(.created(document.name, version: 1))
                continue
            }
            if current.digest == digest {
                // The guards are put right even so: a guarded table dropped and created again gets them back.
                try await ConsentGuards.reconcile(
                    policy: document.name, version: current.version, wanted: document.guards, on: connection)
                changes.append(.unchanged(document.name, version: current.version))
                continue
            }
            let version = current.version + 1
            try await insert(document, version: version, appliedBy: appliedBy, on: connection)
            try await ConsentGuards.reconcile(
                policy: document.name, version: version, wanted: document.guards, on: connection)
            let new = try JSONValue(parsing: document.canonical)
            let changed =
                (try? JSONValue(parsing: current.definition)).map { JSONValue.differences(from: $0, to: new) }
                ?? [PolicyDiff.Change(path: "", kind: .changed, old: current.definition, new: document.canonical)]
            changes.append(
                .updated(
                    document.name, from: current.version, to: version,
                    diff: PolicyDiff(oldState: current.state, newState: document.state, changes: changed)))
        }
        return changes
    }

    /// Refuses a second on-request policy (not disabled) over one subject table with the same `purpose:`: an erasure
    /// request would otherwise be answered twice for one purpose. Runs after the new versions are stored, in their
    /// transaction, so that it judges the policies as they will be.
    private static func checkOnRequestPolicies(on connection: PostgresConnection) async throws {
        let row = try await connection.query(
            """
            SELECT a.name AS first, b.name AS second, a.definition->'subject'->>'table' AS subject_table,
                   a.definition->>'purpose' AS purpose
            FROM gallra.policy_latest AS a
            JOIN gallra.policy_latest AS b
              ON a.name < b.name
             AND parse_ident(a.definition->'subject'->>'table') = parse_ident(b.definition->'subject'->>'table')
             AND a.definition->>'purpose' IS NOT DISTINCT FROM b.definition->>'purpose'
            WHERE a.definition->'expires' = '"on_request"'::jsonb AND b.definition->'expires' = '"on_request"'::jsonb
              AND a.state <> 'disabled' AND b.state <> 'disabled'
            ORDER BY a.name, b.name
            LIMIT 1
            """
        ).first
        guard let row else { return }
        let first = try row.decode("first", as: String.self)
        let second = try row.decode("second", as: String.self)
        let table = try row.decode("subject_table", as: String.self)
        let purpose = try row.decode("purpose", as: String?.self)
        let same = purpose == nil ? "neither states a purpose" : "both state the same purpose"
        throw PolicyStoreError(
            .secondOnRequestPolicy, policy: second,
            "policies \(first) and \(second) both act on erasure requests for \(table) (expires: on_request) and \(same); a subject table has one on-request policy per purpose: merge their data points into one, give each its own purpose:, or disable one. Nothing was stored"
        )
    }

    private static func insert(
        _ document: Document, version: Int, appliedBy: String?, on connection: PostgresConnection
    ) async throws {
        try await connection.execute(
            """
            INSERT INTO gallra.policy (name, version, state, definition, digest, source, applied_by)
            VALUES ($1, $2, $3, $4::jsonb, $5, $6, COALESCE($7, current_user))
            """,
            [
                .text(document.name.rawValue), .int32(Int32(version)), .text(document.state.rawValue),
                .text(document.canonical), .text(Digest.sha256Hex(document.canonical)), .text(document.source),
                appliedBy.map { .text($0) } ?? .null,
            ])
    }

    private static func versions(
        on connection: PostgresConnection, latestOnly: Bool, name: String?
    ) async throws -> [PolicyVersion] {
        let relation = latestOnly ? "gallra.policy_latest" : "gallra.policy"
        let result = try await connection.query(
            """
            SELECT name, version, state, digest, source, applied_at, applied_by, definition::text AS definition
            FROM \(relation)
            WHERE $1::text IS NULL OR name = $1
            ORDER BY name, version
            """, [name.map { .text($0) } ?? .null])
        return try result.map { row in
            let state = try row.decode("state", as: String.self)
            guard let decodedState = Policy.State(rawValue: state) else {
                throw PostgresError(.decoding, "gallra.policy.state holds an unknown state")
            }
            return PolicyVersion(
                name: try row.decode("name"), version: try row.decode("version"), state: decodedState,
                digest: try row.decode("digest"), source: try row.decode("source"),
                appliedAt: try row.decode("applied_at"), appliedBy: try row.decode("applied_by"),
                definition: try row.decode("definition"))
        }
    }
}

import GallraCore

extension PolicyStoreError: ExitStatusProviding {
    public var exitStatus: ExitStatus {
        switch code {
        case .duplicateName, .unknownPolicy, .secondOnRequestPolicy: .dataError
        case .guardedTableBusy: .temporaryFailure
        case .unresolvedGuards: .software
        }
    }
}
