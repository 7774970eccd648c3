/// The L2TPv3-over-UDP data header a Linux tunneldigger session sends and expects
/// (protocol reference §4.1), the first 12 bytes of every data datagram:
///
///     00 03 00 00 | session id (BE) | 00 00 00 00 | Ethernet frame
///
/// flags/version (T = 0: data; version 3), reserved, the *receiver's* session id,
/// and the default L2-specific sublayer. The sublayer is present because the kernel
/// defaults to it when no L2SPEC type is configured, and tunneldigger configures
/// none; no cookie. We keep its S bit clear: a Linux session seeing S set would
/// switch its own transmit side to sequence numbers.
enum PseudowireHeader {
    static let size = 12
    /// Outer IPv4 20 + UDP 8 + this header 12 + inner Ethernet 14 (§4.3):
    /// tunnel MTU = path MTU − 54.
    static let overhead = 54
    static let ethernetHeaderSize = 14
    /// The shortest datagram that can carry an Ethernet frame.
    static let minimumDatagram = size + ethernetHeaderSize
    static let version: UInt8 = 3

    /// Write the 12-byte header at `pointer` (no alignment needed).
    static func write(sessionID: UInt32, to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: UInt32(0x0003_0000).bigEndian, toByteOffset: 0, as: UInt32.self)
        pointer.storeBytes(of: sessionID.bigEndian, toByteOffset: 4, as: UInt32.self)
        pointer.storeBytes(of: UInt32(0).bigEndian, toByteOffset: 8, as: UInt32.self)
    }

    /// The session id of a data datagram, or nil if it is not one: the T bit (byte 0,
    /// bit 7) is set (control), the version nibble (low 4 bits of byte 1) is not 3,
    /// or it is shorter than the header plus an Ethernet header. The reserved bits
    /// are ignored as RFC 3931 says, and the sublayer is skipped whatever it holds
    /// (§4.1), which is what the kernel does. Whether the id is a known session is
    /// the caller's question.
    static func sessionID(of datagram: UnsafeRawBufferPointer) -> UInt32? {
        guard datagram.count >= minimumDatagram else { return nil }
        guard datagram[0] & 0x80 == 0, datagram[1] & 0x0F == version else { return nil }
        return UInt32(bigEndian: datagram.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
    }

    /// Whether a datagram from a session's own address goes to that session: a data
    /// packet with its id, or data too short to carry an id and a frame, which the
    /// session counts `truncated` (its pseudowire stage drops it) — that says more than a
    /// stranger's `unknown_peer` would. The broker and the client dispatch by this.
    static func belongs(_ datagram: UnsafeRawBufferPointer, toSession id: UInt32) -> Bool {
        sessionID(of: datagram) == id || isShortData(datagram)
    }

    /// Data (T bit clear) shorter than the header and an Ethernet header.
    static func isShortData(_ datagram: UnsafeRawBufferPointer) -> Bool {
        datagram.count < minimumDatagram && (datagram.first.map { $0 & 0x80 == 0 } ?? false)
    }
}
