import Framework

/// The monitoring plugin: the status socket (and, next, HTTP, Prometheus metrics
/// and the live page).
public enum MonitoringPlugin {
    static let status = ServiceDescriptor(
        name: "status",
        summary: "JSON status over a UNIX socket (mode 0600), read by 'tunneld status'",
        settings: [
            SettingSpec("socket", .string, default: .string(""),
                        help: "socket path; default /run/tunneld/<site file name>.sock"),
        ],
        enabledByDefault: true,
        make: { context in try StatusSocketService(context: context) })

    public static let plugin = Plugin(
        name: "monitoring",
        summary: "status API for operators and scripts",
        services: [status])
}
