import Glibc
import XCTest
@testable import Framework

final class SettingsTests: XCTestCase {
    private let at = SourceMark(file: "s.yaml", line: 2, column: 9)

    private func scalar(_ text: String, plain: Bool = true) -> YAMLNode { .scalar(text, at, plain: plain) }

    private func convert(_ node: YAMLNode, _ type: SettingType) throws -> SettingValue {
        try SettingsValidator.convert(node, to: type, name: "'x'")
    }

    private func convert(_ text: String, _ type: SettingType, plain: Bool = true) throws -> SettingValue {
        try convert(scalar(text, plain: plain), type)
    }

    func testInteger() throws {
        XCTAssertEqual(try convert("5", .integer(1...10)), .integer(5))
        XCTAssertEqual(try convert("10", .integer(1...10)), .integer(10))
        assertProfileError("s.yaml:2:9: 'x' must be an integer in 1...10, found 0") { try self.convert("0", .integer(1...10)) }
        assertProfileError("s.yaml:2:9: 'x' must be an integer in 1...10, found -3") { try self.convert("-3", .integer(1...10)) }
        assertProfileError("s.yaml:2:9: 'x' must be an integer in 1...10, found 'abc'") { try self.convert("abc", .integer(1...10)) }
        assertProfileError("s.yaml:2:9: 'x' must be an integer in 1...10, found '5'") { try self.convert("5", .integer(1...10), plain: false) }
        assertProfileError("s.yaml:2:9: 'x' must be an integer in 1...10, found '99999999999999999999'") {
            try self.convert("99999999999999999999", .integer(1...10))
        }
        assertProfileError("s.yaml:2:9: 'x' must be an integer in 1...10, found a list") { try self.convert(.sequence([], self.at), .integer(1...10)) }
    }

    func testString() throws {
        XCTAssertEqual(try convert("hello world", .string), .string("hello world"))
        XCTAssertEqual(try convert("5", .string, plain: false), .string("5"))
        XCTAssertEqual(try convert("", .string), .string(""))
        assertProfileError("s.yaml:2:9: 'x' must be a string, found a mapping") { try self.convert(.mapping([], self.at), .string) }
    }

    func testBoolean() throws {
        for text in ["true", "yes", "on"] { XCTAssertEqual(try convert(text, .boolean), .boolean(true), text) }
        for text in ["false", "no", "off"] { XCTAssertEqual(try convert(text, .boolean), .boolean(false), text) }
        assertProfileError("s.yaml:2:9: 'x' must be true or false, found '1'") { try self.convert("1", .boolean) }
        assertProfileError("s.yaml:2:9: 'x' must be true or false, found 'maybe'") { try self.convert("maybe", .boolean) }
    }

    func testChoice() throws {
        XCTAssertEqual(try convert("both", .choice(["send", "receive", "both"])), .string("both"))
        assertProfileError("s.yaml:2:9: 'x' must be one of send, receive, both, found 'Both'") {
            try self.convert("Both", .choice(["send", "receive", "both"]))
        }
    }

    func testList() throws {
        let type = SettingType.list(.integer(0...63))
        let items: [YAMLNode] = [scalar("46"), .scalar("8", SourceMark(file: "s.yaml", line: 2, column: 14), plain: true)]
        XCTAssertEqual(try convert(.sequence(items, at), type), .list([.integer(46), .integer(8)]))
        XCTAssertEqual(try convert(.sequence([], at), type), .list([]))
        XCTAssertEqual(try convert("7", type), .list([.integer(7)]), "a single value is a list of one")
        let bad: [YAMLNode] = [scalar("46"), .scalar("99", SourceMark(file: "s.yaml", line: 3, column: 4), plain: true)]
        assertProfileError("s.yaml:3:4: 'x' must be an integer in 0...63, found 99") { try self.convert(.sequence(bad, self.at), type) }
        assertProfileError("s.yaml:2:9: 'x' must be a list of an integer in 0...63, found a mapping") {
            try self.convert(.mapping([], self.at), type)
        }
        let nested: [YAMLNode] = [.sequence([], SourceMark(file: "s.yaml", line: 4, column: 1))]
        assertProfileError("s.yaml:4:1: 'x' must be an integer in 0...63, found a list") { try self.convert(.sequence(nested, self.at), type) }
        XCTAssertEqual(try convert(.sequence([scalar("a"), scalar("b")], at), .list(.string)), .list([.string("a"), .string("b")]))
    }

