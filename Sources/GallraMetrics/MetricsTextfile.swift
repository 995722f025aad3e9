#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A node_exporter textfile, replaced atomically: the metrics are written to a temporary file in the same directory
/// (its name does not end in `.prom`, so the collector never reads it half-written), flushed to disk, made
/// readable by others (node_exporter runs as another user; gallra's unit has `UMask=0077`), and renamed over the
/// file.
public enum MetricsTextfile {
    /// A textfile that could not be written: the path, the call that failed, and the system's reason.
    public struct WriteError: Error, CustomStringConvertible {
        public var path: String
        public var call: String
        public var reason: String

        public var description: String {
            "\(call) \(path): \(reason). The directory must exist and be writable by gallra "
                + "(under gallra.service: ReadWritePaths=, see docs/metrics.md)"
        }
    }

    /// Writes `bytes` to `path` atomically.
    public static func save(_ bytes: [UInt8], to path: String) throws(WriteError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var template = Array("\(directory)/.\(name).XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard fd >= 0 else { throw failure("mkstemp", directory) }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            var written = 0
            while written < bytes.count {
                let count = bytes.withUnsafeBytes { buffer in
                    write(fd, buffer.baseAddress! + written, buffer.count - written)
                }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw failure("write", temporary)
                }
                written += count
            }
            guard fchmod(fd, 0o644) == 0 else { throw failure("fchmod", temporary) }
            guard fsync(fd) == 0 else { throw failure("fsync", temporary) }
        }
        guard rename(temporary, path) == 0 else { throw failure("rename", path) }
        renamed = true
        // The rename itself reaches the disk with the directory.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    private static func failure(_ call: String, _ path: String) -> WriteError {
        WriteError(path: path, call: call, reason: String(cString: strerror(errno)))
    }
}
