import XCTest
@testable import Framework

final class TCPCoalescerTests: XCTestCase {
    static let timestamps: [UInt8] = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]

    private func segment(v6: Bool = false, index: Int, size: Int = 1000, firstSize: Int = 1000, flags: UInt8 = 0x10,
                         _ change: (inout TCPSpec) -> Void = { _ in }) -> [UInt8] {
        var spec = TCPSpec(ipv6: v6, sequence: 5_000_000 &+ UInt32(index * firstSize), flags: flags,
                           options: Self.timestamps, payload: pattern(size, seed: index), ipID: 0x100 + UInt16(index))
        change(&spec)
        return tcpPacket(spec)
    }

    private func batch(_ packets: [[UInt8]]) -> PacketBatch {
        let b = makeBatch(capacity: max(packets.count, 1), slotSize: 2048)
        for p in packets { b.appendPacket(p) }
        return b
    }

    private func runCount(_ packets: [[UInt8]], from start: Int = 0) -> Int {
        TCPCoalescer.run(in: batch(packets), from: start).count
    }

    /// Coalesce the run at `start`; returns the virtio header and the IP packet.
    private func coalesce(_ b: PacketBatch, from start: Int = 0) -> (count: Int, header: VirtioNetHeader, packet: [UInt8])? {
        let (count, head) = TCPCoalescer.run(in: b, from: start)
        guard let head else { return nil }
        let out = UnsafeMutableRawPointer.allocate(byteCount: VirtioNetHeader.size + TCPCoalescer.maxLength, alignment: 16)
        defer { out.deallocate() }
        let length = TCPCoalescer.build(b, from: start, count: count, head: head, into: out)
        let header = VirtioNetHeader(from: out)
        let packet = Array(UnsafeRawBufferPointer(start: out + VirtioNetHeader.size, count: length - VirtioNetHeader.size))
        return (count, header, packet)
    }

    func testSegmentsOfOneFlowCoalesceIPv4() throws {
        let packets = (0..<4).map { segment(index: $0, size: $0 == 3 ? 500 : 1000, flags: $0 == 3 ? 0x18 : 0x10) }
        let result = try XCTUnwrap(coalesce(batch(packets)))
        XCTAssertEqual(result.count, 4)
        XCTAssertEqual(result.header, VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv4,
                                                      headerLength: 52, gsoSize: 1000, checksumStart: 20, checksumOffset: 16))
        let p = result.packet
        XCTAssertEqual(p.count, 52 + 3500)
        XCTAssertEqual(Int(be16(p, 2)), 52 + 3500, "IP total length")
        XCTAssertEqual(be16(p, 4), 0x100, "IP ID of the first segment")
        XCTAssertTrue(Ref.ipv4HeaderValid(p))
        XCTAssertEqual(p[33], 0x18, "PSH carried from the last segment")
        XCTAssertEqual(be32(p, 24), 5_000_000)
        XCTAssertEqual(be16(p, 36), Ref.tcpPseudoSum(p), "pseudo-header sum in the checksum field")
        XCTAssertEqual(Array(p[40..<52]), Self.timestamps)
        XCTAssertEqual(Array(p[52...]), (0..<4).flatMap { pattern($0 == 3 ? 500 : 1000, seed: $0) })
    }

    func testSegmentsOfOneFlowCoalesceIPv6() throws {
        let packets = (0..<3).map { segment(v6: true, index: $0, size: 1200, firstSize: 1200) }
        let result = try XCTUnwrap(coalesce(batch(packets)))
        XCTAssertEqual(result.count, 3)
        XCTAssertEqual(result.header, VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv6,
                                                      headerLength: 72, gsoSize: 1200, checksumStart: 40, checksumOffset: 16))
        let p = result.packet
        XCTAssertEqual(p.count, 72 + 3600)
        XCTAssertEqual(Int(be16(p, 4)), 32 + 3600, "IPv6 payload length")
        XCTAssertEqual(p[53], 0x10, "no PSH anywhere")
        XCTAssertEqual(be16(p, 56), Ref.tcpPseudoSum(p))
        XCTAssertEqual(Array(p[72...]), (0..<3).flatMap { pattern(1200, seed: $0) })
    }

    /// Segment a super-packet, coalesce the segments: the original comes back, byte for byte.
    func testRoundTripSegmentThenCoalesce() throws {
        for v6 in [false, true] {
            let ip = v6 ? 40 : 20
            let payload = pattern(5321, seed: 77)
            var original = tcpPacket(TCPSpec(ipv6: v6, flags: 0x18, options: Self.timestamps, payload: payload, checksums: false))
            if !v6 { put16(&original, 10, Ref.checksum(Array(original[0..<20]))) }
            put16(&original, ip + 16, Ref.tcpPseudoSum(original))
            let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum,
                                         gsoType: v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
                                         headerLength: UInt16(ip + 32), gsoSize: 1448, checksumStart: UInt16(ip), checksumOffset: 16)
            let b = makeBatch(capacity: 8)
            var copy = original
            let split = copy.withUnsafeMutableBytes {
                TCPSegmenter.split($0.baseAddress!, length: $0.count, header: header, into: b) { _ in XCTFail("no flush") }
            }
            guard case .success(let produced) = split, produced.packets == 4 else { return XCTFail("split: \(split)") }
            let result = try XCTUnwrap(coalesce(b))
            XCTAssertEqual(result.count, 4)
            XCTAssertEqual(result.header, header)
            XCTAssertEqual(Array(result.packet[(ip + 32)...]), payload, "v6: \(v6)")
            XCTAssertEqual(result.packet, original, "v6: \(v6)")
        }
    }

    func testRunStopsAtNonContiguousSequence() {
        XCTAssertEqual(runCount([segment(index: 0), segment(index: 1) { $0.sequence += 1 }]), 1)
        XCTAssertEqual(runCount([segment(index: 0), segment(index: 1), segment(index: 3)]), 2)
        // Duplicate (retransmitted) segment.
        XCTAssertEqual(runCount([segment(index: 0), segment(index: 0)]), 1)
    }

    func testRunStopsAtAnotherFlow() {
        let a = segment(index: 0)
        XCTAssertEqual(runCount([a, segment(index: 1) { $0.sourcePort = 40001 }]), 1)
        XCTAssertEqual(runCount([a, segment(index: 1) { $0.destinationPort = 5202 }]), 1)
        XCTAssertEqual(runCount([a, segment(index: 1) { $0.source = [10, 99, 0, 9] }]), 1)
        XCTAssertEqual(runCount([a, segment(index: 1) { $0.destination = [10, 99, 0, 9] }]), 1)
        XCTAssertEqual(runCount([a, segment(index: 1) { $0.ack = 77_778 }]), 1)
        XCTAssertEqual(runCount([a, segment(index: 1) { $0.window = 503 }]), 1)
        XCTAssertEqual(runCount([a, segment(index: 1) { $0.ttl = 63 }]), 1)
        XCTAssertEqual(runCount([a, segment(index: 1) { $0.tos = 0xb8 }]), 1)
        XCTAssertEqual(runCount([a, segment(v6: true, index: 1)]), 1)
        // The IP ID does not matter.
        XCTAssertEqual(runCount([a, segment(index: 1) { $0.ipID = 0x9999 }]), 2)

        let v6 = segment(v6: true, index: 0)
        var otherAddress = v6Destination
        otherAddress[15] = 9
        XCTAssertEqual(runCount([v6, segment(v6: true, index: 1) { $0.destination = otherAddress }]), 1)
        XCTAssertEqual(runCount([v6, segment(v6: true, index: 1) { $0.tos = 0x20 }]), 1)
        XCTAssertEqual(runCount([v6, segment(v6: true, index: 1) { $0.ttl = 1 }]), 1)
        XCTAssertEqual(runCount([v6, segment(v6: true, index: 1)]), 2)
    }

    func testRunStopsAtFlagsOtherThanAckAndPsh() {
        for flags: UInt8 in [0x12 /* SYN */, 0x11 /* FIN */, 0x14 /* RST */, 0x30 /* URG */, 0x50 /* ECE */, 0x90 /* CWR */, 0x00] {
            XCTAssertEqual(runCount([segment(index: 0), segment(index: 1, flags: flags)]), 1, "flags \(flags)")
            XCTAssertNil(TCPCoalescer.run(in: batch([segment(index: 0, flags: flags), segment(index: 1)]), from: 0).first,
                         "head with flags \(flags)")
        }
    }

    func testPshEndsTheRun() {
        // PSH in the middle: the PSH segment is the last one joined.
        XCTAssertEqual(runCount([segment(index: 0), segment(index: 1, flags: 0x18), segment(index: 2), segment(index: 3)]), 2)
        // PSH on the first: nothing is joined.
        let b = batch([segment(index: 0, flags: 0x18), segment(index: 1)])
        let run = TCPCoalescer.run(in: b, from: 0)
        XCTAssertEqual(run.count, 1)
        XCTAssertNil(run.first)
    }

    func testShortSegmentOnlyLast() {
        // A shorter segment ends the run.
        let short = segment(index: 1, size: 400)
        let third = segment(index: 2) { $0.sequence = 5_000_000 + 1400 }
        XCTAssertEqual(runCount([segment(index: 0), short, third]), 2)
        // A longer segment after the first is not joined.
        XCTAssertEqual(runCount([segment(index: 0, size: 500, firstSize: 500), segment(index: 1, size: 1000, firstSize: 500)]), 1)
    }

    func testDifferentOptionsAreNotJoined() {
        let a = segment(index: 0)
        let b = segment(index: 1) { $0.options = [1, 1, 8, 10, 0, 0, 0x12, 0x35, 0, 0, 0x56, 0x78] }
        XCTAssertEqual(runCount([a, b]), 1)
        let noOptions = segment(index: 1) { $0.options = [] }
        XCTAssertEqual(runCount([a, noOptions]), 1)
    }

    func testNotCandidates() {
        // Pure ACK (no payload).
        let ack = tcpPacket(TCPSpec(options: Self.timestamps))
        XCTAssertNil(TCPCoalescer.run(in: batch([ack, ack]), from: 0).first)
        // IPv4 fragment (MF set), and IPv4 with options.
        XCTAssertEqual(runCount([segment(index: 0), segment(index: 1) { $0.fragmentField = 0x2000 }]), 1)
        var withOptions = segment(index: 1)
        withOptions.insert(contentsOf: [1, 1, 1, 0], at: 20)
        withOptions[0] = 0x46
        XCTAssertEqual(runCount([segment(index: 0), withOptions]), 1)
        // UDP.
        XCTAssertNil(TCPCoalescer.run(in: batch([ipv4Packet(payload: 100), ipv4Packet(payload: 100)]), from: 0).first)
    }

    /// Linux GRO validates the TCP checksum before merging and flushes on a bad one.
    /// The super-packet goes to the kernel with NEEDS_CSUM, so the kernel never checks
    /// the segments' own checksums: a segment with a bad checksum that is joined would
    /// be accepted, where on its own it is dropped. See the report.
    func testSegmentWithBadTCPChecksumIsNotJoined() {
        var corrupt = segment(index: 1)
        corrupt[60] ^= 0x01  // one payload bit; the checksum no longer matches
        XCTAssertFalse(Ref.tcpChecksumValid(corrupt))
        XCTAssertEqual(runCount([segment(index: 0), corrupt, segment(index: 2)]), 1)
        var badHead = segment(index: 0)
        badHead[100] ^= 0x80
        XCTAssertNil(TCPCoalescer.run(in: batch([badHead, segment(index: 1)]), from: 0).first)
    }

    func testRunFromAnIndexInsideTheBatch() {
        let packets = [ipv4Packet(payload: 10)] + (0..<3).map { segment(index: $0) }
        XCTAssertEqual(runCount(packets, from: 0), 1)
        XCTAssertEqual(runCount(packets, from: 1), 3)
        XCTAssertEqual(runCount(packets, from: 2), 2)
    }

    /// A super-packet never exceeds 65535 bytes of IP packet.
    func testRunIsBoundedByMaxLength() throws {
        let packets = (0..<70).map { segment(index: $0) }
        let b = makeBatch(capacity: 70)
        for p in packets { b.appendPacket(p) }
        let result = try XCTUnwrap(coalesce(b))
        // 52 + 65 * 1000 = 65052 <= 65535; one more would be 66052.
        XCTAssertEqual(result.count, 65)
        XCTAssertEqual(result.packet.count, 65052)
        XCTAssertEqual(Int(be16(result.packet, 2)), 65052)
    }
}
