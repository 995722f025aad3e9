import GallraPolicy

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
    /// Why the policies were not checked against a catalog, said last in text when they were not.
    var uncheckedBecause: Unchecked = .noDatabase
    var overlap: [PolicyDiagnostic] = []
    /// What the policies leave out, when they were checked against a database (`validate` only).
    var coverage: Coverage?

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
                diagnostics: diagnostics.map(DiagnosticReport.init),
                coverage: coverage.map {
                    ValidateReport.CoverageCount(
                        tables: $0.tables.count, columns: $0.columns.count,
                        warnings: $0.withoutErasure.map(Coverage.erasureWarning))
                })
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
            if let coverage {
                for table in coverage.withoutErasure { Swift.print("warning: " + Coverage.erasureWarning(table)) }
                Swift.print(
                    "\ncoverage: \(CoverageReport.summary(coverage))"
                        + (coverage.isEmpty ? "" : "; gallra policy coverage lists them"))
            }
            if !checkedAgainstCatalog {
                Swift.print("\n(\(uncheckedBecause.note))")
            }
        }
    }
}

extension ValidationReport {
    /// Why the policies were checked without a database's catalog.
    enum Unchecked {
        /// No database is configured.
        case noDatabase
        /// `--offline` asked for the files alone.
        case offline
        /// The files have errors of their own, found before the database was asked.
        case fileErrors

        var note: String {
            switch self {
            case .noDatabase:
                "the files alone were checked; configure a database (--database) to check them against its catalog "
                    + "and see their plans"
            case .offline:
                "the files alone were checked (--offline); without it, they are checked against the database's "
                    + "catalog and their plans shown"
            case .fileErrors:
                "the files have errors of their own, so they were not checked against the database's catalog yet; "
                    + "fix those and apply again"
            }
        }
    }
}

/// A policy diagnostic in JSON.
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

/// `gallra policy validate --format json`.
struct ValidateReport: Encodable {
    struct PolicyEntry: Encodable {
        var name: String
        var file: String
        var valid: Bool
        var plan: ResolvedPolicy?
    }

    /// How many tables and columns the policies leave out (`gallra policy coverage` lists them).
    struct CoverageCount: Encodable {
        var tables: Int
        var columns: Int
        /// Subject tables whose erasure requests are refused (no on-request policy).
        var warnings: [String]
    }

    var checkedAgainstCatalog: Bool
    var policies: [PolicyEntry]
    var diagnostics: [DiagnosticReport]
    var coverage: CoverageCount?
}
