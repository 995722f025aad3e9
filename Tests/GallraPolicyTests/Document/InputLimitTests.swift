import Foundation
import GallraPolicy
import Testing

/// The classic "billion laughs": nine levels of ten aliases, 10^9 strings once expanded.
let billionLaughs = """
    policy: laughs
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]
    """

@Suite("Limits on input")
struct InputLimitTests {
    func onlyError(_ file: PolicyFile) -> PolicyDiagnostic? {
        #expect(file.policies.isEmpty)
        #expect(file.diagnostics.count == 1)
        return file.diagnostics.first
    }

    @Test("a 10 MB file is refused before it is read")
    func tenMegabytes() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gallra-10mb-\(UUID()).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let line = Array("description: padding padding padding padding padding padding padding padding\n".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(10_000_000 + line.count)
        while bytes.count < 10_000_000 { bytes += line }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let clock = ContinuousClock()
        let start = clock.now
        let file = PolicyFile.read(path: path)
        #expect(clock.now - start < .seconds(1))
        let error = try #require(onlyError(file))
        #expect(error.location == SourceLocation(file: path, line: 1, column: 1))
        #expect(
            error.message
                == "the file is \(bytes.count) bytes; policy files are limited to 1048576 bytes. Split it into several files"
        )
        // The same bytes handed over directly are refused by size too.
        #expect(onlyError(PolicyFile(parsing: bytes))?.message.hasPrefix("the file is \(bytes.count) bytes") == true)
    }

    @Test("the size limit is configurable")
    func configurableSize() {
        let limits = PolicyInputLimits(maximumBytes: 100, maximumNestingDepth: 32)
        #expect(
            onlyError(PolicyFile(parsing: minimal, limits: limits))?.message.contains("limited to 100 bytes") == true)
    }

    @Test("a billion-laughs alias bomb is refused fast, not expanded")
    func aliasBomb() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let error = try #require(onlyError(PolicyFile(parsing: billionLaughs, path: "bomb.yaml")))
        #expect(clock.now - start < .seconds(1))
        #expect(error.location == SourceLocation(file: "bomb.yaml", line: 2, column: 4))
        #expect(
            error.message == "YAML anchors (&name) are not allowed in policy files; write the value out in full")
    }

    @Test("an alias bomb used as mapping keys is refused too")
    func aliasKeys() throws {
        let yaml = billionLaughs + "\nj: { ? *i : x, ? *h : y }\n"
        let error = try #require(onlyError(PolicyFile(parsing: yaml)))
        #expect(error.message.contains("not allowed in policy files"))
    }

    @Test(
        "anchors and aliases anywhere are refused",
        arguments: [
            ("policy: &n minimal", 1, 9),
            ("policy: *n", 1, 9),
            ("--- &root\npolicy: x", 1, 5),
            ("policy: x\ndata:\n  - &d { table: t, delete: true }\n  - *d", 3, 5),
            ("policy: x\nsubject: {table: &t t, key: id}", 2, 18),
        ])
    func anchorsRefused(yaml: String, line: Int, column: Int) throws {
        let error = try #require(onlyError(PolicyFile(parsing: yaml)))
        #expect(error.message.contains("are not allowed in policy files"))
        #expect(error.location?.line == line)
        #expect(error.location?.column == column)
    }

    @Test(
        "& and * inside text are not anchors",
        arguments: [
            "description: Tom & Jerry *sales* R&D",
            "description: \"&quoted *text\"",
            "description: '&single *quoted, it''s &fine'",
            "description: |\n  * a bullet\n  & an ampersand\n    *nested\n",
            "description: >\n  *folded\n",
            "# &comment *here\ndescription: x # *trailing",
            "description: a*b&c",
        ])
    func textIsNotAnchor(line: String) throws {
        let file = PolicyFile(parsing: minimal + "\n" + line)
        #expect(file.diagnostics == [])
        #expect(file.policies.count == 1)
    }

    @Test("a file that is not UTF-8 is refused with the byte offset, line and column")
    func notUTF8() throws {
        var bytes = Array("policy: minimal\ndescription: caf".utf8)
        bytes.append(0xE9)  // é in Latin-1
        bytes += Array(" au lait\n".utf8)
        let error = try #require(onlyError(PolicyFile(parsing: bytes, path: "latin1.yaml")))
        #expect(error.location == SourceLocation(file: "latin1.yaml", line: 2, column: 17))
        #expect(
            error.message == "the file is not UTF-8: invalid byte 0xE9 at byte offset 32. Save it as UTF-8")
    }

    @Test("deep nesting is refused")
    func deepNesting() throws {
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        let error = try #require(onlyError(PolicyFile(parsing: "policy: x\ndescription: \(deep)")))
        #expect(error.message == "the document nests deeper than 32 levels; a policy needs far fewer")
        #expect(error.location?.line == 2)
        // Far deeper input is stopped by the YAML parser's own limit, without exhausting the stack.
        let deeper = String(repeating: "[", count: 100_000)
        #expect(onlyError(PolicyFile(parsing: "description: \(deeper)")) != nil)
    }

    @Test("an empty file holds no policy")
    func empty() {
        #expect(
            onlyError(PolicyFile(parsing: "# nothing here\n"))?.message.hasPrefix("the file holds no policy") == true)
    }

    @Test("a file on disk is read and parsed, with its path in every position")
    func readsFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gallra-\(UUID()).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(designExample.utf8)))
        let file = PolicyFile.read(path: path)
        #expect(file.diagnostics == [])
        #expect(file.policies.first?.policy == designExampleModel)
        #expect(file.policies.first?.source.location(of: "schedule")?.file == path)
        #expect(PolicyFile.read(path: path + ".missing").diagnostics.first?.message.hasPrefix("cannot read") == true)
    }
}
