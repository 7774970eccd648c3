/// The client's side of path-MTU discovery (tunneldigger §2.6), as a schedule the
/// manager follows: a round starts 15 s after the broker was chosen, then after 30,
/// 60, … up to 600 s; each round sends a burst of six probes at once and again 2 and
/// 4 s later, and 6 s after its start takes the largest acknowledged size as the path
/// MTU.
struct ClientPMTUProber {
    /// IPv4 packet sizes probed in each burst.
    static let sizes = [1334, 1400, 1450, 1476, 1492, 1500]
    static let burstOffsets: [Double] = [0, 2, 4]
    static let collectAfter: Double = 6
    static let firstInterval: Double = 15
    static let longestInterval: Double = 600

    /// IP + UDP header bytes: a probe of IP size `s` carries `s − headers` UDP bytes.
    let headers: Int
    private(set) var interval = firstInterval
    private(set) var best = 0

    init(ipv6: Bool) {
        headers = ipv6 ? 48 : 28
    }

    /// UDP payload sizes of one burst.
    var payloads: [Int] { Self.sizes.map { $0 - headers } }

    /// A new round: forget the last round's acknowledgements.
    mutating func startRound() {
        best = 0
    }

    /// A PMTUD_ACK for `payload` received bytes.
    mutating func acknowledged(payload: Int) {
        best = max(best, payload + headers)
    }

    /// The round ends: the path MTU it found (nil when nothing was acknowledged, so
    /// the previous value stands), and the next round's interval doubles.
    mutating func finishRound() -> Int? {
        interval = min(interval * 2, Self.longestInterval)
        return best > 0 ? best : nil
    }
}
