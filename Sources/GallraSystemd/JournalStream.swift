#if canImport(Glibc)
    import Glibc
#endif

/// The `JOURNAL_STREAM` check systemd documents: stderr is connected to the journal when the
/// variable holds stderr's `device:inode`.
public enum JournalStream {
    /// True when `JOURNAL_STREAM` (from `environment`) names the device and inode of file descriptor 2.
    public static func matchesStandardError(environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}
