#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What `gallra ledger verify` found in a ledger file.
public struct LedgerVerification: Sendable, Hashable {
    /// Whether the ledger passes through a hash recorded elsewhere (`--expect-head`).
    public struct ExpectedHash: Sendable, Hashable, Codable {
        public var hash: String
        /// The block of the ledger whose hash it is (or starts with); nil if none.
        public var foundAt: Int64?
    }

    /// Blocks checked intact, in every branch.
    public var blocks = 0
    /// Subject records in them.
    public var records = 0
    /// Restore lines checked.
    public var restores = 0
    /// The first block's place when it is not block 1 (a ledger exported with `--since`): the chain is checked from
    /// there, and the blocks before it are the audit trail's to vouch for.
    public var startsAfter: LedgerPosition?
    /// The head of the current branch, as far as it checked out.
    public var head: LedgerPosition?
    /// The first problem: its line and what is wrong; nil when the ledger is intact.
    public var problem: LedgerError?
    /// The outcome of checking for a hash recorded elsewhere, if one was given.
    public var expected: ExpectedHash?

    /// Every line reads, every block recomputes and chains, and the expected hash, if any, was found.
    public var isIntact: Bool { problem == nil && (expected.map { $0.foundAt != nil } ?? true) }
}

/// `--expect-head` gave a prefix that more than one block of the ledger starts with.
public struct LedgerAmbiguousHash: Error, Sendable, Hashable {
    public var prefix: String
    public var blocks: [Int64]
}

extension LedgerFile {
    /// Checks a ledger file: every line complete and what gallra writes (the first bad line is named), each block's
    /// records hash and hash recomputed with the audit chain's own code, sequence numbers without gaps, each block
    /// chained to the one before it, each restore line naming the current head and a block the current branch holds
    /// (the blocks after it continue from that block). With `expectingHash` (a hash the journal logged, or its first
    /// 12+ digits), the ledger must hold that block: a ledger cut at a line boundary is found that way.
    ///
    /// - Throws: ``LedgerError`` `.missing` or `.inputOutput` when the file cannot be read; a problem in the file
    ///   is the result's ``LedgerVerification/problem``.
    public static func verify(path: String, expectingHash prefix: String? = nil) throws(LedgerError)
        -> LedgerVerification
    {
        let handle = try LedgerHandle.open(path: path, create: false, lock: LOCK_SH)
        let bytes: [UInt8]
        do {
            bytes = try handle.readAll()
            handle.close()
        } catch {
            handle.close()
            throw error
        }
        var result = LedgerVerification()
        var hashes: [(sequence: Int64, hash: String)] = []
        let contents: LedgerContents
        do {
            guard let parsed = try parse(bytes, path: path) else {
                result.problem = LedgerError(
                    .malformed, path: path, line: 1, "the file is empty: a ledger starts with its header line")
                return result
            }
            contents = parsed
        } catch {
            result.problem = error
            // The lines before the bad one are still checked, for the report's counts.
            let good = Array(bytes[0..<lineStart(bytes, line: error.line ?? 1)])
            guard let parsed = try? parse(good, path: path) else { return result }
            contents = parsed
        }
        var checker = LedgerChainChecker(path: path)
        for (index, line) in contents.lines.enumerated() {
            if let problem = checker.check(line, number: index + 2) {
                result.problem = problem
                break
            }
            if case .block(let block) = line { hashes.append((block.sequence, block.hash)) }
        }
        result.blocks = checker.blocks
        result.records = checker.records
        result.restores = checker.restores
        result.head = checker.previous
        result.startsAfter = checker.startsAfter
        if let prefix = prefix?.lowercased() {
            let matching = hashes.filter { $0.hash.hasPrefix(prefix) }
            let distinct = Set(matching.map(\.sequence))
            result.expected = LedgerVerification.ExpectedHash(
                hash: matching.first?.hash ?? prefix, foundAt: distinct.count == 1 ? matching.first?.sequence : nil)
            if distinct.count > 1 {
                result.problem =
                    result.problem
                    ?? LedgerError(
                        .broken, path: path,
                        "the hash prefix \(prefix) matches blocks \(distinct.sorted().map(String.init).joined(separator: " and ")); give more of the hash"
                    )
            }
        }
        return result
    }

