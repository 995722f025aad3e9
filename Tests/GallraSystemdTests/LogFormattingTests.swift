import Foundation
import Logging
import Testing

@testable import GallraSystemd

#if canImport(Glibc)
    import Glibc
#endif

@Test(arguments: [
    ("run.id", "GALLRA_RUN_ID"),
    ("policy", "GALLRA_POLICY"),
    ("weird-key.x", "GALLRA_WEIRD_KEY_X"),
    ("dry_run", "GALLRA_DRY_RUN"),
    ("rows", "GALLRA_ROWS"),
    ("Table", "GALLRA_TABLE"),
    ("ünïcode key", "GALLRA__N_CODE_KEY"),
    ("", "GALLRA_"),
    ("MESSAGE_ID", "MESSAGE_ID"),
    ("SYSLOG_FACILITY", "SYSLOG_FACILITY"),
    ("X1", "X1"),
    ("MESSAGE", "GALLRA_MESSAGE"),
    ("PRIORITY", "GALLRA_PRIORITY"),
    ("CODE_LINE", "GALLRA_CODE_LINE"),
    ("_PID", "GALLRA__PID"),
    ("1ST", "GALLRA_1ST"),
    ("Message_ID", "GALLRA_MESSAGE_ID"),
])
func metadataKeysBecomeJournalFieldNames(key: String, field: String) {
    #expect(JournalFieldName.forMetadataKey(key) == field)
    #expect(JournalFieldName.isValid(field))
}

@Test func longKeysAreCutToSixtyFourCharacters() {
    let field = JournalFieldName.forMetadataKey(String(repeating: "a.", count: 50))
    #expect(field.count == 64)
    #expect(field.hasPrefix("GALLRA_A_A_"))
    #expect(JournalFieldName.isValid(field))
    #expect(!JournalFieldName.isValid(String(repeating: "A", count: 65)))
}

@Test func theFieldPrefixIsMadeValidToo() {
    #expect(JournalFieldName.forMetadataKey("run.id", prefix: "my-app.") == "MY_APP_RUN_ID")
    #expect(JournalFieldName.forMetadataKey("id", prefix: "") == "ID")
    #expect(JournalFieldName.forMetadataKey("9lives", prefix: "") == "X9LIVES")
    #expect(JournalFieldName.forMetadataKey(".x", prefix: "") == "X_X")
}

@Test(arguments: [
    (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
])
func levelsMapToSyslogPriorities(level: Logger.Level, priority: Int) {
    #expect(level.syslogPriority == priority)
}

/// 2026-11-29T03:12:00.042Z
private let sampleTime = LogTimestamp(seconds: 1_795_921_920, nanoseconds: 42_000_000)

private func record(
    _ level: Logger.Level = .warning,
    _ message: String = "batch retried after a lock conflict",
    metadata: Logger.Metadata = ["policy": "inactive-customers", "run.id": "r1"]
) -> LogRecord {
    LogRecord(timestamp: sampleTime, level: level, message: message, label: "gallra", metadata: metadata)
}

@Test func timestampsAreUTC() {
    #expect(sampleTime.iso8601(milliseconds: false) == "2026-11-29T03:12:00Z")
    #expect(sampleTime.iso8601(milliseconds: true) == "2026-11-29T03:12:00.042Z")
    #expect(
        LogTimestamp(seconds: 0, nanoseconds: 999_999_999).iso8601(milliseconds: true) == "1970-01-01T00:00:00.999Z")
}

@Test func prefixedLinesStartWithThePriority() {
    #expect(
        StandardErrorLogHandler.render(record(), format: .prefixed)
            == "<4>batch retried after a lock conflict policy=inactive-customers run.id=r1\n")
    #expect(StandardErrorLogHandler.render(record(.critical, "stop", metadata: [:]), format: .prefixed) == "<2>stop\n")
}

@Test func prefixedLinesKeepOneEventOnOneLine() {
    let line = StandardErrorLogHandler.render(
        record(.error, "first\nsecond\r\u{1B}[31mred", metadata: ["note": "two words", "empty": "", "q": "a\"b"]),
        format: .prefixed)
    #expect(line == #"<3>first\nsecond\r\u{1b}[31mred empty="" note="two words" q="a\"b""# + "\n")
}

@Test func controlCharactersCannotReachATerminal() {
    #expect(LogText.singleLine("a\u{9B}31m\u{7F}\tb") == #"a\u{9b}31m\u{7f}"# + "\tb")
    #expect(LogText.singleLine("plain, ünïcode ✓") == "plain, ünïcode ✓")
}

