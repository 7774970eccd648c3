import XCTest
@testable import Framework

final class YAMLParserTests: XCTestCase {
    private func parse(_ text: String) throws -> YAMLNode { try YAMLParser.parse(text, file: "t.yaml") }

    private func mark(_ line: Int, _ column: Int) -> SourceMark { SourceMark(file: "t.yaml", line: line, column: column) }

    private func entries(_ node: YAMLNode) -> [(key: String, keyMark: SourceMark, value: YAMLNode)] {
        if case .mapping(let entries, _) = node { return entries }
        XCTFail("not a mapping: \(node.kindName)")
        return []
    }

    func testMarksAreOneBasedLineAndColumn() throws {
        let root = try parse("profile: plain\nlinks:\n  - name: wan1\n    bind: \"0.0.0.0:5080\"\n")
        XCTAssertEqual(root.mark, mark(1, 1))
        let top = entries(root)
        XCTAssertEqual(top.map(\.key), ["profile", "links"])
        XCTAssertEqual(top[0].keyMark, mark(1, 1))
        guard case .scalar(let profile, let profileMark, let plain) = top[0].value else { return XCTFail() }
        XCTAssertEqual(profile, "plain")
        XCTAssertEqual(profileMark, mark(1, 10))
        XCTAssertTrue(plain)
        XCTAssertEqual(top[1].keyMark, mark(2, 1))
        guard case .sequence(let items, let listMark) = top[1].value else { return XCTFail() }
        XCTAssertEqual(listMark, mark(3, 3))
        XCTAssertEqual(items.count, 1)
        XCTAssertEqual(items[0].mark, mark(3, 5))
        let link = entries(items[0])
        XCTAssertEqual(link.map(\.key), ["name", "bind"])
        XCTAssertEqual(link[0].keyMark, mark(3, 5))
        XCTAssertEqual(link[0].value.mark, mark(3, 11))
        XCTAssertEqual(link[1].keyMark, mark(4, 5))
        guard case .scalar(let bind, let bindMark, let bindPlain) = link[1].value else { return XCTFail() }
        XCTAssertEqual(bind, "0.0.0.0:5080")
        XCTAssertEqual(bindMark, mark(4, 11))
        XCTAssertFalse(bindPlain, "quoted scalars are not plain")
    }

    func testFlowCollectionsAndKeyOrder() throws {
        let root = try parse("z: [1, 'two', {a: b}]\ny: {}\nx: []\n")
        let top = entries(root)
        XCTAssertEqual(top.map(\.key), ["z", "y", "x"])
        guard case .sequence(let items, let m) = top[0].value else { return XCTFail() }
        XCTAssertEqual(m, mark(1, 4))
        XCTAssertEqual(items.map(\.kindName), ["a scalar", "a scalar", "a mapping"])
        XCTAssertEqual(items.map(\.mark), [mark(1, 5), mark(1, 8), mark(1, 15)])
        XCTAssertEqual(entries(top[1].value).count, 0)
        guard case .sequence(let none, _) = top[2].value else { return XCTFail() }
        XCTAssertEqual(none.count, 0)
    }

    func testEmptyValueIsAnEmptyPlainScalar() throws {
        let top = entries(try parse("profile:\n"))
        guard case .scalar(let text, let m, let plain) = top[0].value else { return XCTFail() }
        XCTAssertEqual(text, "")
        XCTAssertTrue(plain)
        XCTAssertEqual(m.line, 1)
    }

    func testInvalidYAMLHasAMark() {
        assertProfileError("t.yaml:1:5: not valid YAML: mapping values are not allowed in this context") {
            try self.parse("a: b: c")
        }
        assertProfileError("t.yaml:2:1: not valid YAML: while parsing a flow sequence: did not find expected ',' or ']'") {
            try self.parse("a: [1, 2\n")
        }
        assertProfileError("t.yaml:2:1: not valid YAML: while scanning for the next token: found character that cannot start any token") {
            try self.parse("a:\n\tb: 1\n")
        }
    }

