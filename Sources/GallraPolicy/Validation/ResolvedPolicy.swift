/// A policy checked against the live catalog, with every name resolved: what the engine plans SQL from.
///
/// Every table is schema-qualified and every column is the exact catalog name, so the engine quotes them
/// as they are and never consults the search path. ``steps`` are in the order the engine applies them
/// inside one batch.
public struct ResolvedPolicy: Sendable, Hashable, Codable {
    /// The policy as written (names as the user wrote them).
    public var policy: Policy
    /// The subject table and its key.
    public var subject: ResolvedSubject
    /// When a subject expires.
    public var rule: ResolvedRule
    /// Subjects never touched, in the order written.
    public var exemptions: [ResolvedExemption]
    /// The data points, in the order the engine applies them (see ``ResolvedStep``).
    public var steps: [ResolvedStep]
    /// The consent guards of `collect: with_consent`, in the order of `data`; empty for `collect: always`.
    public var guards: [ResolvedCollectionGuard] = []

    /// The policy's name.
    public var name: PolicyName { policy.name }
}

/// The subject table and key, as the catalog has them.
public struct ResolvedSubject: Sendable, Hashable, Codable {
    /// The subject table, schema-qualified.
    public var table: QualifiedName
    /// The key column (a single-column primary key, or a unique not-null column).
    public var key: ColumnName
    /// The key's type as `format_type` prints it (`bigint`).
    public var keyType: String
    /// The key's type category.
    public var keyCategory: CatalogColumn.TypeCategory
    /// Whether the table is partitioned (row locking and counting go through the parent).
    public var isPartitioned: Bool
    /// The planner's row estimate, for the `max_fraction` guard (-1 when never analyzed).
    public var estimatedRows: Double
}

/// One step of a join path: rows of `to` whose `toColumns` equal the `fromColumns` of the rows reached so far.
public struct JoinHop: Sendable, Hashable, Codable {
    /// Which side holds the reference.
    public enum Direction: String, Sendable, Hashable, Codable {
        /// `to` references `from` (`shop.order.customer_id -> shop.customer.id`): rows that belong to the subject side.
        case child
        /// `from` references `to` (`shop.customer.address_id -> shop.address.id`): rows the subject side points to.
        case parent
    }

    /// The table already reached (the subject table for the first hop).
    public var from: QualifiedName
    /// Its joining columns.
    public var fromColumns: [ColumnName]
    /// The table this hop reaches.
    public var to: QualifiedName
    /// Its joining columns, pairwise equal to `fromColumns`.
    public var toColumns: [ColumnName]
    /// Child or parent.
    public var direction: Direction
    /// The foreign key followed, or nil when the link is a `via` column without a foreign key.
    public var foreignKey: String?
    /// What deleting a referenced row does to the referencing rows of that foreign key.
    public var onDelete: ForeignKey.Action?
    /// The `via` column that chose this link, if the policy named one.
    public var via: ColumnName?

    /// A hop from its parts.
    public init(
        from: QualifiedName, fromColumns: [ColumnName], to: QualifiedName, toColumns: [ColumnName],
        direction: Direction, foreignKey: String?, onDelete: ForeignKey.Action?, via: ColumnName?
    ) {
        self.from = from
        self.fromColumns = fromColumns
        self.to = to
        self.toColumns = toColumns
        self.direction = direction
        self.foreignKey = foreignKey
        self.onDelete = onDelete
        self.via = via
    }

    /// The table holding the reference: `to` for a child hop, `from` for a parent hop.
    public var referencingTable: QualifiedName { direction == .child ? to : from }
    /// The referencing columns.
    public var referencingColumns: [ColumnName] { direction == .child ? toColumns : fromColumns }
}

