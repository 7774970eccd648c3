import Glibc

/// One peer relationship: its own pipeline (or a kernel data plane that bypasses the
/// userspace stages), counters, the peer it talks to and, in fleet profiles, its own
/// network device.
public final class Session {
    public enum DataPlane {
        /// Packets run through this session's stages in this process.
        case userspace(Pipeline)
        /// The kernel forwards the packets (e.g. an L2TP session made over generic
        /// netlink); the text says what was set up, for status output.
        case kernel(String)

        /// `userspace` or `kernel`, as status output names it.
        var name: String {
            switch self {
            case .userspace: return "userspace"
            case .kernel: return "kernel"
            }
        }
    }

    public let id: UInt32
    public let name: String
    let counters = TrafficCounters()
    let started: timespec
    public var peer: SocketAddress?
    /// Whether the session can carry packets: a session whose stages first need a
    /// handshake starts `handshaking`; one without such a stage is `up` at once.
    public enum State: String, Sendable {
        case handshaking, up
    }

    public var state: State = .up
    /// What the session's plugin adds to its status entry (paths of a bond, the ids
    /// and client of an L2TP tunnel), read on the loop when a status is taken.
    public var statusExtension: (() -> StatusValue)?
    var dataPlane: DataPlane = .kernel("not assembled")
    /// The device this session owns (fleet profiles), removed when the session ends.
    public internal(set) var device: TunDevice?
    /// The device name of a kernel data plane (the kernel made and owns the device).
    var kernelDevice: String?
    var deviceWatch: EventLoop.Token?
    /// Where `SessionDispatcher` filed this session in the batch it is splitting:
    /// which dispatcher and pass, and the slot. Saves it a search per packet.
    var dispatchOwner: UnsafeRawPointer?
    var dispatchPass: UInt32 = 0
    var dispatchSlot = 0
    /// Set once the tunnel ended the session: its device is gone or going.
    var ended = false

    init(id: UInt32, name: String, peer: SocketAddress?) {
        self.id = id
        self.name = name
        self.peer = peer
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        started = now
    }

    /// Count `count` drops for `reason` against this session: for a stage that drops
    /// packets it kept outside a batch walk (a queue that timed out), where no batch
    /// is there to count them.
    public func countDrop(_ reason: DropReason, count: Int = 1) {
        counters.block.add(TrafficCounters.dropBase + reason.id, UInt64(count))
    }

    /// The userspace pipeline, if this session has one.
    public var pipeline: Pipeline? {
        if case .userspace(let pipeline) = dataPlane { return pipeline }
        return nil
    }
}
