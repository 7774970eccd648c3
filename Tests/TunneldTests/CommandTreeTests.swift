import ArgumentParser
import XCTest
@testable import tunneld

/// The command-line tree the man page and completions are generated from.
final class CommandTreeTests: XCTestCase {
    func testImportHasOneSubcommandPerTool() {
        let names = Import.configuration.subcommands.map { $0._commandName }
        XCTAssertEqual(names, ["mlvpn", "tunneldigger"])
    }

    /// Issue 17: every subcommand's --help shows an example.
    func testEverySubcommandsHelpShowsAnExample() {
        var missing: [String] = []
        func visit(_ command: ParsableCommand.Type, path: [String]) {
            let name = path + [command._commandName]
            let help = TunneldCommand.helpMessage(for: command)
            if command.configuration.subcommands.isEmpty, !help.contains("Example") {
                missing.append(name.joined(separator: " "))
            }
            for sub in command.configuration.subcommands { visit(sub, path: name) }
        }
        for sub in TunneldCommand.configuration.subcommands { visit(sub, path: ["tunneld"]) }
        XCTAssertEqual(missing, [], "subcommands whose --help has no example")
    }

    /// --version names this build and the three C libraries as loaded at run time.
    func testVersionNamesTheLibraries() {
        let lines = VersionInfo.text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.map { $0.split(separator: " ").first.map(String.init) ?? "" },
                       ["tunneld", "libsodium", "libyaml", "libnl-genl-3"])
        for line in lines {
            let version = line.split(separator: " ").last ?? ""
            XCTAssertNotNil(version.range(of: #"^[0-9]+\.[0-9]+(\.[0-9]+)?$"#, options: .regularExpression), line)
        }
    }
}
