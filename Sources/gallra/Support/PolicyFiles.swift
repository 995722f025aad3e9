// Foundation, not FoundationEssentials: listing a directory of policy files.
import Foundation
import GallraCore
import GallraPolicy

/// Policy files named on the command line.
enum PolicyFiles {
    /// Reads each path: a file, or every *.yaml, *.yml and *.json file of a directory (in name order).
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
        return files.map { PolicyFile.read(path: $0) }
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
