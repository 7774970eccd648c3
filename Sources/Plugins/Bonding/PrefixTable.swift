import Framework

/// Which site an inner IP address belongs to: longest-prefix match over the
/// `routes` of a bonding server (`site-a=10.10.1.0/24 fd00:a::/64`). Small and
/// linear on purpose: a hub serves tens of sites, not a BGP table. Every packet the
/// hub sends or receives for a site is looked up, so the match works on integers
/// (the network and mask of each entry precomputed) and answers with the owner's
/// index in `names`, never a string.
struct PrefixTable {
    struct Entry {
        var family: InterfaceAddress.Family
        var prefix: Int
        var owner: String
        /// Index of `owner` in the table's `names`.
        var index: Int
        /// The network and its mask, as integers: IPv4 in the low 32 bits of `low`,
        /// IPv6 as the high and low 64 bits.
        var isIPv4: Bool
        var high: UInt64 = 0, low: UInt64 = 0, highMask: UInt64 = 0, lowMask: UInt64 = 0
    }

    private(set) var entries: [Entry] = []
    /// The owners, each once, in the order the routes name them.
    private(set) var names: [String] = []
    var owners: Set<String> { Set(names) }

    /// Parse `NAME=PREFIX [PREFIX…]` lines; the error says which part is wrong.
    static func parse(_ lines: [String]) throws -> PrefixTable {
        var table = PrefixTable()
        for line in lines {
            let parts = line.split(separator: "=", maxSplits: 1).map { String($0).filter { $0 != " " && $0 != "\t" } }
            let prefixes = line.split(separator: "=", maxSplits: 1).last?.split(separator: " ") ?? []
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigurationError("route '\(line)' is not NAME=PREFIX [PREFIX…], e.g. site-a=10.10.1.0/24")
            }
            let owner = parts[0]
            if !table.names.contains(owner) { table.names.append(owner) }
            let index = table.names.firstIndex(of: owner)!
            for text in prefixes {
                guard let address = InterfaceAddress.parse(String(text)) else {
                    throw ConfigurationError("route '\(line)': '\(text)' is not an address/prefix such as 10.10.1.0/24")
                }
                table.entries.append(PrefixTable.entry(address, owner: owner, index: index))
            }
        }
        table.entries.sort { $0.prefix > $1.prefix }
        return table
    }

    private static func entry(_ address: InterfaceAddress, owner: String, index: Int) -> Entry {
        var entry = Entry(family: address.family, prefix: address.prefix, owner: owner, index: index, isIPv4: true)
        switch address.family {
        case .ipv4(let network):
            entry.lowMask = address.prefix == 0 ? 0 : UInt64(~UInt32(0) << (32 - address.prefix))
            entry.low = UInt64(UInt32(bigEndian: network)) & entry.lowMask
        case .ipv6(let bytes):
            entry.isIPv4 = false
            let bits = address.prefix
            entry.highMask = bits == 0 ? 0 : bits >= 64 ? ~0 : ~UInt64(0) << (64 - bits)
            entry.lowMask = bits <= 64 ? 0 : bits >= 128 ? ~0 : ~UInt64(0) << (128 - bits)
            entry.high = PrefixTable.word(bytes, 0) & entry.highMask
            entry.low = PrefixTable.word(bytes, 8) & entry.lowMask
        }
        return entry
    }

    private static func word(_ bytes: [UInt8], _ start: Int) -> UInt64 {
        (start..<start + 8).reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[$1]) }
    }

    /// The index (in `names`) of the owner of the packet's destination (or source)
    /// address, if any.
    @inline(__always)
    func ownerIndex(of packet: Packet, destination: Bool) -> Int? {
        guard packet.length >= 20 else { return nil }
        let bytes = UnsafeRawPointer(packet.base + packet.offset)
        if bytes.load(as: UInt8.self) >> 4 == 4 {
            let address = UInt64(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: destination ? 16 : 12, as: UInt32.self)))
            for entry in entries where entry.isIPv4 && address & entry.lowMask == entry.low { return entry.index }
        } else if packet.length >= 40 {
            let start = destination ? 24 : 8
            let high = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self))
            let low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: start + 8, as: UInt64.self))
            for entry in entries where !entry.isIPv4 && high & entry.highMask == entry.high && low & entry.lowMask == entry.low {
                return entry.index
            }
        }
        return nil
    }

    /// The owner of the packet's destination (or source) address, if any.
    func owner(of packet: Packet, destination: Bool) -> String? {
        ownerIndex(of: packet, destination: destination).map { names[$0] }
    }
}
