@testable import Framework
@testable import Monitoring

/// Status documents the monitoring tests feed to the exporter, history and handler.
enum MonitoringSamples {
    /// One path as the bonding plugin reports it in a session's details.
    static func path(_ name: String, state: String = "up", srtt: Double? = 12.5, loss: Double = 0,
                     tx: UInt64 = 1000, rx: UInt64 = 2000, disconnects: Int = 0, quietSpells: Int = 1) -> StatusValue {
        .object([("name", .string(name)), ("link", .string(name)), ("local", .string("10.0.0.2:5081")),
                 ("remote", .string("192.0.2.1:5080")), ("state", .string(state)), ("fallbackOnly", .bool(false)),
                 ("srttMs", srtt.map { .double($0) } ?? .null), ("rttvarMs", srtt.map { .double($0 / 10) } ?? .null),
                 ("lossPercent", .double(loss)), ("rateMbps", .double(40)), ("txPackets", .uint(tx / 100)), ("txBytes", .uint(tx)),
                 ("rxPackets", .uint(rx / 100)), ("rxBytes", .uint(rx)), ("disconnects", .int(Int64(disconnects))),
                 ("quiet", .bool(false)), ("quietSpells", .int(Int64(quietSpells))), ("lastPacketSeconds", .double(0.05))])
    }

    static func counters(tx: UInt64 = 0, rx: UInt64 = 0, drops: [String: UInt64] = [:]) -> TunnelStatus.Counters {
        .init(txPackets: tx / 100, txBytes: tx, rxPackets: rx / 100, rxBytes: rx, drops: drops)
    }

    static let reorder: StatusValue = .object([
        ("inOrder", .uint(10)), ("held", .uint(4)), ("releasedByTimeout", .uint(1)), ("releasedAsLost", .uint(2)),
        ("overflow", .uint(0)), ("late", .uint(3)), ("duplicate", .uint(0)), ("aligned", .uint(0)),
        ("holding", .int(1)), ("holdMs", .double(25)),
    ])

    /// A bonded session `hub` over `paths`, and a plain session `office` when asked.
    static func status(paths: [StatusValue], office: Bool = false, sessionTx: UInt64 = 5000,
                       drops: [String: UInt64] = ["forged": 2]) -> TunnelStatus {
        var sessions = [TunnelStatus.SessionEntry(
            id: 1, name: "hub", peer: "192.0.2.1:5080", state: "up", since: 1000, dataPlane: "userspace",
            counters: counters(tx: sessionTx, rx: 7000, drops: drops),
            details: .object([("paths", .array(paths)), ("reorder", reorder)]))]
        if office {
            sessions.append(.init(id: 2, name: "office", peer: nil, state: "handshaking", since: 1001, dataPlane: "userspace",
                                  counters: counters(tx: 300, rx: 0)))
        }
        return TunnelStatus(
            daemon: .init(version: TunnelStatus.version, pid: 42, profile: "bonding-client", site: "/etc/tunneld/site \"a\".yaml",
                          started: 1000, uptimeSeconds: 60, lastReload: 1030, reloads: 1),
            device: .init(name: "tun0", kind: "tun", mtu: 1436, counters: counters(tx: 100, rx: 100)),
            tunnel: counters(drops: ["unclaimed": 3]), sessions: sessions,
            links: [.init(name: "fast", local: "10.0.0.2:5081", remote: "192.0.2.1:5080", counters: counters(tx: 10, rx: 20))])
    }

    /// The exposition of `status` as lines.
    static func render(_ exporter: MetricsExporter, _ status: TunnelStatus) -> [String] {
        String(decoding: exporter.render(status), as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The value of the one sample line that starts with `series` (name and labels);
    /// swift-prometheus writes gauges as doubles (`1446.0`).
    static func value(_ lines: [String], _ series: String) -> Double? {
        let matches = lines.filter { $0.hasPrefix(series + " ") }
        guard matches.count == 1 else { return nil }
        return Double(matches[0].dropFirst(series.count + 1))
    }
}
