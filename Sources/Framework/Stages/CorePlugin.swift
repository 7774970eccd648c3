/// The stages and session manager built into the framework: the local devices, the
/// UDP transport and the point-to-point session. The executable registers this
/// plugin like any other.
public enum CorePlugin {
    public static let plugin = Plugin(
        name: "core",
        summary: "TUN/TAP devices, UDP transport, point-to-point sessions",
        stages: [DeviceStages.tun, DeviceStages.tap, UDPTransportStage.descriptor],
        sessionManagers: [StaticSessionManager.descriptor])
}
