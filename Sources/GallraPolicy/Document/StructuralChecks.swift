extension ParsedPolicy {
    /// Checks that need no catalog: paths that repeat a table, data points given twice, an anonymized
    /// subject key, limits that contradict each other. Table names are compared as written: `customer`
    /// and `shop.customer` may be the same table, which only the catalog can tell.
    public func structuralDiagnostics() -> [PolicyDiagnostic] {
        var diagnostics: [PolicyDiagnostic] = []
        func error(_ message: String, _ path: String, severity: PolicyDiagnostic.Severity = .error) {
            diagnostics.append(
                PolicyDiagnostic(severity: severity, location: source.location(of: path), path: path, message: message))
        }
        let subjectTable = policy.subject.table
        var seenPoints: [DataPointIdentity: Int] = [:]
        for (index, point) in policy.dataPoints.enumerated() {
            let path = "data[\(index)]"
            checkThrough(point.through, table: point.table, path: path + ".through", report: { error($0, $1) })
            let identity = DataPointIdentity(table: point.table, through: point.through, via: point.via)
            if let earlier = seenPoints[identity] {
                error(
                    "data: \(point.table) is listed twice with the same path (also data[\(earlier)]); merge them into one data point",
                    path + ".table")
            } else {
                seenPoints[identity] = index
            }
            if point.table == subjectTable, point.through.isEmpty,
                point.action.anonymizedColumns.contains(where: { $0.column == policy.subject.key })
            {
                error(
                    "anonymize: \(policy.subject.key) is the subject key of \(subjectTable); changing it loses track of the subject. Delete the subject row, or anonymize other columns",
                    path + ".anonymize.\(policy.subject.key.name)")
            }
        }
        for (index, exemption) in policy.exemptions.enumerated() {
            if case .relatedExists(let table, let through, _, _) = exemption {
                checkThrough(through, table: table, path: "except[\(index)].through", report: { error($0, $1) })
            }
        }
        if let text = policy.schedule {
            do {
                _ = try Schedule(parsing: text)
            } catch {
                // Point at the offending character when the value sits on one line after `schedule:`.
                var location = source.scheduleLocation
                if let column = error.column, let start = location {
                    location = SourceLocation(file: start.file, line: start.line, column: start.column + column - 1)
                }
                diagnostics.append(
                    PolicyDiagnostic(
                        severity: .error, location: location, path: "schedule",
                        message: "schedule: \(error.message); for example: schedule: \(error.example)"))
            }
        }
        let limits = policy.limits
        if limits.batchSize > limits.maxSubjectsPerRun {
            error(
                "limits: batch_size \(limits.batchSize) is larger than max_subjects_per_run \(limits.maxSubjectsPerRun), so no batch will be full; lower batch_size",
                "limits.batch_size", severity: .warning)
        }
        return diagnostics

        func checkThrough(
            _ through: [QualifiedName], table: QualifiedName, path: String, report: (String, String) -> Void
        ) {
            var seen: Set<QualifiedName> = []
            for (step, hop) in through.enumerated() {
                let hopPath = "\(path)[\(step)]"
                if hop == subjectTable {
                    report(
                        "through: \(hop) is the subject table; the path starts there, so leave it out of through",
                        hopPath)
                } else if hop == table {
                    report(
                        "through: \(hop) is the data point's own table; through lists only the tables between the subject and it",
                        hopPath)
                } else if !seen.insert(hop).inserted {
                    report(
                        "through: \(hop) appears twice; a path visits each table once (a cycle is not a path)", hopPath)
                }
            }
        }
    }
}

private struct DataPointIdentity: Hashable {
    var table: QualifiedName
    var through: [QualifiedName]
    var via: ColumnName?
}
