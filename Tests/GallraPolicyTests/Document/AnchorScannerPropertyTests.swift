import Foundation
import PropertyBased
import Testing
import Yams

@testable import GallraPolicy

/// The anchor scanner is a hand-written light reading of YAML that runs before the YAML parser, so that an alias
/// bomb is refused before it is expanded. It must never crash, and it must see an anchor or an alias exactly where
/// a real YAML parser (Yams) does, whatever `&` and `*` the text holds inside quotes, comments and block scalars.
@Suite("YAML anchor scanner, property-based")
struct AnchorScannerPropertyTests {
    @Test("no text, valid or not, crashes the anchor scanner or the document loader")
    func anyTextIsScanned() async {
        let characters = Gen.element(of: Array("ab &*:-?|>#'\"\\[]{},!%\n\t\r\u{00e9}")).map { $0 ?? " " }
        await propertyCheck(count: 3000, input: characters.array(of: 0...80)) { characters in
            let text = String(characters)
            if let found = AnchorScanner.firstAnchorOrAlias(in: Array(text.utf8)) {
                let byte = Array(text.utf8)[found.offset]
                #expect(byte == UInt8(ascii: found.isAlias ? "*" : "&"))
            }
            _ = PolicyFile(parsing: text)
        }
    }

    @Test(
        "on generated documents the scanner finds an anchor or alias exactly when Yams does, at the first one written")
    func scannerAgreesWithYams() async throws {
        var withAnchors = 0
        var total = 0
        await propertyCheck(count: 300, input: Self.documents) { document in
            total += 1
            if document.firstAnchorOffset != nil { withAnchors += 1 }
            let scanned = AnchorScanner.firstAnchorOrAlias(in: Array(document.text.utf8))
            let parsed = try Self.yamsFindsAnchorOrAlias(document.text)
            #expect((scanned != nil) == parsed, "\(document.text.debugDescription)")
            #expect((scanned != nil) == (document.firstAnchorOffset != nil), "\(document.text.debugDescription)")
            if let scanned, let expected = document.firstAnchorOffset {
                #expect(scanned.offset == expected && !scanned.isAlias, "\(document.text.debugDescription)")
            }
        }
        // The generator covers both sides (a fixed seed runs one case).
        if total > 100 {
            #expect(withAnchors > total / 10 && withAnchors < total * 9 / 10, "\(withAnchors) of \(total)")
        }
    }

    /// Whether Yams, parsing the text, sees an anchor or an alias in any node (an alias resolves to its anchored
    /// node, so a document with either has a node with an anchor).
    static func yamsFindsAnchorOrAlias(_ text: String) throws -> Bool {
        func has(_ node: Node) -> Bool {
            if node.anchor != nil { return true }
            switch node {
            case .scalar: return false
            case .alias: return true
            case .sequence(let sequence): return sequence.contains(where: has)
            case .mapping(let mapping): return mapping.contains { has($0.key) || has($0.value) }
            }
        }
        let parser = try Parser(yaml: text, resolver: .basic)
        var found = false
        while let root = try parser.nextRoot() { found = found || has(root) }
        return found
    }

    /// A generated YAML document and the byte offset of the first anchor written into it, if any.
    struct Document: Sendable, CustomStringConvertible {
        var text: String
        var firstAnchorOffset: Int?
        var description: String { text.debugDescription }
    }

    /// Scalars whose `&` and `*` are text, not anchors: inside plain words, quotes, and after a blank in a plain scalar.
    static let scalars = [
        "alpha", "a&b", "x*y", "b&", "c*", "12", "true", "we & they", "5 * 3", "'&not'", "'*no'", "'it''s &x'",
        "\"&q\"", "\"*q \\\" &r\"", "''", "\"\"", "'#&x'",
    ]

