import Foundation
import GallraPolicy
import Testing

/// The minimal policy with `lines` added after its name.
private func minimalWith(_ lines: String) -> String {
    minimal.replacingOccurrences(of: "policy: minimal\n", with: "policy: minimal\n\(lines)\n")
}

/// The six values, as the error messages list them.
private let choices =
    "use consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests (GDPR Art. 6(1))"

@Suite("Purpose and legal basis")
struct PurposeAndLegalBasisTests {
    @Test("both keys are read into the policy, and each is optional")
    func decoded() throws {
        let policy = try Policy(
            parsing: minimalWith("purpose: Delivering orders and handling returns.\nlegal_basis: contract"))
        #expect(policy.purpose == "Delivering orders and handling returns.")
        #expect(policy.legalBasis == .contract)

        let plain = try Policy(parsing: minimal)
        #expect(plain.purpose == nil)
        #expect(plain.legalBasis == nil)
    }

    @Test(
        "each of the six bases of GDPR Art. 6(1) is read and survives the canonical round trip",
        arguments: [
            ("consent", LegalBasis.consent), ("contract", .contract), ("legal_obligation", .legalObligation),
            ("vital_interests", .vitalInterests), ("public_task", .publicTask),
            ("legitimate_interests", .legitimateInterests),
        ])
    func everyBasis(spelling: String, basis: LegalBasis) throws {
        let policy = try Policy(parsing: minimalWith("legal_basis: \(spelling)"))
        #expect(policy.legalBasis == basis)
        #expect(policy.canonicalJSON.contains(#""legal_basis":"\#(spelling)""#))
        #expect(try Policy(parsing: policy.canonicalJSON) == policy)
        #expect(LegalBasis.allCases.count == 6)
    }

    @Test("a block purpose keeps its line breaks and loses the white space around it")
    func blockPurpose() throws {
        let literal = try Policy(
            parsing: minimalWith("purpose: |\n  Delivering orders.\n  Handling returns and complaints.\n"))
        #expect(literal.purpose == "Delivering orders.\nHandling returns and complaints.")
        let folded = try Policy(parsing: minimalWith("purpose: >\n  Delivering orders\n  and returns.\n"))
        #expect(folded.purpose == "Delivering orders and returns.")
        let padded = try Policy(parsing: minimalWith("purpose: \"  Delivering orders and returns.  \""))
        #expect(padded.purpose == "Delivering orders and returns.")
        #expect(try Policy(parsing: literal.canonicalJSON) == literal)
    }

