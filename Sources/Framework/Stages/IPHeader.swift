/// Minimal IPv4/IPv6 header checks for packets crossing a TUN device. They read at
/// most 6 bytes of the header and never allocate.
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
}
