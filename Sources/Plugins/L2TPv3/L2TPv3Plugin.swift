import Framework

/// The tunneldigger-compatible L2TPv3 plugin: the broker's and the client's session
/// managers and the userspace pseudowire stage.
public enum L2TPv3Plugin {
    public static let plugin = Plugin(
        name: "l2tpv3",
        summary: "tunneldigger-compatible L2TPv3 Ethernet pseudowires (broker and client)",
        stages: [PseudowireStage.descriptor],
        sessionManagers: [BrokerManager.descriptor, ClientManager.descriptor])
}
