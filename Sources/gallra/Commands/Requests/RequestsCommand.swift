import ArgumentParser
import GallraCore
import GallraEngine
import GallraPostgres

struct RequestsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests",
        abstract: "List, show and cancel erasure requests.",
        discussion: """
            The erasure request queue (gallra.erasure_request, docs/requests.md): requests recorded by gallra \
            erase or by the shop's call of gallra.request_erasure. A request is pending until the service (or \
            gallra erase) processes it, then done (with the run and the rows per table and action) or refused \
            (with why); it can be cancelled while pending, e.g. inside its undo window. A pending request names \
            its subject by key; a decided one only by the subject's audit digest.

            EXAMPLES:
              gallra requests list
              gallra requests list --status pending --format json
              gallra requests show 42
              gallra requests cancel 42
            """,
        subcommands: [ListRequests.self, ShowRequest.self, CancelRequest.self]
    )
}

/// A request as the commands print it in JSON.
struct RequestReport: Encodable {
    var id: Int64
    var status: String
    var subjectTable: String
    /// While pending only.
    var subjectKey: String?
    var subjectDigest: String?
    var reason: String?
    var requestedAt: String
    var requestedBy: String
    var notBefore: String
    var decidedAt: String?
    var decidedBy: String?
    var run: String?
    var counts: [ErasureOutcome.Count]?
    var refusal: String?
    var attempts: Int
    var lastAttempt: String?

    init(_ request: ErasureQueue.Request) {
        id = request.id
        status = request.status.rawValue
        subjectTable = request.subjectTable
        subjectKey = request.subjectKey
        subjectDigest = request.subjectDigest
        reason = request.reason
        requestedAt = TimeText.rfc3339(request.requestedAt)
        requestedBy = request.requestedBy
        notBefore = TimeText.rfc3339(request.notBefore)
        decidedAt = request.decidedAt.map(TimeText.rfc3339)
        decidedBy = request.decidedBy
        run = request.run
        counts = request.status == .done ? request.counts : nil
        refusal = request.refusal
        attempts = request.attempts
        lastAttempt = request.lastAttempt.map(TimeText.rfc3339)
    }

    enum CodingKeys: String, CodingKey {
        case id, status, subjectTable, subjectKey, subjectDigest, reason, requestedAt, requestedBy, notBefore
        case decidedAt, decidedBy, run, counts, refusal, attempts, lastAttempt
    }

    /// Every key is written, null when unknown: one shape whatever the status.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(status, forKey: .status)
        try container.encode(subjectTable, forKey: .subjectTable)
        try container.encode(subjectKey, forKey: .subjectKey)
        try container.encode(subjectDigest, forKey: .subjectDigest)
        try container.encode(reason, forKey: .reason)
        try container.encode(requestedAt, forKey: .requestedAt)
        try container.encode(requestedBy, forKey: .requestedBy)
        try container.encode(notBefore, forKey: .notBefore)
        try container.encode(decidedAt, forKey: .decidedAt)
        try container.encode(decidedBy, forKey: .decidedBy)
        try container.encode(run, forKey: .run)
        try container.encode(counts, forKey: .counts)
        try container.encode(refusal, forKey: .refusal)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(lastAttempt, forKey: .lastAttempt)
    }
}

/// `requests list --status`.
enum RequestStatusFilter: String, ExpressibleByArgument, CaseIterable {
    case pending, done, refused, cancelled, all

    var status: ErasureOutcome.Status? { ErasureOutcome.Status(rawValue: rawValue) }
}

struct ListRequests: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List erasure requests, newest first.",
        discussion: """
            EXAMPLES:
              gallra requests list
              gallra requests list --status refused
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Only requests in this status: pending, done, refused, cancelled or all.")
    var status: RequestStatusFilter = .all

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let requests: [ErasureQueue.Request] = try await context.withCurrentSchema { connection in
                try await ErasureQueue.list(status: status.status, on: connection)
            }
            switch output.format {
            case .json: try JSONOutput.print(requests.map(RequestReport.init))
            case .text:
                guard !requests.isEmpty else {
                    Swift.print(status == .all ? "no erasure requests" : "no \(status.rawValue) erasure requests")
                    return
                }
                let table = TextTable(header: ["ID", "STATUS", "TABLE", "REQUESTED", "DUE", "DECIDED", "ATTEMPTS"])
                for request in requests {
                    table.add([
                        "\(request.id)", request.status.rawValue, request.subjectTable,
                        ErasureText.time(request.requestedAt), ErasureText.time(request.notBefore),
                        request.decidedAt.map(ErasureText.time) ?? "-", "\(request.attempts)",
                    ])
                }
                Swift.print(table.render())
            }
        }
    }
}

struct ShowRequest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one erasure request: its status, the run and the rows, or why it was refused.",
        discussion: """
            An unknown id exits 66.

            EXAMPLES:
              gallra requests show 42
              gallra requests show 42 --format json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(
        help: ArgumentHelp("The request's id (gallra erase and gallra.request_erasure print it).", valueName: "id"))
    var id: Int64

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let request: ErasureQueue.Request? = try await context.withCurrentSchema { connection in
                try await ErasureQueue.read(id, on: connection)
            }
            guard let request else {
                throw CommandFailure(.noInput, "no erasure request has id \(id); gallra requests list shows them")
            }
            switch output.format {
            case .json: try JSONOutput.print(RequestReport(request))
            case .text: Swift.print(Self.text(request))
            }
        }
    }

    static func text(_ request: ErasureQueue.Request) -> String {
        var lines = [
            "erasure request \(request.id): \(request.status.rawValue)",
            "subject: \(request.subjectTable):\(request.subjectKey ?? "(erased key) digest \(request.subjectDigest ?? "unknown")")",
            "requested: \(ErasureText.time(request.requestedAt)) by \(request.requestedBy)",
            "due: \(ErasureText.time(request.notBefore))",
        ]
        if let reason = request.reason { lines.append("reason: \(reason)") }
        if let decided = request.decidedAt {
            lines.append("decided: \(ErasureText.time(decided)) by \(request.decidedBy ?? "unknown")")
        }
        lines.append("attempts: \(request.attempts)")
        if let refusal = request.refusal { lines.append("refused: \(refusal)") }
        if let run = request.run { lines.append("run: \(run)") }
        if request.status == .done {
            lines.append(request.counts.isEmpty ? "no rows changed" : ErasureText.countsTable(request.counts))
        }
        return lines.joined(separator: "\n")
    }
}

struct CancelRequest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a pending erasure request (inside its undo window, or while it waits).",
        discussion: """
            Waits for a batch erasing the subject under the request, then cancels it if it is still pending. \
            An unknown id exits 66; a request already done or refused cannot be cancelled and exits 65. \
            Cancelling a cancelled request again changes nothing.

            EXAMPLE:
              gallra requests cancel 42
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The request's id.", valueName: "id"))
    var id: Int64

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            try await context.withCurrentSchema { connection in
                try await ErasureQueue.cancel(id, on: connection)
            }
            Swift.print("erasure request \(id) cancelled")
        }
    }
}
