import Glibc
import XCTest
@testable import Framework

/// Hooks and status commands (`SettingType.executable`) are checked where the site
/// file names them: owned by root or the daemon's user, writable by their owner only,
/// in folders no one else can write, readable and executable by the daemon's user.
/// Files are made with chmod/chown in a private folder (the tests run as root).
final class ProgramSettingTests: XCTestCase {
    var directory = ""
    /// A uid no account has: a stranger's file.
    let stranger: uid_t = 54_321

    override func setUpWithError() throws {
        try XCTSkipUnless(geteuid() == 0, "chown needs root")
        var template = Array("/tmp/tunneld-programs-XXXXXX".utf8CString)
        directory = String(cString: mkdtemp(&template)!)
        chmod(directory, 0o755)
    }

    override func tearDown() { if !directory.isEmpty { _ = system("rm -rf '\(directory)'") } }

    @discardableResult
    func program(_ name: String, mode: mode_t = 0o755, owner: uid_t = 0) -> String {
        let path = directory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = "#!/bin/sh\n".withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
        chown(path, owner, 0)
        chmod(path, mode)
        return path
    }

    func folder(_ name: String, mode: mode_t = 0o755, owner: uid_t = 0) -> String {
        let path = directory + "/" + name
        mkdir(path, 0o700)
        chown(path, owner, 0)
        chmod(path, mode)
        return path
    }

    /// A broker site naming `hook` as its session.up script; the value starts at line 5, column 15.
    func broker(_ hook: String, user: String? = nil) -> String {
        "profile: l2tp-broker\nlinks:\n  - { name: td, bind: \"127.0.0.1:8942\" }\nsessions:\n  session.up: \(hook)\n"
            + (user.map { "user: \($0)\n" } ?? "")
    }

    func load(_ text: String, file: String = "site.yaml") throws -> TunnelSpec {
        try testLoader().load(siteText: text, file: file)
    }

    let prefix = "site.yaml:5:15: 'session.up' of session manager 'l2tp-broker': "

    func testARootOwnedProgramIsAccepted() throws {
        let path = program("up.sh")
        let spec = try load(broker(path))
        XCTAssertEqual(spec.sessionSettings.path("session.up"), path)
    }

    func testRelativePathsAreFoundBesideTheSiteFile() throws {
        program("up.sh")
        let spec = try load(broker("up.sh"), file: directory + "/site.yaml")
        XCTAssertEqual(spec.sessionSettings.path("session.up"), directory + "/up.sh")
        assertProfileError("\(directory)/site.yaml:5:15: 'session.up' of session manager 'l2tp-broker': program '\(directory)/down.sh' does not exist; install it (owned by root, writable by its owner only) or remove the setting") {
            try self.load(self.broker("down.sh"), file: self.directory + "/site.yaml")
        }
    }

    func testMissingAndEmptyAreRefused() {
        assertProfileError(prefix + "program '\(directory)/missing' does not exist; install it (owned by root, writable by its owner only) or remove the setting") {
            try self.load(self.broker(self.directory + "/missing"))
        }
        assertProfileError("site.yaml:5:15: 'session.up' of session manager 'l2tp-broker' is empty; name a program or remove the setting") {
            try self.load(self.broker("\"\""))
        }
        assertProfileError(prefix + "program '\(directory)' is not a regular file") { try self.load(self.broker(self.directory)) }
    }

    func testWritableByGroupOrOthersIsRefused() {
        for mode: mode_t in [0o775, 0o757, 0o777] {
            let path = program("open-\(String(mode, radix: 8))", mode: mode)
            assertProfileError(prefix + "program '\(path)' is writable by group or others (mode \(String(mode, radix: 8))); make it writable by its owner only with 'chmod go-w \(path)'") {
                try self.load(self.broker(path))
            }
        }
    }

    func testOwnerMustBeRootOrTheDaemonsUser() throws {
        let path = program("theirs.sh", owner: stranger)
        assertProfileError(prefix + "program '\(path)' is owned by uid 54321; tunneld runs the program with its capabilities, so only root may own it: 'chown root \(path)'") {
            try self.load(self.broker(path))
        }
        assertProfileError(prefix + "program '\(path)' is owned by uid 54321; tunneld runs the program with its capabilities, so only root or nobody may own it: 'chown root \(path)'") {
            try self.load(self.broker(path, user: "nobody"))
        }
        let nobodys = program("nobodys.sh", owner: 65_534)
        XCTAssertNoThrow(try load(broker(nobodys, user: "nobody")), "the daemon's own user may own its hooks")
        XCTAssertNoThrow(try load(broker(program("roots.sh"), user: "nobody")))
    }

