import Foundation
import XCTest
@testable import tunneld

/// `tunneld import tunneldigger`: the broker's l2tp_broker.cfg and the C client's command
/// line become site files that `tunneld validate` accepts; what has no equivalent stays
/// as a comment saying why; bad input is an error naming the place.
final class TunneldiggerImportTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Check a produced site file as `tunneld validate` does, with the repository's stock profiles.
    /// `validate` refuses hooks that do not exist, so the ones the file names are
    /// installed in a private folder first, the file pointing there (`installHooks`).
    private func validate(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) throws -> (profile: String, links: Int) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("td-import-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/site.yaml"
        try installHooks(yaml, in: folder).write(toFile: path, atomically: true, encoding: .utf8)
        let spec = try ProfileFiles.loadSpec(site: path, stock: Self.root.appendingPathComponent("plugins.yaml").path)
        return (spec.profile, spec.links.count)
    }

    private func broker(_ text: String) throws -> TunneldiggerImport {
        try TunneldiggerBrokerImporter(file: "l2tp_broker.cfg").convert(text)
    }

    private func brokerError(_ text: String) -> String? {
        do { _ = try broker(text) } catch { return "\(error)" }
        return nil
    }

    private func clientError(_ arguments: [String]) -> String? {
        do { _ = try TunneldiggerClientImporter().convert(arguments) } catch { return "\(error)" }
        return nil
    }

    // MARK: Broker

    /// tunneldigger 0.4's example configuration, every key of §3.10 with its example value.
    static let upstreamExample = """
        [broker]
        ; The address tunnels are accepted on
        address=127.0.0.1
        ; Listening ports, comma-separated: one socket each
        port=53,123,8942
        ; Sockets are bound to this interface
        interface=lo
        ; How many tunnels at most
        max_tunnels=256
        ; The first tunnel id
        tunnel_id_base=100
        ; Seconds between two accepted tunnels (0 = no limit)
        connection_rate_limit=0.2
        ; Per-address limit: this many attempts within the time below (both 0 = off)
        connection_rate_limit_per_ip_count=0
        connection_rate_limit_per_ip_time=0
        ; 0 = path MTU discovery, else a fixed tunnel MTU
        pmtu=0

        [log]
        verbosity=DEBUG
        log_ip_addresses=false

        [hooks]
        session.up=
        session.pre-down=
        session.down=
        session.mtu-changed=
        broker.connection-rate-limit=

        """

    func testUpstreamExampleBecomesAValidBrokerSiteFile() throws {
        let result = try broker(Self.upstreamExample)
        XCTAssertEqual(result.warnings, [])
        XCTAssertEqual(result.yaml, """
            # tunneld site file written by 'tunneld import tunneldigger broker' from l2tp_broker.cfg.
            # Check it with 'tunneld validate'; settings not written here keep tunneld's defaults ('tunneld plugins').
            profile: l2tp-broker
            log: debug                                  # [log] verbosity = DEBUG
            links:                                      # [broker] address = 127.0.0.1, port = 53,123,8942
              - { name: port-53, bind: "127.0.0.1:53", device: lo }
              - { name: port-123, bind: "127.0.0.1:123", device: lo }
              - { name: port-8942, bind: "127.0.0.1:8942", device: lo }
              # device: [broker] interface = lo, bound with SO_BINDTODEVICE as tunneldigger binds its sockets
            sessions:
              max-tunnels: 256                          # max_tunnels = 256
              tunnel-id-base: 100                       # tunnel_id_base = 100
              pmtu: 0                                   # pmtu = 0: discover each client's path MTU
              connection-rate-limit: 200ms              # connection_rate_limit = 0.2 (seconds)
              connection-rate-limit-per-ip-count: 0     # connection_rate_limit_per_ip_count = 0
              connection-rate-limit-per-ip-time: 0s     # connection_rate_limit_per_ip_time = 0 (seconds)
              log-ip-addresses: false                   # [log] log_ip_addresses = false
              # session.up: empty in [hooks], so no hook runs (as in tunneldigger)
              # session.pre-down: empty in [hooks], so no hook runs (as in tunneldigger)
              # session.down: empty in [hooks], so no hook runs (as in tunneldigger)
              # session.mtu-changed: empty in [hooks], so no hook runs (as in tunneldigger)
              # broker.connection-rate-limit: empty in [hooks], so no hook runs (as in tunneldigger)

            """)
        let spec = try validate(result.yaml)
        XCTAssertEqual(spec.profile, "l2tp-broker")
        XCTAssertEqual(spec.links, 3)
    }

    /// Hooks, [DEFAULT] and %-interpolation as configparser resolves them, keys of older
    /// releases kept as comments with the reason, unknown ones warned about by line.
    func testHooksInterpolationOlderKeysAndUnknownOnes() throws {
        let result = try broker("""
            [DEFAULT]
            scripts = /srv/tunneldigger/broker/scripts

            [broker]
            address = 192.0.2.1
            port = 8942, 53,, 8942, 70000
            interface = eth0
            max_tunnels = 2000
            port_base = 20000
            tunnel_id_base = 1000
            namespace = default
            check_modules = true
            tunnel_timeout = 30
            connection_rate_limit = 10
            connection_rate_limit_per_ip_count = 5
            connection_rate_limit_per_ip_time = 1.5
            pmtu = 1400
            colour = blue

            [log]
            filename = tunneldigger-broker.log
            verbosity = WARNING
            log_ip_addresses = yes

            [hooks]
            session.up = %(scripts)s/session.up.sh
            session.pre-down = %(scripts)s/session.pre-down.sh
            session.down = scripts/session.down.sh
            session.mtu-changed = /opt/td/100%%.sh
            broker.connection-rate-limit = %(scripts)s/rate limit.sh

            [Extra]
            key = value

            """)
        XCTAssertEqual(result.yaml, """
            # tunneld site file written by 'tunneld import tunneldigger broker' from l2tp_broker.cfg.
            # Check it with 'tunneld validate'; settings not written here keep tunneld's defaults ('tunneld plugins').
            profile: l2tp-broker
            log: warning                                # [log] verbosity = WARNING
            links:                                      # [broker] address = 192.0.2.1, port = 8942, 53,, 8942, 70000
              - { name: port-8942, bind: "192.0.2.1:8942", device: eth0 }
              - { name: port-53, bind: "192.0.2.1:53", device: eth0 }
              # device: [broker] interface = eth0, bound with SO_BINDTODEVICE as tunneldigger binds its sockets
            sessions:
              max-tunnels: 2000                         # max_tunnels = 2000
              tunnel-id-base: 1000                      # tunnel_id_base = 1000
              pmtu: 1400                                # pmtu = 1400: fixed tunnel MTU
              connection-rate-limit: 10s                # connection_rate_limit = 10 (seconds)
              connection-rate-limit-per-ip-count: 5     # connection_rate_limit_per_ip_count = 5
              connection-rate-limit-per-ip-time: 1500ms  # connection_rate_limit_per_ip_time = 1.5 (seconds)
              timeout: 30s                              # tunnel_timeout = 30 (seconds; tunneldigger before 0.4)
              log-ip-addresses: true                    # [log] log_ip_addresses = yes
              session.up: /srv/tunneldigger/broker/scripts/session.up.sh  # [hooks] session.up
              session.pre-down: /srv/tunneldigger/broker/scripts/session.pre-down.sh  # [hooks] session.pre-down
              session.down: scripts/session.down.sh     # [hooks] session.down (relative: make it absolute)
              session.mtu-changed: "/opt/td/100%.sh"    # [hooks] session.mtu-changed
              broker.connection-rate-limit: "/srv/tunneldigger/broker/scripts/rate limit.sh"  # [hooks] broker.connection-rate-limit
            # Not carried over from l2tp_broker.cfg:
            #   line 2, [DEFAULT] scripts = /srv/tunneldigger/broker/scripts: referenced as %(scripts)s, resolved in the values above
            #   line 9, [broker] port_base = 20000: tunneldigger before 0.4 moved each tunnel to its own UDP port from this base behind NAT rules; tunneld keeps every tunnel on the port the client dialled, as tunneldigger 0.4 does
            #   line 11, [broker] namespace = default: tunneldigger before 0.4 tagged its NAT rules with it so that several brokers could share a host; tunneld sets up no NAT rules (give each broker its own ports and tunnel-id range)
            #   line 12, [broker] check_modules = true: tunneldigger before 0.4 checked for the L2TP kernel modules at start; tunneld looks for the kernel's l2tp family itself and otherwise runs its userspace data plane (sessions: data-plane)
            #   line 18, [broker] colour = blue: not a key tunneldigger reads
            #   line 21, [log] filename = tunneldigger-broker.log: tunneld logs to standard error (the journal under systemd); redirect it to keep a file
            #   line 33, [Extra] key = value: in a section tunneldigger does not read

            """)
        XCTAssertEqual(result.warnings, [
            "l2tp_broker.cfg:6: warning: port '' is not a port number; skipped, as tunneldigger skips it",
            "l2tp_broker.cfg:6: warning: port 8942 is listed twice; one link serves it",
            "l2tp_broker.cfg:6: warning: port 70000 is outside 1...65535; skipped",
            "l2tp_broker.cfg:18: warning: unknown key 'colour' in [broker]; kept as a comment (tunneldigger ignores it too)",
            "l2tp_broker.cfg:28: warning: hook 'scripts/session.down.sh' is a relative path: tunneldigger ran it from its working directory, tunneld looks beside the site file; write an absolute path",
            "l2tp_broker.cfg:32: warning: unknown section [Extra] (tunneldigger reads [broker], [log] and [hooks]); its keys are kept as comments",
        ])
        let spec = try validate(result.yaml)
        XCTAssertEqual(spec.links, 2)
    }

    /// Only what a site file needs: no device, an IPv6 address, CRLF line ends, ':' as
    /// the delimiter, and a fixed MTU tunneld cannot take raised as tunneldigger raises it.
    func testMinimalIPv6CRLFAndASmallFixedMTU() throws {
        let result = try broker("[broker]\r\naddress: 2001:db8::1\r\nport: 8942\r\ninterface:\r\npmtu = 500\r\n")
        XCTAssertEqual(result.yaml, """
            # tunneld site file written by 'tunneld import tunneldigger broker' from l2tp_broker.cfg.
            # Check it with 'tunneld validate'; settings not written here keep tunneld's defaults ('tunneld plugins').
            profile: l2tp-broker
            links:                                      # [broker] address = 2001:db8::1, port = 8942
              - { name: port-8942, bind: "[2001:db8::1]:8942" }
              # [broker] interface is empty: sockets bound to no device (SO_BINDTODEVICE with '' binds to none in tunneldigger too)
            sessions:
              pmtu: 1280                                # pmtu = 500, raised to 1280 as tunneldigger does

            """)
        XCTAssertEqual(result.warnings, ["l2tp_broker.cfg:5: warning: pmtu = 500 written as 1280: tunneldigger raises tunnel MTUs below 1280 to 1280, and tunneld takes no fixed MTU below 576"])
        XCTAssertEqual(try validate(result.yaml).links, 1)
    }

    /// Every malformed file or value is an error at file:line:column saying what to do.
    func testMalformedConfigurationsNameThePlace() {
        let ok = "[broker]\naddress=192.0.2.1\nport=8942\n"
        let cases: [(String, String)] = [
            ("address=192.0.2.1\n[broker]\n",
             "l2tp_broker.cfg:1:1: 'address' comes before any [section]; move it under the section it belongs to"),
            ("[broker]\naddress 192.0.2.1\n",
             "l2tp_broker.cfg:2:1: 'address 192.0.2.1' is not 'key = value'; add the '=' or comment the line out with '#'"),
            ("[broker\naddress=192.0.2.1\n",
             "l2tp_broker.cfg:1:1: section header '[broker' has no closing ']'; write it as [NAME]"),
            ("[broker]\naddress=192.0.2.1\nAddress=192.0.2.2\n",
             "l2tp_broker.cfg:3:1: 'address' appears again in [broker] (first at line 2); configparser refuses that: keep one"),
            (ok + "[broker]\n",
             "l2tp_broker.cfg:4:1: section [broker] appears again (first at line 1); configparser refuses that: merge the two"),
            ("[log]\nverbosity=DEBUG\n",
             "l2tp_broker.cfg: no [broker] section; tunneldigger's broker needs one with address and port (see l2tp_broker.cfg.example)"),
            ("[Broker]\naddress=192.0.2.1\nport=8942\n",
             "l2tp_broker.cfg:1:1: [Broker] is not [broker]: configparser's section names are case-sensitive, so tunneldigger would not read it either; write [broker]"),
            ("[broker]\nport=8942\n",
             "l2tp_broker.cfg:1:1: [broker] has no 'address'; add 'address = ' and the IP address to accept tunnels on"),
            ("[broker]\naddress=192.0.2.1\n",
             "l2tp_broker.cfg:1:1: [broker] has no 'port'; add e.g. 'port = 53,123,8942'"),
            ("[broker]\naddress=broker.example.net\nport=8942\n",
             "l2tp_broker.cfg:2:9: address must be an IP address (tunneld binds literal addresses, never names), found 'broker.example.net'"),
            ("[broker]\naddress=192.0.2.1\nport=dns, ntp\n",
             "l2tp_broker.cfg:3:6: no usable port in 'dns, ntp'; list one or more, e.g. port = 53,123,8942"),
            ("[broker]\naddress=192.0.2.1\nport=8942\ninterface=a very long name\n",
             "l2tp_broker.cfg:4:11: interface must be an interface name (1 to 15 characters, no '/' or blanks), found 'a very long name'"),
            (ok + "max_tunnels=many\n",
             "l2tp_broker.cfg:4:13: max_tunnels must be a whole number, found 'many'"),
            (ok + "max_tunnels=70000\n",
             "l2tp_broker.cfg:4:13: max_tunnels must be in 1...65535 for tunneld's max-tunnels, found 70000"),
            (ok + "tunnel_id_base=99999\n",
             "l2tp_broker.cfg:4:16: tunnel ids up to 101022 make interface names like l2tp101022-101022, longer than 15 characters; keep tunnel_id_base + max_tunnels - 1 below 100000"),
            (ok + "connection_rate_limit=-1\n",
             "l2tp_broker.cfg:4:23: connection_rate_limit must be 0 to 3600 seconds for tunneld's connection-rate-limit, found -1"),
            (ok + "connection_rate_limit=often\n",
             "l2tp_broker.cfg:4:23: connection_rate_limit must be a number of seconds such as 0.2, found 'often'"),
            (ok + "[log]\nverbosity=LOUD\n",
             "l2tp_broker.cfg:5:11: verbosity must be a logging level (DEBUG, INFO, WARNING, ERROR or CRITICAL), found 'LOUD'"),
            (ok + "[log]\nlog_ip_addresses=maybe\n",
             "l2tp_broker.cfg:5:18: log_ip_addresses must be true or false (or yes/no, on/off, 1/0), found 'maybe'"),
            (ok + "[hooks]\nsession.up=/srv/%(dir)s/up.sh\n",
             "l2tp_broker.cfg:5:12: '%(dir)s' names no key of [hooks] or [DEFAULT]; write '%%' for a literal '%'"),
            (ok + "[hooks]\nsession.up=/srv/100%/up.sh\n",
             "l2tp_broker.cfg:5:12: a '%' must be written '%%' (configparser reads '%(key)s' as another key's value)"),
            (ok + "[hooks]\na=%(b)s\nb=%(a)s\nsession.up=%(a)s\n",
             "l2tp_broker.cfg:7:12: '%(…)s' references nest deeper than 10 (configparser's limit); is there a loop?"),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(brokerError(text), expected, text)
        }
    }

    func testFractionsOfAMillisecondAreRoundedWithAWarning() throws {
        let result = try broker("[broker]\naddress=192.0.2.1\nport=8942\nconnection_rate_limit=0.0005\n")
        XCTAssertTrue(result.yaml.contains("  connection-rate-limit: 1ms "), result.yaml)
        XCTAssertEqual(result.warnings, ["l2tp_broker.cfg:4: warning: connection_rate_limit = 0.0005 rounded to 1 ms (tunneld's durations are whole milliseconds)"])
    }

    // MARK: Client

    func testClientCommandLineWithEveryOption() throws {
        let arguments = ["-u", "c0:ff:ee:00:00:01", "-b", "broker1.example.net:8942", "-b", "192.0.2.1:53", "-i", "l2tp0",
                         "-s", "/etc/tunneldigger/hook.sh", "-t", "1", "-L", "10000", "-a", "-l", "192.0.2.7", "-I", "wan", "-f", "-h"]
        let result = try TunneldiggerClientImporter().convert(arguments)
        XCTAssertEqual(result.warnings, [])
        XCTAssertEqual(result.yaml, """
            # tunneld site file written by 'tunneld import tunneldigger client' from the C client's options:
            #   -u c0:ff:ee:00:00:01 -b broker1.example.net:8942 -b 192.0.2.1:53 -i l2tp0 -s /etc/tunneldigger/hook.sh -t 1 -L 10000 -a -l 192.0.2.7 -I wan -f -h
            # Check it with 'tunneld validate'; settings not written here keep tunneld's defaults ('tunneld plugins').
            profile: l2tp-client
            sessions:
              uuid: "c0:ff:ee:00:00:01"                 # -u
              brokers:                                  # -b, in the order given
                - "broker1.example.net:8942"
                - "192.0.2.1:53"
              interface: l2tp0                          # -i
              selection: usage                          # -a: the least used broker
              tunnel-id: 1                              # -t 1
              limit: 10000                              # -L 10000: kbit/s the broker shapes toward this router
              hook: /etc/tunneldigger/hook.sh           # -s: run as HOOK session.up|session.down IFNAME
              bind: 192.0.2.7                           # -l
              bind-device: wan                          # -I: SO_BINDTODEVICE
            # Not carried over:
            #   -f: tunneld always logs to standard error (the journal under systemd); 'log:' sets the level
            #   -h: makes the C client print its usage and exit; nothing to carry over

            """)
        let spec = try validate(result.yaml)
        XCTAssertEqual(spec.profile, "l2tp-client")
    }

    /// getopt's forms: the program name first, grouped flags, values attached, the last
    /// of a repeated option and of -a/-g/-r winning (with a warning), strtoul's octal.
    func testClientGetoptForms() throws {
        let result = try TunneldiggerClientImporter().convert(
            ["/usr/sbin/tunneldigger", "-afu", "first", "-bbroker.example.net:8942", "-i", "l2tp0", "-r", "-u", "second", "-t07", "-g", "-b", "[2001:db8::1]:8942"])
        XCTAssertEqual(result.yaml, """
            # tunneld site file written by 'tunneld import tunneldigger client' from the C client's options:
            #   /usr/sbin/tunneldigger -afu first -bbroker.example.net:8942 -i l2tp0 -r -u second -t07 -g -b [2001:db8::1]:8942
            # Check it with 'tunneld validate'; settings not written here keep tunneld's defaults ('tunneld plugins').
            profile: l2tp-client
            sessions:
              uuid: second                              # -u
              brokers:                                  # -b, in the order given
                - "broker.example.net:8942"
                - "[2001:db8::1]:8942"
              interface: l2tp0                          # -i
              selection: first                          # -g: the first broker that answers
              tunnel-id: 7                              # -t 07
            # Not carried over:
            #   -f: tunneld always logs to standard error (the journal under systemd); 'log:' sets the level

            """)
        XCTAssertEqual(result.warnings, [
            "warning: -u is given 2 times; the last (second) is used, as the C client does",
            "warning: -a, -g and -r are all given; the last (-g) wins, as in the C client",
        ])
        XCTAssertEqual(try validate(result.yaml).profile, "l2tp-client")
        let hex = try TunneldiggerClientImporter().convert(["-u", "my router", "-i", "td0", "-b", "h:1", "-t", "0x10", "-s", "hook.sh"])
        XCTAssertTrue(hex.yaml.contains("#   -u 'my router' -i td0 -b h:1 -t 0x10 -s hook.sh\n"), hex.yaml)
        XCTAssertTrue(hex.yaml.contains("  uuid: \"my router\" "), hex.yaml)
        XCTAssertTrue(hex.yaml.contains("  tunnel-id: 16 "), hex.yaml)
        XCTAssertEqual(hex.warnings, ["warning: -s 'hook.sh' is a relative path: the C client ran it from its working directory, tunneld looks beside the site file; write an absolute path"])
    }

    func testClientErrorsNameTheOption() {
        let base = ["-u", "x", "-i", "l2tp0", "-b", "h:1"]
        let cases: [([String], String)] = [
            (base + ["-x"], "-x is not an option of the tunneldigger client; it has -u, -b, -i, -I, -l, -s, -t, -L, -a, -g, -r, -f, -h"),
            (base + ["--foreground"], "--foreground is not an option of the tunneldigger client, which has single letters only: -u, -b, -i, -I, -l, -s, -t, -L, -a, -g, -r, -f, -h"),
            (base + ["-p", "5"], "-p is not an option of the tunneldigger client: getopt accepts '-p 5', then the client stops with 'Invalid option', so no working command line has it; remove it"),
            (base + ["-u"], "-u needs a value (-u UUID)"),
            (base + ["stray"], "'stray' is not an option; the C client takes options only (did a value with spaces lose its quotes?)"),
            (base + ["--", "stray"], "'stray' after '--' is not an option; the C client takes options only"),
            ([], "no options given; put the C client's options after '--', e.g. -- -u UUID -i l2tp0 -b broker.example.net:8942"),
            (["-u", "x", "-b", "h:1"], "the C client needs -u UUID, -i IFNAME and at least one -b HOST:PORT; missing: -i"),
            (["-i", "l2tp0"], "the C client needs -u UUID, -i IFNAME and at least one -b HOST:PORT; missing: -u, -b"),
            (["-u", "x", "-i", "l2tp0", "-b", "host"], "-b 'host': write host:port, e.g. -b broker.example.net:8942 (an IPv6 address as [2001:db8::1]:8942)"),
            (["-u", "x", "-i", "l2tp0", "-b", "2001:db8::1:8942"], "-b '2001:db8::1:8942': write host:port, e.g. -b broker.example.net:8942 (an IPv6 address as [2001:db8::1]:8942)"),
            (["-u", "x", "-i", "l2tp0", "-b", "h:domain"], "-b 'h:domain': 'domain' is a service name; write its port number (see /etc/services): tunneld does not look names of services up"),
            (["-u", "x", "-i", "l2tp0", "-b", "h:0"], "-b 'h:0': the port must be a number from 1 to 65535"),
            (["-u", "x", "-i", "l2tp0", "-b", ":1"], "-b ':1': the host is missing; write host:port"),
            (["-u", "x", "-i", "l2tp0"] + (1...11).flatMap { ["-b", "h\($0):1"] }, "-b is given 11 times; the C client takes at most 10 brokers (MAX_BROKERS), and so does tunneld"),
            (base + ["-t", "0"], "-t '0': the tunnel id must be a number from 1 to 4294967295 (decimal, 0x hex or 0 octal)"),
            (base + ["-t", "abc"], "-t 'abc': the tunnel id must be a number from 1 to 4294967295 (decimal, 0x hex or 0 octal)"),
            (base + ["-L", "-5"], "-L '-5': the limit must be kbit/s from 0 (none) to 4294967295"),
            (base + ["-l", "not-an-ip"], "-l 'not-an-ip' is not an IP address (the C client would silently bind 0.0.0.0); write e.g. -l 192.0.2.7"),
            (base + ["-I", "a/b"], "-I 'a/b' is not an interface name (1 to 15 characters, no '/' or blanks)"),
            (["-u", "x", "-i", "way-too-long-name", "-b", "h:1"], "-i 'way-too-long-name' is not an interface name (1 to 15 characters, no '/' or blanks)"),
            (["-u", String(repeating: "a", count: 239), "-i", "l2tp0", "-b", "h:1"], "-u: the uuid is 239 bytes; 1 to 238 fit the PREPARE message next to the tunnel id and features"),
        ]
        for (arguments, expected) in cases {
            XCTAssertEqual(clientError(arguments), expected, arguments.joined(separator: " "))
        }
    }

    // MARK: Commands

    func testSubcommandsHelpShowsAnExample() {
        let broker = TunneldCommand.helpMessage(for: ImportTunneldiggerBroker.self)
        XCTAssertTrue(broker.contains("\n  tunneld import tunneldigger broker l2tp_broker.cfg --output broker.yaml\n"), broker)
        let client = TunneldCommand.helpMessage(for: ImportTunneldiggerClient.self)
        XCTAssertTrue(client.contains("\n  tunneld import tunneldigger client --output l2tp.yaml -- \\\n    -u c0:ff:ee:00:00:01 -i l2tp0 -b broker.example.net:8942 -a -s /etc/td/hook\n"), client)
        XCTAssertEqual(ImportTunneldigger.configuration.subcommands.map { $0._commandName }, ["broker", "client"])
    }

    func testCommandLineReachesTheClientOptionsAfterTheTerminator() throws {
        let command = try ImportTunneldiggerClient.parse(["--output", "x.yaml", "--", "-u", "x", "-i", "l2tp0", "-b", "h:1", "-h"])
        XCTAssertEqual(command.output, "x.yaml")
        XCTAssertEqual(command.options, ["-u", "x", "-i", "l2tp0", "-b", "h:1", "-h"])
    }
}
