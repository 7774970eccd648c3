import Framework

/// The bonding header, the first bytes of every packet inside the tunnel (so it is
/// encrypted and authenticated with the payload when a crypto stage runs below).
///
///     data   [0x00][sequence: 24 bits, big-endian]                         4 bytes, then the IP packet
///     bulk   [0x03][sequence: 24 bits, big-endian]                         the same, delivered aligned
///     probe  [0x01][flags][name length][0][probe id: u32][sent at: u64 µs][next sequence: u32][path name]
///            flags: 0x01 fallback-only, 0x02 degraded (lossy or slow to the sender)
///     echo   [0x02][next sequence: 24 bits][probe id: u32][sent at: u64 µs][received bytes: u64][echoed at: u64 µs]
///
/// Data carries only a tunnel-wide sequence (for the reorder buffer): four bytes, so
/// a 1500-byte IPv4 uplink still carries a 1444-byte inner packet with AEAD and UDP.
/// `bulk` data is sent by capacity over every link, and the receiver holds what came
/// by a shorter link until the longest could have brought it (see `ReorderBuffer`).
/// Probes go on one path each and are echoed at once on the same path; the echo
/// returns the probe's timestamp (round-trip time on the sender's clock) and how many
/// bytes the receiver has taken from that path and when (delivery rate, on the
/// receiver's clock, so neither needs synchronised clocks). Both carry the sequence
/// their sender will give its next data packet: a path is first in, first out, so
/// when that mark arrives every earlier packet sent on the path has arrived or is
/// lost, and a gap every live path has passed is known lost.
enum BondingWire {
    static let data: UInt8 = 0
    static let probe: UInt8 = 1
    static let echo: UInt8 = 2
    static let bulk: UInt8 = 3

    static let dataHeader = 4
    static let probeHeader = 20
    static let echoBytes = 32
    static let maxNameBytes = 32
    /// Probe flag: the sender uses this path only when nothing else is usable.
    static let fallbackFlag: UInt8 = 0x01
    /// Probe flag: the sender finds the path lossy or slow and sends no bulk on it
    /// while a better one is up, so the receiver should not wait for it.
    static let degradedFlag: UInt8 = 0x02

    /// 24-bit sequence arithmetic (RFC 1982 style): how far `a` is ahead of `b`,
    /// negative when it is behind.
    @inline(__always)
    static func distance(_ a: UInt32, from b: UInt32) -> Int32 {
        Int32(bitPattern: (a &- b) << 8) >> 8
    }

    @inline(__always)
    static func next(_ sequence: UInt32) -> UInt32 { (sequence &+ 1) & 0xFF_FFFF }

    /// Prepend a data header (`bulk` type when `bulk`). False when there is no headroom.
    @inline(__always)
    static func writeData(_ packet: inout Packet, sequence: UInt32, bulk: Bool = false) -> Bool {
        guard let header = packet.prepend(dataHeader) else { return false }
        let type = UInt32(bulk ? BondingWire.bulk : BondingWire.data) << 24
        header.storeBytes(of: (type | sequence & 0xFF_FFFF).bigEndian, as: UInt32.self)
        return true
    }

    @inline(__always)
    static func sequence(of packet: Packet) -> UInt32 {
        UInt32(bigEndian: (packet.base + packet.offset).loadUnaligned(as: UInt32.self)) & 0xFF_FFFF
    }

    struct Probe: Equatable {
        var id: UInt32
        var sentAt: UInt64
        var name: String
        var fallback: Bool
        /// The sequence the sender's next data packet gets (24 bits).
        var nextSequence: UInt32 = 0
        var degraded = false
    }

    struct Echo: Equatable {
        var id: UInt32
        var sentAt: UInt64
        var receivedBytes: UInt64
        var echoedAt: UInt64
        /// The sequence the echoing side's next data packet gets (24 bits).
        var nextSequence: UInt32 = 0
    }

