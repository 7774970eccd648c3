import Framework

/// The kernel's generic-netlink L2TP API as tunneldigger uses it (protocol doc §5):
/// the numbers of linux/l2tp.h and the exact requests each call sends, so that the
/// kernel sees what it sees from tunneldigger's own broker and client.
enum L2TPNetlink {
    static let familyName = "l2tp"
    /// L2TP_GENL_VERSION.
    static let version: UInt8 = 1

    /// The commands tunneldigger uses (enum l2tp_cmd; TUNNEL_MODIFY is not one).
    enum Command: UInt8, Sendable {
        case tunnelCreate = 1, tunnelDelete = 2, tunnelGet = 4
        case sessionCreate = 5, sessionDelete = 6, sessionModify = 7, sessionGet = 8
    }

    /// The attributes tunneldigger sends or reads (L2TP_ATTR_*).
    enum Attribute: UInt16, Sendable {
        case pseudowireType = 1, encapsulationType = 2, protocolVersion = 7, interfaceName = 8
        case connectionID = 9, peerConnectionID = 10, sessionID = 11, peerSessionID = 12
        case socketFD = 23, mtu = 28
    }

    /// L2TP_PWTYPE_ETH: an Ethernet pseudowire, one l2tpeth device per session.
    static let pseudowireEthernet: UInt16 = 5
    /// L2TP_ENCAPTYPE_UDP.
    static let encapsulationUDP: UInt16 = 0
    static let protocolVersion: UInt8 = 3

    /// A tunnel over the caller's UDP socket `socketFD`, bound and connected to the peer.
    static func tunnelCreate(id: UInt32, peerID: UInt32, socketFD: Int32) -> GenericNetlinkRequest {
        request(.tunnelCreate, "TUNNEL_CREATE tunnel \(id)", [
            .u32(Attribute.connectionID.rawValue, id),
            .u32(Attribute.peerConnectionID.rawValue, peerID),
            .u8(Attribute.protocolVersion.rawValue, protocolVersion),
            .u16(Attribute.encapsulationType.rawValue, encapsulationUDP),
            .u32(Attribute.socketFD.rawValue, UInt32(bitPattern: socketFD)),
        ])
    }

    static func tunnelDelete(id: UInt32) -> GenericNetlinkRequest {
        request(.tunnelDelete, "TUNNEL_DELETE tunnel \(id)", [.u32(Attribute.connectionID.rawValue, id)])
    }

    /// An Ethernet session whose device is named `interface` (at most 15 bytes).
    static func sessionCreate(tunnelID: UInt32, sessionID: UInt32, peerSessionID: UInt32,
                                     interface: String) -> GenericNetlinkRequest {
        request(.sessionCreate, "SESSION_CREATE tunnel \(tunnelID) session \(sessionID)", [
            .u32(Attribute.connectionID.rawValue, tunnelID),
            .u32(Attribute.sessionID.rawValue, sessionID),
            .u32(Attribute.peerSessionID.rawValue, peerSessionID),
            .u16(Attribute.pseudowireType.rawValue, pseudowireEthernet),
            .string(Attribute.interfaceName.rawValue, interface),
        ])
    }

    /// The session's MTU: older kernels keep it in the session, newer ones ignore it;
    /// tunneldigger sends it anyway and so do we, for the same behaviour on both.
    static func sessionModify(tunnelID: UInt32, sessionID: UInt32, mtu: UInt16) -> GenericNetlinkRequest {
        request(.sessionModify, "SESSION_MODIFY tunnel \(tunnelID) session \(sessionID) MTU \(mtu)", [
            .u32(Attribute.connectionID.rawValue, tunnelID),
            .u32(Attribute.sessionID.rawValue, sessionID),
            .u16(Attribute.mtu.rawValue, mtu),
        ])
    }

    static func sessionDelete(tunnelID: UInt32, sessionID: UInt32) -> GenericNetlinkRequest {
        request(.sessionDelete, "SESSION_DELETE tunnel \(tunnelID) session \(sessionID)", [
            .u32(Attribute.connectionID.rawValue, tunnelID),
            .u32(Attribute.sessionID.rawValue, sessionID),
        ])
    }

    /// Every tunnel the kernel has (each reply carries CONN_ID).
    static let tunnelDump = GenericNetlinkRequest(
        command: Command.tunnelGet.rawValue, version: version, attributes: [], dump: true, label: "TUNNEL_GET dump")

    /// Every session of every tunnel (each reply carries CONN_ID and SESSION_ID).
    static let sessionDump = GenericNetlinkRequest(
        command: Command.sessionGet.rawValue, version: version, attributes: [], dump: true, label: "SESSION_GET dump")

    private static func request(_ command: Command, _ label: String, _ attributes: [NetlinkAttribute]) -> GenericNetlinkRequest {
        GenericNetlinkRequest(command: command.rawValue, version: version, attributes: attributes, label: label)
    }
}
