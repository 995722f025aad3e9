/// `limits:`: bounds on one run.
extension PolicyDecoder {
    static let maximumBatchSize = 100_000
    static let maximumSubjectsPerRun = 100_000_000

    mutating func limits(_ node: DocumentNode, path: String) -> Limits? {
        guard
            let fields = fields(
                node, path: path, what: "limits",
                allowed: ["batch_size", "max_subjects_per_run", "max_fraction", "pause", "parallel"],
                example:
                    "{ batch_size: 1000, max_subjects_per_run: 50000, max_fraction: 0.2, pause: 900%, parallel: 1 }")
        else { return nil }
        var limits = Limits()
        var ok = true
        func integer(_ name: String, maximum: Int, into field: WritableKeyPath<Limits, Int>) {
            guard let node = fields[name] else { return }
            if let value = positiveInteger(node, path: fields.path(name), what: name, maximum: maximum) {
                limits[keyPath: field] = value
            } else {
                ok = false
            }
        }
        integer("batch_size", maximum: Self.maximumBatchSize, into: \.batchSize)
        integer("max_subjects_per_run", maximum: Self.maximumSubjectsPerRun, into: \.maxSubjectsPerRun)
        integer("parallel", maximum: Limits.maximumParallel, into: \.parallel)
        if let node = fields["max_fraction"] {
            if let value = fraction(node) {
                limits.maxFraction = value
            } else {
                error(
                    "max_fraction: expected a fraction of the subject table greater than 0 and at most 1 (like 0.2 or 20%), got \(node.kindDescription)",
                    at: node, path: fields.path("max_fraction"))
                ok = false
            }
        }
        if let node = fields["pause"] {
            if case .scalar(let text, true) = node.kind, Scalar(resolving: text, plain: true) == .integer(0) {
                limits.pause = .fixed(.zero)
            } else if let text = text(node, path: fields.path("pause"), what: "pause") {
                do {
                    limits.pause = try PauseDuration.parsePause(text)
                } catch {
                    self.error("pause: \(error.message)", at: node, path: fields.path("pause"))
                    ok = false
                }
            } else {
                ok = false
            }
        }
        return ok ? limits : nil
    }

    private func fraction(_ node: DocumentNode) -> Double? {
        guard case .scalar(let text, let plain) = node.kind else { return nil }
        var value: Double?
        if plain {
            switch Scalar(resolving: text, plain: true) {
            case .integer(let integer): value = Double(integer)
            case .decimal(let decimal): value = Double(decimal)
            case .string(let string) where string.hasSuffix("%"):
                value = Double(string.dropLast().trimmingWhitespace).map { $0 / 100 }
            default: value = nil
            }
        } else if text.hasSuffix("%") {
            value = Double(text.dropLast().trimmingWhitespace).map { $0 / 100 }
        }
        guard let value, value.isFinite, value > 0, value <= 1 else { return nil }
        return value
    }
}
