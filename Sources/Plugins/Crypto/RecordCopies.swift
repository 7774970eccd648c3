import Glibc
import Framework

/// Tells the second copy of a record, sent by another path, from a replay.
///
/// Bonding's redundant mode sends every packet on two paths. Its scheduler sits below
/// this stage, so both copies are one sealed record with one counter, and the replay
/// window refuses whichever arrives second. That copy is expected traffic, not an
/// attack, and is counted `duplicate` (as the reorder stage counts copies it sees
/// without encryption) when all of these hold:
///  * it is byte for byte a record this end accepted: same counter low half, same
///    first 8 bytes of the tag (a record with a reused counter and a different body
///    or key cannot match the tag of the authenticated one);
///  * it came by a different path (link and source address) than that record;
///  * its path has delivered authenticated records of this session itself;
///  * it is the first copy of that record (redundant mode sends two, not three).
/// Everything else the window refuses stays `replayed`. The record is dropped
/// unopened either way: this only names a drop, it never lets a record through, so
/// replay protection is exactly as strong as before.
///
/// The receiver cannot know whether its peer's scheduler is in redundant mode (the
/// mode is the sender's setting), so the rule does not depend on it: a single-path
/// session never has a second path, and pays one fingerprint and compare per record.
/// The ring of accepted records (16 KB) is made when a second path first delivers,
/// so single-path sessions hold none. A copy arriving more than `slots` records after
/// its original is counted `replayed` (redundant mode pairs paths of similar delay).
final class RecordCopies {
    static let slots = 1024  // a power of two
    static let knownPathCount = 8

    private struct Entry {
        var counter: UInt32
        var path: UInt32  // 0: empty
        var tag: UInt64
    }
    private var ring: UnsafeMutablePointer<Entry>?
    /// Fingerprints of the paths authenticated records came by (round robin, 0: empty).
    private var known = [UInt32](repeating: 0, count: RecordCopies.knownPathCount)
    private var knownCount = 0, nextKnown = 0
    private var lastPath: UInt32 = 0

    deinit { ring?.deallocate() }

    /// Whether the ring exists (a second path has delivered).
    var isTracking: Bool { ring != nil }

    /// A path's fingerprint: link and source address folded into 32 bits, never 0.
    /// A collision only makes two paths look like one (a copy counted `replayed`).
    @inline(__always)
    static func path(link: Int32, peer: SocketAddress) -> UInt32 {
        var storage = peer.storage
        return withUnsafeBytes(of: &storage) { raw in
            // Family and port, then the address; IPv4 uses only its 4 address bytes
            // (the rest of the storage may hold an earlier datagram's bytes).
            var hash = UInt64(UInt32(bitPattern: link)) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(raw.load(as: UInt32.self))
            if peer.family == AF_INET6 {
                hash ^= raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self) &* 0xC2B2_AE3D_27D4_EB4F
                hash ^= raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self) &* 0x1656_67B1_9E37_79F9
            } else {
                hash ^= UInt64(raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) << 32
            }
            hash = (hash ^ (hash >> 31)) &* 0xBF58_476D_1CE4_E5B9
            return UInt32(truncatingIfNeeded: hash >> 32) | 1
        }
    }

    /// The first 8 bytes of a record's tag (the caller checked it has one).
    @inline(__always)
    static func tag(of record: Packet) -> UInt64 {
        (record.base + record.offset + record.length - AEADCipher.tagBytes).loadUnaligned(as: UInt64.self)
    }

    /// A record with counter low half `counter` and `tag` came by `path` and was accepted.
    @inline(__always)
    func accepted(counter: UInt32, tag: UInt64, path: UInt32) {
        if path != lastPath { noteKnown(path) }
        guard let ring else { return }
        ring[Int(counter) & (RecordCopies.slots - 1)] = Entry(counter: counter, path: path, tag: tag)
    }

    /// Whether a record the replay window refused is a copy, by another path this
    /// session uses, of one it accepted. Each accepted record has one copy at most
    /// (redundant mode sends two): a third arrival is a replay.
    func isCopy(counter: UInt32, tag: UInt64, path: UInt32) -> Bool {
        guard let ring else { return false }
        let slot = Int(counter) & (RecordCopies.slots - 1)
        let entry = ring[slot]
        guard entry.path != 0, entry.counter == counter, entry.tag == tag, entry.path != path, known.contains(path) else {
            return false
        }
        ring[slot].path = 0
        return true
    }

    private func noteKnown(_ path: UInt32) {
        lastPath = path
        if known.contains(path) { return }
        known[nextKnown] = path
        nextKnown = (nextKnown + 1) % RecordCopies.knownPathCount
        knownCount = min(knownCount + 1, RecordCopies.knownPathCount)
        if knownCount >= 2 && ring == nil {
            // Once per session: records now come by more than one path.
            let ring = UnsafeMutablePointer<Entry>.allocate(capacity: RecordCopies.slots)
            ring.initialize(repeating: Entry(counter: 0, path: 0, tag: 0), count: RecordCopies.slots)
            self.ring = ring
        }
    }
}