    /// Writes a random document: block mappings and sequences, flow collections, comments and block scalars, with
    /// anchors (`&aN`) on some nodes and aliases (`*aN`) to anchors already written.
    struct Writer {
        var text = ""
        var anchors: [String] = []
        var firstAnchorOffset: Int?
        var rng: any SeededRandomNumberGenerator

        mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }

        mutating func scalar() -> String { AnchorScannerPropertyTests.scalars.randomElement(using: &rng)! }

        /// `&aN ` before a node, sometimes, remembering where the first one starts.
        mutating func anchor() -> String {
            guard chance(12) else { return "" }
            let name = "a\(anchors.count)"
            anchors.append(name)
            return "&\(name) "
        }

        mutating func alias() -> String? {
            guard !anchors.isEmpty, chance(25) else { return nil }
            return "*" + anchors.randomElement(using: &rng)!
        }

        /// Appends text, noting the offset of its first anchor marker.
        mutating func write(_ piece: String) {
            if firstAnchorOffset == nil, let range = piece.range(of: "&a"),
                piece[..<range.lowerBound].last.map({ $0 == " " || $0 == "[" || $0 == "{" }) ?? true,
                piece[range.upperBound...].first?.isNumber == true
            {
                firstAnchorOffset = text.utf8.count + piece[..<range.lowerBound].utf8.count
            }
            text += piece
        }

        mutating func flowNode(depth: Int) -> String {
            if let alias = alias() { return alias }
            let anchor = anchor()
            guard depth < 3, chance(35) else { return anchor + scalar() }
            let count = Int.random(in: 0...3, using: &rng)
            if chance(50) {
                return anchor + "[" + (0..<count).map { _ in flowNode(depth: depth + 1) }.joined(separator: ", ") + "]"
            }
            let pairs = (0..<count).map { index in "k\(index): " + flowNode(depth: depth + 1) }
            return anchor + "{" + pairs.joined(separator: ", ") + "}"
        }

        /// A block mapping at `indent`, each value a scalar, a flow collection, an alias, a block scalar or a
        /// nested block collection.
        mutating func blockMapping(indent: Int, depth: Int) {
            let pad = String(repeating: " ", count: indent)
            for index in 0..<Int.random(in: 1...4, using: &rng) {
                let key = ["k\(index)", "a&b\(index)", "x*y\(index)", "'&k\(index)'"].randomElement(using: &rng)!
                write(pad + key + ":")
                switch Int.random(in: 0...5, using: &rng) {
                case 0 where depth < 3:
                    write(" " + anchor() + "\n")
                    blockMapping(indent: indent + 2, depth: depth + 1)
                case 1 where depth < 3:
                    write(" " + anchor() + "\n")
                    blockSequence(indent: indent + 2, depth: depth + 1)
                case 2:
                    write(" |\n\(pad)  text with &anchor and *alias\n\(pad)  - &x: *y\n")
                default:
                    let value = flowNode(depth: 1)
                    write(" " + value)
                    if chance(30) { write("  # &c *d") }
                    write("\n")
                }
            }
        }

        mutating func blockSequence(indent: Int, depth: Int) {
            let pad = String(repeating: " ", count: indent)
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                if depth < 3, chance(30) {
                    write(pad + "- " + anchor() + "\n")
                    blockMapping(indent: indent + 2, depth: depth + 1)
                } else {
                    write(pad + "- " + flowNode(depth: 1) + "\n")
                }
            }
        }
    }

    static let documents: Generator<Document, Shrink.None<Document>> = Generator { rng in
        var writer = Writer(rng: rng)
        if writer.chance(20) { writer.write("# a comment with &x and *y\n") }
        writer.blockMapping(indent: 0, depth: 0)
        if writer.chance(20) {
            // Anchors belong to their document: the next one starts without any.
            writer.anchors = []
            writer.write("---\n")
            writer.blockSequence(indent: 0, depth: 0)
        }
        rng = writer.rng
        return Document(text: writer.text, firstAnchorOffset: writer.firstAnchorOffset)
    }
}
