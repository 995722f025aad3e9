import Foundation
import GallraSystemd
import Logging
import Testing

/// These tests write to a real systemd-journald and read the entries back with journalctl.
/// `make test` (scripts/test.sh) runs them inside the mount namespace of a private journald.
struct JournalLogHandlerTests {
    @Test func entriesCarryMessagePriorityCodeLocationAndMetadataFields() throws {
        try requireTestJournald()
        let testID = UUID().uuidString
        let messageID = "0f4c9b6e2a5d4c1b8e3f7a9d6c5b4a31"
        var logger = Logger(label: "gallra.test") { label in
            JournalLogHandler(label: label, logLevel: .trace, fallback: nil, metadataProvider: nil)
        }
        logger[metadataKey: "test.id"] = "\(testID)"
        logger[metadataKey: "policy"] = "inactive-customers"

        let infoLine = #line + 1
        logger.info(
            "purged 3 subjects", metadata: ["run.id": "run-42", "weird-key.x": "odd", "MESSAGE_ID": "\(messageID)"])
        logger.warning("first line\nsecond line\n  third, indented", metadata: ["tables": ["shop.order", "shop.cart"]])
        logger.error("batch failed", metadata: ["policy": "overridden-per-call"])
        logger.critical("blast-radius guard tripped")
        logger.notice("a notice")
        logger.debug("a debug line")
        logger.trace("a trace line")

        let entries = try journalEntries(testID: testID, expectedCount: 7)
        #expect(entries.count == 7)
        let byMessage = Dictionary(entries.map { ($0["MESSAGE"] ?? "", $0) }, uniquingKeysWith: { first, _ in first })

        let info = try #require(byMessage["purged 3 subjects"])
        #expect(info["PRIORITY"] == "6")
        #expect(info["SYSLOG_IDENTIFIER"] == "gallra")
        #expect(info["CODE_FILE"] == #fileID)
        #expect(info["CODE_LINE"] == "\(infoLine)")
        #expect(info["CODE_FUNC"] == #function)
        #expect(info["GALLRA_RUN_ID"] == "run-42")
        #expect(info["GALLRA_POLICY"] == "inactive-customers")
        #expect(info["GALLRA_WEIRD_KEY_X"] == "odd")
        #expect(info["GALLRA_TEST_ID"] == testID)
        #expect(info["MESSAGE_ID"] == messageID)
        #expect(info["GALLRA_MESSAGE_ID"] == nil)

        let multiLine = try #require(byMessage["first line\nsecond line\n  third, indented"])
        #expect(multiLine["PRIORITY"] == "4")
        #expect(multiLine["GALLRA_TABLES"] == #"["shop.order","shop.cart"]"#)

        #expect(byMessage["batch failed"]?["PRIORITY"] == "3")
        #expect(byMessage["batch failed"]?["GALLRA_POLICY"] == "overridden-per-call")
        #expect(byMessage["blast-radius guard tripped"]?["PRIORITY"] == "2")
        #expect(byMessage["a notice"]?["PRIORITY"] == "5")
        #expect(byMessage["a debug line"]?["PRIORITY"] == "7")
        #expect(byMessage["a trace line"]?["PRIORITY"] == "7")
    }

    @Test func identifierMetadataProviderAndReservedNames() throws {
        try requireTestJournald()
        let testID = UUID().uuidString
        let provider = Logger.MetadataProvider { ["provided.key": "from-provider"] }
        let logger = Logger(label: "gallra.test") { label in
            JournalLogHandler(label: label, identifier: "gallra-plan", fallback: nil, metadataProvider: provider)
        }

        logger.info(
            "dry run finished",
            metadata: ["test.id": "\(testID)", "PRIORITY": "0", "SYSLOG_FACILITY": "3", "_PID": "1"]
        )

        let entry = try #require(try journalEntries(testID: testID, expectedCount: 1).first)
        #expect(entry["SYSLOG_IDENTIFIER"] == "gallra-plan")
        #expect(entry["GALLRA_PROVIDED_KEY"] == "from-provider")
        // A key naming a field the handler writes itself is prefixed, never a second PRIORITY.
        #expect(entry["PRIORITY"] == "6")
        #expect(entry["GALLRA_PRIORITY"] == "0")
        // Other journal-form keys pass through; a trusted (underscore) field cannot be forged.
        #expect(entry["SYSLOG_FACILITY"] == "3")
        #expect(entry["GALLRA__PID"] == "1")
        #expect(entry["_PID"] == "\(getpid())")
    }

    @Test func errorsBecomeFields() throws {
        try requireTestJournald()
        struct BatchTimedOut: Error, CustomStringConvertible {
            var description: String { "statement timeout after 30 s" }
        }
        let testID = UUID().uuidString
        let logger = Logger(label: "gallra.test") { label in
            JournalLogHandler(label: label, fallback: nil, metadataProvider: nil)
        }
        logger.error("batch rolled back", error: BatchTimedOut(), metadata: ["test.id": "\(testID)"])

        let entry = try #require(try journalEntries(testID: testID, expectedCount: 1).first)
        #expect(entry["GALLRA_ERROR_MESSAGE"] == "statement timeout after 30 s")
        #expect(entry["GALLRA_ERROR_TYPE"]?.hasSuffix("BatchTimedOut") == true)
    }
}

/// Fails, rather than skips, when the private journald of `make test` is not there.
func requireTestJournald() throws {
    try #require(
        ProcessInfo.processInfo.environment["GALLRA_TEST_JOURNALD"] == "1",
        "journal tests need the private systemd-journald: run them through `make test` (scripts/test.sh)"
    )
}

/// The entries with `GALLRA_TEST_ID=testID`, as field → text. Flushes the journal first and
/// waits (briefly) until `expectedCount` entries are there.
func journalEntries(testID: String, expectedCount: Int) throws -> [[String: String]] {
    var entries: [[String: String]] = []
    for _ in 0..<20 {
        _ = try runJournalctl(["--sync"])
        let output = try runJournalctl(["-o", "json", "--no-pager", "GALLRA_TEST_ID=\(testID)"])
        entries = try output.split(separator: UInt8(ascii: "\n")).map(decodeEntry)
        if entries.count >= expectedCount { break }
        usleep(100_000)
    }
    return entries
}

private func runJournalctl(_ arguments: [String]) throws -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/journalctl")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try #require(process.terminationStatus == 0, "journalctl \(arguments.joined(separator: " ")) failed")
    return data
}

/// journalctl's JSON gives a field as a string, as an array of bytes (when not printable UTF-8),
/// or as an array of those when the entry has the field more than once.
private func decodeEntry(_ line: some DataProtocol) throws -> [String: String] {
    let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
    func text(_ value: Any) -> String? {
        if let string = value as? String { return string }
        if let bytes = value as? [Int] { return String(decoding: bytes.map { UInt8($0) }, as: UTF8.self) }
        if let values = value as? [Any] { return values.compactMap(text).joined(separator: "\u{1E}") }
        return nil
    }
    return object.compactMapValues(text)
}
