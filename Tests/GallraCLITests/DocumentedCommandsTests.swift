import Foundation
import Testing

/// A `gallra ...` command shown in a code block of README.md or docs/*.md.
struct DocumentedCommand: Sendable, CustomStringConvertible {
    var file: String
    var line: Int
    /// The command as shown, without its prompt and comment.
    var text: String

    var description: String { "\(file):\(line): \(text)" }

    /// Every command in the fenced code blocks of `markdown`: a line `$ gallra ...`, or in a block without
    /// prompts a line `gallra WORD ...` (not output such as `gallra 0.1.0`). Synopsis lines lose their optional
    /// `[...]` parts.
    static func all(in markdown: String, file: String) -> [DocumentedCommand] {
        var commands: [DocumentedCommand] = []
        var inBlock = false
        for (index, raw) in markdown.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("```") {
                inBlock.toggle()
                continue
            }
            guard inBlock else { continue }
            var text: Substring
            if line.hasPrefix("$ gallra ") || line == "$ gallra" {
                text = line.dropFirst(2)
            } else if line.hasPrefix("gallra "), line.dropFirst(7).first.map({ $0.isLowercase || $0 == "-" }) == true,
                !line.contains("→")
            {
                text = Substring(line)
            } else {
                continue
            }
            text = Substring(withoutComment(String(text)))
            let synopsis = text.replacing(/\ \[[^\]]*\]/, with: "")
            commands.append(
                DocumentedCommand(
                    file: file, line: index + 1, text: synopsis.trimmingCharacters(in: .whitespaces)))
        }
        return commands
    }

    /// The line up to a `#` that starts a shell comment (outside quotes, after a space).
    static func withoutComment(_ line: String) -> String {
        var quote: Character?
        var previous: Character = " "
        for (offset, character) in line.enumerated() {
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
            } else if character == "#", previous == " " {
                return String(line.prefix(offset))
            }
            previous = character
        }
        return line
    }

    /// The words of a shell command line: quotes removed, `> FILE` dropped (the output is not kept).
    static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current: String?
        var quote: Character?
        var escaped = false
        for character in line {
            if escaped {
                current = (current ?? "") + String(character)
                escaped = false
            } else if let open = quote {
                if character == open { quote = nil } else { current = (current ?? "") + String(character) }
            } else if character == "\\" {
                escaped = true
            } else if character == "'" || character == "\"" {
                quote = character
                current = current ?? ""
            } else if character == " " {
                if let word = current { words.append(word) }
                current = nil
            } else {
                current = (current ?? "") + String(character)
            }
        }
        if let word = current { words.append(word) }
        if let redirect = words.firstIndex(of: ">") { words.removeSubrange(redirect...) }
        return words
    }
}

@Suite("The commands shown in README.md and docs/ run as shown")
struct DocumentedCommandsTests {
    /// Commands that end with another status than 0 on the demo shop, and why that is what they should do.
    static let expectedStatus: [String: (status: Int32, reason: String)] = [
        "gallra correct --subject shop.customer:1234 --set shop.customer.full_name='Ada King' --set shop.order.full_name='Ada King'":
            (64, "without --yes a correction asks on a terminal, and a test has none")
    ]

