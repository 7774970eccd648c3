import Glibc
import XCTest
@testable import Framework

/// The site file's `user:` key, what it decides about secret files, and the parts of
/// the privilege drop that can be checked without dropping this test process's
/// privileges (the drop itself is tested on real daemons: LeastPrivilegeTests).
final class DaemonUserTests: XCTestCase {
    var directory = ""

    override func setUp() {
        var template = Array("/tmp/tunneld-user-XXXXXX".utf8CString)
        directory = String(cString: mkdtemp(&template)!)
        chmod(directory, 0o755)
    }

    override func tearDown() { _ = system("rm -rf '\(directory)'") }

    func testUserKeyNamesAnAccount() throws {
        let spec = try loadSite(siteText(extra: "user: nobody\n"))
        XCTAssertEqual(spec.user?.name, "nobody")
        XCTAssertEqual(spec.user?.uid, 65_534)
        XCTAssertEqual(spec.user?.gid, 65_534)
        XCTAssertNil(try loadSite(siteText()).user, "optional: without it the daemon keeps who started it")
    }

    func testUserKeyErrors() {
        assertProfileError("site.yaml:5:7: no user 'tunneld-nosuchuser' on this system; create it ('adduser --system --group tunneld-nosuchuser') or remove 'user:'") {
            try loadSite(siteText(extra: "user: tunneld-nosuchuser\n"))
        }
        assertProfileError("site.yaml:5:7: user 'root' is root, which keeps every privilege; name an unprivileged user (the package creates 'tunneld') or remove 'user:'") {
            try loadSite(siteText(extra: "user: root\n"))
        }
        assertProfileError("site.yaml:5:7: 'user' in the site file must be a single value, found a mapping") {
            try loadSite(siteText(extra: "user: { name: nobody }\n"))
        }
        assertProfileError("site.yaml:5:1: unknown key 'usr' in the site file (did you mean 'user'?); known: profile, device, links, sessions, pipeline, settings, stages, batch, log, user") {
            try loadSite(siteText(extra: "usr: nobody\n"))
        }
    }

    func testChangingTheUserTakesARestart() throws {
        let before = try loadSite(siteText())
        let after = try loadSite(siteText(extra: "user: nobody\n"))
        XCTAssertEqual(ReloadPlan.restartOnlyChanges(from: before, to: after), ["the user (none → nobody)"])
        XCTAssertEqual(ReloadPlan.restartOnlyChanges(from: after, to: after), [])
    }

    // MARK: secret files belong to the daemon's user

    func secret(_ name: String, owner: uid_t, mode: mode_t = 0o600, text: String = "EICJGkZL6ADpv7yi1UaG9xBKpqYO/qbT25dM3k84xSw=") -> String {
        let path = directory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
        chown(path, owner, 0)
        chmod(path, mode)
        return path
    }

    func testSecretFilesMustBeTheDaemonUsersWhileLoading() throws {
        try XCTSkipUnless(geteuid() == 0, "chown needs root")
        let nobody = DaemonUser.named("nobody")!
        let rootKey = secret("root.key", owner: 0)
        let nobodyKey = secret("nobody.key", owner: 65_534)
        XCTAssertEqual(try DaemonUser.$checkingFiles.withValue(nobody) { try SecretFile.read(nobodyKey) }, "EICJGkZL6ADpv7yi1UaG9xBKpqYO/qbT25dM3k84xSw=")
        XCTAssertThrowsError(try DaemonUser.$checkingFiles.withValue(nobody) { try SecretFile.read(rootKey) }) { error in
            XCTAssertEqual("\(error)", "secret file '\(rootKey)' is owned by root, not by nobody, the user tunneld runs as; give it to that user with 'chown nobody \(rootKey)'")
        }
        XCTAssertThrowsError(try DaemonUser.$checkingFiles.withValue(DaemonUser.current) { try SecretFile.read(nobodyKey) }) { error in
            XCTAssertEqual("\(error)", "secret file '\(nobodyKey)' is owned by nobody, not by root, the user tunneld runs as; give it to that user with 'chown root \(nobodyKey)'")
        }
        // Outside a load (tunneld pubkey): the mode only.
        XCTAssertNoThrow(try SecretFile.read(nobodyKey))
    }

