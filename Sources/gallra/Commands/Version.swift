import ArgumentParser

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print gallra's version, the commit it was built from and the libpq it uses."
    )

    @Flag(help: "Print the version alone.")
    var short = false

    func run() async throws {
        if short {
            print(BuildInfo.version)
        } else {
            print(BuildInfo.report)
        }
    }
}
