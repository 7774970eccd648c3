import Foundation
import Framework
import Glibc

/// The client side of the status socket, for `tunneld status`.
public enum StatusClient {
    /// Status sockets in the default folder, sorted.
    public static func defaultSockets() -> [String] {
        let folder = "/run/tunneld"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".sock") }.sorted().map { "\(folder)/\($0)" }
    }

    /// The raw JSON document a daemon sends.
    public static func fetch(_ path: String) throws -> Data {
        let fd = try UnixSocket.connect(path)
        defer { close(fd) }
        return Data(UnixSocket.readAll(fd))
    }
}

/// The human table of `tunneld status`: one block per tunnel, then its sessions and
/// links, in the spirit of `wg show`.
public enum StatusTable {
    public static func render(_ status: TunnelStatus, socket: String) -> String {
        var lines: [String] = []
        let d = status.daemon
        let reload = d.lastReload.map { ", reloaded \(duration(max(0, TunnelStatus.wallClock() - $0))) ago" } ?? ""
        lines.append("tunnel \(d.site)  (profile \(d.profile), pid \(d.pid), up \(duration(d.uptimeSeconds))\(reload), tunneld \(d.version), \(socket))")
        if let device = status.device {
            lines.append("  device \(device.name) (\(device.kind), mtu \(device.mtu))  \(traffic(device.counters))")
        }
        for session in status.sessions {
            let since = duration(max(0, TunnelStatus.wallClock() - session.since))
            lines.append("  session \(session.name): \(session.state) for \(since), peer \(session.peer ?? "(not yet known)"), \(session.dataPlane)")
            lines.append("    \(traffic(session.counters))")
            if let details = session.details {
                lines += describe(details, skipping: session.multipath == nil ? [] : MultipathView.members).map { "    " + $0 }
            }
            if let r = session.multipath?.reorder {
                lines.append("    reorder: \(r.inOrder) in order, \(r.held) held (\(r.holding) now, wait \(String(format: "%.1f", r.holdMs)) ms), released \(r.releasedByTimeout) by timeout, \(r.releasedAsLost) as lost, \(r.overflow) by overflow; \(r.late) late, \(r.duplicate) duplicate; \(r.aligned) aligned")
            }
            if let paths = session.multipath?.paths, !paths.isEmpty {
                lines += pathTable(paths).map { "    " + $0 }
            }
        }
        for link in status.links {
            lines.append("  link \(link.name): \(link.local) → \(link.remote ?? "(learnt from the peer)")")
            lines.append("    \(traffic(link.counters))")
        }
        if let manager = status.manager { lines += describe(manager).map { "  " + $0 } }
        if !status.tunnel.drops.isEmpty { lines.append("  before any session: \(drops(status.tunnel.drops))") }
        return lines.joined(separator: "\n")
    }

    /// A plugin's details: its scalar members on one line (`key value, …`), each
    /// list of objects one line per item below.
    static func describe(_ value: StatusValue, skipping: Set<String> = []) -> [String] {
        guard case .object(let members) = value else { return [] }
        var scalars: [String] = []
        var nested: [String] = []
        for (key, member) in members where !skipping.contains(key) {
            let name = snakeCase(key).replacingOccurrences(of: "_", with: " ")
            switch member {
            case .object: nested += describe(member).map { "\(name): " + $0 }
            case .array(let items): nested += items.flatMap { describe($0).map { "\(name): " + $0 } }
            case .null: continue
            default: scalars.append("\(name) \(scalarText(member))")
            }
        }
        return (scalars.isEmpty ? [] : [scalars.joined(separator: ", ")]) + nested
    }

    static func scalarText(_ value: StatusValue) -> String {
        switch value {
        case .bool(let v): return v ? "yes" : "no"
        case .int(let v): return String(v)
        case .uint(let v): return String(v)
        case .double(let v): return String(format: "%g", v)
        case .string(let v): return v
        default: return ""
        }
    }

    /// `peerTunnelId` → `peer_tunnel_id`, `pathMTU` → `path_mtu`: as the JSON
    /// encoder's snake case spells plugin keys (a run of capitals is one word).
    static func snakeCase(_ key: String) -> String {
        let characters = Array(key)
        var result = ""
        for (index, character) in characters.enumerated() {
            if character.isUppercase && index > 0 {
                let previous = characters[index - 1]
                let nextIsLower = index + 1 < characters.count && characters[index + 1].isLowercase
                if previous.isLowercase || previous.isNumber || (previous.isUppercase && nextIsLower) { result.append("_") }
            }
            result.append(contentsOf: character.lowercased())
        }
        return result
    }

    /// The paths of a bonded session as aligned columns, one row per link.
    static func pathTable(_ paths: [MultipathView.Path]) -> [String] {
        let header = ["LINK", "STATE", "LOCAL → REMOTE", "SRTT", "LOSS", "RATE", "TX", "RX", "DOWNS", "LAST RX"]
        let rows = paths.map { path -> [String] in
            [path.name + (path.fallbackOnly ? " (fallback)" : ""), path.state, "\(path.local) → \(path.remote)",
             path.srttMs.map { String(format: "%.1f±%.1f ms", $0, path.rttvarMs ?? 0) } ?? "-",
             String(format: "%.0f %%", path.lossPercent), String(format: "%.1f Mbit/s", path.rateMbps),
             bytes(path.txBytes), bytes(path.rxBytes), String(path.disconnects),
             String(format: "%.1f s", path.lastPacketSeconds)]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
    }

    static func traffic(_ c: TunnelStatus.Counters) -> String {
        var text = "tx \(bytes(c.txBytes)) in \(c.txPackets) packets, rx \(bytes(c.rxBytes)) in \(c.rxPackets) packets"
        if !c.drops.isEmpty { text += "; dropped \(drops(c.drops))" }
        return text
    }

    static func drops(_ drops: [String: UInt64]) -> String {
        drops.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds)
        let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60)
        if h > 0 { return "\(h)h \(m)m \(s)s" }
        if m > 0 { return "\(m)m \(s)s" }
        return "\(s)s"
    }
}
