import Framework
import Glibc

/// The kernel's L2TPv3 data plane, driven over generic netlink. Every call blocks
/// until the kernel answers and throws its errno (`NetlinkError`) when it refuses:
/// run it on a `NetlinkWorker`, never on the event loop.
final class KernelL2TP {
    private let netlink: GenericNetlink
    /// The `l2tp` family's id, assigned when the kernel loaded the module.
    let family: UInt16

    /// nil when the kernel has no L2TP (the family does not resolve): the plugin
    /// then runs its userspace data plane instead.
    static func open() throws -> KernelL2TP? {
        let netlink = try GenericNetlink()
        guard let family = try netlink.resolve(family: L2TPNetlink.familyName) else { return nil }
        return KernelL2TP(netlink: netlink, family: family)
    }

    /// Whether the kernel has L2TP here; false too when netlink itself fails, since
    /// the kernel data plane could not be driven then either.
    static func available() -> Bool {
        (try? open()) != nil
    }

    private init(netlink: GenericNetlink, family: UInt16) {
        self.netlink = netlink
        self.family = family
    }

    /// A tunnel over `socketFD`, a UDP socket bound and connected to the peer; the
    /// kernel removes the tunnel when that socket closes.
    func createTunnel(id: UInt32, peerID: UInt32, socketFD: Int32) throws {
        try netlink.perform(L2TPNetlink.tunnelCreate(id: id, peerID: peerID, socketFD: socketFD), family: family)
    }

    /// An Ethernet session in tunnel `tunnelID`, its device named `interface`.
    func createSession(tunnelID: UInt32, sessionID: UInt32, peerSessionID: UInt32, interface: String) throws {
        try netlink.perform(L2TPNetlink.sessionCreate(tunnelID: tunnelID, sessionID: sessionID,
                                                      peerSessionID: peerSessionID, interface: interface), family: family)
    }

    func setSessionMTU(tunnelID: UInt32, sessionID: UInt32, mtu: UInt16) throws {
        try netlink.perform(L2TPNetlink.sessionModify(tunnelID: tunnelID, sessionID: sessionID, mtu: mtu), family: family)
    }

    func deleteSession(tunnelID: UInt32, sessionID: UInt32) throws {
        try netlink.perform(L2TPNetlink.sessionDelete(tunnelID: tunnelID, sessionID: sessionID), family: family)
    }

    func deleteTunnel(id: UInt32) throws {
        try netlink.perform(L2TPNetlink.tunnelDelete(id: id), family: family)
    }

    /// At start-up, delete every session and tunnel whose tunnel id lies in
    /// `tunnelIDs` — left by an earlier run that died, or by another program — as
    /// tunneldigger's broker does (protocol doc §3.8). Sessions first, then tunnels.
    /// One that vanished meanwhile (ENODEV) is not an error. Returns the counts deleted.
    @discardableResult
    func removeStale(tunnelIDs: ClosedRange<UInt32>) throws -> (sessions: Int, tunnels: Int) {
        let sessions = Self.staleSessions(try netlink.dump(L2TPNetlink.sessionDump, family: family), in: tunnelIDs)
        var deletedSessions = 0
        for session in sessions {
            if try deleteIgnoringGone({ try deleteSession(tunnelID: session.tunnel, sessionID: session.session) }) {
                deletedSessions += 1
            }
        }
        let tunnels = Self.staleTunnels(try netlink.dump(L2TPNetlink.tunnelDump, family: family), in: tunnelIDs)
        var deletedTunnels = 0
        for tunnel in tunnels {
            if try deleteIgnoringGone({ try deleteTunnel(id: tunnel) }) { deletedTunnels += 1 }
        }
        return (deletedSessions, deletedTunnels)
    }

    /// The (tunnel, session) ids of the dumped sessions whose tunnel is in `range`;
    /// a reply without both ids is skipped.
    static func staleSessions(_ replies: [NetlinkAttributes], in range: ClosedRange<UInt32>) -> [(tunnel: UInt32, session: UInt32)] {
        replies.compactMap { reply in
            guard let tunnel = reply.u32(L2TPNetlink.Attribute.connectionID.rawValue), range.contains(tunnel),
                  let session = reply.u32(L2TPNetlink.Attribute.sessionID.rawValue) else { return nil }
            return (tunnel, session)
        }
    }

    /// The ids of the dumped tunnels in `range`.
    static func staleTunnels(_ replies: [NetlinkAttributes], in range: ClosedRange<UInt32>) -> [UInt32] {
        replies.compactMap { $0.u32(L2TPNetlink.Attribute.connectionID.rawValue) }.filter { range.contains($0) }
    }

    /// Run a delete; false if the object was already gone.
    private func deleteIgnoringGone(_ delete: () throws -> Void) throws -> Bool {
        do {
            try delete()
            return true
        } catch let error as NetlinkError where error.code == ENODEV {
            return false
        }
    }
}
