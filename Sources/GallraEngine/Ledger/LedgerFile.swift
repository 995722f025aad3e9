#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import GallraPostgres

/// The ledger file: JSON Lines, append-only, written under an exclusive `flock` (a daemon and a hand-run command
/// may both append), every append `fsync`'d, and the directory too when the file is created.
public enum LedgerFile {
    /// Reads and parses the whole ledger. Every line must be complete (`\n`-terminated) and what gallra writes;
    /// the first error names its line.
    public static func read(path: String) throws(LedgerError) -> LedgerContents {
        let handle = try LedgerHandle.open(path: path, create: false, lock: LOCK_SH)
        defer { handle.close() }
        let bytes = try handle.readAll()
        guard let contents = try parse(bytes, path: path) else {
            throw LedgerError(
                .malformed, path: path, line: 1, "the file is empty: a ledger starts with its header line")
        }
        return contents
    }

    /// Whether a file (of any kind) is at `path`.
    public static func exists(path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Appends `lines` under the lock and `fsync`s them before returning. The file is created (with its directory)
    /// when missing; then `lines` must start with the header.
    public static func append(_ lines: [LedgerLine], to path: String) throws(LedgerError) {
        let handle = try LedgerHandle.open(path: path, create: true, lock: LOCK_EX)
        defer { handle.close() }
        if handle.isEmpty() {
            guard case .header? = lines.first else {
                throw LedgerError(.malformed, path: path, line: 1, "a new ledger must start with its header line")
            }
        }
        try handle.write(lines)
        try handle.sync()
    }

    /// Writes the `restore` line that resolves `fork` (found by ``LedgerComparison/forkPoint(of:on:)``), if the
    /// ledger's head is still the one `fork` was found at: its lost branch stays in the file, and the blocks caught
    /// up after it continue from the fork point. Returns the line written.
    ///
    /// Write it before catching up the blocks written since the fork (replay's own runs): until this line is there,
    /// ``catchUp(path:on:keyCheck:)`` refuses to append them (`.restoreUnresolved`). `fork` may be found before or
    /// after those runs: its fork point and ledger head are the same either way.
    @discardableResult
    public static func appendRestore(
        to path: String, resolution: LedgerRestore.Resolution, fork: LedgerFork, by user: String,
        replayed: Int? = nil
    ) throws(LedgerError) -> LedgerRestore {
        let handle = try LedgerHandle.open(path: path, create: false, lock: LOCK_EX)
        defer { handle.close() }
        guard let contents = try parse(try handle.readAll(), path: path) else {
            throw LedgerError(
                .malformed, path: path, line: 1, "the file is empty: a ledger starts with its header line")
        }
        guard fork.isRestore else {
            throw LedgerError(
                .restoreUnresolved, path: path,
                "there is no restore to resolve: the database is at or ahead of the ledger's head \(fork.ledgerHead)")
        }
        guard contents.headPosition == fork.ledgerHead else {
            throw LedgerError(
                .restoreUnresolved, path: path,
                "the ledger changed since the fork point was found (its head is now "
                    + "\(contents.headPosition ?? .genesis)); compare again and retry")
        }
        let restore = LedgerRestore(
            at: LedgerTime.now(), resolution: resolution, databaseHead: fork.forkPoint, ledgerHead: fork.ledgerHead,
            by: user, replayed: replayed)
        try handle.write([.restore(restore)])
        try handle.sync()
        return restore
    }

    /// The lines of `bytes`; nil when there are none. A last line without its newline is an error: the file was cut.
    static func parse(_ bytes: [UInt8], path: String) throws(LedgerError) -> LedgerContents? {
        var header: LedgerHeader?
        var lines: [LedgerLine] = []
        var start = 0
        var number = 0
        while start < bytes.count {
            number += 1
            let end = bytes[start...].firstIndex(of: 0x0a)
            guard let end else {
                throw LedgerError(
                    .malformed, path: path, line: number,
                    "the last line is cut (it has no newline at its end): the file was truncated")
            }
            let text = Substring(decoding: bytes[start..<end], as: UTF8.self)
            start = end + 1
            let line: LedgerLine
            do {
                line = try LedgerParsing.line(text, number: number)
            } catch {
                throw LedgerError(.malformed, path: path, line: number, error.message)
            }
            switch line {
            case .header(let value):
                guard number == 1 else {
                    throw LedgerError(.malformed, path: path, line: number, "a header line may only be the first line")
                }
                header = value
            default:
                guard number > 1 else {
                    throw LedgerError(.malformed, path: path, line: 1, "the first line is not the ledger's header")
                }
                lines.append(line)
            }
        }
        guard let header else { return nil }
        return LedgerContents(header: header, lines: lines)
    }
}

/// An open, locked ledger file. The lock goes with the descriptor: `close` releases it.
final class LedgerHandle: Sendable {
    let path: String
    let descriptor: Int32
    /// The file did not exist before this handle created it.
    let created: Bool

