import Glibc
import Bonding
import Crypto
import XCTest
@testable import Framework
import L2TPv3
import ExampleStages

// Shared helpers: a naive checksum reference, packet builders, batch helpers,
// profile fixtures. Nothing here uses the framework's checksum code.

// MARK: - Reference checksum (written out the slow, obvious way)

enum Ref {
    /// Sum of big-endian 16-bit words (odd last byte padded with zero), carries folded
    /// back in after every addition: the one's complement sum, not complemented.
    static func onesSum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
        var sum = initial
        var i = 0
        while i < bytes.count {
            let high = UInt32(bytes[i])
            let low = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            sum += high << 8 | low
            while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
            i += 2
        }
        return UInt16(sum)
    }

    /// The RFC 1071 checksum of `bytes`.
    static func checksum(_ bytes: [UInt8]) -> UInt16 { ~onesSum(bytes) }

    /// True when the IPv4 header at the start of `packet` sums to 0xffff (valid checksum).
    static func ipv4HeaderValid(_ packet: [UInt8]) -> Bool {
        let ihl = Int(packet[0] & 0x0f) * 4
        return onesSum(Array(packet[0..<ihl])) == 0xffff
    }

    /// The pseudo-header bytes for TCP over the IP packet `packet`.
    static func pseudoHeader(_ packet: [UInt8], tcpLength: Int) -> [UInt8] {
        if packet[0] >> 4 == 6 {
            var p = Array(packet[8..<40])
            p += [UInt8(tcpLength >> 24 & 0xff), UInt8(tcpLength >> 16 & 0xff), UInt8(tcpLength >> 8 & 0xff), UInt8(tcpLength & 0xff)]
            p += [0, 0, 0, 6]
            return p
        }
        var p = Array(packet[12..<20])
        p += [0, 6, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xff)]
        return p
    }

    static func ipHeaderLength(_ packet: [UInt8]) -> Int {
        packet[0] >> 4 == 6 ? 40 : Int(packet[0] & 0x0f) * 4
    }

    /// True when the TCP checksum of the IP packet verifies (pseudo-header included).
    static func tcpChecksumValid(_ packet: [UInt8]) -> Bool {
        let ip = ipHeaderLength(packet)
        let tcp = Array(packet[ip...])
        return onesSum(pseudoHeader(packet, tcpLength: tcp.count) + tcp) == 0xffff
    }

    /// The TCP checksum a correct sender stores for this packet (field taken as zero).
    static func tcpChecksum(_ packet: [UInt8]) -> UInt16 {
        let ip = ipHeaderLength(packet)
        var tcp = Array(packet[ip...])
        tcp[16] = 0
        tcp[17] = 0
        return checksum(pseudoHeader(packet, tcpLength: tcp.count) + tcp)
    }

    /// The folded (uncomplemented) pseudo-header sum a TSO sender leaves in the field.
    static func tcpPseudoSum(_ packet: [UInt8]) -> UInt16 {
        let ip = ipHeaderLength(packet)
        return onesSum(pseudoHeader(packet, tcpLength: packet.count - ip))
    }
}

// MARK: - Byte helpers

func be16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }
func be32(_ b: [UInt8], _ at: Int) -> UInt32 {
    UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
}
func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) {
    b[at] = UInt8(v >> 8)
    b[at + 1] = UInt8(v & 0xff)
}
func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
    for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * k)) }
}

/// Deterministic payload bytes, different for different `seed`s.
func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8 &+ seed &* 31 &+ 3) }
}

/// A small deterministic PRNG (xorshift64*), so "random" tests repeat exactly.
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9e37_79b9_7f4a_7c15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}

// MARK: - Packet builders

let v4Source: [UInt8] = [10, 99, 0, 1]
let v4Destination: [UInt8] = [10, 99, 0, 2]
let v6Source: [UInt8] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
let v6Destination: [UInt8] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]

struct TCPSpec {
    var ipv6 = false
    var source: [UInt8]? = nil
    var destination: [UInt8]? = nil
    var sourcePort: UInt16 = 40000
    var destinationPort: UInt16 = 5201
    var sequence: UInt32 = 1_000_000
    var ack: UInt32 = 77_777
    var flags: UInt8 = 0x10  // ACK
    var window: UInt16 = 502
    /// TCP options (a multiple of 4 bytes).
    var options: [UInt8] = []
    var payload: [UInt8] = []
    var ipID: UInt16 = 0x1234
    var ttl: UInt8 = 64
    var tos: UInt8 = 0
    /// IPv4 flags+fragment offset field (DF by default).
    var fragmentField: UInt16 = 0x4000
    /// Fill the IPv4 header checksum and the TCP checksum.
    var checksums = true
}