@Test func terminalLinesAreForPeople() {
    #expect(
        StandardErrorLogHandler.render(record(), format: .terminal)
            == "2026-11-29T03:12:00Z warning  batch retried after a lock conflict  policy=inactive-customers run.id=r1\n"
    )
    #expect(
        StandardErrorLogHandler.render(record(.critical, "a\nb", metadata: [:]), format: .terminal)
            == "2026-11-29T03:12:00Z critical a\nb\n")
    #expect(
        StandardErrorLogHandler.render(record(.info, "tables", metadata: ["t": ["a", "b"]]), format: .terminal)
            == #"2026-11-29T03:12:00Z info     tables  t="[\"a\",\"b\"]""# + "\n")
}

@Test func jsonLinesAreOneObjectEach() throws {
    let line = StandardErrorLogHandler.render(record(), format: .json)
    #expect(
        line == #"{"ts":"2026-11-29T03:12:00.042Z","level":"warning","message":"batch retried after a lock conflict","#
            + #""logger":"gallra","policy":"inactive-customers","run.id":"r1"}"# + "\n")
}

@Test func jsonEscapesQuotesLineBreaksAndControlCharacters() throws {
    let message = "say \"hi\"\\ \n\r\t\u{08}\u{0C}\u{01}\u{1F} é ✓"
    let line = StandardErrorLogHandler.render(
        record(.error, message, metadata: ["nested": ["k": ["x", "y\n"]], "message": "clash"]), format: .json)
    #expect(line.hasSuffix("}\n"))
    #expect(line.dropLast().contains("\n") == false)
    #expect(line.contains(#""message":"say \"hi\"\\ \n\r\t\b\f\u0001\u001f é ✓""#))

    let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    #expect(object["message"] as? String == message)
    #expect(object["metadata.message"] as? String == "clash")
    #expect(object["level"] as? String == "error")
    let nested = try #require(object["nested"] as? [String: Any])
    #expect(nested["k"] as? [String] == ["x", "y\n"])
}

@Test func metadataMergesHandlerProviderAndCall() throws {
    let provider = Logger.MetadataProvider { ["run.id": "from-provider", "trace": "t1"] }
    let event = LogEvent(
        level: .info, message: "m", metadata: ["run.id": "from-call"], source: nil, file: "F.swift",
        function: "f()", line: 7)
    let merged = LogRecord(
        event: event, label: "gallra", handlerMetadata: ["run.id": "from-handler", "policy": "p"], provider: provider
    ).metadata
    #expect(merged == ["run.id": "from-call", "trace": "t1", "policy": "p"])
}

/// Both handlers build their record the same way: the logger's metadata (set through the handler's subscript),
/// the provider's, the call's, and the error.
@Test func standardErrorLinesCarryTheLoggersMetadataAndTheError() throws {
    var fds: [Int32] = [0, 0]
    try #require(pipe(&fds) == 0)
    defer { close(fds[0]) }
    let provider = Logger.MetadataProvider { ["trace": "t1"] }
    let handler = StandardErrorLogHandler(
        label: "gallra", format: .prefixed, logLevel: .info, metadataProvider: provider, fileDescriptor: fds[1])
    var logger = Logger(label: "gallra") { _ in handler }
    logger[metadataKey: "policy"] = "inactive-customers"
    #expect(logger[metadataKey: "policy"] == "inactive-customers")
    logger.debug("below the level")
    logger.error("batch failed", error: LockRefused(), metadata: ["run.id": "r1"])
    close(fds[1])
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(fds[0], &buffer, buffer.count)
    let line = String(decoding: buffer[..<max(0, count)], as: UTF8.self)
    #expect(
        line
            == "<3>batch failed error.message=\"lock refused\" error.type=GallraSystemdTests.LockRefused "
            + "policy=inactive-customers run.id=r1 trace=t1\n")
}

struct LockRefused: Error, CustomStringConvertible {
    var description: String { "lock refused" }
}

@Test func concurrentLinesNeverInterleave() async throws {
    var fds: [Int32] = [0, 0]
    try #require(pipe(&fds) == 0)
    defer { close(fds[0]) }
    let handler = StandardErrorLogHandler(
        label: "gallra", format: .json, logLevel: .info, metadataProvider: nil, fileDescriptor: fds[1])
    let logger = Logger(label: "gallra") { _ in handler }
    let filler = String(repeating: "x", count: 200)
    await withTaskGroup(of: Void.self) { group in
        for task in 0..<8 {
            group.addTask {
                for index in 0..<20 { logger.info("\(filler)", metadata: ["task": "\(task)", "i": "\(index)"]) }
            }
        }
    }
    close(fds[1])
    var output = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fds[0], &buffer, buffer.count)
        if count <= 0 { break }
        output.append(contentsOf: buffer[..<count])
    }
    let lines = output.split(separator: UInt8(ascii: "\n"))
    #expect(lines.count == 160)
    for line in lines {
        let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
        #expect(object?["message"] as? String == filler)
    }
}