    static func write(_ probe: Probe, into packet: inout Packet) -> Bool {
        // Cut at a character boundary, so the far side can still read the name.
        var name: [UInt8] = []
        for character in probe.name {
            let bytes = Array(String(character).utf8)
            guard name.count + bytes.count <= maxNameBytes else { break }
            name += bytes
        }
        guard packet.tailroom >= probeHeader + name.count else { return false }
        let bytes = packet.base + packet.offset
        bytes.storeBytes(of: BondingWire.probe, as: UInt8.self)
        bytes.storeBytes(of: (probe.fallback ? fallbackFlag : 0) | (probe.degraded ? degradedFlag : 0), toByteOffset: 1, as: UInt8.self)
        bytes.storeBytes(of: UInt8(name.count), toByteOffset: 2, as: UInt8.self)
        bytes.storeBytes(of: UInt8(0), toByteOffset: 3, as: UInt8.self)
        bytes.storeBytes(of: probe.id.bigEndian, toByteOffset: 4, as: UInt32.self)
        bytes.storeBytes(of: probe.sentAt.bigEndian, toByteOffset: 8, as: UInt64.self)
        bytes.storeBytes(of: (probe.nextSequence & 0xFF_FFFF).bigEndian, toByteOffset: 16, as: UInt32.self)
        for (i, byte) in name.enumerated() { bytes.storeBytes(of: byte, toByteOffset: probeHeader + i, as: UInt8.self) }
        packet.length = probeHeader + name.count
        return true
    }

    static func write(_ echo: Echo, into packet: inout Packet) -> Bool {
        guard packet.tailroom >= echoBytes else { return false }
        let bytes = packet.base + packet.offset
        bytes.storeBytes(of: (UInt32(BondingWire.echo) << 24 | echo.nextSequence & 0xFF_FFFF).bigEndian, as: UInt32.self)
        bytes.storeBytes(of: echo.id.bigEndian, toByteOffset: 4, as: UInt32.self)
        bytes.storeBytes(of: echo.sentAt.bigEndian, toByteOffset: 8, as: UInt64.self)
        bytes.storeBytes(of: echo.receivedBytes.bigEndian, toByteOffset: 16, as: UInt64.self)
        bytes.storeBytes(of: echo.echoedAt.bigEndian, toByteOffset: 24, as: UInt64.self)
        packet.length = echoBytes
        return true
    }

    enum ParseError: Error, Equatable { case truncated, malformed }

    static func parseProbe(_ packet: Packet) -> Result<Probe, ParseError> {
        guard packet.length >= probeHeader else { return .failure(.truncated) }
        let bytes = UnsafeRawPointer(packet.base + packet.offset)
        let flags = bytes.load(fromByteOffset: 1, as: UInt8.self)
        let nameLength = Int(bytes.load(fromByteOffset: 2, as: UInt8.self))
        let next = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        guard nameLength <= maxNameBytes, flags & ~(fallbackFlag | degradedFlag) == 0, next <= 0xFF_FFFF else { return .failure(.malformed) }
        guard packet.length == probeHeader + nameLength else {
            return .failure(packet.length < probeHeader + nameLength ? .truncated : .malformed)
        }
        let nameBytes = UnsafeRawBufferPointer(start: bytes + probeHeader, count: nameLength)
        guard let name = String(validating: nameBytes, as: UTF8.self) else { return .failure(.malformed) }
        return .success(Probe(id: UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
                              sentAt: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                              name: name, fallback: flags & fallbackFlag != 0, nextSequence: next,
                              degraded: flags & degradedFlag != 0))
    }

    static func parseEcho(_ packet: Packet) -> Result<Echo, ParseError> {
        guard packet.length >= echoBytes else { return .failure(.truncated) }
        guard packet.length == echoBytes else { return .failure(.malformed) }
        let bytes = UnsafeRawPointer(packet.base + packet.offset)
        func u64(_ at: Int) -> UInt64 { UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        return .success(Echo(id: UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
                             sentAt: u64(8), receivedBytes: u64(16), echoedAt: u64(24),
                             nextSequence: UInt32(bigEndian: bytes.loadUnaligned(as: UInt32.self)) & 0xFF_FFFF))
    }

    /// Microseconds on the monotonic clock, as carried in probes and echoes.
    static func microseconds(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1e6) }
    static func seconds(_ microseconds: UInt64) -> Double { Double(microseconds) / 1e6 }
}