    func testTheDaemonsUserMustBeAbleToRunIt() {
        let unrunnable = program("plain.txt", mode: 0o644)
        assertProfileError(prefix + "program '\(unrunnable)' is not readable and executable by root (mode 644), the user tunneld runs as; 'chmod 755 \(unrunnable)'") {
            try self.load(self.broker(unrunnable))
        }
        let rootOnly = program("root-only.sh", mode: 0o700)
        XCTAssertNoThrow(try load(broker(rootOnly)))
        assertProfileError(prefix + "program '\(rootOnly)' is not readable and executable by nobody (mode 700), the user tunneld runs as; 'chmod 755 \(rootOnly)'") {
            try self.load(self.broker(rootOnly, user: "nobody"))
        }
    }

    func testFoldersAboveMustBeSafe() {
        let open = folder("open", mode: 0o777)
        let inOpen = open + "/up.sh"
        program("open/up.sh")
        assertProfileError(prefix + "program '\(inOpen)' is in '\(open)', which is writable by group or others (mode 777), so they could replace it; 'chmod go-w \(open)' or move the program") {
            try self.load(self.broker(inOpen))
        }
        // Sticky, like /tmp: others cannot replace a file they do not own.
        let sticky = folder("sticky", mode: 0o1777)
        program("sticky/up.sh")
        XCTAssertNoThrow(try load(broker(sticky + "/up.sh")))

        let theirs = folder("theirs", owner: stranger)
        program("theirs/up.sh")
        assertProfileError(prefix + "program '\(theirs)/up.sh' is in '\(theirs)', which is owned by uid 54321; tunneld runs the program with its capabilities, so only root may own it: 'chown root \(theirs)'") {
            try self.load(self.broker(theirs + "/up.sh"))
        }
    }

    func testSymlinksAreCheckedWhereTheyPoint() {
        let open = folder("open", mode: 0o777)
        program("open/real.sh")
        XCTAssertEqual(symlink(open + "/real.sh", directory + "/link.sh"), 0)
        assertProfileError(prefix + "program '\(directory)/link.sh' is in '\(open)', which is writable by group or others (mode 777), so they could replace it; 'chmod go-w \(open)' or move the program") {
            try self.load(self.broker(self.directory + "/link.sh"))
        }
    }

    func testEveryBrokerHookAndTheClientHookAreChecked() throws {
        let bad = program("bad.sh", mode: 0o777)
        for hook in ["session.up", "session.pre-down", "session.down", "session.mtu-changed", "broker.connection-rate-limit"] {
            let text = "profile: l2tp-broker\nlinks:\n  - { name: td, bind: \"127.0.0.1:8942\" }\nsessions:\n  \(hook): \(bad)\n"
            assertProfileError("site.yaml:5:\(hook.count + 5): '\(hook)' of session manager 'l2tp-broker': program '\(bad)' is writable by group or others (mode 777); make it writable by its owner only with 'chmod go-w \(bad)'") {
                try self.load(text)
            }
        }
        let client = "profile: l2tp-client\nsessions:\n  uuid: abc\n  brokers: [192.0.2.1:8942]\n  hook: \(bad)\n"
        assertProfileError("site.yaml:5:9: 'hook' of session manager 'l2tp-client': program '\(bad)' is writable by group or others (mode 777); make it writable by its owner only with 'chmod go-w \(bad)'") {
            try self.load(client)
        }
    }

    /// Outside a load (no daemon user bound) a program setting is only a string.
    func testNotCheckedOutsideALoad() throws {
        let node = YAMLNode.scalar("/nonexistent/hook", SourceMark(file: "x.yaml", line: 1, column: 1), plain: true)
        XCTAssertEqual(try SettingsValidator.convert(node, to: .executable, name: "'hook'"), .string("/nonexistent/hook"))
    }
}
