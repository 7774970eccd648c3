import XCTest
@testable import Framework

final class HookArgumentTests: XCTestCase {
    func testPrintableASCIIPassesUnchanged() {
        let printable = String(decoding: (0x20...0x7e).map { UInt8($0) }, as: UTF8.self)
        XCTAssertEqual(HookArgument.sanitize(printable), printable)
        XCTAssertEqual(HookArgument.sanitize("wan-4g 7c2f1e0a-uuid"), "wan-4g 7c2f1e0a-uuid")
    }

    func testControlCharactersAndNULBecomeUnderscores() {
        XCTAssertEqual(HookArgument.sanitize("a\nb\rc\td\u{1b}[31me\u{7f}"), "a_b_c_d_[31me_")
        XCTAssertEqual(HookArgument.sanitize([0x6c, 0x00, 0x69, 0x6e, 0x6b] as [UInt8]), "l_ink")
        XCTAssertEqual(HookArgument.sanitize([0x00, 0x01, 0x1f, 0x80, 0xff] as [UInt8]), "_____")
    }

    func testEachByteOfAMultiByteCharacterBecomesAnUnderscore() {
        XCTAssertEqual(HookArgument.sanitize("café"), "caf__")  // é is two bytes
        XCTAssertEqual(HookArgument.sanitize("🙂"), "____")
        XCTAssertEqual(HookArgument.sanitize([0x61, 0xc3] as [UInt8]), "a_", "a truncated sequence too")
    }

    func testLongInputIsCutTo255Bytes() {
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 10_000)
        let result = HookArgument.sanitize(long)
        XCTAssertEqual(result.utf8.count, 255)
        XCTAssertEqual(result, String(repeating: "x", count: 255))
        XCTAssertEqual(HookArgument.sanitize(String(repeating: "é", count: 5_000)).utf8.count, 255)
    }

    func testShellSyntaxStaysLiteral() {
        for text in ["$(rm -rf /)", "`reboot`", "a; rm -rf / #", "'\"|&<>*?", "${PATH}"] {
            XCTAssertEqual(HookArgument.sanitize(text), text)
        }
    }

    func testEnvironmentNamesLoseEqualsSigns() {
        XCTAssertEqual(HookArgument.sanitizeName("A=B\n"), "A_B_")
    }
}