    func testAliasesAndAnchorsAreRefused() {
        assertProfileError("t.yaml:1:4: YAML anchors (&name) are not supported in profiles") {
            try self.parse("a: &x 1\nb: 2\n")
        }
        assertProfileError("t.yaml:1:4: YAML anchors (&name) are not supported in profiles") {
            try self.parse("a: &x {c: 1}\n")
        }
        assertProfileError("t.yaml:1:4: YAML anchors (&name) are not supported in profiles") {
            try self.parse("a: &x [1]\n")
        }
        assertProfileError("t.yaml:2:4: YAML aliases (*name) are not supported in profiles; write the value out") {
            try self.parse("a: 1\nb: *x\n")
        }
    }

    /// The parser's documentation says tags are refused like anchors; see the report.
    func testTagsAreRefused() {
        XCTAssertThrowsError(try parse("mtu: !!str 1400\n")) { error in
            let e = error as? ProfileError
            XCTAssertEqual(e?.mark, self.mark(1, 6))
            XCTAssertTrue(e?.message.contains("tag") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try parse("device: !custom {mtu: 1400}\n"))
    }

    func testDuplicateKeys() {
        assertProfileError("t.yaml:3:1: duplicate key 'a'") { try self.parse("a: 1\nb: 2\na: 3\n") }
        assertProfileError("t.yaml:2:5: duplicate key 'x'") { try self.parse("a: {x: 1,\n    x: 2}\n") }
        assertProfileError("t.yaml:3:3: duplicate key 'x'") { try self.parse("a:\n  x: 1\n  x: 2\n") }
    }

    func testNonScalarKeysAreRefused() {
        assertProfileError("t.yaml:1:2: a mapping key must be a plain word, not a list or mapping") { try self.parse("{[a]: 1}") }
    }

    func testEmptyFile() {
        assertProfileError("t.yaml:1:1: the file is empty; expected a mapping such as 'profile: plain'") { try self.parse("") }
        assertProfileError("t.yaml:2:1: the file is empty; expected a mapping such as 'profile: plain'") { try self.parse("# only a comment\n") }
    }

    func testTwoDocuments() {
        assertProfileError("t.yaml:2:1: more than one YAML document ('---') in one file; keep one") {
            try self.parse("a: 1\n---\nb: 2\n")
        }
        // One explicit document is fine.
        XCTAssertNoThrow(try parse("---\na: 1\n...\n"))
    }

    func testScalarAndListRoots() throws {
        guard case .scalar("hello", _, true) = try parse("hello") else { return XCTFail() }
        guard case .sequence(let items, _) = try parse("- a\n- b\n") else { return XCTFail() }
        XCTAssertEqual(items.count, 2)
    }

    func testNestingDepthLimit() throws {
        let depth = YAMLParser.maxDepth
        XCTAssertEqual(depth, 64)
        // 64 nested lists (depths 0...63) are accepted.
        var node = try parse(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
        var levels = 0
        while case .sequence(let items, _) = node {
            levels += 1
            guard let first = items.first else { break }
            node = first
        }
        XCTAssertEqual(levels, depth)
        // One more level is refused at the list that goes too deep.
        assertProfileError("t.yaml:1:65: nested deeper than 64 levels") {
            try self.parse(String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1))
        }
        assertProfileError("t.yaml:1:257: nested deeper than 64 levels") {
            try self.parse(String(repeating: "{a: ", count: 100) + "1" + String(repeating: "}", count: 100))
        }
        // Deep hostile input fails cleanly (no stack exhaustion).
        XCTAssertThrowsError(try parse(String(repeating: "[", count: 100_000)))
    }

    func testProfileErrorDescription() {
        let e = ProfileError(SourceMark(file: "x.yaml", line: 3, column: 7), "bad")
        XCTAssertEqual(e.description, "x.yaml:3:7: bad")
        XCTAssertEqual(e, ProfileError(SourceMark(file: "x.yaml", line: 3, column: 7), "bad"))
        XCTAssertNotEqual(e, ProfileError(SourceMark(file: "x.yaml", line: 3, column: 8), "bad"))
    }
}
