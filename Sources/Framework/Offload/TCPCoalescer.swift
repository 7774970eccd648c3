import Glibc

/// Receive-side coalescing (GRO in userspace): segments of one TCP flow in a batch
/// (grouped by `TCPFlowTable`, also when flows interleave) are joined into one
/// super-packet and written to the TUN in a single call, with a virtio header that tells the kernel it is a GSO packet. The kernel's TCP
/// then processes one large segment instead of dozens, which is most of the cost of
/// delivering packets into a TUN.
///
/// Segments are joined only when Linux GRO would join them: same addresses, ports,
/// TOS/TTL, ACK number, window, flags (ACK, PSH on the last only) and TCP options;
/// contiguous sequence numbers; equal sizes (the last may be shorter); no IPv4
/// options or fragments; no IPv6 extension headers.
public struct TCPCoalescer {
    /// Largest super-packet: the IPv4 total-length limit.
    static let maxLength = 65535
    /// Most segments in one super-packet: it goes out as one `writev` of its headers and
    /// one vector per segment, and the kernel takes at most 1024 vectors (UIO_MAXIOV). Only
    /// a batch of 1024 tiny segments of one flow reaches it (a profile's `batch` is at most 1024).
    static let maxSegments = 1023

    public struct Segment {
        var isIPv6: Bool
        var ipLength: Int
        var headerLength: Int
        var payloadLength: Int
        var sequence: UInt32
        var flags: UInt8

        /// A candidate always has readable ports, right after the fixed IP header.
        var connection: Connection { Connection(isIPv6: isIPv6, portsOffset: ipLength) }
    }

