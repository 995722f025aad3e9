import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Where `GET /metrics` listens (`metrics.listen`): an IPv4 address or a bracketed IPv6 address, and a port.
public struct MetricsListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var isIPv6: Bool

    /// A `metrics.listen` value that is not an address gallra can listen on.
    public struct ParseError: Error, CustomStringConvertible {
        public var text: String
        public var description: String { "\"\(text)\" is not an address to listen on: expected \(forms)" }
    }

    /// The forms an address takes, for errors.
    public static let forms =
        "IPV4:PORT or [IPV6]:PORT, such as 127.0.0.1:9187 or [::1]:9187 (localhost:PORT means 127.0.0.1)"

    /// Reads `127.0.0.1:9187`, `[::1]:9187` or `localhost:9187`.
    public init(parsing text: String) throws(ParseError) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0
        else { throw ParseError(text: text) }
        var host = String(text[..<colon])
        isIPv6 = host.hasPrefix("[") && host.hasSuffix("]")
        if isIPv6 {
            host = String(host.dropFirst().dropLast())
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw ParseError(text: text)
            }
        } else {
            if host == "localhost" { host = "127.0.0.1" }
            let parts = host.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) else { throw ParseError(text: text) }
        }
        self.host = host
        self.port = port
    }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// `GET /metrics` over HTTP/1.1 (SwiftNIO's HTTP/1 codec on one event loop thread of its own), serving the
/// export's registry as it stands at each request. Any other path answers 404, another method on `/metrics` 405.
public struct MetricsEndpoint: Sendable {
    public let address: MetricsListenAddress
    let export: MetricsExport

    /// A connection that sends nothing for this long is closed, so that idle or stalled clients cannot pile up.
    static let idleTimeout = TimeAmount.seconds(15)

    public init(address: MetricsListenAddress, export: MetricsExport) {
        self.address = address
        self.export = export
    }

    /// Listens until the task is cancelled; throws when it cannot listen (the address is taken, or the unit's
    /// `SocketBindDeny=` refuses it).
    public func run(logger: Logger) async throws {
        // One thread: a scrape every few seconds needs no more, and the thread exists only with the endpoint.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await serve(on: group, logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    private func serve(on group: MultiThreadedEventLoopGroup, logger: Logger) async throws {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: address.host, port: Int(address.port)) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(CloseIdleConnection())
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        logger.info("metrics: serving GET /metrics on \(address)", metadata: ["metrics.listen": "\(address)"])
        // Cancelling the task ends the iteration over connections, and each connection's over its requests.
        try await withThrowingDiscardingTaskGroup { connections in
            try await server.executeThenClose { inbound in
                for try await connection in inbound {
                    connections.addTask { await respond(on: connection, logger: logger) }
                }
            }
        }
    }

    /// Answers a connection's requests in order until the client closes it, asks to, or falls idle.
    private func respond(
        on connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, logger: Logger
    ) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var request: HTTPRequestHead?
                for try await part in inbound {
                    switch part {
                    case .head(let head): request = head
                    case .body: break
                    case .end:
                        guard let head = request else { continue }
                        request = nil
                        let (status, body) = answer(head)
                        var headers = HTTPHeaders()
                        headers.add(name: "Content-Length", value: String(body.readableBytes))
                        if status == .ok {
                            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
                        } else if status == .methodNotAllowed {
                            headers.add(name: "Allow", value: "GET, HEAD")
                        }
                        try await outbound.write(
                            .head(HTTPResponseHead(version: head.version, status: status, headers: headers)))
                        if head.method != .HEAD { try await outbound.write(.body(.byteBuffer(body))) }
                        try await outbound.write(.end(nil))
                        if !head.isKeepAlive { return }
                    }
                }
            }
        } catch {
            logger.debug("metrics endpoint: a connection ended: \(error)")
        }
    }

    /// The status and body for a request.
    private func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, ByteBuffer) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else { return (.notFound, ByteBuffer()) }
        guard head.method == .GET || head.method == .HEAD else { return (.methodNotAllowed, ByteBuffer()) }
        return (.ok, ByteBuffer(bytes: export.exposition()))
    }
}

/// Closes a connection when `IdleStateHandler` reports it idle.
final class CloseIdleConnection: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
