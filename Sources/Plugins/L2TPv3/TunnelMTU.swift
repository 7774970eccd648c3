/// The broker's tunnel MTU from what it measured and what the client told it
/// (tunneldigger §3.7). Pure arithmetic, so the rule is unit-tested.
enum TunnelMTU {
    /// No tunnel MTU below IPv6's minimum, whatever the path says.
    static let floor = 1280
    /// What both sides start from: a 1500-byte path less the 54 bytes of overhead.
    static let initial = 1500 - PseudowireHeader.overhead

    /// Broker: `max(1280, min(measured, peer))`, where `measured` starts at 1446 (or is
    /// the fixed `pmtu`, capped at 1446 locally) and `peer` is 1446 until the client
    /// notifies a value.
    static func broker(measured: Int, peer: Int?) -> Int {
        max(floor, min(min(measured, initial), peer ?? initial))
    }

    /// Client (§2.7): nothing until either the path or the broker's notification is
    /// known; then `path − 54`, lowered to the broker's value, never below 1280.
    static func client(pathMTU: Int?, peer: Int?) -> Int? {
        guard pathMTU != nil || peer != nil else { return nil }
        var mtu = 65535
        if let pathMTU { mtu = pathMTU - PseudowireHeader.overhead }
        if let peer, peer < mtu { mtu = peer }
        return max(floor, mtu)
    }
}
