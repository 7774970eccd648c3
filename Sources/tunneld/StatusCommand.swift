import ArgumentParser
import Foundation
import Framework
import Monitoring

/// `tunneld status`: what each running tunnel is doing, from its status socket.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show sessions and links of running tunnels (from their status sockets).",
        discussion: """
        Without SOCKET: every socket in /run/tunneld. --json prints the daemon's documents as they are.

        Examples:
          tunneld status
          tunneld status /run/tunneld/office.sock --json
          tunneld status --watch
        """)

    @Argument(help: "A status socket (default: all of /run/tunneld/*.sock).") var socket: String?
    @Flag(help: "Print the JSON documents instead of the table.") var json = false
    @Flag(help: "Refresh every second until interrupted.") var watch = false

    func run() throws {
        let sockets = socket.map { [$0] } ?? StatusClient.defaultSockets()
        guard !sockets.isEmpty else {
            FileHandle.standardError.write(Data("tunneld: no status sockets in /run/tunneld (is tunneld running?)\n".utf8))
            throw ExitCode(1)
        }
        repeat {
            var output: [String] = []
            var failed = false
            for path in sockets {
                do {
                    let data = try StatusClient.fetch(path)
                    if json {
                        output.append(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines))
                    } else {
                        output.append(StatusTable.render(try StatusJSON.decode(data), socket: path))
                    }
                } catch {
                    output.append("tunneld: \(path): \(error)")
                    failed = true
                }
            }
            if watch { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            print(output.joined(separator: "\n\n"))
            fflush(nil)  // each refresh whole, also into a pipe or a file (nil: every stream)
            if !watch && failed { throw ExitCode(1) }
            if watch { sleep(1) }
        } while watch
    }
}
