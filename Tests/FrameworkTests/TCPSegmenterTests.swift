import XCTest
@testable import Framework

final class TCPSegmenterTests: XCTestCase {
    static let ackPshFinCwr: UInt8 = 0x10 | 0x08 | 0x01 | 0x80
    /// NOP, NOP, timestamps (12 bytes of TCP options).
    static let timestamps: [UInt8] = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]

    /// Split `packet` (without virtio header) into a fresh batch; returns the result,
    /// the packets delivered through `flush` followed by those left in the batch, and
    /// how many times `flush` ran.
    private func split(_ packet: [UInt8], header: VirtioNetHeader, capacity: Int = 16, slotSize: Int = 2048,
                       headroom: Int = 64, tailroom: Int = 0)
        -> (result: Result<(packets: Int, bytes: Int), TCPSegmenter.Dropped>, packets: [[UInt8]], flushes: Int, left: Int) {
        let batch = makeBatch(capacity: capacity, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
        var delivered: [[UInt8]] = []
        var flushes = 0
        var data = packet
        let result = data.withUnsafeMutableBytes { raw in
            TCPSegmenter.split(raw.baseAddress!, length: raw.count, header: header, into: batch) { full in
                flushes += 1
                XCTAssertEqual(full.count, full.capacity, "flush is called only when the batch is full")
                for i in 0..<full.count { delivered.append(full.bytes(i)) }
            }
        }
        for i in 0..<batch.count {
            delivered.append(batch.bytes(i))
            XCTAssertEqual(batch[i].offset, headroom, "segments start at the headroom")
        }
        return (result, delivered, flushes, batch.count)
    }

    private func tsoHeader(v6: Bool, headerLength: Int, mss: Int) -> VirtioNetHeader {
        VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
                        headerLength: UInt16(headerLength), gsoSize: UInt16(mss), checksumStart: UInt16(v6 ? 40 : 20),
                        checksumOffset: 16)
    }

    private func produced(_ r: Result<(packets: Int, bytes: Int), TCPSegmenter.Dropped>) -> Int? {
        if case .success(let n) = r { return n.packets }
        return nil
    }

    private func producedBytes(_ r: Result<(packets: Int, bytes: Int), TCPSegmenter.Dropped>) -> Int? {
        if case .success(let n) = r { return n.bytes }
        return nil
    }

    private func dropped(_ r: Result<(packets: Int, bytes: Int), TCPSegmenter.Dropped>) -> DropReason? {
        if case .failure(let d) = r { return d.reason }
        return nil
    }

    /// A TSO super-packet as the kernel hands it over: full lengths, the pseudo-header
    /// sum (not a checksum) in the TCP checksum field.
    private func superPacket(v6: Bool, payload: [UInt8], sequence: UInt32 = 1_000_000,
                             flags: UInt8 = ackPshFinCwr) -> [UInt8] {
        var p = tcpPacket(TCPSpec(ipv6: v6, sequence: sequence, flags: flags, options: Self.timestamps, payload: payload,
                                  ipID: 0x1234, checksums: false))
        if !v6 { put16(&p, 10, Ref.checksum(Array(p[0..<20]))) }
        put16(&p, (v6 ? 40 : 20) + 16, Ref.tcpPseudoSum(p))
        return p
    }

    private func checkSegments(v6: Bool) {
        let payload = pattern(3500, seed: v6 ? 6 : 4)
        let ip = v6 ? 40 : 20
        let headerLength = ip + 32
        let original = superPacket(v6: v6, payload: payload)
        let out = split(original, header: tsoHeader(v6: v6, headerLength: headerLength, mss: 1000))
        XCTAssertEqual(produced(out.result), 4)
        XCTAssertEqual(producedBytes(out.result), out.packets.map(\.count).reduce(0, +), "bytes of the segments, headers included")
        XCTAssertEqual(out.flushes, 0)
        XCTAssertEqual(out.packets.map(\.count), [headerLength + 1000, headerLength + 1000, headerLength + 1000, headerLength + 500])
        guard out.packets.count == 4 else { return }
        var joined: [UInt8] = []
        for (i, segment) in out.packets.enumerated() {
            // Sequence numbers advance by the payload already sent.
            XCTAssertEqual(be32(segment, ip + 4), 1_000_000 + UInt32(i * 1000), "segment \(i)")
            // FIN/PSH only on the last, CWR only on the first; ACK everywhere.
            let expectedFlags: UInt8 = i == 0 ? 0x90 : (i == 3 ? 0x19 : 0x10)
            XCTAssertEqual(segment[ip + 13], expectedFlags, "flags of segment \(i)")
            if v6 {
                XCTAssertEqual(Int(be16(segment, 4)), segment.count - 40, "IPv6 payload length of segment \(i)")
            } else {
                XCTAssertEqual(Int(be16(segment, 2)), segment.count, "IPv4 total length of segment \(i)")
                XCTAssertEqual(be16(segment, 4), 0x1234 + UInt16(i), "IPv4 ID of segment \(i)")
                XCTAssertTrue(Ref.ipv4HeaderValid(segment), "IPv4 header checksum of segment \(i)")
                XCTAssertEqual(segment[6], 0x40, "DF kept")
            }
            XCTAssertTrue(Ref.tcpChecksumValid(segment), "TCP checksum of segment \(i)")
            XCTAssertEqual(be16(segment, ip + 16), Ref.tcpChecksum(segment), "TCP checksum of segment \(i)")
            // Everything else of the headers is the super-packet's.
            XCTAssertEqual(Array(segment[(ip + 20)..<headerLength]), Self.timestamps, "options of segment \(i)")
            XCTAssertEqual(Array(segment[ip..<(ip + 4)]), Array(original[ip..<(ip + 4)]), "ports of segment \(i)")
            XCTAssertEqual(be32(segment, ip + 8), 77_777, "ack of segment \(i)")
            XCTAssertEqual(be16(segment, ip + 14), 502, "window of segment \(i)")
            joined += segment[headerLength...]
        }
        XCTAssertEqual(joined, payload)
    }

    func testSplitsIPv4SuperPacket() { checkSegments(v6: false) }

    func testSplitsIPv6SuperPacket() { checkSegments(v6: true) }

    func testSequenceNumbersWrapAround() {
        let payload = pattern(2500)
        let p = superPacket(v6: false, payload: payload, sequence: 0xffff_fc00, flags: 0x10)
        let out = split(p, header: tsoHeader(v6: false, headerLength: 52, mss: 1000))
        XCTAssertEqual(produced(out.result), 3)
        XCTAssertEqual(out.packets.map { be32($0, 24) }, [0xffff_fc00, 0xffff_ffe8, 0x0000_03d0])
        XCTAssertTrue(out.packets.allSatisfy(Ref.tcpChecksumValid))
    }

    func testECNBitInGSOTypeIsIgnored() {
        let p = superPacket(v6: false, payload: pattern(2000))
        var header = tsoHeader(v6: false, headerLength: 52, mss: 1000)
        header.gsoType |= VirtioNetHeader.gsoECN
        let out = split(p, header: header)
        XCTAssertEqual(produced(out.result), 2)
        XCTAssertEqual(out.packets.map(\.count), [1052, 1052])
    }

    func testIPv4OptionsAreCopiedIntoEverySegment() {
        var p = superPacket(v6: false, payload: pattern(1500), flags: 0x18)
        p.insert(contentsOf: [1, 1, 1, 0], at: 20)  // NOP NOP NOP EOL
        p[0] = 0x46
        put16(&p, 2, UInt16(p.count))
        put16(&p, 10, 0)
        put16(&p, 10, Ref.checksum(Array(p[0..<24])))
        let out = split(p, header: tsoHeader(v6: false, headerLength: 56, mss: 1000))
        XCTAssertEqual(produced(out.result), 2)
        XCTAssertEqual(out.packets.map(\.count), [1056, 556])
        for segment in out.packets {
            XCTAssertEqual(Array(segment[20..<24]), [1, 1, 1, 0])
            XCTAssertTrue(Ref.ipv4HeaderValid(segment))
            XCTAssertTrue(Ref.tcpChecksumValid(segment))
        }
        XCTAssertEqual(out.packets.map { $0[24 + 13] }, [0x10, 0x18])
    }

    /// A GSO packet whose payload fits in one segment is passed on with full checksums.
    func testGSOPacketNotLargerThanMSSGetsFullChecksums() {
        let p = superPacket(v6: false, payload: pattern(700), flags: 0x18)
        let out = split(p, header: tsoHeader(v6: false, headerLength: 52, mss: 1000))
        XCTAssertEqual(produced(out.result), 1)
        XCTAssertEqual(out.packets.count, 1)
        XCTAssertEqual(out.packets.first?.count, 752)
        XCTAssertEqual(out.packets.first?[33], 0x18)
        XCTAssertTrue(out.packets.first.map(Ref.tcpChecksumValid) ?? false)
        XCTAssertTrue(out.packets.first.map(Ref.ipv4HeaderValid) ?? false)
    }

    /// Batch of capacity 2 and 7 segments: flush runs three times with full batches;
    /// every segment arrives once, in order.
    func testFlushWhenBatchFills() {
        let payload = pattern(6500, seed: 9)
        let p = superPacket(v6: false, payload: payload)
        let out = split(p, header: tsoHeader(v6: false, headerLength: 52, mss: 1000), capacity: 2)
        XCTAssertEqual(produced(out.result), 7)
        XCTAssertEqual(out.flushes, 3)
        XCTAssertEqual(out.left, 1)
        XCTAssertEqual(out.packets.count, 7)
        XCTAssertEqual(out.packets.map { be32($0, 24) }, (0..<7).map { 1_000_000 + UInt32($0 * 1000) })
        XCTAssertEqual(out.packets.map { be16($0, 4) }, (0..<7).map { 0x1234 + UInt16($0) })
        XCTAssertEqual(out.packets.flatMap { $0[52...] }, payload)
        XCTAssertTrue(out.packets.allSatisfy(Ref.tcpChecksumValid))
    }

    /// NEEDS_CSUM without GSO: the field holds the pseudo-header sum; the segmenter
    /// completes the checksum over csum_start..end.
    func testCompletesPartialTCPChecksum() {
        for v6 in [false, true] {
            let complete = tcpPacket(TCPSpec(ipv6: v6, flags: 0x18, payload: pattern(301)))
            let ip = v6 ? 40 : 20
            var partial = complete
            put16(&partial, ip + 16, Ref.tcpPseudoSum(partial))
            let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoNone, headerLength: 0,
                                         gsoSize: 0, checksumStart: UInt16(ip), checksumOffset: 16)
            let out = split(partial, header: header)
            XCTAssertEqual(produced(out.result), 1)
            XCTAssertEqual(out.packets, [complete], "v6: \(v6)")
        }
    }

    /// A UDP checksum that computes to 0 is sent as ffff (RFC 768).
    func testPartialUDPChecksumOfZeroBecomesFFFF() {
        var packet = ipv4Packet(payload: 8 + 10, protocol: 17)
        put16(&packet, 20, 5353)
        put16(&packet, 22, 5354)
        put16(&packet, 24, 18)
        for k in 0..<8 { packet[28 + k] = UInt8(k * 17 + 1) }
        // Pseudo-header sum in the checksum field, as the kernel leaves it.
        let pseudo = Array(packet[12..<20]) + [0, 17, 0, 18]
        put16(&packet, 26, Ref.onesSum(pseudo))
        // Choose the last word so that the whole sum is ffff, i.e. the checksum is 0.
        let sum = Ref.onesSum(Array(packet[20...]))
        put16(&packet, 36, 0xffff - sum)
        XCTAssertEqual(Ref.onesSum(Array(packet[20...])), 0xffff)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoNone, headerLength: 0,
                                     gsoSize: 0, checksumStart: 20, checksumOffset: 6)
        let out = split(packet, header: header)
        XCTAssertEqual(produced(out.result), 1)
        XCTAssertEqual(out.packets.first.map { be16($0, 26) }, 0xffff)
    }

    func testPlainPacketIsCopiedUnchanged() {
        let packet = ipv4Packet(tos: 0xb8, payload: 333)
        let out = split(packet, header: VirtioNetHeader())
        XCTAssertEqual(produced(out.result), 1)
        XCTAssertEqual(out.packets, [packet])
    }

    func testMalformedInputs() {
        let v4 = superPacket(v6: false, payload: pattern(3000))
        let v6 = superPacket(v6: true, payload: pattern(3000))
        var header = tsoHeader(v6: false, headerLength: 52, mss: 1000)

        // UDP GSO is not something a TUN with TCP offloads should hand over.
        header.gsoType = VirtioNetHeader.gsoUDP
        XCTAssertEqual(dropped(split(v4, header: header).result), .malformed)
        header.gsoType = 2  // unknown type
        XCTAssertEqual(dropped(split(v4, header: header).result), .malformed)

        // IPv4 shorter than an IPv4 + TCP header.
        header = tsoHeader(v6: false, headerLength: 52, mss: 1000)
        XCTAssertEqual(dropped(split(Array(v4[0..<30]), header: header).result), .truncated)
        // IHL 15 (60 bytes of IP header) but only 40 bytes in all.
        var shortOptions = Array(v4[0..<40])
        shortOptions[0] = 0x4f  // IHL 15: 60 bytes of IP header
        XCTAssertEqual(dropped(split(shortOptions, header: header).result), .truncated)
        // Not TCP.
        var udp = v4
        udp[9] = 17
        XCTAssertEqual(dropped(split(udp, header: header).result), .malformed)
        // IHL below 5.
        var badIHL = v4
        badIHL[0] = 0x44
        XCTAssertEqual(dropped(split(badIHL, header: header).result), .malformed)
        // TCP data offset below 5.
        var badOffset = v4
        badOffset[32] = 0x40
        XCTAssertEqual(dropped(split(badOffset, header: header).result), .malformed)
        // gsoSize 0.
        header.gsoSize = 0
        XCTAssertEqual(dropped(split(v4, header: header).result), .malformed)

        let header6 = tsoHeader(v6: true, headerLength: 72, mss: 1000)
        var v6udp = v6
        v6udp[6] = 17
        XCTAssertEqual(dropped(split(v6udp, header: header6).result), .malformed)

        // Partial checksum pointing past the packet.
        let partial = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoNone, headerLength: 0,
                                      gsoSize: 0, checksumStart: 20, checksumOffset: 200)
        XCTAssertEqual(dropped(split(ipv4Packet(payload: 40), header: partial).result), .malformed)
    }

    /// IPv6 super-packet shorter than an IPv6 + TCP header (50 bytes) is `truncated`,
    /// as its IPv4 counterpart is; see the report: the IPv6 branch says `malformed`.
    func testTruncatedIPv6SuperPacketIsTruncated() {
        let v6 = superPacket(v6: true, payload: pattern(3000))
        let out = split(Array(v6[0..<50]), header: tsoHeader(v6: true, headerLength: 72, mss: 1000))
        XCTAssertEqual(dropped(out.result), .truncated)
        XCTAssertEqual(out.packets.count, 0)
    }

    func testSegmentLargerThanSlotIsOversize() {
        let p = superPacket(v6: false, payload: pattern(3000))
        // 512-byte slots, 64 headroom: 448 bytes of room, a segment needs 1052.
        let out = split(p, header: tsoHeader(v6: false, headerLength: 52, mss: 1000), slotSize: 512)
        XCTAssertEqual(dropped(out.result), .oversize)
        XCTAssertEqual(out.packets.count, 0)
        // Tailroom counts against the room too: 1052 + 64 headroom + 64 tailroom > 1152.
        let tight = split(p, header: tsoHeader(v6: false, headerLength: 52, mss: 1000), slotSize: 1152, tailroom: 64)
        XCTAssertEqual(dropped(tight.result), .oversize)
        let fits = split(p, header: tsoHeader(v6: false, headerLength: 52, mss: 1000), slotSize: 1180, tailroom: 64)
        XCTAssertEqual(produced(fits.result), 3)
        // Plain copy of a packet larger than the slot.
        let big = split(ipv4Packet(payload: 1000), header: VirtioNetHeader(), slotSize: 512)
        XCTAssertEqual(dropped(big.result), .oversize)
    }

    func testVirtioHeaderRoundTripsInHostOrder() {
        let header = VirtioNetHeader(flags: 1, gsoType: 4, headerLength: 0x0102, gsoSize: 1448, checksumStart: 40, checksumOffset: 16)
        var bytes = [UInt8](repeating: 0xee, count: VirtioNetHeader.size)
        bytes.withUnsafeMutableBytes { header.write(to: $0.baseAddress!) }
        XCTAssertEqual(bytes, [1, 4, 0x02, 0x01, 0xa8, 0x05, 40, 0, 16, 0])
        XCTAssertEqual(bytes.withUnsafeBytes { VirtioNetHeader(from: $0.baseAddress!) }, header)
    }
}
