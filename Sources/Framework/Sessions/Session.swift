import Glibc

/// One peer relationship: its own pipeline (or a kernel data plane that bypasses the
/// userspace stages), counters, and the peer it talks to.
public final class Session {
    public enum DataPlane {
        /// Packets run through this session's stages in this process.
        case userspace(Pipeline)
        /// The kernel forwards the packets (e.g. an L2TP session over generic netlink);
        /// the description says what was set up, for status output.
        case kernel(String)
    }

    public let id: UInt32
    public let name: String
    public let counters = TrafficCounters()
    public let started: timespec
    public var peer: SocketAddress?
    /// Whether the session can carry packets: a session whose stages first need a
    /// handshake starts `handshaking`; one without such a stage is `up` at once.
    public enum State: String, Sendable {
        case handshaking, up
    }

    public var state: State = .up
    /// Paths and reordering for status output, set by managers that bond links.
    public var multipathStatus: (() -> TunnelStatus.Multipath)?
    public internal(set) var dataPlane: DataPlane = .kernel("not assembled")

    init(id: UInt32, name: String, peer: SocketAddress?) {
        self.id = id
        self.name = name
        self.peer = peer
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        started = now
    }

    /// The userspace pipeline, if this session has one.
    public var pipeline: Pipeline? {
        if case .userspace(let pipeline) = dataPlane { return pipeline }
        return nil
    }
}
