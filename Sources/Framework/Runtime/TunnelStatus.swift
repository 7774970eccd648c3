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
        /// Timers on the loop, armed or not; nil from encoders that have none.
        public var timers: Int? = nil
        /// Times the event loop woke up more than 10 ms after its timer was due (the
        /// process or the machine did not run: `EventLoop.lastStall`); nil as `timers`.
        public var stalls: Int? = nil
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
        var id: UInt32
        public var name: String
        public var peer: String?
        public var state: String
        /// Unix time (seconds) the session started.
        public var since: Double
        /// `userspace` (the session's stages run here) or `kernel` (the kernel forwards).
        public var dataPlane: String
        /// The session's own network device, in fleet profiles.
        var device: String?
        public var counters: Counters
        /// What the session's plugin reports about it (`Session.statusExtension`):
        /// the ids and client of an L2TP tunnel, the paths and reorder buffer of a bond.
        public var details: StatusValue?

        init(id: UInt32, name: String, peer: String?, state: String, since: Double, dataPlane: String,
                    device: String? = nil, counters: Counters, details: StatusValue? = nil) {
            (self.id, self.name, self.peer, self.state, self.since) = (id, name, peer, state, since)
            (self.dataPlane, self.device, self.counters, self.details) = (dataPlane, device, counters, details)
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
                                         lastReload: lastReload, reloads: reloads, timers: loop.timerCount, stalls: loop.stalls)
        let deviceEntry = device.map {
            TunnelStatus.Device(name: $0.name, kind: $0.kind.rawValue, mtu: spec.device?.mtu ?? 0, counters: counters($0.counters))
        }
        let sessions = (manager?.sessions ?? []).map { session -> TunnelStatus.SessionEntry in
            .init(id: session.id, name: session.name, peer: session.peer?.description, state: session.state.rawValue,
                  since: Double(session.started.tv_sec) + Double(session.started.tv_nsec) / 1e9,
                  dataPlane: session.dataPlane.name, device: session.device?.name ?? session.kernelDevice,
                  counters: counters(session.counters), details: session.statusExtension?())
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
