/// The broker's side of path-MTU discovery (tunneldigger §3.6), as a schedule:
/// IPv4 sizes 1500, 1492, 1476, 1450, 1400, 1334, each tried four times, one probe a
/// second, largest first. A round ends as soon as the next size to try is no larger
/// than the best acknowledged one (on a clean 1500-byte path: after one probe); the
/// next round starts 500–699 s later.
///
/// Two upstream bugs are not copied: a first delay of 0 disarmed the timer (1 in 5
/// tunnels never probed), and a peer that never acknowledges was probed once a
/// second forever. Here the first probe comes after 1–4 s, and a round with no
/// acknowledgement at all also ends after its 24 probes.
struct BrokerPMTUProber {
    static let sizes = [1500, 1492, 1476, 1450, 1400, 1334]
    static let triesPerSize = 4
    /// IPv4 + UDP headers: an acknowledged UDP payload of `a` bytes means a path MTU of `a + 28`.
    static let ipUDPHeaders = 28

    private(set) var step = 0
    /// Best path MTU acknowledged in this round.
    private(set) var best = 0

    /// The IPv4 size to probe now, or nil when the round is over.
    mutating func nextProbe() -> Int? {
        guard step < Self.sizes.count * Self.triesPerSize else { return nil }
        let size = Self.sizes[step / Self.triesPerSize]
        if size <= best { return nil }
        step += 1
        return size
    }

    /// A PMTUD_ACK for `payload` bytes: the new path MTU if it beats this round's best.
    mutating func acknowledged(payload: Int) -> Int? {
        let pathMTU = payload + Self.ipUDPHeaders
        guard pathMTU > best else { return nil }
        best = pathMTU
        return pathMTU
    }

    /// Start the next round from the largest size.
    mutating func newRound() {
        step = 0
        best = 0
    }

    /// UDP payload of a probe of IPv4 size `size`.
    static func payload(forProbe size: Int) -> Int { size - ipUDPHeaders }
}
