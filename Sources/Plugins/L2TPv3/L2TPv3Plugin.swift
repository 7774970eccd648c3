import Framework

/// The tunneldigger-compatible L2TPv3 plugin: broker and client session managers.
public enum L2TPv3Plugin {
    public static let plugin = Plugin(
        name: "l2tpv3",
        summary: "tunneldigger-compatible L2TPv3 Ethernet pseudowires (broker and client)")
}