/// An IPv4 or IPv6 packet carrying one TCP segment.
func tcpPacket(_ s: TCPSpec) -> [UInt8] {
    let tcpLength = 20 + s.options.count
    var tcp = [UInt8](repeating: 0, count: tcpLength)
    put16(&tcp, 0, s.sourcePort)
    put16(&tcp, 2, s.destinationPort)
    put32(&tcp, 4, s.sequence)
    put32(&tcp, 8, s.ack)
    tcp[12] = UInt8(tcpLength / 4) << 4
    tcp[13] = s.flags
    put16(&tcp, 14, s.window)
    for (k, b) in s.options.enumerated() { tcp[20 + k] = b }
    var packet: [UInt8]
    if s.ipv6 {
        packet = [UInt8](repeating: 0, count: 40)
        packet[0] = 0x60 | s.tos >> 4
        packet[1] = s.tos << 4
        put16(&packet, 4, UInt16(tcpLength + s.payload.count))
        packet[6] = 6
        packet[7] = s.ttl
        let src = s.source ?? v6Source, dst = s.destination ?? v6Destination
        for k in 0..<16 { packet[8 + k] = src[k]; packet[24 + k] = dst[k] }
    } else {
        packet = [UInt8](repeating: 0, count: 20)
        packet[0] = 0x45
        packet[1] = s.tos
        put16(&packet, 2, UInt16(20 + tcpLength + s.payload.count))
        put16(&packet, 4, s.ipID)
        put16(&packet, 6, s.fragmentField)
        packet[8] = s.ttl
        packet[9] = 6
        let src = s.source ?? v4Source, dst = s.destination ?? v4Destination
        for k in 0..<4 { packet[12 + k] = src[k]; packet[16 + k] = dst[k] }
    }
    packet += tcp + s.payload
    if s.checksums {
        if !s.ipv6 { put16(&packet, 10, Ref.checksum(Array(packet[0..<20]))) }
        let ip = s.ipv6 ? 40 : 20
        put16(&packet, ip + 16, Ref.tcpChecksum(packet))
    }
    return packet
}

/// A minimal IPv4 packet (20-byte header, `payload` zero bytes) with the given TOS.
func ipv4Packet(tos: UInt8 = 0, payload: Int = 8, protocol proto: UInt8 = 17) -> [UInt8] {
    var p = [UInt8](repeating: 0, count: 20 + payload)
    p[0] = 0x45
    p[1] = tos
    put16(&p, 2, UInt16(20 + payload))
    p[8] = 64
    p[9] = proto
    for k in 0..<4 { p[12 + k] = v4Source[k]; p[16 + k] = v4Destination[k] }
    put16(&p, 10, Ref.checksum(Array(p[0..<20])))
    return p
}

/// A minimal IPv6 packet (40-byte header, `payload` zero bytes) with the given traffic class.
func ipv6Packet(trafficClass: UInt8 = 0, payload: Int = 8) -> [UInt8] {
    var p = [UInt8](repeating: 0, count: 40 + payload)
    p[0] = 0x60 | trafficClass >> 4
    p[1] = trafficClass << 4
    put16(&p, 4, UInt16(payload))
    p[6] = 17
    p[7] = 64
    for k in 0..<16 { p[8 + k] = v6Source[k]; p[24 + k] = v6Destination[k] }
    return p
}

// MARK: - Batches

func makeBatch(capacity: Int = 8, slotSize: Int = 2048, headroom: Int = 64, tailroom: Int = 0) -> PacketBatch {
    PacketBatch(capacity: capacity, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
}

extension PacketBatch {
    /// Copy `bytes` into the next free record and make it live.
    func appendPacket(_ bytes: [UInt8], link: Int32 = 0, sequence: UInt64 = 0) {
        guard let record = nextFree else { fatalError("test batch full") }
        bytes.withUnsafeBytes { raw in
            if !raw.isEmpty { memcpy(record.pointee.base + record.pointee.offset, raw.baseAddress!, raw.count) }
        }
        record.pointee.link = link
        record.pointee.sequence = sequence
        commit(length: bytes.count)
    }

    /// The bytes of live packet `index`.
    func bytes(_ index: Int) -> [UInt8] {
        let p = self[index]
        return Array(UnsafeRawBufferPointer(start: p.base + p.offset, count: p.length))
    }

    /// The `sequence` field of every live packet, in order.
    var sequences: [UInt64] { (0..<count).map { self[$0].sequence } }

    /// The slot of every record, live or not.
    var allSlots: [UnsafeMutableRawPointer] { (0..<capacity).map { records[$0].base } }
}

func packetBytes(_ p: Packet) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: p.base + p.offset, count: p.length))
}

// MARK: - Profiles

/// The repository root (two levels above this file's folder).
let repositoryRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/FrameworkTests/TestSupport.swift
    return parts.joined(separator: "/")
}()

func stockProfilesText() -> String {
    let path = repositoryRoot + "/plugins.yaml"
    guard let file = fopen(path, "r") else { fatalError("cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

func testRegistry() -> PluginRegistry {
    var registry = PluginRegistry()
    registry.register(CorePlugin.plugin)
    registry.register(CryptoPlugin.plugin)
    registry.register(BondingPlugin.plugin)
    registry.register(L2TPv3Plugin.plugin)
    registry.register(ExamplePlugin.plugin)
    return registry
}

func testLoader() throws -> ProfileLoader {
    let registry = testRegistry()
    let stock = try StockProfiles.parse(stockProfilesText(), file: "plugins.yaml", registry: registry)
    return ProfileLoader(registry: registry, stock: stock)
}

func loadSite(_ text: String) throws -> TunnelSpec {
    try testLoader().load(siteText: text, file: "site.yaml")
}

/// Asserts that `body` throws a `ProfileError` whose description is exactly `expected`.
func assertProfileError(_ expected: String, file: StaticString = #filePath, line: UInt = #line,
                        _ body: () throws -> Any) {
    do {
        let value = try body()
        XCTFail("expected error '\(expected)', got a value: \(value)", file: file, line: line)
    } catch let error as ProfileError {
        XCTAssertEqual(error.description, expected, file: file, line: line)
    } catch {
        XCTFail("expected a ProfileError, got \(type(of: error)): \(error)", file: file, line: line)
    }
}

/// A UDP link on 127.0.0.1 with a kernel-chosen port.
func loopbackLink(name: String, index: Int, batchSize: Int = 16) throws -> UDPLink {
    try UDPLink(name: name, index: index, bind: SocketAddress.parse("127.0.0.1:0")!, remote: nil, device: nil,
                settings: Settings(), batchSize: batchSize)
}
