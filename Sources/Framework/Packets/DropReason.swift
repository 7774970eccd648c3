/// Why a packet was dropped. Every drop on the data path is counted under one of
/// these, per session (or per tunnel before a session is known).
///
/// The framework's own reasons have fixed ids; plugins declare theirs in their
/// stage descriptors and get ids when a tunnel is assembled (`DropReasonTable`).
public struct DropReason: Hashable, Sendable {
    public let id: Int

    public init(id: Int) { self.id = id }

    /// A datagram whose first byte no stage or session manager claims.
    public static let unclaimed = DropReason(id: 0)
    /// Shorter than the header its type requires.
    public static let truncated = DropReason(id: 1)
    /// Larger than the buffer or the device MTU allows.
    public static let oversize = DropReason(id: 2)
    /// Bytes that do not parse as what they claim to be (e.g. not IPv4/IPv6 on a TUN).
    public static let malformed = DropReason(id: 3)
    /// From an address that belongs to no session.
    public static let unknownPeer = DropReason(id: 4)
    /// No headroom or tailroom left for a header or trailer.
    public static let noRoom = DropReason(id: 5)
    /// The kernel refused or had no room to send (EAGAIN, ENOBUFS, …).
    public static let sendFailed = DropReason(id: 6)
    /// The local device refused the write.
    public static let deviceWriteFailed = DropReason(id: 7)
    /// No usable link to send on.
    public static let noLink = DropReason(id: 8)

    /// Not a drop: a packet removed because it was consumed (never counted).
    static let discarded = DropReason(id: capacity - 1)

    static let frameworkNames = [
        "unclaimed", "truncated", "oversize", "malformed", "unknown_peer",
        "no_room", "send_failed", "device_write_failed", "no_link",
    ]
    /// Upper bound on distinct reasons in one tunnel (framework + plugins); the last id is internal.
    static let capacity = 64
}

/// Names of the drop reasons in one assembled tunnel: the framework's, then each
/// plugin-declared name once, in registration order.
public struct DropReasonTable: Sendable {
    public private(set) var names: [String] = DropReason.frameworkNames

    init() {}

    /// The reason for `name`, adding it if new.
    mutating func reason(named name: String) -> DropReason {
        if let index = names.firstIndex(of: name) { return DropReason(id: index) }
        precondition(names.count < DropReason.capacity - 1, "more than \(DropReason.capacity) drop reasons")
        names.append(name)
        return DropReason(id: names.count - 1)
    }
}
