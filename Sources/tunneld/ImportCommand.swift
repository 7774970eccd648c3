import ArgumentParser

/// `tunneld import`: site files written from the configurations of the tools tunneld replaces.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a tunneld site file from an mlvpn or tunneldigger configuration.",
        subcommands: [ImportMlvpn.self, ImportTunneldigger.self])
}
