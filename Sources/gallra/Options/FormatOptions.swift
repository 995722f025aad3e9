import ArgumentParser

/// `--format`: whether a command prints its result for people or as JSON.
struct FormatOptions: ParsableArguments {
    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text
}
