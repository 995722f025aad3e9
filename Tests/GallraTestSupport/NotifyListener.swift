import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A stand-in for the service manager's notification socket: a unix datagram socket with
/// `SO_PASSCRED` that hands back each datagram with the sender's pid.
public final class NotifyListener: @unchecked Sendable {
    public struct Datagram: Sendable {
        public var text: String
        public var senderPID: pid_t?

        /// The datagram's `NAME=value` assignments, in order.
        public var assignments: [String] { text.split(separator: "\n").map(String.init) }
    }

    /// The value for `NOTIFY_SOCKET`: a path, or `@name` for the abstract namespace.
    public let address: String
    private let fd: Int32

    /// Binds a listener to a fresh path in the temporary directory, or to a fresh abstract name. A receive
    /// waits at most `receiveTimeout` (never hang a test run on a datagram that does not come).
    public init(abstract: Bool, receiveTimeout: Duration = .seconds(2)) throws {
        let name = "gallra-notify-\(UUID().uuidString.prefix(8))"
        address = abstract ? "@\(name)" : "\(NSTemporaryDirectory())\(name).sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }

        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, socklen_t(MemoryLayout<Int32>.size))
        let (seconds, attoseconds) = receiveTimeout.components
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        // The abstract namespace is a leading NUL byte instead of the `@`.
        let pathBytes = abstract ? [0] + Array(name.utf8) : Array(address.utf8)
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { buffer in
            for (index, byte) in pathBytes.enumerated() { buffer[index] = byte }
        }
        let length = MemoryLayout<sa_family_t>.size + pathBytes.count + (abstract ? 0 : 1)
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(.init(rawValue: code) ?? .EIO)
        }
    }

    deinit {
        close(fd)
        if !address.hasPrefix("@") { unlink(address) }
    }

    /// The next datagram; file descriptors passed with it are closed.
    public func receive() throws -> Datagram {
        var data = [UInt8](repeating: 0, count: 4096)
        var control = [UInt8](repeating: 0, count: 512)
        let received = data.withUnsafeMutableBytes { dataBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: dataBytes.baseAddress, iov_len: dataBytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    header.msg_control = controlBytes.baseAddress
                    header.msg_controllen = controlBytes.count
                    let count = recvmsg(fd, &header, Int32(MSG_CMSG_CLOEXEC))
                    return (count, header.msg_controllen)
                }
            }
        }
        guard received.0 >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        let pid = Self.parseControl(control, length: received.1)
        return Datagram(text: String(decoding: data[..<received.0], as: UTF8.self), senderPID: pid)
    }

    /// Walks the control messages by hand (the CMSG_* macros do not import): closes passed
    /// descriptors, returns the sender's pid from the credentials.
    /// `SCM_CREDENTIALS` from <sys/socket.h>; Glibc exports it only with `_GNU_SOURCE`.
    private static let scmCredentials: Int32 = 2

    private static func parseControl(_ control: [UInt8], length: Int) -> pid_t? {
        let headerSize = MemoryLayout<cmsghdr>.size
        let align = MemoryLayout<Int>.size
        var offset = 0
        var pid: pid_t?
        control.withUnsafeBytes { bytes in
            while offset + headerSize <= length {
                let header = bytes.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self)
                let dataOffset = offset + (headerSize + align - 1) / align * align
                let dataLength = Int(header.cmsg_len) - (dataOffset - offset)
                guard header.cmsg_len >= headerSize, dataOffset + dataLength <= length else { break }
                if header.cmsg_level == SOL_SOCKET && header.cmsg_type == SCM_RIGHTS {
                    for index in 0..<dataLength / 4 {
                        close(bytes.loadUnaligned(fromByteOffset: dataOffset + index * 4, as: Int32.self))
                    }
                } else if header.cmsg_level == SOL_SOCKET && header.cmsg_type == scmCredentials {
                    // struct ucred starts with the pid.
                    pid = bytes.loadUnaligned(fromByteOffset: dataOffset, as: pid_t.self)
                }
                offset += (Int(header.cmsg_len) + align - 1) / align * align
            }
        }
        return pid
    }
}
