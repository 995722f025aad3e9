import Foundation
import PackagePlugin

/// Records the git commit of the source tree in a generated `GitCommit.swift`, so that
/// `gallra version` can say what it was built from. Outside a git checkout the commit is empty.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let outputDirectory = context.pluginWorkDirectoryURL.appending(path: "generated")
        // The file is rewritten only when its content changes, so that an unchanged commit
        // does not recompile the target.
        let script = #"""
            mkdir -p "$2"
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || true)
            if [ -n "$commit" ] && [ -n "$(git -C "$1" status --porcelain --untracked-files=no 2>/dev/null | head -n 1)" ]; then
                commit="$commit-modified"
            fi
            line="let gitCommit = \"$commit\""
            [ "$(cat "$2/GitCommit.swift" 2>/dev/null)" = "$line" ] || printf '%s\n' "$line" >"$2/GitCommit.swift"
            """#
        return [
            .prebuildCommand(
                displayName: "Recording the git commit",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "sh", context.package.directoryURL.path, outputDirectory.path],
                outputFilesDirectory: outputDirectory
            )
        ]
    }
}
