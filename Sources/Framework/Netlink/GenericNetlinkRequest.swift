/// A generic-netlink request as a family's API describes it: command, version and
/// attributes. The family id is known only once the family is resolved, so it is
/// supplied when the request becomes a message.
public struct GenericNetlinkRequest: Sendable, Equatable {
    var command: UInt8
    var version: UInt8
    var attributes: [NetlinkAttribute]
    var dump: Bool
    /// Names the request in errors, e.g. "SESSION_CREATE tunnel 100 session 100".
    var label: String

    public init(command: UInt8, version: UInt8, attributes: [NetlinkAttribute], dump: Bool = false, label: String) {
        self.command = command
        self.version = version
        self.attributes = attributes
        self.dump = dump
        self.label = label
    }

    /// The message for family `family`: the genlmsghdr is command, version and two
    /// reserved zero bytes.
    func message(family: UInt16) -> NetlinkRequest {
        NetlinkRequest(type: family, flags: dump ? NetlinkRequest.dumpFlags : NetlinkRequest.requestFlags,
                       fixedHeader: [command, version, 0, 0], attributes: attributes, label: label)
    }

    func encoded(family: UInt16, sequence: UInt32, portID: UInt32) -> [UInt8] {
        message(family: family).encoded(sequence: sequence, portID: portID)
    }
}
