/// The attributes of a message the kernel sent, parsed with every length checked
/// against the bytes present. Typed getters return nil unless the payload has exactly
/// the width asked for, so a misread attribute is a missing one, never a wrong value.
public struct NetlinkAttributes: Sendable, Equatable {
    /// Payloads by type, the nested and byte-order flag bits masked off. A repeated
    /// type keeps its last payload (the kernel's nla_parse does the same).
    private var payloads: [UInt16: [UInt8]] = [:]

    /// Parse a stream of attributes; nil if any length runs past the end or is
    /// shorter than an attribute header, or bytes are left over after the last one.
    init?<Bytes: Collection>(parsing bytes: Bytes) where Bytes.Element == UInt8 {
        let bytes = Array(bytes)
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else { return nil }
            let (length, type) = bytes.withUnsafeBytes {
                (Int($0.loadUnaligned(fromByteOffset: offset, as: UInt16.self)),
                 $0.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self))
            }
            guard length >= 4, length <= bytes.count - offset else { return nil }
            payloads[type & UInt16(0x3fff)] = Array(bytes[(offset + 4)..<(offset + length)])
            // The last attribute's padding may be cut off by the message's end.
            offset = min(offset + netlinkAlign(length), bytes.count)
        }
    }

    /// The types present, in ascending order.
    var types: [UInt16] { payloads.keys.sorted() }

    func u8(_ type: UInt16) -> UInt8? { integer(type) }
    func u16(_ type: UInt16) -> UInt16? { integer(type) }
    public func u32(_ type: UInt16) -> UInt32? { integer(type) }

    /// A string attribute up to its NUL (or its end, for the kernel's unterminated
    /// NLA_STRING); nil unless it is UTF-8.
    func string(_ type: UInt16) -> String? {
        guard let payload = payloads[type] else { return nil }
        return String(validating: payload.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// A nested attribute's own attributes.
    func nested(_ type: UInt16) -> NetlinkAttributes? {
        payloads[type].flatMap { NetlinkAttributes(parsing: $0) }
    }

    private func integer<T: FixedWidthInteger>(_ type: UInt16) -> T? {
        guard let payload = payloads[type], payload.count == MemoryLayout<T>.size else { return nil }
        return payload.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }
}