/// A timestamp column the rule reads, and where it lives.
public struct ResolvedRule: Sendable, Hashable, Codable {
    /// The kind of rule.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// No activity for the period: the column is the last activity (on the subject, or the latest related row).
        case inactiveFor = "inactive_for"
        /// Created longer ago than the period.
        case olderThan = "older_than"
        /// The period has passed since the event; a null event never expires.
        case after
        /// Consent was revoked longer ago than the grace period.
        case consentRevoked = "consent_revoked"
        /// A pending erasure request for the subject is due (its `not_before` has passed).
        case onRequest = "on_request"
    }

    public var kind: Kind
    /// The period (the grace period for consent).
    public var period: RetentionPeriod
    /// The table holding the timestamp column: the subject table, or the related table.
    public var table: QualifiedName
    /// The timestamp column (activity, created, event or revoked_at).
    public var column: ColumnName
    /// Its type as `format_type` prints it.
    public var columnType: String
    /// Empty when the column is on the subject table; otherwise the one hop from the subject to `table`
    /// (`inactive_for` takes the latest related row; a subject without one, or with one whose column is null,
    /// does not expire).
    public var path: [JoinHop]
    /// The index that serves the rule (on the column, or on the related table's link), nil when none does.
    public var index: String?
}

/// An exemption with its table and join path.
public struct ResolvedExemption: Sendable, Hashable, Codable {
    /// `except[index]`.
    public var index: Int
    /// The exemption with exact names: a column of the subject, or a related table with its `where` columns.
    public var exemption: Exemption
    /// The table the condition reads: the subject table, or the related table.
    public var table: QualifiedName
    /// Empty for a column of the subject; the path from the subject to the related table otherwise.
    public var path: [JoinHop]
}

/// One data point, resolved: which rows, reached how, and what happens to them.
public struct ResolvedStep: Sendable, Hashable, Codable {
    /// How the rows relate to the subject.
    public enum Relation: String, Sendable, Hashable, Codable {
        /// The subject row itself (the data point names the subject table, no path).
        case subject
        /// Rows that belong to the subject: every hop is a child hop.
        case owned
        /// Rows the subject (or a row it owns) points to: the path has a parent hop. Such rows may be shared;
        /// the engine acts only on rows not referenced by anything outside the expiring subjects, and
        /// reports the others as retained.
        case referenced
    }

    /// The action, with exact columns and resolved values.
    public enum Action: Sendable, Hashable {
        case delete
        case anonymize([ResolvedAnonymization])
        /// Delete the rows nothing references any more, anonymize the others (see ``GallraPolicy/Action/deleteOrAnonymize(_:)``).
        case deleteOrAnonymize([ResolvedAnonymization])

        /// The anonymized columns; empty for a delete.
        public var columns: [ResolvedAnonymization] {
            switch self {
            case .delete: []
            case .anonymize(let columns), .deleteOrAnonymize(let columns): columns
            }
        }

        /// Whether rows may be deleted.
        public var mayDelete: Bool {
            switch self {
            case .delete, .deleteOrAnonymize: true
            case .anonymize: false
            }
        }

        /// Whether rows may be anonymized.
        public var mayAnonymize: Bool {
            switch self {
            case .delete: false
            case .anonymize, .deleteOrAnonymize: true
            }
        }

        /// The anonymization alone (the half of ``deleteOrAnonymize(_:)`` applied to kept rows); nil for a delete.
        public var anonymization: Action? {
            switch self {
            case .delete: nil
            case .anonymize(let columns), .deleteOrAnonymize(let columns): .anonymize(columns)
            }
        }
    }

    /// `data[dataPoint]` in the policy file.
    public var dataPoint: Int
    /// Where the data point was written.
    public var location: SourceLocation?
    /// The table acted on, schema-qualified.
    public var table: QualifiedName
    /// Whether the table is partitioned.
    public var isPartitioned: Bool
    /// From the subject row to this table; empty for the subject row itself.
    public var path: [JoinHop]
    public var relation: Relation
    public var action: Action
    /// A 0-based index into ``ResolvedPolicy/steps`` of an earlier step after which this step's rows can no
    /// longer be found by joining along ``path`` (it deletes a table on the path, or nulls a joining
    /// column). The engine must identify this step's rows (their keys) before running that step. Nil when
    /// the path is intact when this step runs.
    public var identifyRowsBefore: Int?
    /// Foreign keys referencing this table, for a ``Relation/referenced`` step (a row still referenced through one
    /// of them by a row outside the expiring subjects' data is shared: retained, or anonymized by a
    /// ``Action/deleteOrAnonymize(_:)``) and for any ``Action/deleteOrAnonymize(_:)`` step (a row still referenced
    /// through one of them when the step runs is anonymized instead of deleted).
    public var referencedBy: [ForeignKeyReference]
    /// Side effects and caveats for people (cascades, SET NULL, retained shared rows).
    public var notes: [String]
    /// The planner's estimate of the table's rows (-1 when never analyzed).
    public var estimatedRows: Double
    /// The table's primary key columns; nil when it has none.
    public var primaryKey: [ColumnName]? = nil
}

