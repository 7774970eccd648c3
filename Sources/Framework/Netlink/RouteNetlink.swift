import CNetlink
import Glibc

/// Network devices over rtnetlink (libnl's NETLINK_ROUTE socket), for a daemon that
/// keeps thousands of per-session devices. Its reason to exist is `deleteGroup`:
/// the kernel removes devices one by one at about 17 ms each, but all devices of a
/// group in one batch (500 TAP or ifb devices in 0.1 s against 8.5 s one by one), so
/// sessions' devices are put in a group and removed together at shutdown. The
/// batch needs every device of the group to have rtnetlink link ops (TAP, veth, ifb
/// do; the kernel answers EOPNOTSUPP otherwise), and gains nothing for types whose
/// own teardown waits per device (bridges: still ~17 ms each).
///
/// Acts in the network namespace of the thread that created it. Blocking, and not
/// thread-safe: run it on a `NetlinkWorker`, never on an event loop.
final class RouteNetlink {
    private let socket: NetlinkSocket
    private static let ifinfoSize = MemoryLayout<ifinfomsg>.size

    init() throws {
        socket = try NetlinkSocket(netlinkProtocol: NETLINK_ROUTE, name: "rtnetlink socket")
    }

    /// Put device `ifindex` in device group `group`.
    func setGroup(ifindex: Int32, group: UInt32) throws {
        try send(Self.setGroupRequest(ifindex: ifindex, group: group))
    }

    /// Remove every device of `group` in one request. Throws ENODEV when no device
    /// is in the group, and refuses group 0: every device starts in it, so deleting
    /// it would remove every interface of the namespace.
    func deleteGroup(_ group: UInt32) throws {
        try send(Self.deleteGroupRequest(group))
    }

    /// The index of device `name`, or nil when there is none.
    func ifindex(of name: String) throws -> Int32? {
        let replies: [NetlinkReply]
        do {
            replies = try socket.exchange(Self.getLinkRequest(name: name), fixedHeaderSize: Self.ifinfoSize)
        } catch let error as NetlinkError where error.code == ENODEV {
            return nil
        }
        let request = "RTM_GETLINK \(name)"
        guard let reply = replies.first(where: { $0.type == UInt16(RTM_NEWLINK) }) else {
            throw NetlinkError(code: EBADMSG, request: request, detail: "the kernel answered without the device")
        }
        // ifinfomsg: family, pad, type (u16), then the index (i32) at offset 4.
        return reply.fixedHeader.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
    }

    /// Remove device `ifindex`.
    func deleteLink(ifindex: Int32) throws {
        try send(Self.deleteLinkRequest(ifindex: ifindex))
    }

    private func send(_ request: NetlinkRequest) throws {
        _ = try socket.exchange(request, fixedHeaderSize: Self.ifinfoSize)
    }

    // MARK: requests

    static func setGroupRequest(ifindex: Int32, group: UInt32) -> NetlinkRequest {
        linkRequest(RTM_SETLINK, ifindex: ifindex, [.u32(UInt16(IFLA_GROUP), group)],
                    label: "RTM_SETLINK ifindex \(ifindex) group \(group)")
    }

    static func deleteGroupRequest(_ group: UInt32) throws -> NetlinkRequest {
        let label = "RTM_DELLINK group \(group)"
        guard group != 0 else {
            throw NetlinkError(code: EINVAL, request: label,
                               detail: "refused: group 0 is every device's default group, deleting it would remove every interface")
        }
        // ifi_index 0 and IFLA_GROUP: the kernel deletes the whole group in one batch.
        return linkRequest(RTM_DELLINK, ifindex: 0, [.u32(UInt16(IFLA_GROUP), group)], label: label)
    }

    static func getLinkRequest(name: String) -> NetlinkRequest {
        linkRequest(RTM_GETLINK, ifindex: 0, [.string(UInt16(IFLA_IFNAME), name)], label: "RTM_GETLINK \(name)")
    }

    static func deleteLinkRequest(ifindex: Int32) -> NetlinkRequest {
        linkRequest(RTM_DELLINK, ifindex: ifindex, [], label: "RTM_DELLINK ifindex \(ifindex)")
    }

    /// A link message: an ifinfomsg naming device `ifindex` (0: named by the
    /// attributes instead), every other field zero, which the kernel reads as "leave
    /// unchanged".
    private static func linkRequest(_ type: Int, ifindex: Int32, _ attributes: [NetlinkAttribute], label: String) -> NetlinkRequest {
        var header = ifinfomsg()
        header.ifi_index = ifindex
        let fixedHeader = withUnsafeBytes(of: header) { Array($0) }
        return NetlinkRequest(type: UInt16(type), flags: NetlinkRequest.requestFlags, fixedHeader: fixedHeader,
                              attributes: attributes, label: label)
    }
}
