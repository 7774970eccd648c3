import Foundation
import XCTest

/// `validate` refuses hooks that do not exist (and ones others could change), so a test
/// that loads an imported site file first installs the programs it names: root-owned
/// mode-0755 scripts under `folder`, an absolute path /x as FOLDER/x (the YAML is
/// changed to match), a relative one beside the site file in `folder`. The hook keys:
/// tunneldigger's broker hooks, the client's `hook:`, mlvpn's `status-command:`.
func installHooks(_ yaml: String, in folder: String) throws -> String {
    let pattern = try NSRegularExpression(
        pattern: ##"^(\s*(?:session\.[a-z-]+|broker\.connection-rate-limit|hook|status-command): )("?)([^"#]*?)\2(\s*#.*)?$"##)
    var lines: [String] = []
    for line in yaml.components(separatedBy: "\n") {
        guard let match = pattern.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)),
              let value = Range(match.range(at: 3), in: line) else {
            lines.append(line)
            continue
        }
        let written = String(line[value])
        let installed = written.hasPrefix("/") ? folder + written : written
        let script = written.hasPrefix("/") ? installed : folder + "/" + written
        try FileManager.default.createDirectory(atPath: (script as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        XCTAssertTrue(FileManager.default.createFile(atPath: script, contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755]))
        lines.append(line.replacingCharacters(in: value, with: installed))
    }
    return lines.joined(separator: "\n")
}
