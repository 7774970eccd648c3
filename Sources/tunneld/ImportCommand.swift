import ArgumentParser

/// `tunneld import`: site files written from the configurations of the tools tunneld replaces.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a tunneld site file from an mlvpn or tunneldigger configuration.",
        discussion: """
        Examples:
          tunneld import mlvpn /etc/mlvpn/mlvpn0.conf --output /etc/tunneld/mlvpn0.yaml
          tunneld import tunneldigger broker /srv/tunneldigger/l2tp_broker.cfg --output /etc/tunneld/broker.yaml
        """,
        subcommands: [ImportMlvpn.self, ImportTunneldigger.self])
}
