import Dispatch
import Framework
import Glibc

/// Turns a configured broker name into an address off the event loop (a DNS
/// query can take seconds); address literals resolve at once.
enum BrokerResolver {
    /// Calls `done` on the loop with the first address of `family` (or any family
    /// when nil), or nil when the name does not resolve.
    static func resolve(_ broker: BrokerAddress, family: Int32?, loop: EventLoop,
                        _ done: @escaping @Sendable (SocketAddress?) -> Void) {
        if let literal = SocketAddress.parse(broker.host.contains(":") ? "[\(broker.host)]:\(broker.port)" : "\(broker.host):\(broker.port)") {
            done(family == nil || literal.family == family ? literal : nil)
            return
        }
        let post = loop.poster
        let host = broker.host
        let port = broker.port
        DispatchQueue.global().async {
            let address = lookup(host, port: port, family: family)
            post { done(address) }
        }
    }

    private static func lookup(_ host: String, port: UInt16, family: Int32?) -> SocketAddress? {
        var hints = addrinfo()
        hints.ai_family = family ?? AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        var address = SocketAddress()
        guard let source = first.pointee.ai_addr,
              Int(first.pointee.ai_addrlen) <= MemoryLayout<sockaddr_in6>.size else { return nil }
        withUnsafeMutableBytes(of: &address.storage) { target in
            target.copyMemory(from: UnsafeRawBufferPointer(start: source, count: Int(first.pointee.ai_addrlen)))
        }
        return address
    }
}
