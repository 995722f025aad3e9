import Foundation
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

/// Policy files named on the command line.
enum PolicyFiles {
    /// Reads each path: a file, or every *.yaml, *.yml and *.json file of a directory (in name order).
    static func read(_ paths: [String]) throws -> [PolicyFile] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CommandFailure(.dataError, "\(path): no such file or directory")
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                let policies = names.filter { name in
                    !name.hasPrefix(".") && ["yaml", "yml", "json"].contains((name as NSString).pathExtension)
                }
                if policies.isEmpty {
                    throw CommandFailure(.dataError, "\(path): the directory holds no *.yaml, *.yml or *.json file")
                }
                files += policies.map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        return files.map { PolicyFile.read(path: $0) }
    }
}

/// Policy names given on the command line.
enum PolicyNames {
    static func parse(_ text: String) throws -> PolicyName {
        do {
            return try PolicyName(text)
        } catch {
            throw CommandFailure(.usage, "\(error)")
        }
    }
}

/// Stored policies checked against the catalog.
enum StoredPolicies {
    static func validate(_ stored: StoredPolicy, against catalog: Catalog) -> Validation {
        stored.validate(against: catalog)
    }
}

/// What `policy validate` and `policy apply` found in a set of files.
struct ValidationReport {
    struct Entry {
        var file: String
        var parsed: ParsedPolicy
        var validation: Validation?
    }

    /// Syntax errors and duplicate names: problems of the files as a whole.
    var fileDiagnostics: [PolicyDiagnostic]
    /// The policies that parsed.
    var policies: [Entry]
    var checkedAgainstCatalog = false
    var overlap: [PolicyDiagnostic] = []

    init(files: [PolicyFile]) {
        fileDiagnostics = files.flatMap(\.diagnostics)
        policies = files.flatMap { file in
            file.policies.map { Entry(file: file.path ?? "<input>", parsed: $0) }
        }
        fileDiagnostics += Policy.duplicateNameDiagnostics(policies.map(\.parsed))
    }

    mutating func validate(against catalog: Catalog) {
        for index in policies.indices {
            policies[index].validation = GallraPolicy.validate(policies[index].parsed, against: catalog)
        }
        overlap = overlapDiagnostics(policies.compactMap { $0.validation?.resolved })
        checkedAgainstCatalog = true
    }

    var diagnostics: [PolicyDiagnostic] {
        fileDiagnostics + policies.flatMap { $0.validation?.diagnostics ?? [] } + overlap
    }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    var failureSummary: String {
        let errors = diagnostics.filter { $0.severity == .error }.count
        return "\(errors) error\(errors == 1 ? "" : "s") in the policies; fix them and run again"
    }

    /// Diagnostics alone, on stderr (for `apply`, whose stdout says what changed).
    func printDiagnostics() {
        for diagnostic in diagnostics { StandardError.write(diagnostic.description + "\n") }
    }

    func print(format: OutputFormat) {
        switch format {
        case .json:
            let report = ValidateReport(
                checkedAgainstCatalog: checkedAgainstCatalog,
                policies: policies.map {
                    ValidateReport.PolicyEntry(
                        name: $0.parsed.policy.name.rawValue, file: $0.file,
                        valid: !($0.validation?.hasErrors ?? false), plan: $0.validation?.resolved)
                },
                diagnostics: diagnostics.map(DiagnosticReport.init))
            try? JSONOutput.print(report)
        case .text:
            for diagnostic in diagnostics { Swift.print(diagnostic.description) }
            for entry in policies where !(entry.validation?.hasErrors ?? false) {
                if let plan = entry.validation?.resolved {
                    Swift.print("\n\(entry.file): ok\n\(plan.render())")
                } else {
                    Swift.print("\(entry.file): \(entry.parsed.policy.name.rawValue): syntax ok")
                }
            }
            if !checkedAgainstCatalog {
                Swift.print(
                    "\n(the files alone were checked; configure a database (--database) to check them against "
                        + "its catalog and see their plans)")
            }
        }
    }
}

// MARK: - JSON reports

struct DiagnosticReport: Encodable {
    var severity: PolicyDiagnostic.Severity
    var file: String?
    var line: Int?
    var column: Int?
    var path: String?
    var message: String

    init(_ diagnostic: PolicyDiagnostic) {
        severity = diagnostic.severity
        file = diagnostic.location?.file
        line = diagnostic.location?.line
        column = diagnostic.location?.column
        path = diagnostic.path
        message = diagnostic.message
    }
}

struct ValidateReport: Encodable {
    struct PolicyEntry: Encodable {
        var name: String
        var file: String
        var valid: Bool
        var plan: ResolvedPolicy?
    }

    var checkedAgainstCatalog: Bool
    var policies: [PolicyEntry]
    var diagnostics: [DiagnosticReport]
}

struct ChangeReport: Encodable {
    /// What `apply` or `disable` did to a policy.
    enum Change: String, Encodable {
        case created
        case updated
        case unchanged
    }

    var policy: String
    var change: Change
    var version: Int
    var previousVersion: Int?
    var changed: [String]

    init(_ change: PolicyChange) {
        policy = change.name.rawValue
        version = change.version
        switch change {
        case .created:
            self.change = .created
            changed = []
        case .unchanged:
            self.change = .unchanged
            changed = []
        case .updated(_, let from, _, let diff):
            self.change = .updated
            previousVersion = from
            changed = diff.changes.map(\.description)
        }
    }

    func line(dryRun: Bool) -> String {
        switch change {
        case .created:
            return "\(dryRun ? "would create" : "created") \(policy) version \(version)"
        case .updated:
            let details = changed.map { "\n    \($0)" }.joined()
            return "\(dryRun ? "would update" : "updated") \(policy) to version \(version)\(details)"
        case .unchanged:
            return "unchanged \(policy) (version \(version))"
        }
    }
}

struct ApplyReport: Encodable {
    var dryRun: Bool
    var changes: [ChangeReport]
}

struct PolicyListRow: Encodable {
    var name: String
    var version: Int
    var state: Policy.State
    var valid: Bool
    var problem: String?
    var schedule: String?
    var nextRun: Date?
}

struct HistoryRow: Encodable {
    var version: Int
    var state: Policy.State
    var digest: String
    var appliedAt: Date
    var appliedBy: String
    var source: String
}

struct ShowReport: Encodable {
    var name: String
    var version: Int
    var state: Policy.State
    var digest: String
    var source: String
    var appliedAt: Date
    var appliedBy: String
    var definition: Policy?
    var diagnostics: [String]
    var plan: ResolvedPolicy?
}

/// JSON text indented with sorted keys, for people.
enum JSONText {
    static func pretty(_ text: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)),
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A plain text table: columns padded to their widest cell.
final class TextTable {
    private let header: [String]
    private var rows: [[String]] = []

    init(header: [String]) { self.header = header }

    func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

}
