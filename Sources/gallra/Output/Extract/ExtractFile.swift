import GallraCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where an extract goes: stdout, or a file that appears only once the extract is complete.
///
/// A file is written to a temporary file beside it (mode 0600, `mkstemp`) and then published: linked to its name,
/// which fails if a file of that name exists, or renamed over it with `--force`. A failed export leaves no file.
final class ExtractFile {
    enum Target {
        case standardOutput
        case file(path: String, force: Bool)
    }

    private let target: Target
    private var descriptor: Int32
    private var temporaryPath: String?
    private var buffer: [UInt8] = []
    private static let bufferSize = 64 * 1024

    /// Opens the target: for a file, checks that it may be written and creates the temporary file.
    init(_ target: Target) throws {
        self.target = target
        switch target {
        case .standardOutput:
            descriptor = 1
        case .file(let path, let force):
            if !force, access(path, F_OK) == 0 {
                throw CommandFailure(
                    .usage, "\(path) exists: gallra export does not overwrite a file unless --force is given.")
            }
            let slash = path.lastIndex(of: "/")
            let directory = slash.map { String(path[...$0]) } ?? ""
            let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
            var template = Array("\(directory).\(name).gallra-XXXXXX".utf8CString)
            descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard descriptor >= 0 else {
                throw CommandFailure(
                    .configuration,
                    "cannot create a file in \(directory.isEmpty ? "the current directory" : directory): "
                        + "\(String(cString: strerror(errno))). Give --out a path in a directory you can write.")
            }
            temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            fchmod(descriptor, 0o600)
        }
    }

    deinit {
        discard()
    }

    func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= Self.bufferSize { try flush() }
    }

    func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { bytes in
                #if canImport(Glibc)
                    Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                #else
                    Darwin.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                #endif
            }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                throw CommandFailure(.software, "writing the extract failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Gives the temporary file's path to a library that creates and writes the file itself (a zip archive, whose
    /// writer seeks): the file is removed for it to create anew, with `O_EXCL`. Nil for stdout. `publish` and
    /// `discard` then act on what the library wrote.
    func handOver() -> String? {
        guard let temporaryPath else { return nil }
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unlink(temporaryPath)
        return temporaryPath
    }

    /// Flushes and, for a file, syncs it and gives it its name.
    func publish() throws {
        try flush()
        guard case .file(let path, let force) = target, let temporaryPath else { return }
        if descriptor < 0 { descriptor = open(temporaryPath, O_RDONLY) }  // written by a library (`handOver`)
        guard descriptor >= 0, fsync(descriptor) == 0, close(descriptor) == 0 else {
            throw CommandFailure(.software, "writing \(path) failed: \(String(cString: strerror(errno)))")
        }
        descriptor = -1
        if force {
            guard rename(temporaryPath, path) == 0 else {
                throw CommandFailure(.configuration, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
        } else {
            guard link(temporaryPath, path) == 0 else {
                let why = errno == EEXIST ? "it exists (give --force to replace it)" : String(cString: strerror(errno))
                throw CommandFailure(.usage, "cannot write \(path): \(why)")
            }
            unlink(temporaryPath)
        }
        self.temporaryPath = nil
    }

    /// Removes the temporary file of an extract that was not published.
    func discard() {
        if let temporaryPath {
            if descriptor >= 0 { close(descriptor) }
            unlink(temporaryPath)
            self.temporaryPath = nil
            descriptor = -1
        }
    }
}
