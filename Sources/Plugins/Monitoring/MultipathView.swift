import Framework

/// A bonded session's paths and reorder buffer, read from the plugin's status
/// details (`paths`, `reorder`; see `BondingSession.status`), for the path table,
/// the charts and the link metrics. Any plugin that reports these members in this
/// shape gets them; Framework knows nothing of them.
struct MultipathView: Equatable {
    struct Path: Equatable {
        var name, link, local, remote, state: String
        var fallbackOnly: Bool
        var srttMs: Double?
        var rttvarMs: Double?
        var lossPercent, rateMbps: Double
        var txPackets, txBytes, rxPackets, rxBytes: UInt64
        var disconnects, quietSpells: Int
        var lastPacketSeconds: Double
    }

    struct Reorder: Equatable {
        var inOrder, held, releasedByTimeout, releasedAsLost, overflow, late, duplicate, aligned: UInt64
        var holding: Int
        var holdMs: Double
    }

    var paths: [Path]
    var reorder: Reorder

    /// nil when the details do not describe paths and a reorder buffer.
    init?(_ details: StatusValue?) {
        guard let details, case .array(let items)? = details["paths"], let reorder = details["reorder"] else { return nil }
        func text(_ value: StatusValue, _ key: String) -> String { value[key]?.string ?? "" }
        func number(_ value: StatusValue, _ key: String) -> Double { value[key]?.number ?? 0 }
        func count(_ value: StatusValue, _ key: String) -> UInt64 { UInt64(max(0, value[key]?.number ?? 0)) }
        paths = items.map { p in
            Path(name: text(p, "name"), link: text(p, "link"), local: text(p, "local"), remote: text(p, "remote"),
                 state: text(p, "state"), fallbackOnly: p["fallbackOnly"] == .bool(true), srttMs: p["srttMs"]?.number,
                 rttvarMs: p["rttvarMs"]?.number, lossPercent: number(p, "lossPercent"), rateMbps: number(p, "rateMbps"),
                 txPackets: count(p, "txPackets"), txBytes: count(p, "txBytes"), rxPackets: count(p, "rxPackets"),
                 rxBytes: count(p, "rxBytes"), disconnects: Int(number(p, "disconnects")),
                 quietSpells: Int(number(p, "quietSpells")), lastPacketSeconds: number(p, "lastPacketSeconds"))
        }
        self.reorder = Reorder(inOrder: count(reorder, "inOrder"), held: count(reorder, "held"),
                               releasedByTimeout: count(reorder, "releasedByTimeout"), releasedAsLost: count(reorder, "releasedAsLost"),
                               overflow: count(reorder, "overflow"), late: count(reorder, "late"), duplicate: count(reorder, "duplicate"),
                               aligned: count(reorder, "aligned"), holding: Int(number(reorder, "holding")), holdMs: number(reorder, "holdMs"))
    }

    /// The members this view takes from the details (not repeated as plain lines).
    static let members: Set<String> = ["paths", "reorder"]
}

extension TunnelStatus.SessionEntry {
    /// The session's paths and reorder buffer, when its plugin reports them.
    var multipath: MultipathView? { MultipathView(details) }
}
