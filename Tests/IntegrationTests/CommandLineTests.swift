import XCTest

/// `tunneld validate` and `tunneld plugins`: exit codes and messages, no network.
final class CommandLineTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        try Lab.requireBinary()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tunneld-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let directory = self.directory!
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
    }

    func tunneld(_ arguments: String...) throws -> (status: Int32, stdout: String, stderr: String) {
        try Lab.runTunneld(arguments)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testValidateAcceptsAGoodFile() throws {
        let path = try write("good.yaml", """
            profile: plain
            device: { name: tun0, mtu: 1400, address: 10.99.0.1/30 }
            links:
              - { name: wan1, bind: 10.201.1.1:5080, remote: 10.201.1.2:5080 }
            """)
        let result = try tunneld("validate", path, "--stock", Lab.stockProfiles)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("valid (profile 'plain', 1 link)"), result.stdout)
    }

    func testValidateNamesFileLineColumnOfAnError() throws {
        let path = try write("typo.yaml", """
            profile: plain
            device: { name: tun0, mtu: 1400 }
            pipeline:
              encrypt: encrpyt
            links:
              - { name: wan1, bind: 10.201.1.1:5080 }
            """)
        let result = try tunneld("validate", path, "--stock", Lab.stockProfiles)
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "\(path):4:12: unknown stage 'encrpyt' in slot 'encrypt'; known: crypto.aead, none\n")
    }

    func testValidateRejectsAFileThatIsNotYAML() throws {
        let path = try write("broken.yaml", "profile: plain\ndevice: { name: tun0\n  links: [\n")
        let result = try tunneld("validate", path, "--stock", Lab.stockProfiles)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("\(path):"), result.stderr)
        XCTAssertTrue(result.stderr.contains("not valid YAML"), result.stderr)
    }

    func testValidateReportsAMissingFile() throws {
        let result = try tunneld("validate", "/nonexistent/site.yaml", "--stock", Lab.stockProfiles)
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "cannot read site file '/nonexistent/site.yaml': no such file\n")
    }

    func testPluginsListsStagesSlotsAndSettings() throws {
        let result = try tunneld("plugins")
        XCTAssertEqual(result.status, 0)
        XCTAssertTrue(result.stdout.contains("stage tun [ingress, egress]"), result.stdout)
        XCTAssertTrue(result.stdout.contains("stage udp [transport]"), result.stdout)
        XCTAssertTrue(result.stdout.contains("stage example.dscp-filter [custom (after:/before: a slot)]"), result.stdout)
        XCTAssertTrue(result.stdout.contains("drop: a list of an integer in 0...63 (required)"), result.stdout)
    }

    func testGenkeyPubkeyAndTheSecretFileCheck() throws {
        let keyPath = directory.appendingPathComponent("site.key").path
        XCTAssertEqual(try tunneld("genkey", "--out", keyPath).status, 0)
        let mode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        let again = try tunneld("genkey", "--out", keyPath)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("an existing key is never overwritten"), again.stderr)
        let publicKey = try tunneld("pubkey", keyPath)
        XCTAssertEqual(publicKey.status, 0)
        XCTAssertEqual(publicKey.stdout.count, 45, "44 characters of base64 and a newline")
        let printed = try tunneld("genkey")
        XCTAssertEqual(printed.stdout.count, 45)
        XCTAssertNotEqual(printed.stdout, try tunneld("genkey").stdout)

        let site = try write("site.yaml", """
            profile: p2p
            device: { name: tun0, address: 10.99.0.1/30 }
            links:
              - { name: wan1, bind: 10.201.1.1:5080, remote: 10.201.1.2:5080 }
            settings:
              crypto.aead: { private-key-file: site.key, peer-public-key: "\(publicKey.stdout.trimmingCharacters(in: .whitespacesAndNewlines))" }
            """)
        XCTAssertEqual(try tunneld("validate", site, "--stock", Lab.stockProfiles).status, 0)
        chmod(keyPath, 0o640)
        let refused = try tunneld("validate", site, "--stock", Lab.stockProfiles)
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.stderr, "\(site):6:36: secret file '\(keyPath)' is readable by group or others (mode 640); make it private with 'chmod 600 \(keyPath)'\n")
        let run = try tunneld("run", site, "--stock", Lab.stockProfiles)
        XCTAssertEqual(run.status, 1, "run refuses before touching the network")
        XCTAssertTrue(run.stderr.contains("make it private with 'chmod 600"), run.stderr)
        XCTAssertFalse(run.stderr.contains(try String(contentsOfFile: keyPath, encoding: .utf8).prefix(20)), "the key itself is never printed")
    }
}
