import Glibc
import XCTest
@testable import Framework

final class SecretFileTests: XCTestCase {
    var directory = ""

    override func setUp() {
        var template = Array("/tmp/tunneld-secret-XXXXXX".utf8CString)
        directory = String(cString: mkdtemp(&template)!)
    }

    override func tearDown() { _ = system("rm -rf '\(directory)'") }

    func write(_ name: String, _ text: String, mode: mode_t) -> String {
        let path = directory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        fchmod(fd, mode)
        close(fd)
        return path
    }

    func refusal(_ path: String) -> String? {
        do {
            _ = try SecretFile.read(path)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testPrivateFileIsReadAndTrimmed() throws {
        let path = write("key", "  c2VjcmV0\n\n", mode: 0o600)
        XCTAssertEqual(try SecretFile.read(path), "c2VjcmV0")
        let readOnly = write("ro", "abc", mode: 0o400)
        XCTAssertEqual(try SecretFile.read(readOnly), "abc")
    }

    func testSymlinkToAPrivateFileIsFollowed() throws {
        let target = write("target", "abc", mode: 0o600)
        XCTAssertEqual(symlink(target, directory + "/link"), 0)
        XCTAssertEqual(try SecretFile.read(directory + "/link"), "abc")
    }

    func testRefusals() {
        for mode: mode_t in [0o640, 0o604, 0o644, 0o660] {
            let path = write("open-\(mode)", "abc", mode: mode)
            XCTAssertEqual(refusal(path), "secret file '\(path)' is readable by group or others (mode \(String(mode, radix: 8))); make it private with 'chmod 600 \(path)'")
        }
        XCTAssertEqual(refusal(directory), "secret file '\(directory)' is not a regular file")
        XCTAssertEqual(refusal(directory + "/missing"), "cannot read secret file '\(directory)/missing': no such file")
        let big = write("big", String(repeating: "x", count: 5000), mode: 0o600)
        XCTAssertEqual(refusal(big), "secret file '\(big)' is larger than 4096 bytes; it should hold one key or passphrase")
    }

    /// Bytes as they are, for contents that are not text.
    func write(_ name: String, bytes: [UInt8]) -> String {
        let path = directory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return path
    }

    /// The usual ways a secret file ends up not UTF-8: a raw 32-byte key (`head -c 32
    /// /dev/urandom`, not `tunneld genkey`'s base64), a passphrase saved in Latin-1, a
    /// file cut inside a multi-byte character. Each is refused by the reader, and through
    /// a site file the refusal names the setting's file:line:col, for every setting that
    /// names a secret file (private key, pre-shared key, passphrase).
    func testNotUTF8IsRefusedAtTheSettingThatNamesTheFile() throws {
        // 0x8F cannot start a UTF-8 sequence; the rest is valid, so only that byte decides.
        let rawKey = write("raw.key", bytes: [0x8F] + [UInt8](repeating: 0x41, count: 31))
        // "pâsswörd, long enough" in ISO-8859-1: 0xE2 and 0xF6 start sequences that the next byte does not continue.
        let latin1 = write("latin1.pass", bytes: Array("p".utf8) + [0xE2] + Array("ssw".utf8) + [0xF6] + Array("rd, long enough".utf8))
        // "€" is E2 82 AC; the file ends after its first two bytes.
        let cut = write("cut.psk", bytes: Array("EICJGkZL6ADpv7yi1UaG9xBKpqYO/qbT25dM3k84xSw=".utf8) + [0xE2, 0x82])
        for path in [rawKey, latin1, cut] {
            XCTAssertEqual(refusal(path), "secret file '\(path)' is not UTF-8 text; it should hold a key as `tunneld genkey` writes it (base64 text) or a passphrase in UTF-8")
        }

        let good = write("good.key", "EICJGkZL6ADpv7yi1UaG9xBKpqYO/qbT25dM3k84xSw=", mode: 0o600)
        let peer = "    peer-public-key: \"EICJGkZL6ADpv7yi1UaG9xBKpqYO/qbT25dM3k84xSw=\"\n"
        func site(_ crypto: String) -> String { siteText(profile: "p2p", extra: "settings:\n  crypto.aead:\n" + crypto) }
        // The good key loads: what is refused below is refused for its bytes alone.
        XCTAssertNoThrow(try loadSite(site("    private-key-file: \(good)\n" + peer)))
        assertProfileError("site.yaml:7:23: secret file '\(rawKey)' is not UTF-8 text; it should hold a key as `tunneld genkey` writes it (base64 text) or a passphrase in UTF-8") {
            try loadSite(site("    private-key-file: \(rawKey)\n" + peer))
        }
        assertProfileError("site.yaml:9:25: secret file '\(cut)' is not UTF-8 text; it should hold a key as `tunneld genkey` writes it (base64 text) or a passphrase in UTF-8") {
            try loadSite(site("    private-key-file: \(good)\n" + peer + "    preshared-key-file: \(cut)\n"))
        }
        assertProfileError("site.yaml:7:22: secret file '\(latin1)' is not UTF-8 text; it should hold a key as `tunneld genkey` writes it (base64 text) or a passphrase in UTF-8") {
            try loadSite(site("    passphrase-file: \(latin1)\n"))
        }
    }

    func testPathSettingsAreRelativeToTheirFile() {
        let mark = SourceMark(file: "/etc/tunneld/site.yaml", line: 1, column: 1)
        let settings = Settings(values: ["a": .string("site.key"), "b": .string("/abs/key")], marks: ["a": mark, "b": mark])
        XCTAssertEqual(settings.path("a"), "/etc/tunneld/site.key")
        XCTAssertEqual(settings.path("b"), "/abs/key")
        XCTAssertNil(settings.path("c"))
        let bare = Settings(values: ["a": .string("site.key")], marks: ["a": SourceMark(file: "site.yaml", line: 1, column: 1)])
        XCTAssertEqual(bare.path("a"), "site.key", "a file named without a folder: relative to the working folder, like the site file")
    }
}