    @Test("the limit counts characters, not bytes")
    func purposeLimit() throws {
        let longest = String(repeating: "é", count: Policy.maximumPurposeLength)
        #expect(try Policy(parsing: minimalWith("purpose: \(longest)")).purpose == longest)
        let tooLong = String(repeating: "x", count: Policy.maximumPurposeLength + 1)
        #expect(
            errors(minimalWith("purpose: \(tooLong)")).map(\.message) == [
                "purpose: 1001 characters, longer than the limit of 1000; state the purpose in a sentence or two and keep the details in the privacy notice"
            ])
    }

    @Test("where each key was written is kept")
    func positions() throws {
        let file = PolicyFile(parsing: minimalWith("purpose: Orders.\nlegal_basis: contract"), path: "p.yaml")
        let source = try #require(file.policies.first).source
        #expect(source.location(of: "purpose") == SourceLocation(file: "p.yaml", line: 2, column: 10))
        #expect(source.location(of: "legal_basis") == SourceLocation(file: "p.yaml", line: 3, column: 14))
    }

    static let badInputs: [BadInput] = [
        BadInput(
            "a misspelt basis", minimalWith("legal_basis: consnet"), 2, 14,
            "legal_basis: \"consnet\" is not a legal basis; did you mean consent?; \(choices)"),
        BadInput(
            "a basis in capitals", minimalWith("legal_basis: Contract"), 2, 14,
            "legal_basis: \"Contract\" is not a legal basis; did you mean contract?; \(choices)"),
        BadInput(
            "a basis with a space", minimalWith("legal_basis: legitimate interests"), 2, 14,
            "legal_basis: \"legitimate interests\" is not a legal basis; did you mean legitimate_interests?; \(choices)"
        ),
        BadInput(
            "a basis that is nothing like one", minimalWith("legal_basis: gdpr"), 2, 14,
            "legal_basis: \"gdpr\" is not a legal basis; \(choices)"),
        BadInput(
            "a list of bases", minimalWith("legal_basis: [consent, contract]"), 2, 14,
            "legal_basis: expected one word, got a list; \(choices)"),
        BadInput(
            "a mapping as basis", minimalWith("legal_basis: { basis: consent }"), 2, 14,
            "legal_basis: expected one word, got a mapping; \(choices)"),
        BadInput(
            "a null basis", minimalWith("legal_basis: null"), 2, 14, "legal_basis: a value is missing; \(choices)"),
        BadInput(
            "a number as basis", minimalWith("legal_basis: 6"), 2, 14,
            "legal_basis: \"6\" is not a legal basis; \(choices)"),
        BadInput(
            "a misspelt legal_basis key", minimalWith("legal_bases: consent"), 2, 1,
            "legal_bases: unknown key in policy document; did you mean legal_basis?"),
        BadInput(
            "a misspelt purpose key", minimalWith("purpse: Orders."), 2, 1,
            "purpse: unknown key in policy document; did you mean purpose?"),
        BadInput(
            "an empty purpose", minimalWith("purpose: \"  \""), 2, 10,
            "purpose: the text is empty; say why the data is processed, e.g. purpose: Delivering orders and handling returns"
        ),
        BadInput("a null purpose", minimalWith("purpose: ~"), 2, 10, "purpose: a value is missing"),
        BadInput(
            "a list as purpose", minimalWith("purpose: [orders, returns]"), 2, 10,
            "purpose: expected text, got a list"),
        BadInput(
            "a control character in the purpose", minimalWith("purpose: \"Orders\\a\""), 2, 10,
            "purpose: holds a control character; write plain text (line breaks and tabs are fine)"),
    ]

    @Test("bad values are refused at their place with the values to use", arguments: badInputs)
    func badInput(_ input: BadInput) {
        let found = errors(input.yaml)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.line == input.line)
        #expect(found.first?.column == input.column)
        #expect(found.first?.message == input.message)
    }

    @Test("a policy without the keys keeps the canonical JSON it had before they existed")
    func canonicalWithoutKeys() throws {
        let policy = try Policy(parsing: minimal)
        #expect(
            policy.canonicalJSON
                == #"{"data":[{"delete":true,"table":"shop.customer"}],"expires":{"activity":"last_seen_at","inactive_for":"1 year"},"limits":{"batch_size":1000,"max_fraction":0.2,"max_subjects_per_run":50000,"pause":"900%"},"policy":"minimal","state":"draft","subject":{"key":"id","table":"shop.customer"}}"#
        )
    }

    @Test("the canonical JSON of a policy with both keys")
    func canonicalWithKeys() throws {
        let policy = try Policy(
            parsing: minimalWith("purpose: |\n  Delivering orders; \"returns\" too.\nlegal_basis: contract"))
        let json = policy.canonicalJSON
        #expect(
            json
                == #"{"data":[{"delete":true,"table":"shop.customer"}],"expires":{"activity":"last_seen_at","inactive_for":"1 year"},"legal_basis":"contract","limits":{"batch_size":1000,"max_fraction":0.2,"max_subjects_per_run":50000,"pause":"900%"},"policy":"minimal","purpose":"Delivering orders; \"returns\" too.","state":"draft","subject":{"key":"id","table":"shop.customer"}}"#
        )
        let again = try Policy(parsing: json, file: "stored.json")
        #expect(again == policy)
        #expect(again.canonicalJSON == json)
        // Codable goes through the same document shape.
        let decoded = try JSONDecoder().decode(Policy.self, from: try JSONEncoder().encode(policy))
        #expect(decoded == policy)
    }

    @Test("a stored definition with a bad basis is refused on the way back too")
    func badStoredBasis() {
        let json =
            #"{"data":[{"delete":true,"table":"shop.customer"}],"expires":{"activity":"last_seen_at","inactive_for":"1 year"},"legal_basis":"consnet","policy":"minimal","subject":{"key":"id","table":"shop.customer"}}"#
        #expect(throws: PolicyError.self) { try Policy(parsing: json) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Policy.self, from: Data(json.utf8)) }
    }

    @Test("the resolved plan says them in one line under its first, only when set")
    func planLine() throws {
        let data = "  - { table: shop.wishlist_item, delete: true }"
        let both = try #require(
            validation(
                customerPolicy(data).replacingOccurrences(
                    of: "state: active\n",
                    with: "state: active\nlegal_basis: contract\npurpose: |\n  Orders.\n  Returns.\n")
            ).resolved)
        #expect(
            both.render().split(separator: "\n")[1]
                == "  legal basis: contract (GDPR Art. 6(1)(b)); purpose: Orders.…")
        let long = String(repeating: "word ", count: 20).trimmingCharacters(in: .whitespaces)
        let onlyPurpose = try #require(
            validation(
                customerPolicy(data).replacingOccurrences(
                    of: "state: active\n", with: "state: active\npurpose: \(long)\n")
            ).resolved)
        #expect(
            onlyPurpose.render().split(separator: "\n")[1] == "  purpose: " + String(repeating: "word ", count: 11)
                + "word…")
        let neither = try #require(validation(customerPolicy(data)).resolved)
        #expect(neither.render().split(separator: "\n")[1].hasPrefix("  expires: "))
    }
}
