/// Minimal IPv4/IPv6 header checks for packets crossing a TUN device, and the ECN
/// mark an AQM sets. None allocates.
public enum IPHeader {
    public enum Verdict: Equatable { case ok(length: Int), truncated, malformed }

    /// Check that `packet` starts with a whole IPv4 or IPv6 header and is at least as
    /// long as the header's length field says. Returns the length the header declares
    /// (link-layer padding after it may be trimmed).
    @inlinable
    public static func check(_ packet: Packet) -> Verdict {
        guard packet.length >= 1 else { return .truncated }
        let version = packet.byte(at: 0) >> 4
        switch version {
        case 4:
            guard packet.length >= 20 else { return .truncated }
            let headerLength = Int(packet.byte(at: 0) & 0x0f) * 4
            let total = Int(packet.byte(at: 2)) << 8 | Int(packet.byte(at: 3))
            guard headerLength >= 20, total >= headerLength else { return .malformed }
            guard total <= packet.length else { return .truncated }
            return .ok(length: total)
        case 6:
            guard packet.length >= 40 else { return .truncated }
            let payload = Int(packet.byte(at: 4)) << 8 | Int(packet.byte(at: 5))
            guard 40 + payload <= packet.length else { return .truncated }
            return .ok(length: 40 + payload)
        default:
            return .malformed
        }
    }

    /// The transport protocol of an IPv4 or IPv6 packet and where its header starts
    /// (IPv4 options skipped; IPv6 extension headers not followed); nil when the packet
    /// is not IP or too short for its own header.
    @inlinable
    public static func transport(_ packet: Packet) -> (proto: UInt8, offset: Int)? {
        guard packet.length >= 20 else { return nil }
        switch packet.byte(at: 0) >> 4 {
        case 4:
            let offset = Int(packet.byte(at: 0) & 0x0f) * 4
            return offset >= 20 && packet.length >= offset ? (packet.byte(at: 9), offset) : nil
        case 6:
            return packet.length >= 40 ? (packet.byte(at: 6), 40) : nil
        default:
            return nil
        }
    }

    /// True for a TCP segment with SYN set (the handshake's first two segments).
    @inlinable
    public static func isTCPSyn(_ packet: Packet) -> Bool {
        guard let (proto, offset) = transport(packet), proto == 6, packet.length >= offset + 14 else { return false }
        return packet.byte(at: offset + 13) & 0x02 != 0
    }

    /// The DSCP of an IPv4 or IPv6 packet (the caller has checked the header).
    @inlinable
    public static func dscp(_ packet: Packet) -> UInt8 {
        if packet.byte(at: 0) >> 4 == 4 {
            return packet.byte(at: 1) >> 2
        }
        // IPv6: traffic class spans the low nibble of byte 0 and the high nibble of byte 1.
        let trafficClass = (packet.byte(at: 0) & 0x0f) << 4 | packet.byte(at: 1) >> 4
        return trafficClass >> 2
    }

    /// Mark an ECN-capable IPv4 or IPv6 packet "congestion experienced" (RFC 3168), as
    /// an AQM does instead of dropping it: the sender slows down as for a loss, and
    /// nothing is retransmitted. The IPv4 header checksum is updated incrementally (RFC
    /// 1624). True when the packet carries the mark now; false for a packet that is
    /// not ECN-capable or not IP (the caller drops it as before). Called only when an
    /// AQM signals, so not inlined.
    public static func markCongestionExperienced(_ packet: Packet) -> Bool {
        guard packet.length >= 20 else { return false }
        let start = packet.base + packet.offset
        switch packet.byte(at: 0) >> 4 {
        case 4:
            let tos = packet.byte(at: 1)
            guard tos & 0x03 != 0 else { return false }
            guard tos & 0x03 != 0x03 else { return true }
            let before = UInt16(packet.byte(at: 0)) << 8 | UInt16(tos)
            let after = before | 0x0003
            start.storeBytes(of: tos | 0x03, toByteOffset: 1, as: UInt8.self)
            let checksum = UInt16(packet.byte(at: 10)) << 8 | UInt16(packet.byte(at: 11))
            // RFC 1624 eq. 3: HC' = ~(~HC + ~m + m').
            Checksum.store(Checksum.finish(UInt64(~checksum) + UInt64(~before) + UInt64(after)), at: start + 10)
            return true
        case 6:
            guard packet.length >= 40 else { return false }
            // The ECN field is the low two bits of the traffic class: bits 5-4 of byte 1.
            let second = packet.byte(at: 1)
            guard second & 0x30 != 0 else { return false }
            start.storeBytes(of: second | 0x30, toByteOffset: 1, as: UInt8.self)
            return true
        default:
            return false
        }
    }
}
