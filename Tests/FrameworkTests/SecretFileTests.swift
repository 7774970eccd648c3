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
