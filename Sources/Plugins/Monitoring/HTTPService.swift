import Framework
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// The `http` service: status JSON, Prometheus metrics and the live page over HTTP.
///
/// It runs on a thread of its own (one SwiftNIO event loop), so neither its clients
/// nor its work ever wait on the tunnel's loop. The tunnel's loop hands it one status
/// snapshot per `interval`; requests are served from the latest one.
final class HTTPService: Service {
    let address: String
    private let tunnel: Tunnel
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    private let limits: HTTPConnectionGuard.Limits
    private var refresh: Framework.EventLoop.Timer?

    init(context: ServiceContext) throws {
        tunnel = context.tunnel
        let settings = context.settings
        let listen = settings.endpoint("listen")!
        let interval = settings.integer(MonitoringPlugin.httpInterval)
        let snapshots = StatusSnapshots(first: tunnel.status(), at: TunnelStatus.wallClock(), intervalMilliseconds: interval,
                                        windowSeconds: Double(settings.integer(MonitoringPlugin.httpHistory)))
        let content = HTTPStatusHandler.Content(snapshots: snapshots, metrics: MetricsExporter(registry: MonitoringPlugin.registry))
        let limits = HTTPConnectionGuard.Limits(maxConnections: settings.integer(MonitoringPlugin.httpMaxConnections),
                                                maxRequestBytes: 16 * 1024,
                                                deadline: .milliseconds(Int64(settings.integer(MonitoringPlugin.httpTimeout))))
        self.limits = limits
        MonitoringPlugin.bootstrapMetricsOnce()

        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HTTPConnectionGuard(limits: limits))
                    // Malformed requests get a 400 from NIO's error handler and are closed.
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try sync.addHandler(HTTPStatusHandler(content: content))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: false)
        do {
            channel = try bootstrap.bind(host: listen.host, port: Int(listen.port)).wait()
        } catch {
            try? group.syncShutdownGracefully()
            let mark = settings.mark("listen").map { "\($0): " } ?? ""
            throw ConfigurationError("\(mark)http: cannot listen on \(listen): \(error); pick a free address:port in 'http: { listen: … }'")
        }
        address = channel.localAddress.map { "\($0.ipAddress ?? listen.host):\($0.port ?? Int(listen.port))" } ?? "\(listen)"
        refresh = try tunnel.loop.addTimer(milliseconds: interval, repeating: true) { [unowned tunnel] in
            snapshots.publish(tunnel.status(), at: TunnelStatus.wallClock())
        }
        tunnel.logger.info("http status on http://\(address)/ (live page; /status, /metrics, /history)")
    }

    func stop() {
        refresh?.cancel()
        refresh = nil
        channel.close(promise: nil)
        try? group.syncShutdownGracefully()
        let refused = limits.refused.withLockedValue { $0 }
        if !refused.isEmpty {
            tunnel.logger.info("http: connections cut: \(refused.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        }
    }
}
