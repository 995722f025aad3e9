// Foundation, not FoundationEssentials: reading a file in bounded chunks (FileHandle), as Yams, which decodes it, does too.
import Foundation

/// A policy with the positions of its parts in the file it came from.
public struct ParsedPolicy: Sendable, Hashable {
    /// The policy.
    public var policy: Policy
    /// Where each part was written.
    public var source: PolicySourceMap

    /// A parsed policy from its parts.
    public init(policy: Policy, source: PolicySourceMap) {
        self.policy = policy
        self.source = source
    }
}

/// One policy file, parsed: the policies it holds and everything found wrong with it.
///
/// A file holds one policy, or several as YAML documents separated by `---` lines. JSON files hold one
/// policy object, in the same shape as YAML (JSON is read by the YAML parser, so positions are reported
/// the same way). A policy with errors is left out of ``policies``; the others are kept, so one bad policy
/// does not hide the rest, but callers that apply files should refuse a file whose ``hasErrors`` is true.
public struct PolicyFile: Sendable {
    /// The file as the user named it, or nil.
    public var path: String?
    /// The valid policies, in file order.
    public var policies: [ParsedPolicy]
    /// Errors and warnings, in file order.
    public var diagnostics: [PolicyDiagnostic]

    /// Whether any diagnostic is an error.
    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// Parses a file's bytes (YAML or JSON).
    public init(parsing bytes: [UInt8], path: String? = nil, limits: PolicyInputLimits = .default) {
        self.path = path
        let (documents, loadDiagnostics) = DocumentLoader.load(bytes, file: path, limits: limits)
        var policies: [ParsedPolicy] = []
        var diagnostics = loadDiagnostics
        for document in documents {
            // An empty document (a trailing `---`, or only comments) holds no policy.
            if case .scalar(let text, true) = document.kind, text.isEmpty { continue }
            var decoder = PolicyDecoder(file: path)
            let policy = decoder.policy(document)
            var found = decoder.diagnostics
            if let policy {
                let parsed = ParsedPolicy(policy: policy, source: decoder.sourceMap)
                found += parsed.structuralDiagnostics()
                if !found.contains(where: { $0.severity == .error }) { policies.append(parsed) }
            }
            diagnostics += found.sorted {
                ($0.location?.line ?? 0, $0.location?.column ?? 0) < ($1.location?.line ?? 0, $1.location?.column ?? 0)
            }
        }
        if loadDiagnostics.isEmpty,
            documents.allSatisfy({
                if case .scalar("", true) = $0.kind { true } else { false }
            })
        {
            diagnostics.append(
                PolicyDiagnostic(
                    location: SourceLocation(file: path, line: 1, column: 1),
                    message:
                        "the file holds no policy; it starts with policy: NAME (see the example in docs/policy-language.md)"
                ))
        }
        self.policies = policies
        self.diagnostics = diagnostics
    }

    /// Parses text (YAML or JSON).
    public init(parsing text: String, path: String? = nil, limits: PolicyInputLimits = .default) {
        self.init(parsing: Array(text.utf8), path: path, limits: limits)
    }

    /// Reads and parses a file, refusing one larger than the limit before reading it.
    public static func read(path: String, limits: PolicyInputLimits = .default) -> PolicyFile {
        func failure(_ message: String) -> PolicyFile {
            var file = PolicyFile(path: path)
            file.diagnostics = [
                PolicyDiagnostic(location: SourceLocation(file: path, line: 1, column: 1), message: message)
            ]
            return file
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        if let size, size > limits.maximumBytes {
            return failure(
                "the file is \(size) bytes; policy files are limited to \(limits.maximumBytes) bytes. Split it into several files"
            )
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return failure("cannot read the file; check that it exists and is readable")
        }
        defer { try? handle.close() }
        // Read at most one byte more than allowed: a file that grows, or a device, is still bounded.
        let data: Data
        do {
            data = try handle.read(upToCount: limits.maximumBytes + 1) ?? Data()
        } catch {
            return failure("cannot read the file: \(error.localizedDescription)")
        }
        if data.count > limits.maximumBytes {
            return failure(
                "the file is larger than \(limits.maximumBytes) bytes, the limit for policy files. Split it into several files"
            )
        }
        return PolicyFile(parsing: [UInt8](data), path: path, limits: limits)
    }

    private init(path: String?) {
        self.path = path
        self.policies = []
        self.diagnostics = []
    }
}

extension Policy {
    /// Parses a document holding exactly one policy (YAML or JSON, e.g. a stored canonical definition).
    public init(parsing text: String, file: String? = nil, limits: PolicyInputLimits = .default) throws(PolicyError) {
        let parsed = PolicyFile(parsing: text, path: file, limits: limits)
        guard !parsed.hasErrors else { throw PolicyError(diagnostics: parsed.diagnostics) }
        guard parsed.policies.count == 1 else {
            throw PolicyError(diagnostics: [
                PolicyDiagnostic(
                    location: SourceLocation(file: file, line: 1, column: 1),
                    message: "expected one policy, found \(parsed.policies.count)")
            ])
        }
        self = parsed.policies[0].policy
    }

