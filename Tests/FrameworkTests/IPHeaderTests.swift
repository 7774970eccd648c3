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
}
