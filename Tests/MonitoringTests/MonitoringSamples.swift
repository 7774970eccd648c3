@testable import Framework

/// Status documents the monitoring tests feed to the exporter, history and handler.
enum MonitoringSamples {
    static func path(_ name: String, state: String = "up", srtt: Double? = 12.5, loss: Double = 0,
                     tx: UInt64 = 1000, rx: UInt64 = 2000, disconnects: Int = 0) -> TunnelStatus.PathEntry {
        .init(name: name, link: name, local: "10.0.0.2:5081", remote: "192.0.2.1:5080", state: state, fallbackOnly: false, srttMs: srtt,
              rttvarMs: srtt.map { $0 / 10 }, lossPercent: loss, rateMbps: 40, txPackets: tx / 100, txBytes: tx,
              rxPackets: rx / 100, rxBytes: rx, disconnects: disconnects, lastPacketSeconds: 0.05)
    }

    static func counters(tx: UInt64 = 0, rx: UInt64 = 0, drops: [String: UInt64] = [:]) -> TunnelStatus.Counters {
        .init(txPackets: tx / 100, txBytes: tx, rxPackets: rx / 100, rxBytes: rx, drops: drops)
    }

    static let reorder = TunnelStatus.Reorder(inOrder: 10, held: 4, releasedByTimeout: 1, releasedAsLost: 2, overflow: 0,
                                              late: 3, duplicate: 0, holding: 1, holdMs: 25)

    /// A bonded session `hub` over `paths`, and a plain session `office` when asked.
    static func status(paths: [TunnelStatus.PathEntry], office: Bool = false, sessionTx: UInt64 = 5000,
                       drops: [String: UInt64] = ["forged": 2]) -> TunnelStatus {
        var sessions = [TunnelStatus.SessionEntry(
            id: 1, name: "hub", peer: "192.0.2.1:5080", state: "up", since: 1000, dataPlane: "userspace",
            counters: counters(tx: sessionTx, rx: 7000, drops: drops), multipath: .init(paths: paths, reorder: reorder))]
        if office {
            sessions.append(.init(id: 2, name: "office", peer: nil, state: "handshaking", since: 1001, dataPlane: "userspace",
                                  counters: counters(tx: 300, rx: 0), multipath: nil))
        }
        return TunnelStatus(
            daemon: .init(version: TunnelStatus.version, pid: 42, profile: "bonding-client", site: "/etc/tunneld/site \"a\".yaml",
                          started: 1000, uptimeSeconds: 60, lastReload: 1030, reloads: 1),
            device: .init(name: "tun0", kind: "tun", mtu: 1436, counters: counters(tx: 100, rx: 100)),
            tunnel: counters(drops: ["unclaimed": 3]), sessions: sessions,
            links: [.init(name: "fast", local: "10.0.0.2:5081", remote: "192.0.2.1:5080", counters: counters(tx: 10, rx: 20))])
    }
}