    private init(path: String, descriptor: Int32, created: Bool) {
        self.path = path
        self.descriptor = descriptor
        self.created = created
    }

    /// Opens `path` (creating it, and its directory, when `create`) and takes `lock` (`LOCK_SH` or `LOCK_EX`),
    /// waiting for another holder to finish.
    static func open(path: String, create: Bool, lock: Int32) throws(LedgerError) -> LedgerHandle {
        // Without LOCK_NB the lock is waited for: never nil.
        try openUnlessBusy(path: path, create: create, lock: lock & ~LOCK_NB)!
    }

    /// `open`, or nil when `lock` has `LOCK_NB` and another holder has the lock.
    static func openUnlessBusy(path: String, create: Bool, lock: Int32) throws(LedgerError) -> LedgerHandle? {
        var created = false
        var descriptor = Glibc.open(path, O_RDWR | O_APPEND | O_CLOEXEC)
        if descriptor < 0, errno == ENOENT, create {
            try makeDirectory(parentOf: path)
            descriptor = Glibc.open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
            created = descriptor >= 0
            if descriptor < 0, errno == EEXIST { descriptor = Glibc.open(path, O_RDWR | O_APPEND | O_CLOEXEC) }
        }
        if descriptor < 0, errno == EACCES || errno == EROFS, lock == LOCK_SH {
            // Reading needs no write access.
            descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        }
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT {
                throw LedgerError(
                    .missing, path: path,
                    "there is no ledger file here; a live run, gallra erase or gallra ledger export creates one")
            }
            throw failure(path: path, "cannot open it", code)
        }
        while flock(descriptor, lock) != 0 {
            let code = errno
            if code == EINTR { continue }
            Glibc.close(descriptor)
            if code == EWOULDBLOCK { return nil }
            throw failure(path: path, "cannot lock it", code)
        }
        let handle = LedgerHandle(path: path, descriptor: descriptor, created: created)
        if created {
            try handle.syncDirectory()
        }
        return handle
    }

    func close() {
        Glibc.close(descriptor)
    }

    func isEmpty() -> Bool {
        var info = stat()
        return fstat(descriptor, &info) == 0 && info.st_size == 0
    }

    /// The whole file.
    func readAll() throws(LedgerError) -> [UInt8] {
        var bytes: [UInt8] = []
        var info = stat()
        if fstat(descriptor, &info) == 0 { bytes.reserveCapacity(Int(info.st_size)) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var offset: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw Self.failure(path: path, "cannot read it", code)
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            offset += off_t(count)
        }
        return bytes
    }

    /// Cuts the file to `length` bytes (an append that never completed).
    func truncate(to length: Int) throws(LedgerError) {
        guard ftruncate(descriptor, off_t(length)) == 0 else {
            throw Self.failure(path: path, "cannot cut its incomplete last line", errno)
        }
    }

    /// Appends the lines, each with its newline.
    func write(_ lines: [LedgerLine]) throws(LedgerError) {
        var bytes: [UInt8] = []
        for line in lines {
            bytes.append(contentsOf: line.jsonText.utf8)
            bytes.append(0x0a)
        }
        try write(bytes)
    }

    func write(_ bytes: [UInt8]) throws(LedgerError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes {
                Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written)
            }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw Self.failure(path: path, "cannot append to it", code)
            }
            written += count
        }
    }

    /// `fsync`: the appended lines are on disk.
    func sync() throws(LedgerError) {
        guard fsync(descriptor) == 0 else { throw Self.failure(path: path, "cannot sync it to disk", errno) }
    }

    private func syncDirectory() throws(LedgerError) {
        let directory = Self.parent(of: path)
        let handle = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard handle >= 0 else { throw Self.failure(path: path, "cannot open its directory to sync it", errno) }
        defer { Glibc.close(handle) }
        guard fsync(handle) == 0 else { throw Self.failure(path: path, "cannot sync its directory", errno) }
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Creates the directory the ledger goes in (and its parents) when missing, mode 0750.
    private static func makeDirectory(parentOf path: String) throws(LedgerError) {
        let directory = parent(of: path)
        var info = stat()
        if stat(directory, &info) == 0 { return }
        if directory != "/" && directory != "." { try makeDirectory(parentOf: directory) }
        if mkdir(directory, 0o750) != 0, errno != EEXIST {
            throw failure(path: path, "cannot create its directory \(directory)", errno)
        }
    }

    static func failure(path: String, _ what: String, _ code: Int32) -> LedgerError {
        let reason = String(cString: strerror(code))
        let hint: String
        switch code {
        case EACCES, EPERM, EROFS:
            hint = "give gallra's user write access to the file and its directory, or set ledger.path"
        case ENOSPC, EDQUOT:
            hint = "free space on its file system"
        default:
            hint = "check the file system"
        }
        return LedgerError(.inputOutput, path: path, "\(what): \(reason); \(hint)")
    }
}