    /// The byte offset where line `line` (1-based) starts.
    static func lineStart(_ bytes: [UInt8], line: Int) -> Int {
        var seen = 1
        var index = 0
        while seen < line, let newline = bytes[index...].firstIndex(of: 0x0a) {
            index = newline + 1
            seen += 1
        }
        return index
    }
}

/// Follows a ledger's lines in order and says where the chain they make first breaks.
struct LedgerChainChecker {
    let path: String
    /// The current branch's head; nil before the first block.
    private(set) var previous: LedgerPosition?
    /// The blocks of the current branch, by sequence, for restore lines to name.
    private var branch: [Int64: String] = [:]
    private(set) var startsAfter: LedgerPosition?
    private(set) var blocks = 0
    private(set) var records = 0
    private(set) var restores = 0

    init(path: String) {
        self.path = path
    }

    private func fail(_ number: Int, _ message: String) -> LedgerError {
        LedgerError(.broken, path: path, line: number, message)
    }

    mutating func check(_ line: LedgerLine, number: Int) -> LedgerError? {
        switch line {
        case .header:
            return fail(number, "a header line may only be the first line")
        case .block(let block):
            if let previous {
                if block.sequence != previous.sequence + 1 {
                    return fail(
                        number,
                        block.sequence > previous.sequence + 1
                            ? "block \(block.sequence) follows block \(previous.sequence): "
                                + (block.sequence == previous.sequence + 2
                                    ? "block \(previous.sequence + 1) is"
                                    : "blocks \(previous.sequence + 1)-\(block.sequence - 1) are")
                                + " missing (the ledger was edited)"
                            : "block \(block.sequence) follows block \(previous.sequence): blocks were reordered or "
                                + "repeated (the ledger was edited)")
                }
                if block.previousHash != previous.hash {
                    return fail(
                        number, "block \(block.sequence) is not chained to block \(previous.sequence) before it")
                }
            } else if block.sequence == 1 {
                if block.previousHash != AuditChain.genesisHash {
                    return fail(number, "block 1 is not chained to the start of the trail")
                }
            } else {
                startsAfter = LedgerPosition(sequence: block.sequence - 1, hash: block.previousHash)
                branch[block.sequence - 1] = block.previousHash
            }
            let expected = block.auditBlock.expectedHash(records: block.records)
            if expected.recordsHash != block.recordsHash {
                return fail(number, "block \(block.sequence): a subject record was changed (records hash differs)")
            }
            if block.subjects != block.records.count {
                return fail(
                    number,
                    "block \(block.sequence): it sealed \(block.subjects) subjects and holds \(block.records.count)")
            }
            if expected.hash != block.hash {
                return fail(
                    number,
                    "block \(block.sequence): a field (run, policy, version, time, subjects or a hash) was changed "
                        + "(block hash differs)")
            }
            previous = block.position
            branch[block.sequence] = block.hash
            blocks += 1
            records += block.records.count
            return nil
        case .restore(let restore):
            let head = previous ?? .genesis
            if restore.ledgerHead != head {
                return fail(number, "the restore line's ledger_head is not the ledger's head before it, \(head)")
            }
            let continues = restore.databaseHead
            let known = continues == .genesis || branch[continues.sequence] == continues.hash
            if !known || continues.sequence > head.sequence {
                return fail(
                    number, "the restore line's database_head, \(continues), is not a block of the ledger's chain")
            }
            for sequence in branch.keys where sequence > continues.sequence { branch[sequence] = nil }
            previous = continues.sequence == 0 ? nil : continues
            if continues.sequence == 0 { startsAfter = nil }
            restores += 1
            return nil
        }
    }
}
