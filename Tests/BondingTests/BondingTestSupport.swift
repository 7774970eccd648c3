import XCTest
@testable import Bonding
import Framework

// Shared helpers for the bonding tests: packets built by hand in a PacketBatch.

/// Makes packets in the slots of one batch it owns. Packets stay valid (their bytes
/// untouched) for the life of the factory, since records are never reused.
final class TestPackets {
    let batch: PacketBatch

    init(capacity: Int = 512, slotSize: Int = 256, headroom: Int = 16, tailroom: Int = 0) {
        batch = PacketBatch(capacity: capacity, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
    }

    /// A packet holding exactly `bytes`, at the batch's headroom.
    func make(_ bytes: [UInt8]) -> Packet {
        guard let record = batch.nextFree else { preconditionFailure("test batch is full") }
        let start = record.pointee.base + record.pointee.offset
        for (i, byte) in bytes.enumerated() { start.storeBytes(of: byte, toByteOffset: i, as: UInt8.self) }
        batch.commit(length: bytes.count)
        return batch[batch.count - 1]
    }

    /// A 4-byte packet whose payload is `tag`, big-endian (read back with `testTag(of:)`).
    func tagged(_ tag: UInt32) -> Packet {
        make([UInt8(truncatingIfNeeded: tag >> 24), UInt8(truncatingIfNeeded: tag >> 16),
              UInt8(truncatingIfNeeded: tag >> 8), UInt8(truncatingIfNeeded: tag)])
    }
}

/// The packet's bytes, copied.
func testBytes(of packet: Packet) -> [UInt8] {
    (0..<packet.length).map { packet.byte(at: $0) }
}

/// The big-endian tag in the first four bytes of a packet made by `TestPackets.tagged`.
func testTag(of packet: Packet) -> UInt32 {
    precondition(packet.length >= 4)
    return (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(packet.byte(at: $1)) }
}

/// Overwrite byte `index` of the packet in place.
func testPoke(_ packet: Packet, _ index: Int, _ value: UInt8) {
    (packet.base + packet.offset).storeBytes(of: value, toByteOffset: index, as: UInt8.self)
}

// MARK: - Hand-built IP headers

/// An IPv4 packet: `optionWords` 32-bit words of options (NOP), then `transportBytes`
/// bytes of transport header whose first four are the source and destination ports.
func testIPv4(protocol proto: UInt8, tos: UInt8 = 0,
              source: [UInt8] = [192, 0, 2, 1], destination: [UInt8] = [198, 51, 100, 7],
              sourcePort: UInt16 = 40000, destinationPort: UInt16 = 8080,
              optionWords: Int = 0, transportBytes: Int = 8) -> [UInt8] {
    precondition(source.count == 4 && destination.count == 4)
    let headerLength = 20 + optionWords * 4
    var p = [UInt8](repeating: 0, count: headerLength + transportBytes)
    p[0] = 0x40 | UInt8(5 + optionWords)
    p[1] = tos
    p[2] = UInt8(truncatingIfNeeded: p.count >> 8)
    p[3] = UInt8(truncatingIfNeeded: p.count)
    p[8] = 64
    p[9] = proto
    for i in 0..<4 {
        p[12 + i] = source[i]
        p[16 + i] = destination[i]
    }
    for i in 20..<headerLength { p[i] = 1 }  // NOP options
    if transportBytes >= 4 {
        p[headerLength] = UInt8(truncatingIfNeeded: sourcePort >> 8)
        p[headerLength + 1] = UInt8(truncatingIfNeeded: sourcePort)
        p[headerLength + 2] = UInt8(truncatingIfNeeded: destinationPort >> 8)
        p[headerLength + 3] = UInt8(truncatingIfNeeded: destinationPort)
    }
    return p
}

/// An IPv6 packet (no extension headers) with traffic class `trafficClass`, then
/// `transportBytes` bytes of transport header starting with the two ports.
func testIPv6(nextHeader: UInt8, trafficClass: UInt8 = 0,
              source: [UInt8] = testIPv6Address("2001:db8::1"), destination: [UInt8] = testIPv6Address("2001:db8::2"),
              sourcePort: UInt16 = 40000, destinationPort: UInt16 = 8080, transportBytes: Int = 8) -> [UInt8] {
    precondition(source.count == 16 && destination.count == 16)
    var p = [UInt8](repeating: 0, count: 40 + transportBytes)
    p[0] = 0x60 | trafficClass >> 4
    p[1] = (trafficClass & 0x0F) << 4
    p[4] = UInt8(truncatingIfNeeded: transportBytes >> 8)
    p[5] = UInt8(truncatingIfNeeded: transportBytes)
    p[6] = nextHeader
    p[7] = 64
    for i in 0..<16 {
        p[8 + i] = source[i]
        p[24 + i] = destination[i]
    }
    if transportBytes >= 4 {
        p[40] = UInt8(truncatingIfNeeded: sourcePort >> 8)
        p[41] = UInt8(truncatingIfNeeded: sourcePort)
        p[42] = UInt8(truncatingIfNeeded: destinationPort >> 8)
        p[43] = UInt8(truncatingIfNeeded: destinationPort)
    }
    return p
}

/// The 16 bytes of an IPv6 address written in text (crashes the test on a typo).
func testIPv6Address(_ text: String) -> [UInt8] {
    guard let parsed = InterfaceAddress.parse(text + "/128"), case .ipv6(let bytes) = parsed.family else {
        preconditionFailure("bad IPv6 address in test: \(text)")
    }
    return bytes
}