    func testEndpoint() throws {
        XCTAssertEqual(try convert("192.0.2.1:5080", .endpoint), .endpoint(SocketAddress.parse("192.0.2.1:5080")!))
        XCTAssertEqual(try convert("[2001:db8::1]:5080", .endpoint).description, "[2001:db8::1]:5080")
        assertProfileError("s.yaml:2:9: 'x' must be an address:port such as 192.0.2.1:5080 or [2001:db8::1]:5080, found 'example.com:80'") {
            try self.convert("example.com:80", .endpoint)
        }
    }

    func testMilliseconds() throws {
        let type = SettingType.milliseconds(0...10_000)
        XCTAssertEqual(try convert("250ms", type), .integer(250))
        XCTAssertEqual(try convert("2s", type), .integer(2000))
        XCTAssertEqual(try convert("100", type), .integer(100))
        XCTAssertEqual(try convert("0ms", type), .integer(0))
        XCTAssertEqual(try convert("10s", type), .integer(10_000))
        XCTAssertEqual(try convert("250ms", type, plain: false), .integer(250))
        let expected = "'x' must be a duration such as 250ms or 2s (0...10000 ms)"
        assertProfileError("s.yaml:2:9: \(expected), found '1.5s'") { try self.convert("1.5s", type) }
        assertProfileError("s.yaml:2:9: \(expected), found 'ms'") { try self.convert("ms", type) }
        assertProfileError("s.yaml:2:9: \(expected), found 's'") { try self.convert("s", type) }
        assertProfileError("s.yaml:2:9: \(expected), found '2 s'") { try self.convert("2 s", type) }
        assertProfileError("s.yaml:2:9: \(expected), found '2min'") { try self.convert("2min", type) }
        assertProfileError("s.yaml:2:9: \(expected), found 20000 ms") { try self.convert("20s", type) }
        assertProfileError("s.yaml:2:9: \(expected), found 10001 ms") { try self.convert("10001ms", type) }
        assertProfileError("s.yaml:2:9: \(expected), found -5 ms") { try self.convert("-5ms", type) }
    }

    /// A number of seconds too large for Int once multiplied by 1000 must be an error,
    /// not a crash; see the report (parseMilliseconds multiplies with a trapping `*`).
    func testHugeSecondsAreAnErrorNotACrash() {
        let end = runInChild {
            let node = YAMLNode.scalar("10000000000000000s", SourceMark(file: "s.yaml", line: 1, column: 1), plain: true)
            do {
                _ = try SettingsValidator.convert(node, to: .milliseconds(0...10_000), name: "'x'")
                _exit(2)  // accepted: wrong too
            } catch let error as ProfileError {
                let ok = error.description == "s.yaml:1:1: 'x' must be a duration such as 250ms or 2s (0...10000 ms), found '10000000000000000s'"
                _exit(ok ? 0 : 3)
            } catch {
                _exit(4)
            }
        }
        XCTAssertEqual(end, .exited(0), "converting '10000000000000000s' \(end)")
    }

    func testTypeDescriptions() {
        XCTAssertEqual(SettingType.integer(1...5).description, "an integer in 1...5")
        XCTAssertEqual(SettingType.string.description, "a string")
        XCTAssertEqual(SettingType.boolean.description, "true or false")
        XCTAssertEqual(SettingType.choice(["a", "b"]).description, "one of a, b")
        XCTAssertEqual(SettingType.list(.boolean).description, "a list of true or false")
        XCTAssertEqual(SettingType.endpoint.description, "an address:port such as 192.0.2.1:5080 or [2001:db8::1]:5080")
        XCTAssertEqual(SettingType.milliseconds(1...9).description, "a duration such as 250ms or 2s (1...9 ms)")
        XCTAssertEqual(SettingValue.list([.integer(1), .string("a"), .boolean(false)]).description, "[1, a, false]")
        XCTAssertEqual(SettingValue.endpoint(SocketAddress.parse("[::1]:9")!).description, "[::1]:9")
    }

