import Foundation
import GallraCore
import GallraEngine
import GallraPolicy
import ZIPFoundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A register extract as a zip archive (docs/export.md, CSV): one RFC 4180 CSV file per table, `manifest.json`
/// with everything of the JSON document but the rows, and `README.txt` saying how to read them.
///
/// A zip entry's size comes before its data, so each table's CSV is written to a scratch file of mode 0600 beside
/// the archive as its rows come, added to the archive (deflated) when the table ends, and removed: memory does not
/// grow with the rows. The archive needs a file (`--out`): its writer seeks.
final class CSVExtractWriter: ExtractWriter, @unchecked Sendable {
    // @unchecked: the engine drives a writer from one task at a time, and nothing else touches it.

    /// The archive's layout; a change that breaks a reader raises it.
    static let formatVersion = 1

    private let archivePath: String
    private var archive: Archive?
    private let scratchTemplate: String
    private var header: ExtractHeader?
    private var modificationDate = Date()
    private var manifestTables: [ManifestTable] = []
    private var fileNames = FileNames()
    private var current: (table: ExtractTable, fileName: String, scratch: ScratchFile)?

    /// Creates the archive at the temporary file of `file`, which must be a file (`--out`).
    init(file: ExtractFile) throws {
        guard let path = file.handOver() else {
            throw CommandFailure(.usage, "a CSV extract is a zip archive and needs a file: give --out PATH.")
        }
        archivePath = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        scratchTemplate = "\(directory)\(name).table-XXXXXX"
        // The library creates the file (O_EXCL, mode 0666 less the umask): no one but the user may read it.
        let mask = umask(0o077)
        defer { umask(mask) }
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create, pathEncoding: nil)
        } catch {
            throw CommandFailure(.configuration, "cannot create the zip archive: \(error)")
        }
    }

    func begin(_ header: ExtractHeader) throws {
        self.header = header
        modificationDate = Date(timeIntervalSince1970: Double(header.takenAtMicroseconds) / 1_000_000)
    }

    func beginTable(_ table: ExtractTable) throws {
        let scratch = try ScratchFile(template: scratchTemplate)
        let fileName = fileNames.claim(for: table.name)
        CSVRecord.appendHeader(table.columns.map(\.name), to: &scratch.buffer)
        current = (table, fileName, scratch)
    }

    func rows(_ rows: [String]) throws {
        guard let current else { return }
        let jsonColumns = current.table.columns.map { $0.type == "json" || $0.type == "jsonb" }
        for row in rows {
            do {
                try CSVRecord.appendRow(row, jsonColumns: jsonColumns, to: &current.scratch.buffer)
            } catch {
                throw CommandFailure(.software, "\(current.table.name): \(error)")
            }
            if current.scratch.buffer.count >= ScratchFile.bufferSize { try current.scratch.flush() }
        }
    }

    func endTable(rowCount: Int) throws {
        guard let (table, fileName, scratch) = current else { return }
        current = nil
        try scratch.flush()
        try add(fileName, size: scratch.size) { position, size in try scratch.read(at: position, count: size) }
        manifestTables.append(
            ManifestTable(
                file: fileName, table: table.name, policies: table.policies,
                columns: table.columns.map { .init(name: $0.name, type: $0.type) }, rowCount: rowCount))
    }

    func finish() throws {
        guard let header else { return }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        var document = ExtractDocumentHeader(header)
        document.formatVersion = Self.formatVersion
        let manifest = try encoder.encode(Manifest(header: document, tables: manifestTables))
        try add("manifest.json", data: manifest + Data("\n".utf8))
        try add("README.txt", data: Data(Self.readme.utf8))
        archive = nil  // closes the file: publishing syncs it
    }

    private func add(_ name: String, data: Data) throws {
        try add(name, size: Int64(data.count)) { position, size in
            data.subdata(in: Int(position)..<Int(position) + size)
        }
    }

    private func add(_ name: String, size: Int64, provider: (Int64, Int) throws -> Data) throws {
        guard let archive else { return }
        do {
            try archive.addEntry(
                with: name, type: .file, uncompressedSize: size, modificationDate: modificationDate,
                permissions: 0o600, compressionMethod: .deflate, provider: provider)
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure(.software, "writing \(name) into the zip archive failed: \(error)")
        }
    }

    /// The archive's README: how to read the files, for the person who receives them.
    static let readme = """
        Register extract (gallra export, CSV format \(formatVersion))\r
        \r
        manifest.json   who the extract is about, when it was made, the policies (purpose, legal basis,\r
                        retention rule, where the subject stands), the consent and processing history, and\r
                        for each CSV file the table it holds, the policies covering it, its columns and types,\r
                        and its number of rows.\r
        *.csv           one file per table: a header row with the column names, then one row per record.\r
        \r
        The CSV files follow RFC 4180: UTF-8 without a byte order mark, lines ended by CR LF, fields separated\r
        by commas and quoted with " when they hold a comma, a quote or a line break (a quote inside is doubled).\r
        An empty field without quotes is a missing value (NULL); an empty text is written as "".\r
        Booleans are true or false; times with a time zone are RFC 3339 in UTC (2026-03-01T14:05:09.5+00:00);\r
        JSON values are their JSON text; binary values (bytea) are base64; anything else is PostgreSQL's text.\r

        """

    /// The manifest: the JSON extract's header, with the tables as files instead of rows.
    private struct Manifest: Encodable {
        var header: ExtractDocumentHeader
        var tables: [ManifestTable]

        func encode(to encoder: any Encoder) throws {
            try header.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(tables, forKey: .tables)
        }

        enum Key: String, CodingKey {
            case tables
        }
    }

    private struct ManifestTable: Encodable {
        var file: String
        var table: String
        var policies: [String]
        var columns: [Column]
        var rowCount: Int

        struct Column: Encodable {
            var name: String
            var type: String
        }
    }
}

