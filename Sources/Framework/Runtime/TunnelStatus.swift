import Glibc

/// A snapshot of a running tunnel for status output: the daemon, the device, each
/// session and link with their counters and drops by reason. Built on the loop's
/// thread from counters the data path writes without locks; encoders (JSON, the
/// `tunneld status` table, metrics) live in the monitoring plugin. Never holds secrets.
public struct TunnelStatus: Codable, Sendable, Equatable {
    public static let version = "0.4.0"

    public struct Daemon: Codable, Sendable, Equatable {
        public var version: String
        public var pid: Int32
        public var profile: String
        public var site: String
        /// Unix time (seconds) of the start.
        public var started: Double
        public var uptimeSeconds: Double
        /// Unix time of the last SIGHUP reload that took effect; nil before any.
        public var lastReload: Double?
        public var reloads: Int
    }

    public struct Counters: Codable, Sendable, Equatable {
        public var txPackets: UInt64
        public var txBytes: UInt64
        public var rxPackets: UInt64
        public var rxBytes: UInt64
        public var drops: [String: UInt64]

        public init(txPackets: UInt64, txBytes: UInt64, rxPackets: UInt64, rxBytes: UInt64, drops: [String: UInt64]) {
            (self.txPackets, self.txBytes, self.rxPackets, self.rxBytes, self.drops) = (txPackets, txBytes, rxPackets, rxBytes, drops)
        }
    }

    public struct Device: Codable, Sendable, Equatable {
        public var name: String
        public var kind: String
        public var mtu: Int
        public var counters: Counters
    }

    public struct SessionEntry: Codable, Sendable, Equatable {
        public var id: UInt32
        public var name: String
        public var peer: String?
        public var state: String
        /// Unix time (seconds) the session started.
        public var since: Double
        /// `userspace` (the session's stages run here) or `kernel` (the kernel forwards).
        public var dataPlane: String
        /// The session's own network device, in fleet profiles.
        public var device: String?
        public var counters: Counters
        /// Paths and reordering, when the session's manager bonds several links.
        public var multipath: Multipath?
        /// What the session's plugin reports about it (`Session.statusExtension`).
        public var details: StatusValue?

        public init(id: UInt32, name: String, peer: String?, state: String, since: Double, dataPlane: String,
                    device: String? = nil, counters: Counters, multipath: Multipath? = nil, details: StatusValue? = nil) {
            (self.id, self.name, self.peer, self.state, self.since) = (id, name, peer, state, since)
            (self.dataPlane, self.device, self.counters, self.multipath, self.details) = (dataPlane, device, counters, multipath, details)
        }
    }

    /// A session spread over several links: each path, and the reorder buffer that
    /// puts their packets back in order.
    public struct Multipath: Codable, Sendable, Equatable {
        public var paths: [PathEntry]
        public var reorder: Reorder

        public init(paths: [PathEntry], reorder: Reorder) {
            self.paths = paths
            self.reorder = reorder
        }
    }

    /// Reorder buffer counters (packets) and its current wait for a gap.
    public struct Reorder: Codable, Sendable, Equatable {
        public var inOrder, held, releasedByTimeout, releasedAsLost, overflow, late, duplicate: UInt64
        /// Bulk packets held to even out the links' delays (not behind a gap).
        public var aligned: UInt64
        /// Packets waiting now.
        public var holding: Int
        public var holdMs: Double

        public init(inOrder: UInt64, held: UInt64, releasedByTimeout: UInt64, releasedAsLost: UInt64, overflow: UInt64,
                    late: UInt64, duplicate: UInt64, aligned: UInt64 = 0, holding: Int, holdMs: Double) {
            (self.inOrder, self.held, self.releasedByTimeout, self.releasedAsLost) = (inOrder, held, releasedByTimeout, releasedAsLost)
            (self.overflow, self.late, self.duplicate, self.holding, self.holdMs) = (overflow, late, duplicate, holding, holdMs)
            self.aligned = aligned
        }
    }

