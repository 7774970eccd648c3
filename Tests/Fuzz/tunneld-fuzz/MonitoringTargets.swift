#if FUZZING
import Foundation
@testable import Framework
@testable import Monitoring
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Prometheus

/// HTTP requests to the monitoring service (anyone who can reach its port), and the status
/// JSON `tunneld status` reads from a socket.
enum MonitoringTargets {
    static let all = [
        FuzzTarget(name: "http-request", summary: "bytes from an HTTP client, through the service's whole channel pipeline", run: httpRequest),
        FuzzTarget(name: "status-json", summary: "the status document tunneld status decodes", run: statusJSON),
    ]

    static let content: HTTPStatusHandler.Content = {
        let counters = TunnelStatus.Counters(txPackets: 1, txBytes: 100, rxPackets: 2, rxBytes: 200, drops: ["forged": 1])
        let status = TunnelStatus(
            daemon: .init(version: TunnelStatus.version, pid: 1, profile: "p2p", site: "/etc/tunneld/site.yaml",
                          started: 1000, uptimeSeconds: 1, lastReload: nil, reloads: 0),
            device: .init(name: "tun0", kind: "tun", mtu: 1420, counters: counters), tunnel: counters,
            sessions: [.init(id: 1, name: "peer", peer: "192.0.2.1:5000", state: "up", since: 1000, dataPlane: "userspace", counters: counters)],
            links: [.init(name: "wan", local: "10.0.0.1:5000", remote: "192.0.2.1:5000", counters: counters)], manager: nil)
        let snapshots = StatusSnapshots(first: status, at: 1000, intervalMilliseconds: 1000, windowSeconds: 60)
        return .init(snapshots: snapshots, metrics: MetricsExporter(registry: PrometheusCollectorRegistry()))
    }()
    static let limits = HTTPConnectionGuard.Limits(maxConnections: 8, maxRequestBytes: 8192, deadline: .seconds(5))

    /// The same handlers HTTPService puts on every connection, on an embedded channel.
    static func httpRequest(_ input: UnsafeRawBufferPointer) {
        let channel = EmbeddedChannel()
        do {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(HTTPConnectionGuard(limits: limits))
            try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
            try sync.addHandler(HTTPStatusHandler(content: content))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        } catch {
            fatalError("the HTTP pipeline did not assemble: \(error)")
        }
        // Malformed requests surface as errors here; they must not crash or hang.
        _ = try? channel.writeInbound(ByteBuffer(bytes: input))
        while let part = try? channel.readOutbound(as: ByteBuffer.self) {
            precondition(part.readableBytes >= 0)
        }
        // Past the connection guard's deadline first (the slow-client path), then finish
        // even when the handlers closed the channel already: plain `finish()` throws
        // `alreadyClosed` before it runs the loop, so the queued pipeline teardown never
        // ran and every answered or refused input leaked its whole pipeline (a harness
        // leak: a real event loop always runs it).
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    static func statusJSON(_ input: UnsafeRawBufferPointer) {
        guard let status = try? StatusJSON.decode(Data(input)) else { return }
        do {
            _ = try StatusJSON.encode(status)
        } catch {
            fatalError("a decoded status does not encode: \(error)")
        }
    }
}
#endif
