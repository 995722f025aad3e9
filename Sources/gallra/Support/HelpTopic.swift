import ArgumentParser
import GallraPolicy

/// `gallra help COMMAND...`: the command path named, or why it names none.
///
/// swift-argument-parser's `help` stops at the first word that is not a subcommand and prints the help of the
/// commands before it, so `gallra help erse` would print gallra's own help and exit 0, as if it had answered.
enum HelpTopic {
    /// The error for `arguments` (the command line without the program name) when it is `help` followed by a word
    /// that names no subcommand; nil otherwise.
    static func unknownCommand(in arguments: [String], root: any ParsableCommand.Type) -> String? {
        guard arguments.first == "help" else { return nil }
        var children = root.configuration.subcommands
        var path = [root._commandName]
        for word in arguments.dropFirst() where !word.hasPrefix("-") {
            var names: [String] = []
            var visible: [String] = []
            var next: [any ParsableCommand.Type]?
            for child in children {
                let name = child._commandName
                let configuration = child.configuration
                names.append(name)
                names.append(contentsOf: configuration.aliases)
                if configuration.shouldDisplay { visible.append(name) }
                if next == nil, name == word || configuration.aliases.contains(word) {
                    next = configuration.subcommands
                    path.append(name)
                }
            }
            if let next {
                children = next
                continue
            }
            let parent = path.joined(separator: " ")
            if children.isEmpty {
                return "\(parent) has no subcommands; \(parent) --help shows its help"
            }
            let hint = Suggestions.didYouMean(word, among: names)
            return "\(parent) has no command \(word)\(hint.isEmpty ? "." : hint) Its commands: "
                + "\(visible.joined(separator: ", ")) (\(parent) --help)."
        }
        return nil
    }
}
