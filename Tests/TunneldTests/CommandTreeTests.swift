import XCTest
@testable import tunneld

/// The command-line tree the man page and completions are generated from.
final class CommandTreeTests: XCTestCase {
    func testImportHasOneSubcommandPerTool() {
        let names = Import.configuration.subcommands.map { $0._commandName }
        XCTAssertEqual(names, ["mlvpn", "tunneldigger"])
    }
}
