#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraEngine
import GallraPolicy

/// A register extract as one JSON document (docs/export.schema.json), written as it is read: the header's parts
/// are encoded whole, each table's rows are copied as the server wrote them, one per line.
final class JSONExtractWriter: ExtractWriter, @unchecked Sendable {
    // @unchecked: the engine drives a writer from one task at a time, and nothing else touches it.

    /// The document's format; a change that breaks a reader raises it.
    static let formatVersion = 1

    private let file: ExtractFile
    private let encoder: JSONEncoder
    private var tables = 0
    private var rowsInTable = 0

    init(file: ExtractFile) {
        self.file = file
        encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    func begin(_ header: ExtractHeader) throws {
        let document = ExtractDocumentHeader(header)
        // The header's object without its closing brace: the tables follow inside it.
        var text = String(decoding: try encoder.encode(document), as: UTF8.self)
        text.removeLast()
        try file.write(text + ",\"tables\":[")
    }

    func beginTable(_ table: ExtractTable) throws {
        var text = String(decoding: try encoder.encode(TableHead(table)), as: UTF8.self)
        text.removeLast()
        try file.write((tables == 0 ? "\n" : ",\n") + text + ",\"rows\":[")
        tables += 1
        rowsInTable = 0
    }

    func rows(_ rows: [String]) throws {
        for row in rows {
            try file.write((rowsInTable == 0 ? "\n" : ",\n") + row)
            rowsInTable += 1
        }
    }

    func endTable(rowCount: Int) throws {
        try file.write("],\"row_count\":\(rowCount)}")
    }

    func finish() throws {
        try file.write("\n]}\n")
    }

    private struct TableHead: Encodable {
        var table: String
        var policies: [String]
        var columns: [Column]

        struct Column: Encodable {
            var name: String
            var type: String
        }

        init(_ table: ExtractTable) {
            self.table = table.name
            policies = table.policies
            columns = table.columns.map { Column(name: $0.name, type: $0.type) }
        }
    }
}

/// Everything of the JSON extract but its tables.
struct ExtractDocumentHeader: Encodable {
    var formatVersion = JSONExtractWriter.formatVersion
    var generatedAt: String
    var generator: String
    var database: String
    var subject: Subject
    var policies: [Policy]
    var uncheckedPolicies: [Unchecked]
    var consent: [Consent]
    var processing: Processing

    struct Subject: Encodable {
        var table: String
        var keyColumn: String
        var key: String
    }

    struct Policy: Encodable {
        var name: String
        var version: Int
        var state: String
        var description: String?
        var purpose: String?
        var legalBasis: String?
        var rule: String
        var tables: [String]
        var standing: String
        var why: Why
    }

    /// Why the subject stands where it does under a policy, as `gallra explain` says it.
    struct Why: Encodable {
        /// due, not_yet, exempt, held, no_date, not_requested, consent_in_force, processed or no_subject.
        var verdict: String
        /// The date the rule reads (RFC 3339), and where it comes from.
        var date: String?
        var dateSource: String?
        /// When the subject expires (the date plus the period).
        var expiresAt: String?
        /// The exemptions that hold, as `except[0] legal_hold is true`.
        var exemptions: [String]
        /// For a consent policy: granted, revoked or none, and when.
        var consentState: String?
        var consentAt: String?

        init(_ standing: PolicyStanding) {
            verdict = standing.verdict.rawValue
            date = standing.date
            dateSource = standing.dateSource
            expiresAt = standing.expiresAt
            exemptions = standing.exemptions.map { "except[\($0.index)] \($0.condition)" }
            consentState = standing.consent?.state
            consentAt = standing.consent?.at
        }

        private enum CodingKeys: String, CodingKey {
            case verdict, date, dateSource, expiresAt, exemptions, consentState, consentAt
        }

        /// Every key, null when unknown.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(verdict, forKey: .verdict)
            try container.encode(date, forKey: .date)
            try container.encode(dateSource, forKey: .dateSource)
            try container.encode(expiresAt, forKey: .expiresAt)
            try container.encode(exemptions, forKey: .exemptions)
            try container.encode(consentState, forKey: .consentState)
            try container.encode(consentAt, forKey: .consentAt)
        }
    }

    struct Unchecked: Encodable {
        var name: String
        var reason: String
    }

    struct Consent: Encodable {
        var event: String
        var policy: String
        var policyVersion: Int
        var recordedAt: String
        var recordedBy: String
        var source: String?
        var evidence: String?
    }

    struct Processing: Encodable {
        var available: Bool
        var reason: String?
        var subjectDigest: String?
        var records: [Record]
        var exports: [Export]
    }

    struct Record: Encodable {
        var at: String
        var run: String
        var policy: String
        var policyVersion: Int
        var block: Int64
        var counts: [AuditCount]
    }

    struct Export: Encodable {
        var at: String
        var format: String
        var databaseRole: String
        var osUser: String
    }

    init(_ header: ExtractHeader) {
        generatedAt = TimeText.rfc3339(unixMicroseconds: header.takenAtMicroseconds)
        generator = BuildInfo.versionLine
        database = header.database
        subject = Subject(table: header.subjectTable, keyColumn: header.keyColumn, key: header.key)
        policies = header.policies.map {
            Policy(
                name: $0.name, version: $0.version, state: $0.state.rawValue, description: $0.description,
                purpose: $0.purpose, legalBasis: $0.legalBasis?.rawValue, rule: $0.rule, tables: $0.tables,
                standing: $0.standing.rawValue, why: Why($0.why))
        }
        uncheckedPolicies = header.uncheckedPolicies.map { Unchecked(name: $0.name, reason: $0.reason) }
        consent = header.consent.map {
            Consent(
                event: $0.event.rawValue, policy: $0.policy, policyVersion: $0.policyVersion,
                recordedAt: TimeText.rfc3339(unixMicroseconds: $0.recordedAtMicroseconds), recordedBy: $0.recordedBy,
                source: $0.source, evidence: $0.evidence)
        }
        switch header.history {
        case .found(let digest, let records, let exports):
            processing = Processing(
                available: true, reason: nil, subjectDigest: digest,
                records: records.map {
                    Record(
                        at: TimeText.rfc3339(unixMicroseconds: $0.createdAtMicroseconds), run: $0.run,
                        policy: $0.policy, policyVersion: $0.policyVersion, block: $0.block, counts: $0.counts)
                },
                exports: exports.map {
                    Export(
                        at: TimeText.rfc3339(unixMicroseconds: $0.createdAtMicroseconds), format: $0.format,
                        databaseRole: $0.databaseRole, osUser: $0.osUser)
                })
        case .noAuditKey:
            processing = Processing(
                available: false,
                reason: "no audit key was given: the audit trail names subjects only by a digest made with it, so "
                    + "the processing history of this subject could not be read",
                subjectDigest: nil, records: [], exports: [])
        }
    }
}
