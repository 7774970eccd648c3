import Glibc
import XCTest
@testable import Framework
@testable import L2TPv3

/// The kernel L2TP requests byte for byte against the protocol doc's §6.6 vectors
/// (made with tunneldigger's own encoder), and the kernel probe on a machine
/// without kernel L2TP.
final class L2TPNetlinkTests: XCTestCase {
    // The doc's example family id, sequence and port.
    private func bytes(_ request: GenericNetlinkRequest) -> [UInt8] {
        request.encoded(family: 0x1c, sequence: 1, portID: 0x1234)
    }

    private func hex(_ text: String) -> [UInt8] {
        text.split(separator: " ").map { UInt8($0, radix: 16)! }
    }

    func testTunnelCreateVector() {
        XCTAssertEqual(bytes(L2TPNetlink.tunnelCreate(id: 100, peerID: 1, socketFD: 7)), hex("""
            3c 00 00 00 1c 00 05 00 01 00 00 00 34 12 00 00 01 01 00 00 \
            08 00 09 00 64 00 00 00 08 00 0a 00 01 00 00 00 05 00 07 00 03 00 00 00 \
            06 00 02 00 00 00 00 00 08 00 17 00 07 00 00 00
            """))
    }

    func testSessionCreateVector() {
        XCTAssertEqual(bytes(L2TPNetlink.sessionCreate(tunnelID: 100, sessionID: 100, peerSessionID: 1, interface: "l2tp100-100")), hex("""
            44 00 00 00 1c 00 05 00 01 00 00 00 34 12 00 00 05 01 00 00 \
            08 00 09 00 64 00 00 00 08 00 0b 00 64 00 00 00 08 00 0c 00 01 00 00 00 \
            06 00 01 00 05 00 00 00 10 00 08 00 6c 32 74 70 31 30 30 2d 31 30 30 00
            """))
    }

    func testSessionModifyVector() {
        XCTAssertEqual(bytes(L2TPNetlink.sessionModify(tunnelID: 100, sessionID: 100, mtu: 1446)), hex("""
            2c 00 00 00 1c 00 05 00 01 00 00 00 34 12 00 00 07 01 00 00 \
            08 00 09 00 64 00 00 00 08 00 0b 00 64 00 00 00 06 00 1c 00 a6 05 00 00
            """))
    }

    func testSessionDeleteVector() {
        XCTAssertEqual(bytes(L2TPNetlink.sessionDelete(tunnelID: 100, sessionID: 100)), hex("""
            24 00 00 00 1c 00 05 00 01 00 00 00 34 12 00 00 06 01 00 00 \
            08 00 09 00 64 00 00 00 08 00 0b 00 64 00 00 00
            """))
    }

    func testTunnelDeleteAndDumps() {
        XCTAssertEqual(bytes(L2TPNetlink.tunnelDelete(id: 100)), hex("""
            1c 00 00 00 1c 00 05 00 01 00 00 00 34 12 00 00 02 01 00 00 08 00 09 00 64 00 00 00
            """))
        // REQUEST | ACK | DUMP (0x0305), no attributes.
        XCTAssertEqual(bytes(L2TPNetlink.tunnelDump), hex("14 00 00 00 1c 00 05 03 01 00 00 00 34 12 00 00 04 01 00 00"))
        XCTAssertEqual(bytes(L2TPNetlink.sessionDump), hex("14 00 00 00 1c 00 05 03 01 00 00 00 34 12 00 00 08 01 00 00"))
    }

    func testNumbersAreTheUapiOnes() {
        // linux/l2tp.h: enum l2tp_cmd, the L2TP_ATTR_* enum, L2TP_PWTYPE_ETH, L2TP_GENL_VERSION.
        XCTAssertEqual(L2TPNetlink.version, 1)
        XCTAssertEqual(L2TPNetlink.Command.tunnelCreate.rawValue, 1)
        XCTAssertEqual(L2TPNetlink.Command.tunnelDelete.rawValue, 2)
        XCTAssertEqual(L2TPNetlink.Command.tunnelGet.rawValue, 4)
        XCTAssertEqual(L2TPNetlink.Command.sessionCreate.rawValue, 5)
        XCTAssertEqual(L2TPNetlink.Command.sessionDelete.rawValue, 6)
        XCTAssertEqual(L2TPNetlink.Command.sessionModify.rawValue, 7)
        XCTAssertEqual(L2TPNetlink.Command.sessionGet.rawValue, 8)
        XCTAssertEqual(L2TPNetlink.Attribute.pseudowireType.rawValue, 1)
        XCTAssertEqual(L2TPNetlink.Attribute.encapsulationType.rawValue, 2)
        XCTAssertEqual(L2TPNetlink.Attribute.protocolVersion.rawValue, 7)
        XCTAssertEqual(L2TPNetlink.Attribute.interfaceName.rawValue, 8)
        XCTAssertEqual(L2TPNetlink.Attribute.connectionID.rawValue, 9)
        XCTAssertEqual(L2TPNetlink.Attribute.peerConnectionID.rawValue, 10)
        XCTAssertEqual(L2TPNetlink.Attribute.sessionID.rawValue, 11)
        XCTAssertEqual(L2TPNetlink.Attribute.peerSessionID.rawValue, 12)
        XCTAssertEqual(L2TPNetlink.Attribute.socketFD.rawValue, 23)
        XCTAssertEqual(L2TPNetlink.Attribute.mtu.rawValue, 28)
        XCTAssertEqual(L2TPNetlink.pseudowireEthernet, 5)
        XCTAssertEqual(L2TPNetlink.encapsulationUDP, 0)
    }

    func testStaleSelectionKeepsOnlyTheConfiguredTunnelIDs() throws {
        func reply(_ attributes: [NetlinkAttribute]) throws -> NetlinkAttributes {
            try XCTUnwrap(NetlinkAttributes(parsing: NetlinkAttribute.encode(attributes)))
        }
        let conn = L2TPNetlink.Attribute.connectionID.rawValue, session = L2TPNetlink.Attribute.sessionID.rawValue
        let sessions = [
            try reply([.u32(conn, 100), .u32(session, 100)]),
            try reply([.u32(conn, 5), .u32(session, 1)]),       // another program's tunnel
            try reply([.u32(conn, 199), .u32(session, 7)]),
            try reply([.u32(conn, 150)]),                       // no session id: skipped
            try reply([.u16(conn, 120), .u32(session, 3)]),     // wrong width: skipped
        ]
        let picked = KernelL2TP.staleSessions(sessions, in: 100...199)
        XCTAssertEqual(picked.map { [$0.tunnel, $0.session] }, [[100, 100], [199, 7]])
        let tunnels = [try reply([.u32(conn, 99)]), try reply([.u32(conn, 100)]), try reply([.u32(conn, 200)]), try reply([])]
        XCTAssertEqual(KernelL2TP.staleTunnels(tunnels, in: 100...199), [100])
    }

    func testKernelL2TPIsUnavailableHereWithoutHanging() throws {
        // No kernel L2TP on these machines (architecture doc §10).
        let start = monotonicNow()
        XCTAssertFalse(KernelL2TP.available())
        XCTAssertNil(try KernelL2TP.open())
        XCTAssertLessThan(monotonicNow() - start, 1.0)
    }

    private func monotonicNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
