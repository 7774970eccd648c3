/// One attribute of a netlink request, in the kernel's terms: a type number and a
/// value of the width the kernel's policy for that type expects.
public struct NetlinkAttribute: Sendable, Equatable {
    enum Value: Sendable, Equatable {
        case u8(UInt8)
        case u16(UInt16)
        case u32(UInt32)
        /// Sent with its terminating NUL, as NLA_NUL_STRING and NLA_STRING policies take it.
        case string(String)
    }

    let type: UInt16
    let value: Value

    init(_ type: UInt16, _ value: Value) {
        self.type = type
        self.value = value
    }

    public static func u8(_ type: UInt16, _ value: UInt8) -> NetlinkAttribute { .init(type, .u8(value)) }
    public static func u16(_ type: UInt16, _ value: UInt16) -> NetlinkAttribute { .init(type, .u16(value)) }
    public static func u32(_ type: UInt16, _ value: UInt32) -> NetlinkAttribute { .init(type, .u32(value)) }
    public static func string(_ type: UInt16, _ value: String) -> NetlinkAttribute { .init(type, .string(value)) }

    /// The value's bytes in host order (netlink's order), strings NUL-terminated.
    var payload: [UInt8] {
        switch value {
        case .u8(let v): return [v]
        case .u16(let v): return withUnsafeBytes(of: v) { Array($0) }
        case .u32(let v): return withUnsafeBytes(of: v) { Array($0) }
        case .string(let s): return Array(s.utf8) + [0]
        }
    }

    /// `attributes` as they follow a message's fixed header: each an `nlattr` (length
    /// = 4 + payload, type) and its payload, zero-padded to 4 bytes.
    static func encode(_ attributes: [NetlinkAttribute]) -> [UInt8] {
        var bytes: [UInt8] = []
        for attribute in attributes {
            let payload = attribute.payload
            appendHost(&bytes, UInt16(4 + payload.count))
            appendHost(&bytes, attribute.type)
            bytes += payload
            bytes += [UInt8](repeating: 0, count: netlinkAlign(payload.count) - payload.count)
        }
        return bytes
    }
}

/// Netlink aligns headers and attributes to 4 bytes (NLMSG_ALIGN, NLA_ALIGN).
func netlinkAlign(_ length: Int) -> Int { (length + 3) & ~3 }

/// Append `value` in host byte order, the order of every netlink header field.
func appendHost<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
    withUnsafeBytes(of: value) { bytes += $0 }
}
