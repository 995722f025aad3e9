extension PolicyValidator {
    /// Warns when the tables a policy changes, with their indexes, are larger than the server's buffer pool
    /// (`shared_buffers`). Then a page that holds rows of subjects of several batches (a table whose rows lie in
    /// another order than the subjects' keys, such as orders by date) is read back in, and written out again, by
    /// each batch that changes it, where one statement over all subjects would visit it once.
    mutating func checkBufferPool(_ steps: [ResolvedStep], subjectTable: CatalogTable) {
        guard let pool = catalog.sharedBuffers, pool > 0 else { return }
        var names = [subjectTable.name]
        for step in steps where !names.contains(step.table) { names.append(step.table) }
        let total = names.compactMap { catalog.table($0)?.bytes }.reduce(0, +)
        guard total > pool else { return }
        warning(
            "the tables this policy changes take \(Self.size(total)) with their indexes, more than shared_buffers "
                + "(\(Self.size(pool))): its batches read back in, and write out again, the pages that earlier batches "
                + "changed (rows that lie in another order than the subjects' keys, such as orders by date), which one "
                + "statement over all subjects would visit once; a shared_buffers that holds these tables keeps "
                + "those pages in memory (docs/scaling.md)",
            at: "limits.batch_size")
        checkBackgroundWriter()
    }

    /// Buffers a second below which the background writer is taken not to keep up with a purge whose tables do not
    /// fit in `shared_buffers`. PostgreSQL's own settings write 500 (100 every 200 ms); one connection purging the
    /// demo shop at full speed with 128 MB of buffers had about 48,000 written out a second, and a writer allowed
    /// 20,000 left 62 % of them to the purge, one allowed 50,000 a fifth, one allowed 100,000 2 % (docs/benchmark.md).
    static let backgroundWriterKeepingUp = 50_000

    /// Warns, for a policy whose tables are larger than the buffer pool, when the background writer writes out
    /// fewer than ``backgroundWriterKeepingUp`` buffers a second: the server process running the batches then
    /// writes out most of the pages they changed itself, before it can read the next one into their buffer.
    mutating func checkBackgroundWriter() {
        guard let writer = catalog.backgroundWriter, writer.pagesPerSecond < Self.backgroundWriterKeepingUp else {
            return
        }
        let pace =
            writer.maxPages == 0
            ? "is off (bgwriter_lru_maxpages 0)"
            : "writes out at most \(writer.pagesPerSecond) buffers a second (bgwriter_lru_maxpages \(writer.maxPages) "
                + "every bgwriter_delay \(writer.delayMilliseconds)ms)"
        warning(
            "the server's background writer \(pace): with tables larger than shared_buffers, the server process "
                + "running the batches writes out most of the pages they changed itself, before it can read the next "
                + "(a ninth of a run's time in docs/benchmark.md); a writer that keeps up, such as "
                + "bgwriter_lru_maxpages 1000 every bgwriter_delay 10ms, does that on a core of its own "
                + "(docs/scaling.md)",
            at: "limits.batch_size")
    }

    /// A size in bytes as PostgreSQL prints one (`pg_size_pretty`): `128 MB`, `1.9 GB`.
    static func size(_ bytes: Int64) -> String {
        let units = ["bytes", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 || value >= 10 { return "\(Int(value.rounded())) \(units[unit])" }
        return "\((value * 10).rounded() / 10) \(units[unit])"
    }
}