    /// Errors for policy names given more than once (across files of one apply or one directory).
    /// Each repeated name is reported at every place after the first, naming where it was first seen.
    public static func duplicateNameDiagnostics(_ policies: [ParsedPolicy]) -> [PolicyDiagnostic] {
        var first: [PolicyName: ParsedPolicy] = [:]
        var diagnostics: [PolicyDiagnostic] = []
        for parsed in policies {
            let name = parsed.policy.name
            if let earlier = first[name] {
                let place = earlier.source.location(of: "policy").map { " at \($0)" } ?? ""
                diagnostics.append(
                    PolicyDiagnostic(
                        location: parsed.source.location(of: "policy"), path: "policy",
                        message:
                            "policy \(name.rawValue.quotedForMessage) is defined twice (first\(place)); policy names must be unique, rename one"
                    ))
            } else {
                first[name] = parsed
            }
        }
        return diagnostics
    }
}

// MARK: - Codable, through the document shape

/// A part of a policy that Codable reads and writes in the document shape, through the policy decoder, so that
/// Codable and files accept exactly the same documents.
protocol DocumentCodable: Codable {
    /// Reads the part from a document node as a file's would be read; nil once the decoder has reported why.
    static func decode(_ node: DocumentNode, with decoder: inout PolicyDecoder) -> Self?
    /// The canonical document shape.
    var json: JSONValue { get }
}

extension DocumentCodable {
    /// Decodes the document shape; the decoder's errors are one decoding error.
    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        var documentDecoder = PolicyDecoder(file: nil)
        guard let result = Self.decode(value.node, with: &documentDecoder), documentDecoder.diagnostics.isEmpty else {
            let message = documentDecoder.diagnostics.map(\.message).joined(separator: "; ")
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: message))
        }
        self = result
    }

    /// Encodes the canonical document shape.
    public func encode(to encoder: any Encoder) throws { try json.encode(to: encoder) }
}

extension Policy: DocumentCodable {
    /// A whole policy document; structural errors count as decoding errors too.
    static func decode(_ node: DocumentNode, with decoder: inout PolicyDecoder) -> Policy? {
        guard let policy = decoder.policy(node) else { return nil }
        let problems = ParsedPolicy(policy: policy, source: decoder.sourceMap).structuralDiagnostics()
        decoder.diagnostics += problems.filter { $0.severity == .error }
        return policy
    }
}

extension Subject: DocumentCodable {
    static func decode(_ node: DocumentNode, with decoder: inout PolicyDecoder) -> Subject? {
        decoder.subject(node, path: "subject")
    }
}

extension Rule: DocumentCodable {
    static func decode(_ node: DocumentNode, with decoder: inout PolicyDecoder) -> Rule? {
        decoder.rule(node, path: "expires")
    }
}

extension Exemption: DocumentCodable {
    static func decode(_ node: DocumentNode, with decoder: inout PolicyDecoder) -> Exemption? {
        decoder.exemption(node, path: "except[0]")
    }
}

extension DataPoint: DocumentCodable {
    static func decode(_ node: DocumentNode, with decoder: inout PolicyDecoder) -> DataPoint? {
        decoder.dataPoint(node, path: "data[0]")
    }
}

extension Strategy: DocumentCodable {
    static func decode(_ node: DocumentNode, with decoder: inout PolicyDecoder) -> Strategy? {
        decoder.strategy(node, path: "anonymize")
    }
}

extension Limits: DocumentCodable {
    static func decode(_ node: DocumentNode, with decoder: inout PolicyDecoder) -> Limits? {
        decoder.limits(node, path: "limits")
    }
}

extension Scalar: DocumentCodable {
    static func decode(_ node: DocumentNode, with decoder: inout PolicyDecoder) -> Scalar? {
        decoder.scalar(node, path: "value", what: "value")
    }
}

extension PolicyName: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            self = try PolicyName(try container.decode(String.self))
        } catch let error as PolicyNameError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

extension QualifiedName: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            self = try QualifiedName(parsing: try container.decode(String.self))
        } catch let error as IdentifierError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }
    /// Encodes identifier syntax (`shop.customer`, `"Mixed Case"."Order Items"`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension ColumnName: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            self = try ColumnName(parsing: try container.decode(String.self))
        } catch let error as IdentifierError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }
    /// Encodes identifier syntax (`email`, `"LastSeen"`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