/// A data-point table whose rows may be written only for a subject with consent in force (`collect: with_consent`).
///
/// The table links to the subject directly: ``columns`` of a row equal ``subjectColumns`` of its subject's row.
/// A row whose columns hold a null belongs to no subject and is not checked.
public struct ResolvedCollectionGuard: Sendable, Hashable, Codable {
    /// `data[dataPoint]` in the policy file (the first entry naming the table).
    public var dataPoint: Int
    /// The guarded table, schema-qualified.
    public var table: QualifiedName
    /// Whether the table is partitioned (its row trigger is cloned onto every partition).
    public var isPartitioned: Bool
    /// The linking columns of the guarded table.
    public var columns: [ColumnName]
    /// The subject table's columns they equal (the subject key, or another unique key).
    public var subjectColumns: [ColumnName]
    /// Whether the one linking column holds the subject key itself, of the key's type: the guard reads the key
    /// from the row; otherwise it looks the key up in the subject table.
    public var keyIsLinked: Bool
}

/// One anonymized column.
public struct ResolvedAnonymization: Sendable, Hashable, Codable {
    /// The exact column name.
    public var column: ColumnName
    /// Its type as `format_type` prints it.
    public var type: String
    /// The strategy as written.
    public var strategy: Strategy
    /// The value to bind for `redact` (the type-aware constant or the given text) and `set`; nil for the others.
    /// Text that PostgreSQL parses as the column's type (`0`, `1970-01-01`, `[redacted]`).
    public var value: Scalar?
    /// The foreign key this `null` detaches (the column belongs to it), nil otherwise.
    public var detaches: String?
}

/// A foreign key that references a table, seen from the referencing side.
public struct ForeignKeyReference: Sendable, Hashable, Codable {
    public var table: QualifiedName
    public var columns: [ColumnName]
    public var foreignKey: String
    public var referencedColumns: [ColumnName]
}

/// The outcome of validating one policy against the catalog.
public struct Validation: Sendable, Hashable {
    /// Errors and warnings, in file order.
    public var diagnostics: [PolicyDiagnostic]
    /// The resolved plan, present exactly when no diagnostic is an error.
    public var resolved: ResolvedPolicy?

    /// A validation from its parts.
    public init(diagnostics: [PolicyDiagnostic], resolved: ResolvedPolicy?) {
        self.diagnostics = diagnostics
        self.resolved = resolved
    }

    /// Whether any diagnostic is an error.
    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
    /// The errors alone.
    public var errors: [PolicyDiagnostic] { diagnostics.filter { $0.severity == .error } }
    /// The warnings alone.
    public var warnings: [PolicyDiagnostic] { diagnostics.filter { $0.severity == .warning } }
}

// MARK: - Codable for the action (a stable, readable JSON shape)

extension ResolvedStep.Action: Codable {
    private enum CodingKeys: String, CodingKey { case kind, columns }
    /// The stored `kind`.
    /// The stored `kind`; `delete_or_anonymize` stores its columns as `anonymize` does.
    private enum Kind: String {
        case delete, anonymize
        case deleteOrAnonymize = "delete_or_anonymize"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let text = try container.decode(String.self, forKey: .kind)
        switch Kind(rawValue: text) {
        case .delete: self = .delete
        case .anonymize: self = .anonymize(try container.decode([ResolvedAnonymization].self, forKey: .columns))
        case .deleteOrAnonymize:
            self = .deleteOrAnonymize(try container.decode([ResolvedAnonymization].self, forKey: .columns))
        case nil:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container, debugDescription: "unknown action \(text.quotedForMessage)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .delete:
            try container.encode(Kind.delete.rawValue, forKey: .kind)
        case .anonymize(let columns):
            try container.encode(Kind.anonymize.rawValue, forKey: .kind)
            try container.encode(columns, forKey: .columns)
        case .deleteOrAnonymize(let columns):
            try container.encode(Kind.deleteOrAnonymize.rawValue, forKey: .kind)
            try container.encode(columns, forKey: .columns)
        }
    }
}