@Test(arguments: [
    (LogFormat?.none, true, false, LogDestination.journal),
    (nil, false, true, .standardError(.terminal)),
    (nil, false, false, .standardError(.prefixed)),
    (.text, true, false, .standardError(.prefixed)),
    (.text, false, true, .standardError(.terminal)),
    (.json, true, true, .standardError(.json)),
    (.journal, false, true, .journal),
])
func destinationFollowsFormatAndStandardError(
    format: LogFormat?, isJournal: Bool, isTerminal: Bool, destination: LogDestination
) {
    #expect(
        LogDestination.resolve(format: format, standardErrorIsJournal: isJournal, standardErrorIsTerminal: isTerminal)
            == destination)
}

@Test func journalIsChosenWhenJournalStreamNamesStandardError() throws {
    var info = stat()
    try #require(fstat(2, &info) == 0)
    let matching = ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)"]
    let other = ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino + 1)"]

    #expect(JournalStream.matchesStandardError(environment: matching))
    #expect(LogDestination.current(format: nil, environment: matching) == .journal)
    #expect(LogDestination.current(format: .json, environment: matching) == .standardError(.json))

    #expect(!JournalStream.matchesStandardError(environment: other))
    let text = LogDestination.current(format: nil, environment: other)
    #expect(text == .standardError(isatty(2) == 1 ? .terminal : .prefixed))
    #expect(LogDestination.current(format: nil, environment: [:]) == text)
}

@Test func theFactoryMakesTheHandlerForTheDestination() {
    let journal = GallraLogging.makeHandler(label: "gallra", destination: .journal, level: .debug)
    #expect((journal as? JournalLogHandler)?.logLevel == .debug)
    #expect((journal as? JournalLogHandler)?.identifier == "gallra")
    let json = GallraLogging.makeHandler(label: "gallra", destination: .standardError(.json), level: .notice)
    #expect((json as? StandardErrorLogHandler)?.format == .json)
    #expect(json.logLevel == .notice)

    let factory = GallraLogging.makeFactory(format: .json, level: .warning, environment: [:])
    let handler = factory("gallra.engine", nil)
    #expect((handler as? StandardErrorLogHandler)?.label == "gallra.engine")
    #expect(handler.logLevel == .warning)
}

@Test func logFormatNamesAreTheCommandLineValues() {
    #expect(LogFormat.allCases.map(\.rawValue) == ["journal", "text", "json"])
}

@Test func anUnreachableJournalFallsBackToPrefixedLines() throws {
    func loggedLines(fallback: StandardErrorLogHandler.Format?) throws -> String {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var handler = JournalLogHandler(label: "gallra", fallback: fallback, metadataProvider: nil)
        handler.sender = { _ in -ENOENT }
        handler.fallbackFileDescriptor = fds[1]
        var logger = Logger(label: "gallra") { _ in handler }
        logger[metadataKey: "policy"] = "inactive-customers"
        logger.warning("journald is gone\nstill logged")
        close(fds[1])
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(fds[0], &buffer, buffer.count)
        return String(decoding: buffer[..<max(0, count)], as: UTF8.self)
    }
    #expect(
        try loggedLines(fallback: .prefixed) == #"<4>journald is gone\nstill logged policy=inactive-customers"# + "\n")
    #expect(try loggedLines(fallback: nil) == "")
}

@Test func journalFieldsAreInASteadyOrder() {
    let handler = JournalLogHandler(label: "gallra", identifier: "gallra-plan", metadataProvider: nil)
    let fields = handler.fields(
        for: LogRecord(
            timestamp: sampleTime, level: .notice, message: "m", metadata: ["run.id": "r", "MESSAGE_ID": "abc"],
            file: "GallraEngine/Run.swift", function: "run()", line: 12))
    #expect(
        fields.map(\.name) == [
            "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "MESSAGE_ID",
            "GALLRA_RUN_ID",
        ])
    #expect(fields.map(\.value) == ["m", "5", "gallra-plan", "GallraEngine/Run.swift", "12", "run()", "abc", "r"])
}