/// The CSV files' names: the table's schema and name, each with every character but ASCII letters, digits, `_` and
/// `-` replaced by `_`, joined by a dot, then `.csv` (`"Ext"."Person"` is `Ext.Person.csv`). A name that another
/// table's file has already, ignoring case, gets `-2`, `-3`, ... before `.csv`. Never a path separator or `..`;
/// the manifest names each file's table exactly.
struct FileNames {
    private var taken: Set<String> = []

    mutating func claim(for table: String) -> String {
        let parts: [String]
        if let name = try? QualifiedName(parsing: table) {
            parts = [name.schema, name.name].compactMap { $0 }
        } else {
            parts = [table]
        }
        let base = parts.map(Self.safe).joined(separator: ".")
        var candidate = "\(base).csv"
        var suffix = 2
        while taken.contains(candidate.lowercased()) || Self.reserved.contains(candidate.lowercased()) {
            candidate = "\(base)-\(suffix).csv"
            suffix += 1
        }
        taken.insert(candidate.lowercased())
        return candidate
    }

    private static let reserved: Set<String> = ["manifest.json", "readme.txt"]

    static func safe(_ part: String) -> String {
        String(
            part.unicodeScalars.map { scalar -> Character in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_"
                        || scalar == "-")
                    ? Character(scalar) : "_"
            })
    }
}

/// A table's CSV as it is written: a file of mode 0600 (`mkstemp`), removed when done with.
private final class ScratchFile {
    static let bufferSize = 64 * 1024

    var buffer: [UInt8] = []
    private(set) var size: Int64 = 0
    private let descriptor: Int32
    private let path: String

    init(template: String) throws {
        var bytes = Array(template.utf8CString)
        descriptor = bytes.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw CommandFailure(
                .configuration,
                "cannot create a temporary file beside the archive: \(String(cString: strerror(errno))).")
        }
        path = bytes.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        buffer.reserveCapacity(Self.bufferSize + 4096)
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { bytes in
                pwrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset, off_t(size) + off_t(offset))
            }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                throw CommandFailure(.software, "writing a temporary file failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        size += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    func read(at position: Int64, count: Int) throws -> Data {
        var data = Data(count: count)
        var done = 0
        while done < count {
            let read = data.withUnsafeMutableBytes { bytes in
                pread(descriptor, bytes.baseAddress! + done, count - done, off_t(position) + off_t(done))
            }
            if read < 0, errno == EINTR { continue }
            guard read > 0 else {
                throw CommandFailure(.software, "reading a temporary file failed: \(String(cString: strerror(errno)))")
            }
            done += read
        }
        return data
    }
}
