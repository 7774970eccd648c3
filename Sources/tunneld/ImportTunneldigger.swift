import ArgumentParser

// Placeholder being written now (issue 17); replaced by the tunneldigger importer.
struct ImportTunneldigger: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tunneldigger", abstract: "Write an l2tp-broker or l2tp-client site file from a tunneldigger configuration.")
}