    /// One path of a bonded session: a local link and the peer's address on it, its
    /// measured health and what it carried (mlvpn's per-tunnel status fields).
    public struct PathEntry: Codable, Sendable, Equatable {
        public var name: String
        /// The local UDP link the path leaves by, and that link's address.
        public var link: String
        public var local: String
        public var remote: String
        /// up, lossy, slow or down.
        public var state: String
        public var fallbackOnly: Bool
        public var srttMs: Double?
        public var rttvarMs: Double?
        public var lossPercent: Double
        /// What the path delivers now by the scheduler's measurement, Mbit/s.
        public var rateMbps: Double
        public var txPackets: UInt64
        public var txBytes: UInt64
        public var rxPackets: UInt64
        public var rxBytes: UInt64
        /// Times the path went down (mlvpn's `disconnects`).
        public var disconnects: Int
        /// Seconds since a packet last came by this path.
        public var lastPacketSeconds: Double

        public init(name: String, link: String, local: String, remote: String, state: String, fallbackOnly: Bool, srttMs: Double?,
                    rttvarMs: Double?, lossPercent: Double, rateMbps: Double, txPackets: UInt64, txBytes: UInt64,
                    rxPackets: UInt64, rxBytes: UInt64, disconnects: Int, lastPacketSeconds: Double) {
            self.name = name
            self.link = link
            self.local = local
            self.remote = remote
            self.state = state
            self.fallbackOnly = fallbackOnly
            self.srttMs = srttMs
            self.rttvarMs = rttvarMs
            self.lossPercent = lossPercent
            self.rateMbps = rateMbps
            self.txPackets = txPackets
            self.txBytes = txBytes
            self.rxPackets = rxPackets
            self.rxBytes = rxBytes
            self.disconnects = disconnects
            self.lastPacketSeconds = lastPacketSeconds
        }
    }

    public struct LinkEntry: Codable, Sendable, Equatable {
        public var name: String
        public var local: String
        public var remote: String?
        public var counters: Counters
    }

    public var daemon: Daemon
    public var device: Device?
    /// Drops before a session was known (unclaimed datagrams, handshakes refused, …).
    public var tunnel: Counters
    public var sessions: [SessionEntry]
    public var links: [LinkEntry]
    /// What the session manager reports about itself (`SessionManager.statusDetails`).
    public var manager: StatusValue?
}

extension Tunnel {
    /// The status now. Cheap: a few relaxed loads per counter, no lock.
    public func status() -> TunnelStatus {
        func counters(_ c: TrafficCounters) -> TunnelStatus.Counters {
            var drops: [String: UInt64] = [:]
            for (name, value) in c.dropSummary(names: dropReasons.names) { drops[name] = value }
            return .init(txPackets: c.sentPackets, txBytes: c.sentBytes, rxPackets: c.receivedPackets, rxBytes: c.receivedBytes, drops: drops)
        }
        let now = TunnelStatus.wallClock()
        let daemon = TunnelStatus.Daemon(version: TunnelStatus.version, pid: getpid(), profile: spec.profile, site: spec.file,
                                         started: startedAt, uptimeSeconds: max(0, now - startedAt),
                                         lastReload: lastReload, reloads: reloads)
        let deviceEntry = device.map {
            TunnelStatus.Device(name: $0.name, kind: $0.kind.rawValue, mtu: spec.device?.mtu ?? 0, counters: counters($0.counters))
        }
        let sessions = (manager?.sessions ?? []).map { session -> TunnelStatus.SessionEntry in
            .init(id: session.id, name: session.name, peer: session.peer?.description, state: session.state.rawValue,
                  since: Double(session.started.tv_sec) + Double(session.started.tv_nsec) / 1e9,
                  dataPlane: session.dataPlane.name, device: session.device?.name ?? session.kernelDevice,
                  counters: counters(session.counters), multipath: session.multipathStatus?(),
                  details: session.statusExtension?())
        }
        let links = links.map {
            TunnelStatus.LinkEntry(name: $0.name, local: $0.localAddress.description, remote: $0.remote?.description,
                                   counters: counters($0.counters))
        }
        return TunnelStatus(daemon: daemon, device: deviceEntry, tunnel: counters(self.counters), sessions: sessions, links: links,
                            manager: manager?.statusDetails)
    }
}

extension TunnelStatus {
    /// Seconds since 1970, as status output reports times.
    public static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