    /// The TCP segment in `packet` if it is a candidate for coalescing.
    @inline(__always)
    static func parse(_ p: UnsafeRawPointer, length: Int) -> Segment? {
        guard length >= 40 else { return nil }
        let version = p.load(as: UInt8.self) >> 4
        let ipLength: Int
        let isIPv6: Bool
        if version == 4 {
            guard p.load(as: UInt8.self) & 0x0f == 5, p.load(fromByteOffset: 9, as: UInt8.self) == 6 else { return nil }
            // No fragments: MF clear and offset zero (DF may be set).
            guard UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0x3fff == 0 else { return nil }
            ipLength = 20
            isIPv6 = false
        } else if version == 6 {
            guard length >= 60, p.load(fromByteOffset: 6, as: UInt8.self) == 6 else { return nil }
            ipLength = 40
            isIPv6 = true
        } else {
            return nil
        }
        let tcpLength = Int(p.load(fromByteOffset: ipLength + 12, as: UInt8.self) >> 4) * 4
        let headerLength = ipLength + tcpLength
        guard tcpLength >= 20, headerLength < length else { return nil }
        let flags = p.load(fromByteOffset: ipLength + 13, as: UInt8.self)
        // ACK required; PSH allowed; nothing else (no SYN/FIN/RST/URG/ECE/CWR).
        guard flags & ~UInt8(0x08) == 0x10 else { return nil }
        let sequence = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: ipLength + 4, as: UInt32.self))
        return Segment(isIPv6: isIPv6, ipLength: ipLength, headerLength: headerLength,
                       payloadLength: length - headerLength, sequence: sequence, flags: flags)
    }

    /// Whether the segment's TCP checksum is right. Linux GRO checks it before joining,
    /// and a joined packet goes to the kernel marked "checksum to be completed", so a
    /// corrupt segment must stay out of it (written alone, the kernel checks and drops it).
    @inline(__always)
    static func checksumValid(_ p: UnsafeRawPointer, _ s: Segment) -> Bool {
        let tcpLength = s.headerLength - s.ipLength + s.payloadLength
        let sum = Checksum.add(p + s.ipLength, tcpLength,
                               to: Checksum.pseudoHeader(ip: p, isIPv6: s.isIPv6, protocol: 6, length: tcpLength))
        return Checksum.fold(sum) == 0xffff
    }

    /// Whether `b` carries the same flow and header fields as `a` (sequence aside).
    @inline(__always)
    static func sameFlow(_ a: UnsafeRawPointer, _ sa: Segment, _ b: UnsafeRawPointer, _ sb: Segment) -> Bool {
        guard sa.isIPv6 == sb.isIPv6, sa.headerLength == sb.headerLength else { return false }
        if sa.isIPv6 {
            // Version, traffic class, flow label; hop limit; addresses.
            guard memcmp(a, b, 4) == 0, a.load(fromByteOffset: 7, as: UInt8.self) == b.load(fromByteOffset: 7, as: UInt8.self),
                  memcmp(a + 8, b + 8, 32) == 0 else { return false }
        } else {
            // TOS; TTL and protocol; addresses.
            guard a.load(fromByteOffset: 1, as: UInt8.self) == b.load(fromByteOffset: 1, as: UInt8.self),
                  a.load(fromByteOffset: 8, as: UInt8.self) == b.load(fromByteOffset: 8, as: UInt8.self),
                  memcmp(a + 12, b + 12, 8) == 0 else { return false }
        }
        let ta = a + sa.ipLength, tb = b + sb.ipLength
        // Ports; ACK number; data offset and window (flags were checked by `parse`); options.
        return memcmp(ta, tb, 4) == 0 && memcmp(ta + 8, tb + 8, 5) == 0 && memcmp(ta + 14, tb + 14, 2) == 0
            && memcmp(ta + 20, tb + 20, sa.headerLength - sa.ipLength - 20) == 0
    }

    /// A packet's TCP connection, enough to tell whether it belongs to an open group:
    /// nil when it is not TCP; `portsOffset` 0 when the ports cannot be read (a
    /// fragment, IPv6 extension headers), so only the addresses can be compared.
    struct Connection {
        var isIPv6: Bool
        var portsOffset: Int
    }

    static func connection(_ p: UnsafeRawPointer, length: Int) -> Connection? {
        guard length >= 20 else { return nil }
        switch p.load(as: UInt8.self) >> 4 {
        case 4:
            guard p.load(fromByteOffset: 9, as: UInt8.self) == 6 else { return nil }
            let ipLength = Int(p.load(as: UInt8.self) & 0x0f) * 4
            let fragment = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0x3fff != 0
            return Connection(isIPv6: false, portsOffset: fragment || ipLength < 20 || length < ipLength + 4 ? 0 : ipLength)
        case 6:
            guard length >= 40 else { return nil }
            switch p.load(fromByteOffset: 6, as: UInt8.self) {
            case 6: return Connection(isIPv6: true, portsOffset: length >= 44 ? 40 : 0)
            case 17, 58, 59: return nil  // UDP, ICMPv6, no next header
            default: return Connection(isIPv6: true, portsOffset: 0)
            }
        default:
            return nil
        }
    }

    /// Same addresses and, where both are known, same ports.
    static func sameConnection(_ ca: Connection, _ a: UnsafeRawPointer, _ cb: Connection, _ b: UnsafeRawPointer) -> Bool {
        guard ca.isIPv6 == cb.isIPv6 else { return false }
        let sameAddresses = ca.isIPv6 ? memcmp(a + 8, b + 8, 32) == 0 : memcmp(a + 12, b + 12, 8) == 0
        guard sameAddresses else { return false }
        if ca.portsOffset == 0 || cb.portsOffset == 0 { return true }
        return memcmp(a + ca.portsOffset, b + cb.portsOffset, 4) == 0
    }

    /// Room `gather` needs for the virtio header and the longest IP and TCP headers.
    public static let headRoom = VirtioNetHeader.size + 40 + 60

    /// The super-packet of the group `table` planned at `start`, for one `writev`, without
    /// copying a payload: the virtio header and the first segment's headers, edited for
    /// the whole, are written to `out` (`headRoom` bytes), and `vectors` (room for the
    /// group's size + 1) gets them and then each member's payload where it lies in the
    /// batch. Before, every payload was copied into one buffer first: 2 % of a hub's
    /// CPU at 4 Gbit/s and 4–5 % of an unencrypted one's, for bytes the kernel copies anyway.
    /// Returns the vectors used and the bytes they hold.
    public static func gather(_ batch: PacketBatch, group start: Int, of table: TCPFlowTable,
                              head out: UnsafeMutableRawPointer, vectors: UnsafeMutablePointer<iovec>) -> (count: Int, bytes: Int) {
        let head = table.headSegment(at: start)
        let ip = out + VirtioNetHeader.size
        let firstPacket = batch[start]
        memcpy(ip, firstPacket.base + firstPacket.offset, head.headerLength)
        vectors[0] = iovec(iov_base: out, iov_len: VirtioNetHeader.size + head.headerLength)
        var count = 1
        var length = head.headerLength
        var lastFlags = head.flags
        table.forEachMember(of: start) { index in
            let packet = batch[index]
            let payload = packet.length - head.headerLength
            vectors[count] = iovec(iov_base: packet.base + packet.offset + head.headerLength, iov_len: payload)
            count += 1
            length += payload
            lastFlags = packet.base.load(fromByteOffset: packet.offset + head.ipLength + 13, as: UInt8.self)
        }
        // Carry PSH from the last segment.
        ip.storeBytes(of: head.flags | (lastFlags & 0x08), toByteOffset: head.ipLength + 13, as: UInt8.self)
        if head.isIPv6 {
            ip.storeBytes(of: UInt16(length - 40).bigEndian, toByteOffset: 4, as: UInt16.self)
        } else {
            ip.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
            TCPSegmenter.recomputeIPv4Checksum(ip, ipLength: 20)
        }
        // A GSO packet carries the pseudo-header sum (uncomplemented) in the checksum
        // field, as a TSO sender would; the kernel completes it if it ever segments.
        let tcpLength = length - head.ipLength
        let pseudo = Checksum.fold(Checksum.pseudoHeader(ip: ip, isIPv6: head.isIPv6, protocol: 6, length: tcpLength))
        Checksum.store(pseudo, at: ip + head.ipLength + 16)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum,
                                     gsoType: head.isIPv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
                                     headerLength: UInt16(head.headerLength), gsoSize: UInt16(head.payloadLength),
                                     checksumStart: UInt16(head.ipLength), checksumOffset: 16)
        header.write(to: out)
        return (count, VirtioNetHeader.size + length)
    }
}
