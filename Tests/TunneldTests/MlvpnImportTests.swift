import Foundation
import Framework
import XCTest
@testable import tunneld

/// `tunneld import mlvpn`: an mlvpn client and server configuration that between them
/// use every key mlvpn reads become bonding site files, compared line by line and
/// loaded as `tunneld validate` loads them; malformed input is an error naming
/// file:line:column; what needs a hand is a warning naming file:line.
final class MlvpnImportTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every key mlvpn-reference.md lists, by where mlvpn reads it.
    private static let referenceGeneralKeys: Set<String> = [
        "mode", "password", "cleartext_data", "statuscommand", "tuntap", "interface_name", "mtu", "timeout",
        "reorder_buffer_size", "loss_tolerence", "latency_tolerence", "ip4", "ip6", "ip4_gateway", "ip6_gateway",
        "ip4_routes", "ip6_routes", "control_unix_path", "control_bind_host", "control_bind_port",
    ]
    private static let referenceLinkKeys: Set<String> = [
        "bindhost", "bindport", "bindfib", "remotehost", "remoteport", "bandwidth_upload", "timeout",
        "loss_tolerence", "latency_tolerence", "fallback_only",
    ]

    static let clientConf = #"""
        # mlvpn at the site: two uplinks to the hub
        [general]
        statuscommand = "/etc/mlvpn/mlvpn_updown.sh"
        mode = "client"
        password = "pleasechangeme!"
        cleartext_data = 0
        tuntap = "tun"
        interface_name = "mlvpn0"
        mtu = 1400
        timeout = 30
        reorder_buffer_size = 64
        loss_tolerence = 50
        latency_tolerence = 300
        ip4 = "10.42.43.2/30"
        ip6 = "fd42:43::2/64"
        ip4_gateway = "10.42.43.1"
        ip6_gateway = "fd42:43::1"
        ip4_routes = "192.168.0.0/24 192.168.1.0/24"
        ip6_routes = "fd42:44::/64"
        control_unix_path = "/run/mlvpn.sock"  # the status API
        control_bind_host = "127.0.0.1"
        control_bind_port = 1040

        [filters]
        adsl = "udp port 5060"
        lte = "udp port 5060"
        lte = "ip proto icmp"

        [adsl]
        bindhost = "192.0.2.10"
        bindport = 5081
        bindfib = 0
        remotehost = "198.51.100.1"
        remoteport = 5080
        bandwidth_upload = 125000
        timeout = 20
        loss_tolerence = 30
        latency_tolerence = 500
        fallback_only = 0

        ; the LTE stick: only when the DSL line is down
        [lte]
        remotehost = "198.51.100.1"
        remoteport = 5081
        bandwidth_upload = 2500000
        fallback_only = 1
        """#

    static let serverConf = #"""
        [general]
        mode = server
        password = "pleasechangeme!"
        cleartext_data = 1
        statuscommand = mlvpn_updown.sh
        tuntap = tun
        interface_name = mlvpn0
        mtu = 1452
        timeout = 40
        reorder_buffer_size = 0
        loss_tolerence = 150
        latency_tolerence = 1000
        ip4 = 10.42.43.1/30
        ip6 = fd42:43::1
        ip4_gateway = 10.42.43.2
        ip6_gateway = fd42:43::2
        ip4_routes = 10.0.0.0/24
        ip6_routes = fd42:45::/64
        control_unix_path = /run/mlvpn-hub.sock
        control_bind_port = 1041

        [filters]
        adsl = tcp dst port 22
        adsl = net 10.0.0.0/8
        wifi = icmp

        [adsl]
        bindport = 5080
        remotehost = 192.0.2.10
        remoteport = 5081
        bindfib = 1
        bandwidth_upload = 61440
        latency_tolerence = 250
        fallback_only = 0

        [lte]
        bindhost = "::"
        bindport = 5081
        timeout = 10
        loss_tolerence = 20
        loss_tolerance = 20
        fallback_only = 1
        """#

    static let clientYAML = #"""
        # tunneld site file imported from mlvpn's 'client.conf' by 'tunneld import mlvpn'.
        # Each value names the mlvpn key it came from; mlvpn keys with no equivalent are kept as comments saying why.
        # Check it with 'tunneld validate FILE', run it with 'tunneld run FILE'.
        profile: bonding-client  # mode = client
        # log: info  (mlvpn took its log level on its command line: -v, --debug, -q; tunneld's goes here or in 'tunneld run --log-level')

        device:
          name: mlvpn0  # interface_name
          mtu: 1400  # mtu
          address:  # ip4, ip6: tunneld sets them on the device itself; a status script that adds them too gets 'File exists' from 'ip addr add' (use 'ip addr replace')
            - 10.42.43.2/30
            - "fd42:43::2/64"
          # tuntap = tun: the bonding profiles always use a TUN device

        links:
          - name: adsl  # [adsl]
            bind: "192.0.2.10:5081"  # bindhost, bindport
            remote: "198.51.100.1:5080"  # remotehost, remoteport
            bandwidth: 1  # bandwidth_upload = 125000 bytes/s = 1.00 Mbit/s; tunneld starts from it, then measures the link
            loss-tolerance: 30  # loss_tolerence
            latency-tolerance: 500ms  # latency_tolerence
            fallback-only: false  # fallback_only
            # timeout = 20: not imported: tunneld probes every link every 50 ms and takes it down after 250 ms without an answer, where mlvpn waited 20 s; to keep that slow failover, write 'timeout: 20s'
            # bindfib = 0: not imported: a BSD routing table (setfib); on Linux tie the link to its uplink with 'device: IFNAME' or policy routing (ip rule)
          - name: lte  # [lte]
            bind: "0.0.0.0:0"  # no bindhost, bindport: any address, a port the kernel picks
            remote: "198.51.100.1:5081"  # remotehost, remoteport
            bandwidth: 20  # bandwidth_upload = 2500000 bytes/s = 20.00 Mbit/s; tunneld starts from it, then measures the link
            loss-tolerance: 50  # loss_tolerence = 50 in [general]
            latency-tolerance: 300ms  # latency_tolerence = 300 in [general]
            fallback-only: true  # fallback_only
            # timeout = 30 in [general]: not imported: tunneld probes every link every 50 ms and takes it down after 250 ms without an answer, where mlvpn waited 30 s; to keep that slow failover, write 'timeout: 30s'

        sessions:
          status-command: /etc/mlvpn/mlvpn_updown.sh  # statuscommand: called as mlvpn called it (DEVICE tuntap_up|tuntap_down, DEVICE rtun_up|rtun_down LINK), same environment
          ip4: 10.42.43.2/30  # ip4: IP4 for the status script
          ip6: "fd42:43::2/64"  # ip6: IP6 for the status script
          ip4-gateway: 10.42.43.1  # ip4_gateway: IP4_GATEWAY for the status script
          ip6-gateway: "fd42:43::1"  # ip6_gateway: IP6_GATEWAY for the status script
          ip4-routes: "192.168.0.0/24 192.168.1.0/24"  # ip4_routes: IP4_ROUTES for the status script
          ip6-routes: "fd42:44::/64"  # ip6_routes: IP6_ROUTES for the status script

        settings:
          crypto.aead:
            # password: mlvpn's shared secret, written to client.passphrase beside this file (mode 0600), never into this file.
            # Both ends need the same passphrase and passphrase-context (default 'tunneld'). tunneld stretches it with
            # Argon2id where mlvpn hashed it once; key pairs ('tunneld genkey') are stronger still.
            passphrase-file: client.passphrase  # password
            # cleartext_data = 0: tunneld encrypts and authenticates every data packet; there is no cleartext mode
          bonding.reorder:
            buffer: 64  # reorder_buffer_size (packets; tunneld's default is 4096)
          bonding.scheduler:
            pin:  # [filters]
              - "udp port 5060 -> adsl"
              - "icmp -> lte"
            # lte = udp port 5060: mlvpn's next choice for the same traffic; tunneld pins to the first link and schedules normally while it is down

        status:
          socket: /run/mlvpn.sock  # control_unix_path: tunneld's status socket (JSON, read by 'tunneld status'); mlvpn's line commands are not spoken

        http:
          listen: "127.0.0.1:1040"  # control_bind_host, control_bind_port: /status JSON, /metrics, a live page
        """#

    static let serverYAML = #"""
        # tunneld site file imported from mlvpn's 'server.conf' by 'tunneld import mlvpn'.
        # Each value names the mlvpn key it came from; mlvpn keys with no equivalent are kept as comments saying why.
        # Check it with 'tunneld validate FILE', run it with 'tunneld run FILE'.
        profile: bonding-server  # mode = server
        # log: info  (mlvpn took its log level on its command line: -v, --debug, -q; tunneld's goes here or in 'tunneld run --log-level')

        device:
          name: mlvpn0  # interface_name
          mtu: 1452  # mtu
          # a bonded packet takes 56 bytes more on the uplink: over 1500-byte uplinks the largest MTU that is not fragmented is 1444 (1424 over IPv6)
          address:  # ip4, ip6: tunneld sets them on the device itself; a status script that adds them too gets 'File exists' from 'ip addr add' (use 'ip addr replace')
            - 10.42.43.1/30
          # tuntap = tun: the bonding profiles always use a TUN device

        links:
          - name: adsl  # [adsl]
            bind: "0.0.0.0:5080"  # bindport (no bindhost: any address)
            # remotehost = 192.0.2.10, remoteport = 5081: not imported: a hub learns each site's addresses from its authenticated packets and follows them (NAT, new uplink addresses)
            bandwidth: 1  # bandwidth_upload = 61440 bytes/s = 0.49 Mbit/s; tunneld starts from it, then measures the link
            loss-tolerance: 100  # loss_tolerence = 150 in [general]
            latency-tolerance: 250ms  # latency_tolerence
            fallback-only: false  # fallback_only
            # timeout = 40 in [general]: not imported: tunneld probes every link every 50 ms and takes it down after 250 ms without an answer, where mlvpn waited 40 s; to keep that slow failover, write 'timeout: 40s'
            # bindfib = 1: not imported: a BSD routing table (setfib); on Linux tie the link to its uplink with 'device: IFNAME' or policy routing (ip rule)
          - name: lte  # [lte]
            bind: "[::]:5081"  # bindhost, bindport
            loss-tolerance: 20  # loss_tolerence
            latency-tolerance: 1000ms  # latency_tolerence = 1000 in [general]
            fallback-only: true  # fallback_only
            # timeout = 10: not imported: tunneld probes every link every 50 ms and takes it down after 250 ms without an answer, where mlvpn waited 10 s; to keep that slow failover, write 'timeout: 10s'
            # loss_tolerance = 20 (line 41): unknown key; did you mean 'loss_tolerence'? mlvpn ignores it

        sessions:
          status-command: mlvpn_updown.sh  # statuscommand: called as mlvpn called it (DEVICE tuntap_up|tuntap_down, DEVICE rtun_up|rtun_down LINK), same environment
          # on a hub LINK is 'SITE/LINK': with a passphrase the site is 'peer', and LINK the site's name for the link (its address until the site's first probe names it)
          # a relative path is taken from this file's folder
          ip4: 10.42.43.1/30  # ip4: IP4 for the status script
          ip6: "fd42:43::1"  # ip6: IP6 for the status script
          ip4-gateway: 10.42.43.2  # ip4_gateway: IP4_GATEWAY for the status script
          ip6-gateway: "fd42:43::2"  # ip6_gateway: IP6_GATEWAY for the status script
          ip4-routes: 10.0.0.0/24  # ip4_routes: IP4_ROUTES for the status script
          ip6-routes: "fd42:45::/64"  # ip6_routes: IP6_ROUTES for the status script
          session-timeout: 40s  # timeout: a site silent this long is ended (its links' rtun_down, then tuntap_down)

        settings:
          crypto.aead:
            # password: mlvpn's shared secret, written to server.passphrase beside this file (mode 0600), never into this file.
            # Both ends need the same passphrase and passphrase-context (default 'tunneld'). tunneld stretches it with
            # Argon2id where mlvpn hashed it once; key pairs ('tunneld genkey') are stronger still.
            passphrase-file: server.passphrase  # password
            # cleartext_data = 1: not imported: tunneld encrypts and authenticates every data packet; there is no cleartext mode
          # reorder_buffer_size = 0: not imported: mlvpn's reordering was off; tunneld always restores order (a packet in order passes at once)
          bonding.scheduler:
            pin:  # [filters]; on a hub the names after '->' are the site's link names
              - "tcp port 22 -> adsl"
              # adsl = tcp dst port 22: the pin also matches either direction (dst port)
            # adsl = net 10.0.0.0/8: not imported: tunneld pins by protocol, port and DSCP; this pcap expression has no equivalent
            # wifi = icmp: not imported: there is no link [wifi] (mlvpn ignored it too)

        status:
          socket: /run/mlvpn-hub.sock  # control_unix_path: tunneld's status socket (JSON, read by 'tunneld status'); mlvpn's line commands are not spoken

        http:
          listen: "0.0.0.0:1041"  # control_bind_port (no control_bind_host: every address, as mlvpn); /status JSON, /metrics, a live page
        """#

    private func convert(_ text: String, file: String = "client.conf", writes: Bool = true) throws -> MlvpnImporter.Result {
        try MlvpnImporter.convert(text, file: file, options: .init(passphraseFile: "site.passphrase", writesPassphrase: writes))
    }

    private func error(_ text: String) -> String? {
        do { _ = try convert(text, file: "bad.conf") } catch { return "\(error)" }
        return nil
    }

    private func warnings(_ text: String) throws -> [String] {
        try convert(text, file: "w.conf").warnings.map(\.description)
    }

    /// Load a site file as `tunneld validate` does, with its passphrase file beside it
    /// and its status command installed (`installHooks`: an absolute /x moves to FOLDER/x).
    private func load(_ result: MlvpnImporter.Result) throws -> TunnelSpec {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlvpn-import-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for file in result.files {
            let path = folder.appendingPathComponent(file.path).path
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(file.contents.utf8)))
            chmod(path, file.mode)
        }
        let site = folder.appendingPathComponent("site.yaml").path
        try installHooks(result.yaml, in: folder.path).write(toFile: site, atomically: true, encoding: .utf8)
        return try ProfileFiles.loadSpec(site: site, stock: Self.root.appendingPathComponent("plugins.yaml").path)
    }

    // MARK: the two configurations

    func testTheTwoConfigurationsUseEveryKeyMlvpnReads() throws {
        XCTAssertEqual(Set(MlvpnConfig.generalKeys), Self.referenceGeneralKeys, "the importer knows every [general] key")
        XCTAssertEqual(Set(MlvpnConfig.linkKeys), Self.referenceLinkKeys, "the importer knows every link key")
        var general: Set<String> = [], link: Set<String> = [], filters = 0
        for text in [Self.clientConf, Self.serverConf] {
            for section in try INIFile.parse(text, file: "x.conf").sections {
                switch section.name {
                case "general": general.formUnion(section.entries.map(\.key))
                case "filters": filters += section.entries.count
                default: link.formUnion(section.entries.map(\.key))
                }
            }
        }
        XCTAssertEqual(Self.referenceGeneralKeys.subtracting(general), [], "[general] keys no test configuration uses")
        XCTAssertEqual(Self.referenceLinkKeys.subtracting(link), [], "link keys no test configuration uses")
        XCTAssertGreaterThan(filters, 0, "[filters]")
    }

    func testClientBecomesABondingClientSiteFile() throws {
        let result = try convert(Self.clientConf)
        XCTAssertEqual(result.yaml, Self.clientYAML.replacingOccurrences(of: "client.passphrase", with: "site.passphrase") + "\n")
        XCTAssertEqual(result.warnings, [])
        XCTAssertEqual(result.files, [.init(path: "site.passphrase", contents: "pleasechangeme!\n", mode: 0o600)])
        XCTAssertFalse(result.yaml.contains("pleasechangeme"), "the password stays out of the site file")

        let spec = try load(result)
        XCTAssertEqual(spec.profile, "bonding-client")
        XCTAssertEqual(spec.links.count, 2)
        XCTAssertEqual(spec.device?.mtu, 1400)
        XCTAssertTrue(spec.sessionSettings.string("status-command")?.hasSuffix("/etc/mlvpn/mlvpn_updown.sh") ?? false)
        XCTAssertEqual(spec.sessionSettings.string("ip4-routes"), "192.168.0.0/24 192.168.1.0/24")
        XCTAssertEqual(spec.stages.map(\.descriptor.name), ["tun", "bonding.reorder", "crypto.aead", "bonding.scheduler", "udp"])
    }

    func testServerBecomesABondingServerSiteFile() throws {
        let result = try convert(Self.serverConf, file: "server.conf")
        XCTAssertEqual(result.yaml, Self.serverYAML.replacingOccurrences(of: "server.passphrase", with: "site.passphrase") + "\n")
        XCTAssertEqual(result.warnings.map(\.description), [
            "server.conf:8: warning: mtu 1452 is more than fits a 1500-byte uplink with tunneld's 56 bytes of overhead (1444; 1424 over IPv6); kept, but check it",
            "server.conf:11: warning: loss_tolerence 150 is more than 100 %; capped to 100 as mlvpn does",
            "server.conf:14: warning: ip6 'fd42:43::1' is not an address with a prefix length (such as 10.42.43.1/30); it is not set on the device, only passed to the status script",
            "server.conf:23: warning: on a hub pins name the site's links (its own names for them), not the hub's link sections; check the names after '->'",
            "server.conf:24: warning: [filters] 'net 10.0.0.0/8' cannot be said as a tunneld pin rule (protocol, port, DSCP); not imported, kept as a comment",
            "server.conf:25: warning: [filters] 'wifi' names no link section; not imported (mlvpn ignored it too)",
            "server.conf:41: warning: 'loss_tolerance' in [lte]: unknown key; did you mean 'loss_tolerence'? mlvpn ignores it, so it is not imported (kept as a comment)",
        ])
        XCTAssertEqual(result.files, [.init(path: "site.passphrase", contents: "pleasechangeme!\n", mode: 0o600)])

        let spec = try load(result)
        XCTAssertEqual(spec.profile, "bonding-server")
        XCTAssertEqual(spec.links.count, 2)
        XCTAssertEqual(spec.device?.mtu, 1452)
        XCTAssertEqual(spec.sessionSettings.integer("session-timeout"), 40_000)
    }

    func testWithoutOutputThePassphraseIsLeftToTheUser() throws {
        let result = try convert(Self.clientConf, writes: false)
        XCTAssertEqual(result.files, [])
        XCTAssertEqual(result.warnings.map(\.description), [
            "client.conf:5: warning: the password goes in a file of its own, not written without --output: create site.passphrase beside the site file holding mlvpn's password, with mode 0600",
        ])
        XCTAssertTrue(result.yaml.contains("    # password: create site.passphrase beside this file holding mlvpn's password, mode 0600 ('chmod 600').\n"), result.yaml)
        XCTAssertFalse(result.yaml.contains("pleasechangeme"))
    }

    // MARK: malformed input

    func testMalformedINIIsAnErrorAtItsPlace() {
        let cases: [(String, String)] = [
            ("[general\nmode = client\n", "bad.conf:1:1: section header '[general' has no closing ']'; write it as [NAME]"),
            ("  []\n", "bad.conf:1:3: empty section name '[]'; write it as [NAME]"),
            ("[general] mode = client\n", "bad.conf:1:11: unexpected 'mode = client' after the section header [general]; put it on a line of its own or comment it out"),
            ("[general]\nreorder_buffer_size 64\n", "bad.conf:2:1: 'reorder_buffer_size 64' is not 'key = value'; add the '=' or comment the line out with '#'"),
            ("mode = client\n[general]\n", "bad.conf:1:1: 'mode' comes before any [section]; move it under the section it belongs to"),
            ("[general]\n\t= client\n", "bad.conf:2:2: '=' with no key before it; write 'key = value'"),
            ("[general]\npassword = \"abc\n", "bad.conf:2:12: the value of 'password' opens a quote that is never closed; end it with \" on the same line"),
            ("[general]\npassword = \"abc\" def\n", "bad.conf:2:18: unexpected 'def' after the quoted value of 'password'; put the whole value inside the quotes"),
        ]
        for (text, expected) in cases { XCTAssertEqual(error(text), expected, text) }
    }

    func testWhatMlvpnRefusesIsAnErrorAtItsPlace() {
        let general = "[general]\nmode = client\npassword = \"a long passphrase\"\n"
        let link = "[dsl]\nremotehost = 192.0.2.1\nremoteport = 5080\n"
        let cases: [(String, String)] = [
            ("[General]\nmode = client\n", "bad.conf:1:1: no [general] section ([General] at line 1 is not it: section names are case-sensitive); mlvpn needs one with 'mode' and 'password'"),
            ("[general]\npassword = x\n" + link, "bad.conf:1:1: [general] has no 'mode'; add 'mode = client' (the site that dials out) or 'mode = server' (the end that listens)"),
            ("[general]\nmode = both\n", "bad.conf:2:8: mode must be 'client' or 'server', found 'both'"),
            ("[general]\nmode = client\npassword = \"\"\n" + link, "bad.conf:3:12: [general] has no 'password'; mlvpn refuses to start without one, and it becomes both ends' tunneld passphrase"),
            (general, "bad.conf:1:1: no link section; add one per uplink, e.g. [dsl] with remotehost and remoteport (client) or bindport (server)"),
            (general + "[dsl]\nremotehost = 192.0.2.1\n", "bad.conf:4:1: link [dsl] has no 'remoteport'; a client link needs remotehost and remoteport (mlvpn refuses to start without)"),
            ("[general]\nmode = server\npassword = x\n[dsl]\nbindhost = 0.0.0.0\n", "bad.conf:4:1: link [dsl] has no 'bindport'; a server link needs bindport (mlvpn refuses to start without)"),
            (general + "timeout = 30s\n" + link, "bad.conf:4:11: 'timeout' must be a whole number (seconds), found '30s'"),
            (general + link + "fallback_only = yes\n", "bad.conf:7:17: 'fallback_only' must be 0 or 1, found 'yes' (mlvpn reads it as a number)"),
            (general + link + "bindport = 70000\n", "bad.conf:7:12: 'bindport' must be a port number (0-65535), found '70000'"),
            (general + "tuntap = tan\n" + link, "bad.conf:4:10: tuntap must be 'tun' or 'tap', found 'tan'"),
        ]
        for (text, expected) in cases { XCTAssertEqual(error(text), expected, text) }
    }

    // MARK: what converts, but needs a look

    func testWarningsNameFileAndLine() throws {
        let text = """
            [general]
            mode = client
            password = short
            passwrod = "hunter2 is not here"
            interface_name = "mlvpn-uplinks-bonded"
            tuntap = tap
            reorder_buffer_size = 100000
            bindhost = 192.0.2.1
            control_bind_host = 127.0.0.1
            [dsl]
            remotehost = hub.example.net
            remoteport = 5080
            remoteport = 5081
            latency_tolerence = 90000
            mode = server
            [dsl]
            bandwidth_upload = 1000
            """
        XCTAssertEqual(try warnings(text), [
            "w.conf:3: warning: the password has 5 characters; tunneld wants a passphrase of at least 12: put a longer one in site.passphrase on both ends (or use key pairs: 'tunneld genkey')",
            "w.conf:4: warning: 'passwrod' in [general]: unknown key; did you mean 'password'? mlvpn ignores it, so it is not imported (kept as a comment)",
            "w.conf:5: warning: interface_name 'mlvpn-uplinks-bonded' is longer than an interface name can be; mlvpn used 'mlvpn-uplinks-b', and so does the site file",
            "w.conf:6: warning: tuntap = tap has no equivalent: the bonding profiles carry IP packets (TUN); imported as TUN",
            "w.conf:7: warning: reorder_buffer_size 100000 is more than tunneld's largest buffer; capped to 65536",
            "w.conf:8: warning: 'bindhost' in [general]: mlvpn reads 'bindhost' only in a link section, not in [general], so it is not imported (kept as a comment)",
            "w.conf:11: warning: remotehost 'hub.example.net' is a name; tunneld takes addresses only (it never waits on DNS at start-up): replace it with the address in the site file",
            "w.conf:13: warning: 'remoteport' in [dsl]: given again; mlvpn uses the first 'remoteport' (line 12), and so does this import, so it is not imported (kept as a comment)",
            "w.conf:14: warning: latency_tolerence 90000 ms is more than tunneld's limit; capped to 60000",
            "w.conf:15: warning: 'mode' in [dsl]: mlvpn reads 'mode' only in [general], not in [dsl], so it is not imported (kept as a comment)",
            "w.conf:16: warning: [dsl] again (first at line 10); its keys are read as part of the first",
        ])
        let yaml = try convert(text, file: "w.conf").yaml
        XCTAssertFalse(yaml.contains("hunter2"), "a misspelt password is still a password")
        XCTAssertTrue(yaml.contains("# passwrod = … (line 4): unknown key; did you mean 'password'? mlvpn ignores it\n"), yaml)
        XCTAssertTrue(yaml.contains("  name: mlvpn-uplinks-b  # interface_name\n"), yaml)
        XCTAssertTrue(yaml.contains("    remote: \"hub.example.net:5080\"  # remotehost, remoteport\n"), yaml)
        XCTAssertTrue(yaml.contains("    bind: \"0.0.0.0:0\"  # no bindhost, bindport: any address, a port the kernel picks\n"), yaml)
        XCTAssertTrue(yaml.contains("    bandwidth: 1  # bandwidth_upload = 1000 bytes/s = 0.01 Mbit/s; tunneld starts from it, then measures the link\n"), yaml)
        XCTAssertTrue(yaml.contains("    buffer: 65536  # reorder_buffer_size (packets; tunneld's default is 4096)\n"), yaml)
        XCTAssertTrue(yaml.contains("# control_bind_host = 127.0.0.1: not imported: without control_bind_port mlvpn did not listen on TCP\n"), yaml)
        XCTAssertFalse(yaml.contains("\nhttp:"), yaml)
    }

    func testSmallReorderBuffersAndIPv6Links() throws {
        let text = """
            [general]
            mode = client
            password = "a long passphrase"
            reorder_buffer_size = 16
            [v6]
            remotehost = "2001:db8::1"
            remoteport = 5080
            """
        let yaml = try convert(text).yaml
        XCTAssertTrue(yaml.contains("    buffer: 64  # reorder_buffer_size = 16, raised to tunneld's least (its default is 4096)\n"), yaml)
        XCTAssertTrue(yaml.contains("    bind: \"[::]:0\"  # no bindhost, bindport: any address, a port the kernel picks\n"), yaml)
        XCTAssertTrue(yaml.contains("    remote: \"[2001:db8::1]:5080\"  # remotehost, remoteport\n"), yaml)
        XCTAssertTrue(yaml.contains("  name: mlvpn0  # mlvpn's default interface_name, which scripts and firewall rules may name\n"), yaml)
        XCTAssertTrue(yaml.contains("  # mtu: not set in mlvpn (its default was 1432); the profile's 1444 fits a 1500-byte IPv4 uplink\n"), yaml)
        XCTAssertEqual(try load(try convert(text)).links.count, 1)
    }

    // MARK: pieces

    func testFiltersBecomePinRulesWhereTheyCan() {
        let cases: [(String, PcapPin.Translation?)] = [
            ("udp port 5060", .init(criteria: "udp port 5060", broader: [])),
            ("ip proto icmp", .init(criteria: "icmp", broader: [])),
            ("ip proto \\icmp", .init(criteria: "icmp", broader: [])),
            ("icmp6", .init(criteria: "icmpv6", broader: [])),
            ("ip6 proto 58", .init(criteria: "icmpv6", broader: [])),
            ("tcp && dst port 22", .init(criteria: "tcp port 22", broader: ["either direction (dst port)"])),
            ("ip and udp and src port 53", .init(criteria: "udp port 53", broader: ["IPv4 and IPv6 alike", "either direction (src port)"])),
            ("port 443", .init(criteria: "port 443", broader: [])),
            ("proto 132", .init(criteria: "proto 132", broader: [])),
            ("udp or tcp", nil),
            ("not udp", nil),
            ("host 192.0.2.1", nil),
            ("tcp and udp", nil),
            ("port 1 and port 2", nil),
            ("ip", nil),
            ("", nil),
        ]
        for (expression, expected) in cases { XCTAssertEqual(PcapPin.translate(expression), expected, expression) }
    }

    func testINIReadsCommentsQuotesAndBlanks() throws {
        let ini = try INIFile.parse("\u{FEFF}; top\n[general]\r\n  mode\t=  client  # why\n# x = y\npassword = \"a # b ; c\"  # kept\nempty =\nquoted = \"\"\n", file: "x.conf")
        XCTAssertEqual(ini.sections.map(\.name), ["general"])
        XCTAssertEqual(ini.sections[0].entries.map { "\($0.key)=\($0.value)@\($0.line):\($0.keyColumn):\($0.valueColumn):\($0.quoted)" },
                       ["mode=client@3:3:11:false", "password=a # b ; c@5:1:12:true", "empty=@6:1:8:false", "quoted=@7:1:10:true"])
        // Old Mac line ends, and a dialect with ':' as well: '=' is still what a message suggests.
        XCTAssertEqual(try INIFile.parse("[a]\rk = v\r", file: "x.conf").sections[0].entries.map(\.line), [2])
        XCTAssertThrowsError(try INIFile.parse("[a]\nk v\n", file: "x.conf", syntax: .init(delimiters: ["=", ":"]))) { error in
            XCTAssertEqual("\(error)", "x.conf:2:1: 'k v' is not 'key = value'; add the '=' or comment the line out with '#'")
        }
    }

    func testPassphraseFileIsNamedAfterTheSiteFile() {
        XCTAssertEqual(ImportMlvpn.passphraseName(output: "/etc/tunneld/site.yaml", input: "/etc/mlvpn/x.conf"), "site.passphrase")
        XCTAssertEqual(ImportMlvpn.passphraseName(output: "hub", input: "x.conf"), "hub.passphrase")
        XCTAssertEqual(ImportMlvpn.passphraseName(output: nil, input: "/etc/mlvpn/mlvpn0.conf"), "mlvpn0.passphrase")
    }

    func testHelpShowsAnExample() {
        let help = TunneldCommand.helpMessage(for: ImportMlvpn.self)
        XCTAssertTrue(help.contains("Example:\n  tunneld import mlvpn /etc/mlvpn/site.conf --output /etc/tunneld/site.yaml"), help)
        XCTAssertTrue(help.contains("USAGE: tunneld import mlvpn FILE.conf [--output FILE.yaml]"), help)
    }
}
