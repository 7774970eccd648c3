/// The Internet checksum (RFC 1071), summed 8 bytes at a time.
///
/// Sums are kept unfolded in a UInt64 with end-around carry; every 16-bit lane counts
/// the same after folding, so words may be added at any lane as long as each byte
/// keeps its place within its 16-bit word.
enum Checksum {
    /// Add `count` bytes at `bytes` to `sum` (the bytes start at an even offset of the
    /// checksummed data).
    @inlinable
    static func add(_ bytes: UnsafeRawPointer, _ count: Int, to sum: UInt64) -> UInt64 {
        var acc = sum
        var i = 0
        while i + 8 <= count {
            let word = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let (s, carry) = acc.addingReportingOverflow(word)
            acc = s &+ (carry ? 1 : 0)
            i += 8
        }
        var tail: UInt64 = 0
        if i + 4 <= count {
            tail += UInt64(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
            i += 4
        }
        if i + 2 <= count {
            tail += UInt64(UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt16.self)))
            i += 2
        }
        if i < count {
            tail += UInt64(bytes.load(fromByteOffset: i, as: UInt8.self)) << 8
        }
        let (s, carry) = acc.addingReportingOverflow(tail)
        return s &+ (carry ? 1 : 0)
    }

    /// Fold an unfolded sum to 16 bits (not complemented).
    @inlinable
    static func fold(_ sum: UInt64) -> UInt16 {
        var s = (sum >> 32) + (sum & 0xffff_ffff)
        s = (s >> 32) + (s & 0xffff_ffff)
        s = (s >> 16) + (s & 0xffff)
        s = (s >> 16) + (s & 0xffff)
        s = (s >> 16) + (s & 0xffff)
        return UInt16(s)
    }

    /// The checksum to store: the complement of the folded sum.
    @inlinable
    static func finish(_ sum: UInt64) -> UInt16 { ~fold(sum) }

    /// The pseudo-header sum for TCP/UDP over IPv4 or IPv6. `ip` points at the IP header.
    @inlinable
    static func pseudoHeader(ip: UnsafeRawPointer, isIPv6: Bool, protocol proto: UInt8, length: Int) -> UInt64 {
        var sum: UInt64
        if isIPv6 {
            sum = add(ip + 8, 32, to: 0)  // source and destination
        } else {
            sum = add(ip + 12, 8, to: 0)
        }
        // End-around carry, as in `add`: the address words alone can sum to near 2^64
        // (255.255.255.255 to 255.255.255.255), and a plain + would trap on them.
        let (total, carry) = sum.addingReportingOverflow(UInt64(proto) + UInt64(length))
        return total &+ (carry ? 1 : 0)
    }

    @inlinable
    static func store(_ value: UInt16, at pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: value.bigEndian, as: UInt16.self)
    }
}