    @Test func theExtractionFindsCommandsAndLeavesOutput() {
        let markdown = """
            ```console
            $ gallra version                 # the version
            gallra 0.1.0
            $ gallra requests list [--status pending|done] [--format json]
            $ gallra correct --set 'a.b.c=x # y' --subject "t:1"
            ```
            ```sh
            gallra trigger   # now
            systemctl reload gallra
            ```
            ```
            gallra           → all of the above
            ```
            gallra plan
            """
        let commands = DocumentedCommand.all(in: markdown, file: "x.md")
        #expect(
            commands.map(\.text) == [
                "gallra version", "gallra requests list", "gallra correct --set 'a.b.c=x # y' --subject \"t:1\"",
                "gallra trigger",
            ])
        #expect(commands.map(\.line) == [2, 4, 5, 8])
        #expect(
            DocumentedCommand.words("gallra correct --set 'a.b.c=x # y' --subject \"t:1\" --set x='A B' > out.json")
                == ["gallra", "correct", "--set", "a.b.c=x # y", "--subject", "t:1", "--set", "x=A B"])
    }

    @Test func everyDocumentedCommandRunsAgainstTheDemoShop() async throws {
        let root = try DemoShop.sourceRoot()
        let files =
            ["README.md"]
            + (try FileManager.default.contentsOfDirectory(atPath: "\(root)/docs")).filter { $0.hasSuffix(".md") }
            .sorted().map { "docs/\($0)" }
        var commands: [DocumentedCommand] = []
        for file in files {
            commands += DocumentedCommand.all(
                in: try String(contentsOfFile: "\(root)/\(file)", encoding: .utf8), file: file)
        }
        try #require(commands.count > 40, "the README and docs show their commands")

        try await DemoShop.with(customers: 200) { shop in
            // The customer the docs call 1234 (and ada@example.org): active, with orders, on no hold.
            let customer = try await shop.psql(
                """
                SELECT min(c.id) FROM shop.customer AS c
                WHERE c.last_seen_at > now() - interval '1 year' AND NOT c.legal_hold
                  AND EXISTS (SELECT FROM shop."order" AS o WHERE o.customer_id = c.id)
                """)
            try await shop.psql("UPDATE shop.customer SET email = 'ada@example.org' WHERE id = \(customer)")
            // A trail to verify and look up, a pending request and a hold for the commands that name one (7).
            let firstRun = try await shop.gallra("run", "--once", environment: shop.keyEnvironment)
            try #require(firstRun.status == 0, "\(firstRun.stderr)")
            let others = try await shop.psql(
                "SELECT string_agg(id::text, ' ') FROM (SELECT id FROM shop.customer WHERE id <> \(customer) "
                    + "AND NOT legal_hold ORDER BY id DESC LIMIT 2) AS o"
            ).split(separator: " ").map(String.init)
            try #require(others.count == 2)
            let queued = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(others[0])", "--after", "24h", "--reason", "test",
                environment: shop.keyEnvironment)
            try #require(queued.status == 0, "\(queued.stderr)")
            let request = try await shop.psql("SELECT max(id) FROM gallra.erasure_request")
            let held = try await shop.gallra(
                "hold", "add", "--subject", "shop.customer:\(others[1])", "--reason", "test")
            try #require(held.status == 0, "\(held.stderr)")
            let hold = try await shop.psql("SELECT max(id) FROM gallra.hold")
            let head = try await shop.psql("SELECT left(hash, 12) FROM gallra.audit_head")

            var unused = Set(Self.expectedStatus.keys)
            for (number, command) in commands.enumerated() {
                let clone = "\(shop.database)_\(number)"
                try await Harness.psql("CREATE DATABASE \(clone) TEMPLATE \(shop.database)")
                let conninfo = "\(try Harness.serverConninfo()) dbname=\(clone)"
                // What the docs leave to the reader: their server, their customer, their files.
                let substituted = command.text
                    .replacingOccurrences(of: "host=db.internal dbname=shop user=gallra", with: conninfo)
                    .replacingOccurrences(of: ":1234", with: ":\(customer)")
                    .replacingOccurrences(of: "\"Shop\".\"Customer\":7", with: "\"shop\".\"customer\":\(customer)")
                    .replacingOccurrences(of: "customer-1234.", with: "\(shop.directory)/\(number)-customer.")
                    .replacingOccurrences(of: "/etc/gallra/audit-key", with: shop.keyFile)
                    .replacingOccurrences(of: "/etc/gallra/policies", with: "\(root)/config/policies")
                    .replacingOccurrences(of: " config/policies", with: " \(root)/config/policies")
                    .replacingOccurrences(of: "409dd41a2f6c", with: head)
                    .replacingOccurrences(of: "/var/lib/gallra/shop/ledger", with: "\(shop.directory)/ledger")
                    .replacing(/requests (show|cancel) (7|ID)$/) { "requests \($0.1) \(request)" }
                    .replacingOccurrences(of: "hold release 7 ", with: "hold release \(hold) ")
                let words = DocumentedCommand.words(substituted)
                let result = try await run(
                    Harness.gallraPath, Array(words.dropFirst()),
                    environment: ["GALLRA_DATABASE": conninfo, "GALLRA_AUDIT_KEY_FILE": shop.keyFile])
                try await Harness.psql("DROP DATABASE \(clone) WITH (FORCE)")
                let expected = Self.expectedStatus[command.text]
                unused.remove(command.text)
                #expect(
                    result.status == expected?.status ?? 0,
                    "\(command) (run as \(words.joined(separator: " "))): exit \(result.status)\n\(result.stderr)")
            }
            #expect(unused.isEmpty, "expected statuses of commands the docs no longer show: \(unused)")
        }
    }
}
