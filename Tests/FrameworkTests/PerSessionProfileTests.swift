import XCTest
@testable import Framework

/// Fleet profiles: `device: per-session` in a stock profile (the l2tp-broker), and a
/// session manager's own checks of its settings.
final class PerSessionProfileTests: XCTestCase {
    func testBrokerSiteWithOneLinkIsValidAndHasNoTunnelDevice() throws {
        let spec = try loadSite("""
            profile: l2tp-broker
            links:
              - { name: td, bind: "127.0.0.1:8942" }
            """)
        XCTAssertNil(spec.device)
        XCTAssertTrue(spec.devicesPerSession)
        XCTAssertEqual(spec.deviceKind, .tap)
        XCTAssertEqual(spec.stages.map(\.descriptor.name), ["tap", "l2tpv3.pseudowire", "udp"])
        XCTAssertEqual(spec.sessionSettings.integer("max-tunnels"), 1024)
    }

    func testASiteDeviceIsRefusedWherePerSession() {
        assertProfileError("site.yaml:2:9: profile 'l2tp-broker' gives each session its own device, named and sized by its session manager; remove 'device:'") {
            try loadSite("""
                profile: l2tp-broker
                device: { name: tap0 }
                links:
                  - { name: td, bind: "127.0.0.1:8942" }
                """)
        }
    }

    func testTunnelIDsMustLeaveRoomForInterfaceNames() {
        assertProfileError("site.yaml:5:19: tunnel ids up to 100099 make interface names like l2tp100099-100099, longer than 15 characters; keep tunnel-id-base + max-tunnels - 1 below 100000") {
            try loadSite("""
                profile: l2tp-broker
                links:
                  - { name: td, bind: "127.0.0.1:8942" }
                sessions:
                  tunnel-id-base: 100000
                  max-tunnels: 100
                """)
        }
    }

    func testFixedPMTUBelowTheMinimumIsRefused() {
        assertProfileError("site.yaml:5:9: pmtu 500 is too small: use 0 (discover) or a tunnel MTU of 576 or more") {
            try loadSite("""
                profile: l2tp-broker
                links:
                  - { name: td, bind: "127.0.0.1:8942" }
                sessions:
                  pmtu: 500
                """)
        }
    }
}
