#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import GallraPostgres

/// A ledger's two ends: its header and the head of its current chain, read from the first and the last complete
/// line without reading what lies between. What catch-up and the service's check for a restore need after every
/// run, at a cost that does not grow with the ledger (`gallra ledger verify` and `replay` read the whole file).
struct LedgerEnds: Sendable, Hashable {
    var header: LedgerHeader
    /// The current chain's head: the last block line's position, or the `database_head` a last restore line
    /// continues from; nil when no line follows the header.
    var head: LedgerPosition?
    /// The file's length up to and with its last newline: more bytes are an append that never finished.
    var completeLength: Int
}

extension LedgerHandle {
    /// Bytes read per `pread` while looking for a line's ends.
    private static let chunk = 1 << 16

    /// The header and the head of the file (``LedgerEnds``); nil when it holds no complete line yet.
    func readEnds() throws(LedgerError) -> LedgerEnds? {
        let size = try length()
        // The last newline: everything after it is an unfinished append.
        guard let lastEnd = try lastNewline(before: size) else { return nil }
        let completeLength = lastEnd + 1
        let firstEnd = try firstNewline()
        let header: LedgerHeader
        switch try parseLine(from: 0, to: firstEnd, number: 1) {
        case .header(let value): header = value
        default:
            throw LedgerError(.malformed, path: path, line: 1, "the first line is not the ledger's header")
        }
        guard lastEnd > firstEnd else { return LedgerEnds(header: header, head: nil, completeLength: completeLength) }
        let start = (try lastNewline(before: lastEnd) ?? -1) + 1
        let head: LedgerPosition
        switch try parseLine(from: start, to: lastEnd, number: nil) {
        case .block(let block): head = block.position
        case .restore(let restore): head = restore.databaseHead
        case .header:
            throw LedgerError(.malformed, path: path, "the last line is a second header: the file was altered")
        }
        return LedgerEnds(header: header, head: head, completeLength: completeLength)
    }

    /// The file's size in bytes.
    func length() throws(LedgerError) -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw Self.failure(path: path, "cannot read it", errno) }
        return Int(info.st_size)
    }

    /// Reads `count` bytes at `offset` (fewer only at the end of the file).
    private func read(at offset: Int, count: Int) throws(LedgerError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes {
                pread(descriptor, $0.baseAddress! + done, count - done, off_t(offset + done))
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw Self.failure(path: path, "cannot read it", errno)
            }
            if got == 0 { break }
            done += got
        }
        return Array(bytes[0..<done])
    }

    /// The offset of the last newline before `end`, reading backwards a chunk at a time; nil when there is none.
    private func lastNewline(before end: Int) throws(LedgerError) -> Int? {
        var upTo = end
        while upTo > 0 {
            let from = max(0, upTo - Self.chunk)
            let bytes = try read(at: from, count: upTo - from)
            if let index = bytes.lastIndex(of: 0x0a) { return from + index }
            upTo = from
        }
        return nil
    }

    /// The offset of the first newline (the file has one: ``readEnds()`` found the last).
    private func firstNewline() throws(LedgerError) -> Int {
        var from = 0
        while true {
            let bytes = try read(at: from, count: Self.chunk)
            if let index = bytes.firstIndex(of: 0x0a) { return from + index }
            guard !bytes.isEmpty else { throw LedgerError(.malformed, path: path, line: 1, "the header has no end") }
            from += bytes.count
        }
    }

    private func parseLine(from start: Int, to end: Int, number: Int?) throws(LedgerError) -> LedgerLine {
        let bytes = try read(at: start, count: end - start)
        do {
            return try LedgerParsing.line(Substring(decoding: bytes, as: UTF8.self), number: number ?? 0)
        } catch {
            throw LedgerError(
                .malformed, path: path, line: number,
                (number == nil ? "the last line: " : "") + error.message)
        }
    }
}

extension LedgerFile {
    /// Whether the database's audit trail holds the ledger's head block (the same hash at its sequence), so that
    /// the database is not older than the ledger: true too for a ledger without blocks yet. Reads the file's ends
    /// only (``LedgerEnds``); false sends the caller to the whole comparison (``LedgerComparison``).
    ///
    /// - Throws: ``LedgerError`` `.otherDatabase` when the header names another database, `.malformed` or
    ///   `.inputOutput` when the ends cannot be read.
    static func databaseHoldsHead(path: String, on connection: PostgresConnection) async throws -> Bool {
        let ends: LedgerEnds?
        do {
            let handle = try LedgerHandle.open(path: path, create: false, lock: LOCK_SH)
            defer { handle.close() }
            ends = try handle.readEnds()
        }
        guard let ends else { return true }
        try LedgerDatabase.check(ends.header, against: try await LedgerDatabase.facts(on: connection), path: path)
        guard let head = ends.head, head.sequence > 0 else { return true }
        let stored = try await connection.query(
            "SELECT hash FROM gallra.audit_block WHERE sequence = $1", [.int64(head.sequence)])
        return try stored.first?.decode("hash", as: String.self) == head.hash
    }
}
