import ArgumentParser

// Placeholder being written now (issue 17); replaced by the mlvpn importer.
struct ImportMlvpn: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mlvpn", abstract: "Write a bonding site file from an mlvpn configuration.")
}
