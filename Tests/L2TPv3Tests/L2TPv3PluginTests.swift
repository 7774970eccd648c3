import XCTest
@testable import L2TPv3

final class L2TPv3PluginTests: XCTestCase {
    func testPluginIsNamed() {
        XCTAssertEqual(L2TPv3Plugin.plugin.name, "l2tpv3")
    }
}
