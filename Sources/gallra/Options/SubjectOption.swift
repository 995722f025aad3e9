import ArgumentParser

/// `--subject TABLE:KEY` or `TABLE:COLUMN=VALUE`: the option of every command about one subject.
struct SubjectOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The subject: its table, a colon, and its key or column=value.",
            valueName: "table:key|table:column=value"))
    var subject: String

    func validate() throws {
        _ = try SubjectReference(parsing: subject)
    }

    /// The parsed reference (``validate()`` has checked it parses).
    func reference() throws -> SubjectReference {
        try SubjectReference(parsing: subject)
    }
}
