import Framework

/// Which site an inner IP address belongs to: longest-prefix match over the
/// `routes` of a bonding server (`site-a=10.10.1.0/24 fd00:a::/64`). Small and
/// linear on purpose: a hub serves tens of sites, not a BGP table.
struct PrefixTable {
    struct Entry {
        var family: InterfaceAddress.Family
        var prefix: Int
        var owner: String
    }

    private(set) var entries: [Entry] = []
    var owners: Set<String> { Set(entries.map(\.owner)) }

    /// Parse `NAME=PREFIX [PREFIX…]` lines; the error says which part is wrong.
    static func parse(_ lines: [String]) throws -> PrefixTable {
        var table = PrefixTable()
        for line in lines {
            let parts = line.split(separator: "=", maxSplits: 1).map { String($0).filter { $0 != " " && $0 != "\t" } }
            let prefixes = line.split(separator: "=", maxSplits: 1).last?.split(separator: " ") ?? []
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigurationError("route '\(line)' is not NAME=PREFIX [PREFIX…], e.g. site-a=10.10.1.0/24")
            }
            for text in prefixes {
                guard let address = InterfaceAddress.parse(String(text)) else {
                    throw ConfigurationError("route '\(line)': '\(text)' is not an address/prefix such as 10.10.1.0/24")
                }
                table.entries.append(Entry(family: address.family, prefix: address.prefix, owner: parts[0]))
            }
        }
        table.entries.sort { $0.prefix > $1.prefix }
        return table
    }

    /// The owner of the packet's destination (or source) address, if any.
    func owner(of packet: Packet, destination: Bool) -> String? {
        guard packet.length >= 20 else { return nil }
        let bytes = UnsafeRawPointer(packet.base + packet.offset)
        if bytes.load(as: UInt8.self) >> 4 == 4 {
            let address = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: destination ? 16 : 12, as: UInt32.self))
            for entry in entries {
                guard case .ipv4(let network) = entry.family else { continue }
                let mask: UInt32 = entry.prefix == 0 ? 0 : ~UInt32(0) << (32 - entry.prefix)
                if address & mask == UInt32(bigEndian: network) & mask { return entry.owner }
            }
        } else if packet.length >= 40 {
            let start = destination ? 24 : 8
            for entry in entries {
                guard case .ipv6(let network) = entry.family else { continue }
                if PrefixTable.matches(bytes + start, network, entry.prefix) { return entry.owner }
            }
        }
        return nil
    }

    private static func matches(_ address: UnsafeRawPointer, _ network: [UInt8], _ prefix: Int) -> Bool {
        var bits = prefix
        var i = 0
        while bits >= 8 {
            if address.load(fromByteOffset: i, as: UInt8.self) != network[i] { return false }
            bits -= 8
            i += 1
        }
        if bits > 0 {
            let mask = UInt8(0xFF) << (8 - bits)
            return address.load(fromByteOffset: i, as: UInt8.self) & mask == network[i] & mask
        }
        return true
    }
}
