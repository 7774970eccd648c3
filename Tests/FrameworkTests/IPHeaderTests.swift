import XCTest
@testable import Framework

final class IPHeaderTests: XCTestCase {
    private func check(_ bytes: [UInt8]) -> IPHeader.Verdict {
        let b = makeBatch(capacity: 1)
        b.appendPacket(bytes)
        return IPHeader.check(b[0])
    }

    private func dscp(_ bytes: [UInt8]) -> UInt8 {
        let b = makeBatch(capacity: 1)
        b.appendPacket(bytes)
        return IPHeader.dscp(b[0])
    }

    func testIPv4Verdicts() {
        XCTAssertEqual(check(ipv4Packet(payload: 8)), .ok(length: 28))
        XCTAssertEqual(check(ipv4Packet(payload: 0)), .ok(length: 20))
        // Link-layer padding after the packet: the header's length is returned.
        XCTAssertEqual(check(ipv4Packet(payload: 8) + [0, 0, 0, 0]), .ok(length: 28))
        // Shorter than a header.
        XCTAssertEqual(check(Array(ipv4Packet(payload: 8)[0..<19])), .truncated)
        // Shorter than its total length.
        XCTAssertEqual(check(Array(ipv4Packet(payload: 8)[0..<27])), .truncated)
        // IHL below 5.
        var p = ipv4Packet(payload: 8)
        p[0] = 0x44
        XCTAssertEqual(check(p), .malformed)
        // Total length smaller than the header.
        p = ipv4Packet(payload: 8)
        put16(&p, 2, 19)
        XCTAssertEqual(check(p), .malformed)
        // Options: IHL 15 and a total length covering them.
        p = [UInt8](repeating: 0, count: 60)
        p[0] = 0x4f
        put16(&p, 2, 60)
        XCTAssertEqual(check(p), .ok(length: 60))
        put16(&p, 2, 56)
        XCTAssertEqual(check(p), .malformed, "total length shorter than the 60-byte header")
    }

    func testIPv6Verdicts() {
        XCTAssertEqual(check(ipv6Packet(payload: 8)), .ok(length: 48))
        XCTAssertEqual(check(ipv6Packet(payload: 0)), .ok(length: 40))
        XCTAssertEqual(check(ipv6Packet(payload: 8) + [0xff]), .ok(length: 48))
        XCTAssertEqual(check(Array(ipv6Packet(payload: 8)[0..<39])), .truncated)
        XCTAssertEqual(check(Array(ipv6Packet(payload: 8)[0..<47])), .truncated)
    }

    func testOtherVersionsAndEmpty() {
        XCTAssertEqual(check([]), .truncated)
        XCTAssertEqual(check([0x50] + [UInt8](repeating: 0, count: 39)), .malformed)
        XCTAssertEqual(check([0x00] + [UInt8](repeating: 0, count: 39)), .malformed)
        XCTAssertEqual(check([0xff]), .malformed)
        XCTAssertEqual(check([0x45]), .truncated)
        XCTAssertEqual(check([0x60]), .truncated)
    }

    func testDSCP() {
        XCTAssertEqual(dscp(ipv4Packet(tos: 0xb8)), 46)
        XCTAssertEqual(dscp(ipv4Packet(tos: 0xb9)), 46, "ECN bits are not DSCP")
        XCTAssertEqual(dscp(ipv4Packet(tos: 0x03)), 0)
        XCTAssertEqual(dscp(ipv4Packet(tos: 0xfc)), 63)
        XCTAssertEqual(dscp(ipv4Packet(tos: 0x20)), 8)
        XCTAssertEqual(dscp(ipv6Packet(trafficClass: 0xb8)), 46)
        XCTAssertEqual(dscp(ipv6Packet(trafficClass: 0xbb)), 46)
        XCTAssertEqual(dscp(ipv6Packet(trafficClass: 0x03)), 0)
        XCTAssertEqual(dscp(ipv6Packet(trafficClass: 0xfc)), 63)
        XCTAssertEqual(dscp(ipv6Packet(trafficClass: 0x20)), 8)
        XCTAssertEqual(dscp(ipv6Packet(trafficClass: 0x04)), 1)
        // The flow label does not leak into the traffic class.
        var p = ipv6Packet(trafficClass: 0x20)
        p[1] |= 0x0f
        p[2] = 0xff
        XCTAssertEqual(dscp(p), 8)
    }

    // MARK: ECN

    /// RFC 791's header checksum, computed from scratch (the reference for the
    /// incremental update).
    private func headerChecksum(_ header: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        for index in stride(from: 0, to: header.count, by: 2) where index != 10 {
            sum += UInt32(header[index]) << 8 | UInt32(header[index + 1])
        }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    private func ipv4Header(tos: UInt8) -> [UInt8] {
        var header: [UInt8] = [0x45, tos, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 99, 0, 1, 10, 99, 0, 2]
        let checksum = headerChecksum(header)
        header[10] = UInt8(checksum >> 8)
        header[11] = UInt8(checksum & 0xff)
        return header + [UInt8](repeating: 0, count: 20)
    }

    private func marked(_ bytes: [UInt8]) -> (Bool, [UInt8]) {
        let b = makeBatch(capacity: 1)
        b.appendPacket(bytes)
        let result = IPHeader.markCongestionExperienced(b[0])
        return (result, Array(b[0].bytes))
    }

    func testECNCapableIPv4IsMarkedAndItsChecksumStaysRight() {
        // Every DSCP with ECT(0) and ECT(1): the checksum after the incremental update
        // is the one computed from scratch, and the DSCP is untouched.
        for dscp in UInt8(0)..<64 {
            for ect: UInt8 in [0x01, 0x02] {
                let (result, after) = marked(ipv4Header(tos: dscp << 2 | ect))
                XCTAssertTrue(result)
                XCTAssertEqual(after[1], dscp << 2 | 0x03)
                XCTAssertEqual(UInt16(after[10]) << 8 | UInt16(after[11]), headerChecksum(Array(after[0..<20])), "dscp \(dscp) ect \(ect)")
            }
        }
    }

    func testNotECNCapableIsLeftAloneAndAlreadyMarkedStaysMarked() {
        let plain = ipv4Header(tos: 0xb8)
        var (result, after) = marked(plain)
        XCTAssertFalse(result, "Not-ECT: the AQM must drop it")
        XCTAssertEqual(after, plain)
        let congested = ipv4Header(tos: 0xbb)
        (result, after) = marked(congested)
        XCTAssertTrue(result)
        XCTAssertEqual(after, congested)
    }

    func testECNCapableIPv6IsMarked() {
        var packet = [UInt8](repeating: 0, count: 60)
        packet[0] = 0x6b  // traffic class 0xb9: DSCP 46, ECT(1); flow label 0xf....
        packet[1] = 0x9f
        packet[5] = 20
        var (result, after) = marked(packet)
        XCTAssertTrue(result)
        XCTAssertEqual(after[0], 0x6b)
        XCTAssertEqual(after[1], 0xbf, "traffic class 0xbb: CE, DSCP and flow label kept")
        packet[1] = 0x8f  // Not-ECT
        (result, after) = marked(packet)
        XCTAssertFalse(result)
        XCTAssertEqual(after, packet)
    }

    func testShortOrNonIPIsNotMarked() {
        XCTAssertFalse(marked([0x45, 0x02]).0)
        var packet = ipv4Header(tos: 0x02)
        packet[0] = 0x55
        XCTAssertFalse(marked(packet).0)
    }
}
