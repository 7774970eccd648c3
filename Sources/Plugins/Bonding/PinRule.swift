import Framework

/// Keeps selected traffic on one link, whole (what mlvpn's `[filters]` did with pcap
/// expressions): `udp port 5060 -> wan2`, `dscp 46 -> wan1`, `icmp -> wan1`,
/// `tcp port 22 dscp 16 -> wan1`. All criteria given must match; a port matches
/// either source or destination. If the link is not usable the packet is scheduled
/// normally (a pin is a preference, never a reason to drop).
struct PinRule: Equatable {
    var protocolNumber: UInt8?
    var port: UInt16?
    var dscp: UInt8?
    var link: String

    static let protocols: [String: UInt8] = ["icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "gre": 47, "esp": 50]

    static func parse(_ text: String) throws -> PinRule {
        let halves = text.split(separator: "->", omittingEmptySubsequences: false)
        guard halves.count == 2 else { throw PinError(text, "write it as 'CRITERIA -> LINK', e.g. 'udp port 5060 -> wan2'") }
        let link = halves[1].split(separator: " ").joined()
        guard !link.isEmpty else { throw PinError(text, "name the link after '->'") }
        var rule = PinRule(link: link)
        var words = halves[0].split(separator: " ").map(String.init)[...]
        while let word = words.popFirst() {
            switch word {
            case "port", "dscp", "proto":
                guard let value = words.popFirst(), let number = Int(value) else { throw PinError(text, "'\(word)' needs a number") }
                switch word {
                case "port":
                    guard (1...65535).contains(number) else { throw PinError(text, "port \(number) is not in 1...65535") }
                    rule.port = UInt16(number)
                case "dscp":
                    guard (0...63).contains(number) else { throw PinError(text, "dscp \(number) is not in 0...63") }
                    rule.dscp = UInt8(number)
                default:
                    guard (0...255).contains(number) else { throw PinError(text, "protocol \(number) is not in 0...255") }
                    rule.protocolNumber = UInt8(number)
                }
            default:
                guard let number = protocols[word] else {
                    throw PinError(text, "unknown word '\(word)'; use tcp, udp, icmp, icmpv6, gre, esp, 'proto N', 'port N', 'dscp N'")
                }
                rule.protocolNumber = number
            }
        }
        guard rule.protocolNumber != nil || rule.port != nil || rule.dscp != nil else {
            throw PinError(text, "give at least one of a protocol, 'port N' or 'dscp N'")
        }
        return rule
    }

    /// Does this IP packet (already checked by the ingress) match?
    func matches(_ packet: Packet) -> Bool {
        guard let (proto, transport) = IPHeader.transport(packet) else { return false }
        let bytes = UnsafeRawPointer(packet.base + packet.offset)
        if let protocolNumber, proto != protocolNumber { return false }
        if let dscp, IPHeader.dscp(packet) != dscp { return false }
        if let port {
            guard proto == 6 || proto == 17, packet.length >= transport + 4 else { return false }
            let source = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: transport, as: UInt16.self))
            let destination = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: transport + 2, as: UInt16.self))
            if source != port && destination != port { return false }
        }
        return true
    }
}

struct PinError: Error, CustomStringConvertible {
    let description: String
    init(_ rule: String, _ problem: String) { description = "pin rule '\(rule)': \(problem)" }
}
