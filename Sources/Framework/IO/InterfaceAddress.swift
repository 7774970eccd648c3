import Glibc

/// An address with prefix length for a local device, e.g. `10.99.0.1/30` or `fd00::1/64`.
public struct InterfaceAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Family: Sendable, Equatable { case ipv4(UInt32), ipv6([UInt8]) }
    public let family: Family
    public let prefix: Int
    let text: String

    public static func parse(_ text: String) -> InterfaceAddress? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(parts[0]), &v4) == 1, (0...32).contains(prefix) {
            return InterfaceAddress(family: .ipv4(v4.s_addr), prefix: prefix, text: text)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(parts[0]), &v6) == 1, (0...128).contains(prefix) {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            return InterfaceAddress(family: .ipv6(bytes), prefix: prefix, text: text)
        }
        return nil
    }

    var isIPv4: Bool {
        if case .ipv4 = family { return true }
        return false
    }

    public var description: String { text }
}
