import Glibc

/// An IPv4 or IPv6 UDP endpoint stored inline (no allocation), laid out as the
/// `sockaddr_in6` the kernel reads and writes, so `recvmmsg`/`sendmmsg` can use
/// it directly as `msg_name`.
public struct SocketAddress: Equatable, Hashable, CustomStringConvertible, Sendable {
    public var storage: sockaddr_in6

    public init() {
        storage = sockaddr_in6()
    }

    public init(ipv4 address: in_addr, port: UInt16) {
        self.init()
        withUnsafeMutableBytes(of: &storage) { raw in
            let sin = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            sin.pointee.sin_family = sa_family_t(AF_INET)
            sin.pointee.sin_port = port.bigEndian
            sin.pointee.sin_addr = address
        }
    }

    public init(ipv6 address: in6_addr, port: UInt16, scope: UInt32 = 0) {
        self.init()
        storage.sin6_family = sa_family_t(AF_INET6)
        storage.sin6_port = port.bigEndian
        storage.sin6_addr = address
        storage.sin6_scope_id = scope
    }

    public var family: Int32 { Int32(storage.sin6_family) }
    public var isSet: Bool { family == AF_INET || family == AF_INET6 }
    public var familyName: String { family == AF_INET ? "IPv4" : "IPv6" }

    /// The length the kernel expects for this family.
    public var length: socklen_t {
        family == AF_INET ? socklen_t(MemoryLayout<sockaddr_in>.size) : socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    public var port: UInt16 {
        UInt16(bigEndian: storage.sin6_port)  // same offset in sockaddr_in and sockaddr_in6
    }

    public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
        guard lhs.family == rhs.family, lhs.port == rhs.port else { return false }
        if lhs.family == AF_INET { return lhs.ipv4Bits == rhs.ipv4Bits }
        if lhs.family == AF_INET6 {
            return withUnsafeBytes(of: lhs.storage.sin6_addr) { a in
                withUnsafeBytes(of: rhs.storage.sin6_addr) { b in memcmp(a.baseAddress!, b.baseAddress!, 16) == 0 }
            }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(family)
        hasher.combine(port)
        if family == AF_INET { hasher.combine(ipv4Bits) }
        if family == AF_INET6 { withUnsafeBytes(of: storage.sin6_addr) { hasher.combine(bytes: $0) } }
    }

    /// The IPv4 address in network byte order (only meaningful for AF_INET).
    var ipv4Bits: UInt32 {
        withUnsafeBytes(of: storage) { $0.load(fromByteOffset: 4, as: UInt32.self) }
    }

    /// The address without the port: 4 bytes for IPv4, 16 for IPv6 (control plane:
    /// rate limits and cookies key on it).
    public var addressBytes: [UInt8] {
        if family == AF_INET { return withUnsafeBytes(of: ipv4Bits) { Array($0) } }
        return withUnsafeBytes(of: storage.sin6_addr) { Array($0) }
    }

    /// The address without the port, as text.
    public var host: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var copy = storage
        return withUnsafeBytes(of: &copy) { raw -> String in
            if family == AF_INET {
                var a = raw.load(fromByteOffset: 4, as: in_addr.self)
                inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count))
            } else if family == AF_INET6 {
                var a = storage.sin6_addr
                inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count))
            } else {
                return "-"
            }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    public var description: String {
        guard isSet else { return "-" }
        return family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Parse `1.2.3.4:5080`, `[2001:db8::1]:5080`, or a bare address when
    /// `defaultPort` is given. Returns nil on anything else (no DNS lookups:
    /// profiles name addresses, so start-up never waits on a resolver).
    public static func parse(_ text: String, defaultPort: UInt16? = nil) -> SocketAddress? {
        var hostPart = Substring(text)
        var port = defaultPort
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let p = parsePort(rest.dropFirst()) else { return nil }
                port = p
            } else if !rest.isEmpty {
                return nil
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            hostPart = text[..<colon]
            guard let p = parsePort(text[text.index(after: colon)...]) else { return nil }
            port = p
        }
        guard let port else { return nil }
        var v4 = in_addr()
        // Brackets are for IPv6 only: "[192.0.2.1]:80" is refused.
        if !text.hasPrefix("["), inet_pton(AF_INET, String(hostPart), &v4) == 1 { return SocketAddress(ipv4: v4, port: port) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(hostPart), &v6) == 1 { return SocketAddress(ipv6: v6, port: port) }
        return nil
    }

    /// Digits only (no sign, no spaces), 0–65535.
    static func parsePort(_ text: Substring) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt16(text)
    }
}
