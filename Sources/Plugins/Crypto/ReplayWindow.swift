/// Sliding-window replay protection over 64-bit message counters (RFC 6479's bitmap
/// of blocks, as WireGuard uses it).
///
/// The window is 8128 counters wide (127 blocks of 64): packets spread over bonded links of very
/// different delay arrive far out of order, and a narrow window would mistake
/// honest stragglers for replays. Call `accept` only after the packet authenticated,
/// so forged packets can never move the window.
final class ReplayWindow {
    enum Verdict: Equatable { case fresh, replayed, tooOld }

    static let blockBits = 64
    static let blockCount = 128  // a power of two
    /// Counters this far behind the newest are refused as too old.
    static let width = (blockCount - 1) * blockBits

    private let blocks: UnsafeMutablePointer<UInt64>
    private var newest: UInt64 = 0
    private var seenAny = false

    init() {
        blocks = .allocate(capacity: ReplayWindow.blockCount)
        blocks.initialize(repeating: 0, count: ReplayWindow.blockCount)
    }

    deinit { blocks.deallocate() }

    /// The 64-bit counter whose low half is `low` and which lies nearest the newest
    /// counter accepted (within 2^31 either way).
    @inline(__always)
    func expand(_ low: UInt32) -> UInt64 {
        let half: UInt64 = 1 << 31, span: UInt64 = 1 << 32
        var candidate = (newest & ~(span - 1)) | UInt64(low)
        if candidate &+ half <= newest {
            candidate &+= span
        } else if candidate > newest &+ half && candidate >= span {
            candidate -= span
        }
        return candidate
    }

    /// Whether `counter` would be accepted, without recording it.
    @inline(__always)
    func check(_ counter: UInt64) -> Verdict {
        if seenAny && counter <= newest && newest - counter >= UInt64(ReplayWindow.width) { return .tooOld }
        let block = Int(truncatingIfNeeded: counter >> 6) & (ReplayWindow.blockCount - 1)
        let bit = UInt64(1) << (counter & 63)
        if seenAny && counter <= newest && blocks[block] & bit != 0 { return .replayed }
        return .fresh
    }

    /// Record `counter` as received. Returns the verdict; only `.fresh` was recorded.
    @inline(__always)
    func accept(_ counter: UInt64) -> Verdict {
        let verdict = check(counter)
        guard verdict == .fresh else { return verdict }
        if !seenAny || counter > newest {
            // Clear the blocks the window slides over.
            let current = seenAny ? newest >> 6 : 0
            let target = counter >> 6
            var steps = seenAny ? target - current : UInt64(ReplayWindow.blockCount)
            if steps > UInt64(ReplayWindow.blockCount) { steps = UInt64(ReplayWindow.blockCount) }
            var index = current
            for _ in 0..<steps {
                index &+= 1
                blocks[Int(truncatingIfNeeded: index) & (ReplayWindow.blockCount - 1)] = 0
            }
            if !seenAny { blocks[Int(truncatingIfNeeded: target) & (ReplayWindow.blockCount - 1)] = 0 }
            newest = counter
            seenAny = true
        }
        let block = Int(truncatingIfNeeded: counter >> 6) & (ReplayWindow.blockCount - 1)
        blocks[block] |= UInt64(1) << (counter & 63)
        return .fresh
    }
}
