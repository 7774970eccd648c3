import Foundation
import XCTest

/// Latency under load: ping while one bulk TCP stream runs, through the tunnel or over
/// a raw uplink, measured the same way.
extension BondingLab {
    struct LoadedPing {
        var averageMs: Double
        var lost: Int
        var transfer: Transfer
    }

    /// Average RTT of `count` pings at `interval` s from `ns` to `target`.
    func ping(from ns: String, to target: String, count: Int = 20, interval: Double = 0.1) throws -> (averageMs: Double, lost: Int) {
        let output = try lab.exec(ns, "ping", "-n", "-q", "-c", "\(count)", "-i", "\(interval)", "-W", "2", target,
                                  allowFailure: true, timeout: TimeInterval(Double(count) * interval + 10)).output
        return try BondingLab.pingSummary(output, count: count)
    }

    /// One bulk TCP stream (iperf3, `congestion`) from `ns` to `server` for `seconds`
    /// (the first `omit` left out), and 50 pings at 0.1 s to `pingTarget` from its
    /// third second on, while the stream runs at full speed.
    func pingDuringTCP(from ns: String, to server: String, serverNamespace: String, pingTarget: String,
                       congestion: String, seconds: Int = 9, omit: Int = 2, port: Int) throws -> LoadedPing {
        _ = try lab.spawn(serverNamespace, ["iperf3", "-s", "-1", "-p", "\(port)"], name: "iperf3-server-\(port)")
        usleep(300_000)
        let client = try lab.spawn(ns, ["iperf3", "-c", server, "-p", "\(port)", "-t", "\(seconds)", "-O", "\(omit)", "-J",
                                        "-C", congestion, "-i", "1"], name: "iperf3-client-\(port)")
        usleep(2_500_000)
        let pings = try ping(from: ns, to: pingTarget, count: 50, interval: 0.1)
        guard client.stop(signal: 0, timeout: TimeInterval(seconds + omit + 30)) == 0 else {
            throw LabError("iperf3 failed: \(client.output.prefix(500))")
        }
        return LoadedPing(averageMs: pings.averageMs, lost: pings.lost, transfer: try BondingLab.transfer(client.output))
    }

    /// ping -q's summary: "N packets transmitted, M received, …" and "rtt min/avg/max/mdev = a/b/c/d ms".
    static func pingSummary(_ output: String, count: Int) throws -> (averageMs: Double, lost: Int) {
        guard let rtt = output.range(of: "rtt min/avg/max/mdev = ") ?? output.range(of: "round-trip min/avg/max = ") else {
            throw LabError("no ping summary: \(output)")
        }
        let fields = output[rtt.upperBound...].split(separator: "/")
        guard fields.count >= 2, let average = Double(fields[1]) else { throw LabError("bad ping summary: \(output)") }
        var received = count
        if let range = output.range(of: #"[0-9]+ received"#, options: .regularExpression) {
            received = Int(output[range].split(separator: " ")[0]) ?? count
        }
        return (average, count - received)
    }
}
