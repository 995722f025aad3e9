import GallraTestSupport
import GallraPolicy
import GallraPostgres
import Testing

@testable import GallraEngine

@Suite("Stored definitions: canonical text and differences")
struct JSONValueTests {
    /// A policy whose text needs escaping: quotes, backslashes, control characters, non-ASCII, astral scalars.
    static let awkward = """
        policy: awkward
        description: "Kund \\"A\\" \\\\ path\\n\\ttab \\u0001 åäö 😀 /"
        state: active
        subject: { table: '"Shop"."Customer"', key: '"Customer ID"' }
        expires: { older_than: 7 years, created: created_at }
        except:
          - { column: status, in: [open, "a,b", 12.50, -3] }
        data:
          - { table: '"Shop"."Customer"', delete: true }
        limits: { max_fraction: 0.05 }
        """

    @Test("a list of strings written straight into bytes is the canonical text of the list")
    func stringArrayText() {
        let texts = [
            "", "12345", #"quote " and \ backslash"#, "line\nbreak\r\ttab", "\u{1}\u{1f}\u{7f}", "Kund åäö 😀",
            // Long texts, checked many bytes at a time, with the one byte to escape in the middle or at the end.
            String(repeating: "a", count: 40) + "\"" + String(repeating: "b", count: 40),
            String(repeating: "0123456789abcdef", count: 4) + "\u{1}",
        ]
        #expect(JSONValue.stringArrayText(texts) == JSONValue.array(texts.map(JSONValue.string)).canonicalText)
        #expect(JSONValue.stringArrayText(["a\"b\\c\u{1}"]) == #"["a\"b\\c\u0001"]"#)
        #expect(JSONValue.stringArrayText([]) == "[]")
    }

    @Test("a list of booleans written straight into bytes is the canonical text of the list")
    func boolArrayText() {
        let values = [true, false, false, true]
        #expect(JSONValue.boolArrayText(values) == JSONValue.array(values.map(JSONValue.bool)).canonicalText)
        #expect(JSONValue.boolArrayText(values) == "[true,false,false,true]")
        #expect(JSONValue.boolArrayText([]) == "[]")
    }

    @Test(
        "a text written into its counted length holds each part as written",
        arguments: [Int.min, -10, -1, 0, 9, 10, 99, Int.max])
    func writerParts(number: Int) {
        let text = "tab\there \"q\" \\ \u{1f} é"
        let length =
            JSONTextWriter.stringLength(text) + JSONTextWriter.decimalLength(number) + 3 + "raw".utf8.count
        let written = JSONTextWriter.text(length: length) { writer in
            writer.append(literal: "[")
            writer.appendString(text)
            writer.append(UInt8(ascii: ","))
            writer.appendDecimal(number)
            writer.append(unescaped: "raw")
            writer.append(literal: "]")
        }
        #expect(written == "[" + JSONValue.string(text).canonicalText + "," + String(number) + "raw]")
        #expect(JSONTextWriter.decimalLength(number) == String(number).utf8.count)
    }

    @Test("the canonical text of a parsed canonical document is the document itself")
    func canonicalRoundTrip() throws {
        let policy = try Policy(parsing: Self.awkward)
        #expect(try JSONValue(parsing: policy.canonicalJSON).canonicalText == policy.canonicalJSON)
    }

    @Test("stored as jsonb and read back, the document's canonical text and digest are unchanged")
    func jsonbRoundTrip() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let policy = try Policy(parsing: Self.awkward)
            let store = PolicyStore(connection: connection)
            _ = try await store.apply([(policy, source: "awkward.yaml")])
            let stored = try #require(try await store.latest(policy.name))
            #expect(stored.definition != policy.canonicalJSON)  // jsonb prints its own way...
            #expect(try JSONValue(parsing: stored.definition).canonicalText == policy.canonicalJSON)  // ...same text
            let load = try await store.loadAll()
            #expect(load.invalid == [])
            #expect(load.policies.map(\.policy) == [policy])
        }
    }

    @Test("differences name the paths that changed, were added or removed")
    func differences() throws {
        let old = try JSONValue(parsing: #"{"a":1,"b":{"c":[1,2,3],"d":"x"},"e":true}"#)
        let new = try JSONValue(parsing: #"{"a":1,"b":{"c":[1,5],"d":{"x":1}},"f":null}"#)
        #expect(
            JSONValue.differences(from: old, to: new) == [
                .init(path: "b.c[1]", kind: .changed, old: "2", new: "5"),
                .init(path: "b.c[2]", kind: .removed, old: "3"),
                .init(path: "b.d", kind: .changed, old: #""x""#, new: #"{"x":1}"#),
                .init(path: "e", kind: .removed, old: "true"),
                .init(path: "f", kind: .added, new: "null"),
            ])
        #expect(JSONValue.differences(from: old, to: old) == [])
    }

    @Test(
        "text that is not JSON is refused with its byte offset",
        arguments: ["", "{", #"{"a" 1}"#, "[1,]", "tru", "1 2"])
    func notJSON(_ text: String) {
        #expect(throws: JSONValue.SyntaxError.self) { try JSONValue(parsing: text) }
    }
}
