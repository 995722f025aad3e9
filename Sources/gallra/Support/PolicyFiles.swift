// Foundation, not FoundationEssentials: listing a directory of policy files.
import Foundation
import GallraCore
import GallraPolicy

#if canImport(Glibc)
    import Glibc
#endif
// In release builds `stat` resolves to the declaration Foundation re-exports from CoreFoundation.
#if canImport(CoreFoundation)
    import CoreFoundation
#endif

/// Policy files named on the command line.
enum PolicyFiles {
    /// Reads each path: a file, or every *.yaml, *.yml and *.json file of a directory (in name order).
    ///
    /// Only regular files are read (symbolic links to them included): a FIFO, a socket or a device named directly
    /// or found in a directory is refused with EX_NOINPUT before anything is opened, since opening a FIFO would wait
    /// for a writer forever.
    static func read(_ paths: [String]) throws -> [PolicyFile] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CommandFailure(.dataError, "\(path): no such file or directory")
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                let policies = names.filter { name in
                    !name.hasPrefix(".") && ["yaml", "yml", "json"].contains((name as NSString).pathExtension)
                }
                if policies.isEmpty {
                    throw CommandFailure(.dataError, "\(path): the directory holds no *.yaml, *.yml or *.json file")
                }
                files += policies.map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        for file in files { try requireRegularFile(file) }
        return files.map { PolicyFile.read(path: $0) }
    }

    /// Refuses a path that is not a regular file, naming what it is.
    private static func requireRegularFile(_ path: String) throws {
        var status = stat()
        guard stat(path, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            throw CommandFailure(.noInput, "\(path): \(reason)")
        }
        let kind: String
        switch status.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: kind = "a directory"
        case S_IFIFO: kind = "a FIFO (named pipe)"
        case S_IFSOCK: kind = "a socket"
        case S_IFCHR, S_IFBLK: kind = "a device"
        default: kind = "a special file"
        }
        throw CommandFailure(
            .noInput,
            "\(path): is \(kind), not a policy file. Name regular *.yaml, *.yml or *.json files, or a directory of "
                + "them (write a policy read from a pipe to a file first)")
    }
}

/// Policy names given on the command line.
enum PolicyNames {
    static func parse(_ text: String) throws -> PolicyName {
        do {
            return try PolicyName(text)
        } catch {
            throw CommandFailure(.usage, "\(error)")
        }
    }
}
