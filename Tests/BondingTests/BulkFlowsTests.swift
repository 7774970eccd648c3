import XCTest
@testable import Bonding
import Framework

final class BulkFlowsTests: XCTestCase {
    private let packets = TestPackets(slotSize: 2048)
    private var flows = BulkFlows()

    /// A TCP/IPv4 packet of `total` bytes between ports `source` and 443, flags `flags`.
    private func tcp(_ total: Int, source: UInt16 = 40000, flags: UInt8 = 0x10) -> Packet {
        var bytes = testIPv4(protocol: 6, sourcePort: source, destinationPort: 443, transportBytes: 20)
        bytes[20 + 13] = flags
        bytes += [UInt8](repeating: 0, count: max(0, total - bytes.count))
        return packets.make(bytes)
    }

    func testLargePacketsAreBulkSmallOnesOfOtherFlowsAreNot() {
        XCTAssertTrue(flows.isBulk(tcp(1400), now: 1))
        XCTAssertFalse(flows.isBulk(tcp(60, source: 40001), now: 1), "an ACK of another flow")
        XCTAssertTrue(flows.isBulk(tcp(257, source: 40002), now: 1))
        XCTAssertFalse(flows.isBulk(tcp(256, source: 40003), now: 1))
    }

    func testSmallPacketsOfABulkFlowAreBulkForASecond() {
        XCTAssertTrue(flows.isBulk(tcp(1400), now: 1))
        XCTAssertTrue(flows.isBulk(tcp(100), now: 1.5), "the tail of a write")
        XCTAssertTrue(flows.isBulk(tcp(100), now: 1.99))
        XCTAssertFalse(flows.isBulk(tcp(100), now: 2.01), "a second after its last large packet")
    }

    func testASynMakesItsFlowBulk() {
        XCTAssertTrue(flows.isBulk(tcp(60, flags: 0x02), now: 1), "SYN")
        XCTAssertTrue(flows.isBulk(tcp(97), now: 1.01), "the first request after the handshake")
        XCTAssertFalse(flows.isBulk(tcp(97, source: 40009), now: 1.01))
    }

    func testTheFlowKeyTellsPortsAndDirectionsApart() {
        let a = BulkFlows.flowKey(tcp(60, source: 1000)), b = BulkFlows.flowKey(tcp(60, source: 1001))
        XCTAssertNotNil(a)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(BulkFlows.flowKey(tcp(60, source: 1000)), a, "the same flow, the same key")
        let v6 = packets.make(testIPv6(nextHeader: 17))
        XCTAssertNotNil(BulkFlows.flowKey(v6))
    }

    func testNonIPIsJudgedBySizeAlone() {
        XCTAssertNil(BulkFlows.flowKey(packets.make([0x00, 1, 2])))
        XCTAssertFalse(flows.isBulk(packets.make([UInt8](repeating: 0, count: 100)), now: 1))
        XCTAssertTrue(flows.isBulk(packets.make([UInt8](repeating: 0, count: 300)), now: 1))
    }
}
