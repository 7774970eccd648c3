import Foundation
import XCTest

/// `tunneld import mlvpn` end to end: an mlvpn client and server configuration, as an
/// mlvpn user has them, imported with the real binary, validated, and run as a
/// bonded tunnel in network namespaces that a ping crosses.
///
///     client 10.201.1.1 ──veth 1── 10.201.1.2 server
///            10.201.2.1 ──veth 2── 10.201.2.2
///     tunnel: mlvpn0 10.99.0.1/30 ─── mlvpn0 10.99.0.2/30
final class ImportMlvpnTests: LabTestCase {
    /// Run the binary outside any namespace (import and validate touch no network).
    private func tunneld(_ arguments: String...) throws -> (status: Int32, stdout: String, stderr: String) {
        try Lab.runTunneld(arguments)
    }

    private func path(_ name: String) -> String { lab.directory.appendingPathComponent(name).path }

    func testImportedClientAndServerBondAndCarryPings() throws {
        let client = try lab.namespace("c"), server = try lab.namespace("s")
        try lab.link(client, "10.201.1.1/24", server, "10.201.1.2/24", name: "\(lab.tag)1")
        try lab.link(client, "10.201.2.1/24", server, "10.201.2.2/24", name: "\(lab.tag)2")
        let hookLog = path("hooks.log")
        let script = try lab.file("updown.sh", "#!/bin/sh\necho \"$* IP4=$IP4 IP4_GATEWAY=$IP4_GATEWAY MTU=$MTU\" >> \(hookLog)\n")
        chmod(script, 0o700)

        // What an mlvpn pair looks like: same password, one server port per uplink.
        let serverConf = try lab.file("hub.conf", """
            [general]
            mode = "server"
            password = "imported from mlvpn, 32 characters"
            statuscommand = "\(script)"
            interface_name = "mlvpn0"
            mtu = 1400
            timeout = 30
            ip4 = "10.99.0.2/30"
            ip4_gateway = "10.99.0.1"
            control_unix_path = "\(path("hub.sock"))"

            [wan1]
            bindhost = "10.201.1.2"
            bindport = 5080

            [wan2]
            bindhost = "10.201.2.2"
            bindport = 5081
            """)
        let clientConf = try lab.file("site.conf", """
            [general]
            mode = "client"
            password = "imported from mlvpn, 32 characters"
            statuscommand = "\(script)"
            interface_name = "mlvpn0"
            mtu = 1400
            reorder_buffer_size = 128
            loss_tolerence = 50
            ip4 = "10.99.0.1/30"
            ip4_gateway = "10.99.0.2"
            control_unix_path = "\(path("site.sock"))"

            [filters]
            wan1 = "ip proto icmp"

            [wan1]
            bindhost = "10.201.1.1"
            bindport = 5081
            remotehost = "10.201.1.2"
            remoteport = 5080
            bandwidth_upload = 2500000

            [wan2]
            bindhost = "10.201.2.1"
            remotehost = "10.201.2.2"
            remoteport = 5081
            """)

        for (conf, site) in [(serverConf, path("hub.yaml")), (clientConf, path("site.yaml"))] {
            let imported = try tunneld("import", "mlvpn", conf, "--output", site)
            XCTAssertEqual(imported.status, 0, imported.stderr)
            XCTAssertEqual(imported.stdout, "")
            let passphrase = site.replacingOccurrences(of: ".yaml", with: ".passphrase")
            XCTAssertTrue(imported.stderr.contains("wrote \(site) and \(passphrase) (mode 0600)"), imported.stderr)
            let attributes = try FileManager.default.attributesOfItem(atPath: passphrase)
            XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
            XCTAssertFalse(try String(contentsOfFile: site, encoding: .utf8).contains("imported from mlvpn, 32"), "the password stays out of the site file")
            let validated = try tunneld("validate", site, "--stock", Lab.stockProfiles)
            XCTAssertEqual(validated.status, 0, validated.stderr)
            XCTAssertTrue(validated.stdout.contains("valid (profile 'bonding-"), validated.stdout)
            // A site file is never overwritten; the passphrase file is kept when it holds the same secret.
            let again = try tunneld("import", "mlvpn", conf, "--output", site)
            XCTAssertEqual(again.status, 1)
            XCTAssertEqual(again.stderr, "tunneld: '\(site)' exists; the import never overwrites a site file: remove it or choose another --output\n")
            let copy = site.replacingOccurrences(of: ".yaml", with: "-2.yaml")
            try FileManager.default.moveItem(atPath: site, toPath: copy)
            XCTAssertEqual(try tunneld("import", "mlvpn", conf, "--output", site).status, 0, "the same passphrase again")
            try FileManager.default.removeItem(atPath: copy)
        }

        let hub = try lab.tunneld(server, site: path("hub.yaml"), name: "hub")
        let site = try lab.tunneld(client, site: path("site.yaml"), name: "site")
        // The first ping may go before the handshake finishes; then every one must cross.
        var reached = false
        for _ in 0..<20 where !reached {
            reached = try lab.exec(client, "ping", "-c", "1", "-W", "1", "10.99.0.2", allowFailure: true).status == 0
        }
        XCTAssertTrue(reached, "no ping crossed the imported tunnel:\n\(site.output)\n\(hub.output)")
        let pings = try lab.exec(client, "ping", "-c", "10", "-i", "0.1", "-W", "2", "-q", "10.99.0.2", allowFailure: true)
        XCTAssertEqual(pings.status, 0, pings.output)
        XCTAssertTrue(pings.output.contains("10 received"), pings.output)
        // Back the other way, from the hub.
        let back = try lab.exec(server, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-q", "10.99.0.1", allowFailure: true)
        XCTAssertTrue(back.output.contains("3 received"), back.output)
        // Both uplinks joined the bond on the client.
        let status = try lab.run(Lab.binary, "status", path("site.sock")).output
        XCTAssertTrue(status.contains("wan1") && status.contains("wan2"), status)

        XCTAssertEqual(site.stop(), 0, site.output)
        XCTAssertEqual(hub.stop(), 0, hub.output)
        // The mlvpn status script ran with mlvpn's arguments and environment.
        let events = (try? String(contentsOfFile: hookLog, encoding: .utf8)) ?? ""
        print("import mlvpn: status script calls:\n\(events)")
        XCTAssertTrue(events.contains("mlvpn0 tuntap_up IP4=10.99.0.1/30 IP4_GATEWAY=10.99.0.2 MTU=1400"), events)
        XCTAssertTrue(events.contains("mlvpn0 rtun_up wan1 IP4=10.99.0.1/30"), events)
        XCTAssertTrue(events.contains("mlvpn0 rtun_up wan2 IP4=10.99.0.1/30"), events)
        XCTAssertTrue(events.contains("mlvpn0 tuntap_up IP4=10.99.0.2/30 IP4_GATEWAY=10.99.0.1 MTU=1400"), events)
        XCTAssertTrue(events.contains("mlvpn0 tuntap_down IP4=10.99.0.1/30"), events)
        // On the hub LINK is SITE/LINK; with a passphrase the site is 'peer'.
        XCTAssertTrue(events.contains("mlvpn0 rtun_down peer/wan1 IP4=10.99.0.2/30"), events)
    }

    func testMalformedConfigurationExitsWithItsPosition() throws {
        let conf = try lab.file("broken.conf", "[general]\nmode = client\npassword = \"never closed\n")
        let result = try tunneld("import", "mlvpn", conf, "--output", path("broken.yaml"))
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "\(conf):3:12: the value of 'password' opens a quote that is never closed; end it with \" on the same line\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("broken.yaml")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("broken.passphrase")))
    }
}