    /// Through a site file: the crypto stage's key file, checked against `user:` (or
    /// root, who runs the tests, without it), the error at the setting.
    func testSiteFileKeyOwnership() throws {
        try XCTSkipUnless(geteuid() == 0, "chown needs root")
        let rootKey = secret("root.key", owner: 0)
        let nobodyKey = secret("nobody.key", owner: 65_534)
        func site(_ key: String, user: String?) -> String {
            siteText(profile: "p2p", extra: "settings:\n  crypto.aead:\n    private-key-file: \(key)\n"
                     + "    peer-public-key: \"EICJGkZL6ADpv7yi1UaG9xBKpqYO/qbT25dM3k84xSw=\"\n" + (user.map { "user: \($0)\n" } ?? ""))
        }
        XCTAssertNoThrow(try loadSite(site(rootKey, user: nil)))
        XCTAssertNoThrow(try loadSite(site(nobodyKey, user: "nobody")))
        assertProfileError("site.yaml:7:23: secret file '\(rootKey)' is owned by root, not by nobody, the user tunneld runs as; give it to that user with 'chown nobody \(rootKey)'") {
            try loadSite(site(rootKey, user: "nobody"))
        }
        assertProfileError("site.yaml:7:23: secret file '\(nobodyKey)' is owned by nobody, not by root, the user tunneld runs as; give it to that user with 'chown root \(nobodyKey)'") {
            try loadSite(site(nobodyKey, user: nil))
        }
    }

    // MARK: what the drop keeps, and how it is verified

    func testCapabilitiesFollowTheLinks() throws {
        XCTAssertEqual(PrivilegeDrop.capabilities(for: try loadSite(siteText())), [.netAdmin])
        let low = try loadSite(siteText(link: "{ name: wan1, bind: 127.0.0.1:53, remote: 127.0.0.2:5080 }"))
        XCTAssertEqual(PrivilegeDrop.capabilities(for: low), [.netBindService, .netAdmin])
        XCTAssertEqual(PrivilegeDrop.Capability.mask([.netBindService, .netAdmin]), 0x1400)
        XCTAssertEqual(PrivilegeDrop.Capability.names(0x1400), "cap_net_bind_service, cap_net_admin")
        XCTAssertEqual(PrivilegeDrop.Capability.names(0), "no capabilities")
    }

    func testThreadCredentialsParseProcStatus() {
        let status = """
            Name:\ttunneld
            Umask:\t0022
            State:\tS (sleeping)
            Uid:\t65534\t65534\t65534\t65534
            Gid:\t65534\t65534\t65534\t65534
            Groups:\t65534
            CapInh:\t0000000000001000
            CapPrm:\t0000000000001000
            CapEff:\t0000000000001000
            CapBnd:\t0000000000001000
            CapAmb:\t0000000000001000
            NoNewPrivs:\t0

            """
        XCTAssertEqual(ThreadCredentials.parse(status, thread: 42),
                       ThreadCredentials(thread: 42, uids: [65_534, 65_534, 65_534, 65_534], gids: [65_534, 65_534, 65_534, 65_534],
                                         inheritable: 0x1000, permitted: 0x1000, effective: 0x1000, bounding: 0x1000, ambient: 0x1000))
        XCTAssertNil(ThreadCredentials.parse("Uid:\t0\t0\t0\t0\n", thread: 1), "a field missing")
        // This process: one entry per thread, root's ids.
        let threads = ThreadCredentials.all()
        XCTAssertFalse(threads.isEmpty)
        XCTAssertTrue(threads.allSatisfy { $0.uids.allSatisfy { $0 == geteuid() } })
    }
}
