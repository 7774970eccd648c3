import Framework
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The monitoring plugin: the status socket, and HTTP with the status JSON,
/// Prometheus metrics and the live page.
public enum MonitoringPlugin {
    static let statusSocket = SettingSpec("socket", .string, default: .string(""),
                                          help: "socket path; default /run/tunneld/<site file name>.sock")

    static let status = ServiceDescriptor(
        name: "status",
        summary: "JSON status over a UNIX socket (mode 0600), read by 'tunneld status'",
        settings: [statusSocket],
        enabledByDefault: true,
        make: { context in try StatusSocketService(context: context) })

    static let httpInterval = SettingSpec("interval", .milliseconds(100...60_000), default: .integer(1000),
                                          help: "how often the tunnel's loop takes a status snapshot for HTTP (and a history sample)")
    static let httpHistory = SettingSpec("history", .integer(10...3600), default: .integer(300),
                                         help: "seconds of per-link history the live page shows")
    static let httpMaxConnections = SettingSpec("max-connections", .integer(1...1024), default: .integer(64),
                                                help: "HTTP connections open at once; more are closed at once")
    static let httpTimeout = SettingSpec("timeout", .milliseconds(100...60_000), default: .integer(5000),
                                         help: "a connection must send its request and read the answer within this time")

    static let http = ServiceDescriptor(
        name: "http",
        summary: "HTTP: live page at /, status JSON at /status, Prometheus text at /metrics, page data at /history",
        settings: [
            SettingSpec("listen", .endpoint, required: true,
                        help: "address:port to serve on, e.g. 127.0.0.1:9100 (the status is not secret, but keep it off untrusted networks)"),
            httpInterval,
            httpHistory,
            httpMaxConnections,
            httpTimeout,
        ],
        make: { context in try HTTPService(context: context) })

    public static let plugin = Plugin(
        name: "monitoring",
        summary: "status API, Prometheus metrics and live page for operators and scripts",
        services: [status, http])

    /// The process's Prometheus registry: the tunnel's own metrics, and whatever
    /// anything in the process records through swift-metrics.
    static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = NIOLockedValueBox(false)

    /// Point swift-metrics at the registry, once per process (swift-metrics allows
    /// one bootstrap).
    static func bootstrapMetricsOnce() {
        bootstrapped.withLockedValue { done in
            guard !done else { return }
            done = true
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        }
    }
}
