#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import FlyingFox
import FlyingSocks
import Logging

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

/// `GET /metrics` over HTTP/1.1 (FlyingFox: a small server on the sockets API, without SwiftNIO), serving the
/// export's registry as it stands at each request.
public struct MetricsEndpoint: Sendable {
    public let address: MetricsListenAddress
    let export: MetricsExport

    public init(address: MetricsListenAddress, export: MetricsExport) {
        self.address = address
        self.export = export
    }

    /// Listens until the task is cancelled; throws when it cannot listen (the address is taken, or the unit's
    /// `SocketBindDeny=` refuses it).
    public func run(logger: Logger) async throws {
        let server: HTTPServer
        // FlyingFox's own logger prints to stdout: its lines go to gallra's log instead.
        let log = EndpointLog(logger: logger)
        if address.isIPv6 {
            server = HTTPServer(address: try .inet6(ip6: address.host, port: address.port), logger: log)
        } else {
            server = HTTPServer(address: try .inet(ip4: address.host, port: address.port), logger: log)
        }
        let export = self.export
        await server.appendRoute("GET /metrics") { _ in
            HTTPResponse(
                statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: Data(export.exposition()))
        }
        logger.info("metrics: serving GET /metrics on \(address)", metadata: ["metrics.listen": "\(address)"])
        try await server.run()
    }
}

/// FlyingFox's log lines in gallra's log: its connections at debug level, its failures as warnings and errors.
struct EndpointLog: FlyingSocks.Logging {
    var logger: Logger

    func logDebug(_ debug: @autoclosure () -> String) { logger.debug("metrics endpoint: \(debug())") }
    func logInfo(_ info: @autoclosure () -> String) { logger.debug("metrics endpoint: \(info())") }
    func logWarning(_ warning: @autoclosure () -> String) { logger.warning("metrics endpoint: \(warning())") }
    func logError(_ error: @autoclosure () -> String) { logger.error("metrics endpoint: \(error())") }
    func logCritical(_ critical: @autoclosure () -> String) { logger.error("metrics endpoint: \(critical())") }
}
