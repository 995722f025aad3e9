/// A ledger as read: its header and the lines after it, in file order.
public struct LedgerContents: Sendable, Hashable {
    public var header: LedgerHeader
    /// The lines after the header (blocks and restore lines).
    public var lines: [LedgerLine]

    public init(header: LedgerHeader, lines: [LedgerLine]) {
        self.header = header
        self.lines = lines
    }

    /// The blocks the current chain is made of: every block, except that a restore line drops the blocks after its
    /// `databaseHead` (the lost branch, which stays in the file as evidence) and the blocks after it continue from
    /// there.
    public var currentBranch: [LedgerBlock] {
        var branch: [LedgerBlock] = []
        for line in lines {
            switch line {
            case .block(let block): branch.append(block)
            case .restore(let restore):
                while let last = branch.last, last.sequence > restore.databaseHead.sequence { branch.removeLast() }
            case .header: continue
            }
        }
        return branch
    }

    /// The last block of the current chain (after a restore line with no block after it, the block it continues
    /// from); nil when the chain holds no block yet.
    public var head: (sequence: Int64, hash: String)? {
        headPosition.flatMap { $0.sequence == 0 ? nil : ($0.sequence, $0.hash) }
    }

    /// The current chain's head as a position; nil for a ledger with no line after its header.
    var headPosition: LedgerPosition? {
        for line in lines.reversed() {
            switch line {
            case .block(let block): return block.position
            case .restore(let restore): return restore.databaseHead
            case .header: continue
            }
        }
        return nil
    }

    /// How many blocks and subject records the file holds, in every branch.
    public var totals: (blocks: Int, records: Int) {
        var blocks = 0
        var records = 0
        for case .block(let block) in lines {
            blocks += 1
            records += block.records.count
        }
        return (blocks, records)
    }
}
