import Framework
import Glibc

/// A non-blocking UDP socket a test owns on 127.0.0.1 (a kernel-chosen port): the far
/// end of a tunnel's link, to relay, tamper with, or inject datagrams.
public final class LoopbackUDPSocket {
    public let fd: Int32
    public let address: SocketAddress

    public init() {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        self.fd = fd
        var local = SocketAddress.parse("127.0.0.1:0")!
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &local.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(fd, $0, length)
                _ = getsockname(fd, $0, &length)
            }
        }
        address = local
    }

    deinit { close(fd) }

    public func send(_ bytes: [UInt8], to destination: SocketAddress) {
        var storage = destination.storage
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, destination.length) }
        }
    }

    /// One waiting datagram and its source, if any.
    public func receive() -> ([UInt8], SocketAddress)? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var source = SocketAddress()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let n = withUnsafeMutablePointer(to: &source.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &length) }
        }
        guard n >= 0 else { return nil }
        return (Array(buffer[0..<n]), source)
    }
}