    // MARK: validate

    private let specs = [
        SettingSpec("count", .integer(1...9), default: .integer(3), help: "how many"),
        SettingSpec("peer", .endpoint, required: true, help: "where to send"),
        SettingSpec("label", .string, help: "optional, no default"),
    ]

    private func mapping(_ entries: [(String, String, Int)]) -> YAMLNode {
        .mapping(entries.map { (key: $0.0, keyMark: SourceMark(file: "s.yaml", line: $0.2, column: 3),
                                value: YAMLNode.scalar($0.1, SourceMark(file: "s.yaml", line: $0.2, column: 10), plain: true)) },
                 SourceMark(file: "s.yaml", line: 5, column: 3))
    }

    func testValidateAppliesDefaultsAndValues() throws {
        let settings = try SettingsValidator.validate(mapping([("peer", "10.0.0.1:80", 6)]), specs: specs, owner: "stage 'x'", at: at)
        XCTAssertEqual(settings.integer("count"), 3)
        XCTAssertEqual(settings.endpoint("peer"), SocketAddress.parse("10.0.0.1:80"))
        XCTAssertNil(settings["label"])
        XCTAssertNil(settings.mark("count"))
        XCTAssertEqual(settings.mark("peer"), SourceMark(file: "s.yaml", line: 6, column: 10))
        // Wrong-type accessors give nothing.
        XCTAssertNil(settings.string("count"))
        XCTAssertNil(settings.boolean("count"))
        XCTAssertNil(settings.integer("peer"))
        XCTAssertEqual(settings.list("count"), [])
    }

    func testValidateLayersOverABase() throws {
        let base = try SettingsValidator.validate(mapping([("count", "7", 6)]), specs: specs, owner: "stage 'x'",
                                                  requireAll: false, at: at)
        XCTAssertEqual(base.integer("count"), 7)
        let top = try SettingsValidator.validate(mapping([("peer", "10.0.0.1:80", 8), ("label", "wan", 9)]), specs: specs,
                                                 owner: "stage 'x'", over: base, at: at)
        XCTAssertEqual(top.integer("count"), 7, "the base's value is kept, not replaced by the default")
        XCTAssertEqual(top.mark("count"), SourceMark(file: "s.yaml", line: 6, column: 10))
        XCTAssertEqual(top.string("label"), "wan")
    }

    func testValidateErrors() {
        assertProfileError("s.yaml:5:3: stage 'x' requires the setting 'peer' (an address:port such as 192.0.2.1:5080 or [2001:db8::1]:5080): where to send") {
            try SettingsValidator.validate(self.mapping([("count", "2", 6)]), specs: self.specs, owner: "stage 'x'", at: self.at)
        }
        assertProfileError("s.yaml:2:9: stage 'x' requires the setting 'peer' (an address:port such as 192.0.2.1:5080 or [2001:db8::1]:5080): where to send") {
            try SettingsValidator.validate(nil, specs: self.specs, owner: "stage 'x'", at: self.at)
        }
        assertProfileError("s.yaml:7:3: unknown setting 'cuont' for stage 'x'; known: count, peer, label") {
            try SettingsValidator.validate(self.mapping([("peer", "10.0.0.1:80", 6), ("cuont", "2", 7)]), specs: self.specs,
                                           owner: "stage 'x'", at: self.at)
        }
        assertProfileError("s.yaml:7:3: unknown setting 'a' for stage 'y'; it takes no settings") {
            try SettingsValidator.validate(self.mapping([("a", "1", 7)]), specs: [], owner: "stage 'y'", at: self.at)
        }
        assertProfileError("s.yaml:2:9: settings of stage 'y' must be a mapping, found a list") {
            try SettingsValidator.validate(.sequence([], self.at), specs: [], owner: "stage 'y'", at: self.at)
        }
        // requireAll: false lets a required setting be missing.
        XCTAssertNoThrow(try SettingsValidator.validate(nil, specs: specs, owner: "stage 'x'", requireAll: false, at: at))
    }
}
