import Glibc
import Logging
import XCTest
@testable import Framework

/// What a Tunnel does before `start()`: nothing touches the network or a device.
final class TunnelTests: XCTestCase {
    private func tunnel(_ extra: String = "") throws -> Tunnel {
        try Tunnel(spec: try loadSite(siteText(extra: extra)), logger: Logger(label: "test"))
    }

    func testSlotSizeAndDropReasons() throws {
        let t = try tunnel("stages:\n  - { use: example.dscp-filter, after: ingress, settings: { drop: 1 } }\n"
                           + "  - { use: example.dscp-filter, before: transport, settings: { drop: 2 } }\n")
        // Headroom + MTU + headroom + tailroom, rounded up to 64 bytes.
        XCTAssertEqual(t.slotSize, 1728)
        XCTAssertGreaterThanOrEqual(t.slotSize, t.headroom + 1400 + t.headroom + t.tailroom)
        XCTAssertEqual(t.slotSize % 64, 0)
        XCTAssertEqual(t.dropReasons.names, DropReason.frameworkNames + ["dscp_filtered"], "declared once")
        XCTAssertEqual(t.dropReason(named: "dscp_filtered"), DropReason(id: 9))
    }

    func testCounterReport() throws {
        let t = try tunnel()
        XCTAssertEqual(t.counterReport(), ["counters tunnel tx_packets=0 tx_bytes=0 rx_packets=0 rx_bytes=0"])
        t.counters.countDrop(.unclaimed)
        t.counters.countDrop(.unclaimed)
        t.counters.countDrop(.unknownPeer)
        t.counters.countReceived(bytes: 99)
        XCTAssertEqual(t.counterReport(),
                       ["counters tunnel tx_packets=0 tx_bytes=0 rx_packets=1 rx_bytes=99 drop.unclaimed=2 drop.unknown_peer=1"])
    }

    func testSessionsNeedTheDevice() throws {
        let t = try tunnel()
        XCTAssertThrowsError(try t.makeSession(name: "peer", peer: nil)) { error in
            XCTAssertEqual("\(error)", "stage 'tun' needs a device: the tunnel's, or in a per-session profile the session's, and neither is open")
        }
    }

    func testSystemErrorDescriptions() {
        XCTAssertEqual(SystemError("open x", code: EPERM).description,
                       "open x: Operation not permitted (tunneld needs root or CAP_NET_ADMIN for this)")
        XCTAssertEqual(SystemError("bind", code: EADDRINUSE).description,
                       "bind: Address already in use (another process already uses this address and port)")
        XCTAssertEqual(SystemError("ioctl", code: ENODEV).description, "ioctl: No such device (no such network device)")
        XCTAssertEqual(SystemError("open", code: EBUSY).description,
                       "open: Device or resource busy (another process holds this device open; stop it or pick another name)")
        XCTAssertEqual(SystemError("read", code: EINVAL).description, "read: Invalid argument")
    }

    func testRegistryLookups() {
        let registry = testRegistry()
        XCTAssertEqual(registry.plugins.map(\.name), ["core", "crypto", "bonding", "l2tpv3", "example"])
        XCTAssertEqual(registry.stages(for: .ingress).map(\.name), ["tun", "tap"])
        XCTAssertEqual(registry.stages(for: .transport).map(\.name), ["udp"])
        XCTAssertEqual(registry.stages(for: .encrypt).map(\.name), ["crypto.aead"])
        XCTAssertEqual(registry.insertableStages.map(\.name), ["example.dscp-filter"])
        XCTAssertEqual(registry.allSessionManagers.map(\.name), ["static", "bonding-client", "bonding-server", "l2tp-broker", "l2tp-client"])
        XCTAssertNil(registry.stage(named: "none"))
        XCTAssertEqual(registry.stage(named: "udp")?.slots, [.transport])
        XCTAssertEqual(registry.stage(named: "tun")?.dataFirstBytes, [0x40...0x4f, 0x60...0x6f])
    }
}
