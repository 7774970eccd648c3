import Framework

/// The encrypted data record on the wire:
///
///     0       type (4)
///     1..3    receiver index, 24 bits, little-endian: which key pair the receiver opens it with
///     4..7    counter, low 32 bits, little-endian
///     8..     the packet, encrypted
///     end     16-byte authentication tag
///
/// The nonce is the whole 64-bit counter; the receiver takes the upper half from its
/// replay window (the counter nearest the newest it accepted, as QUIC does with packet
/// numbers). Four bytes carry a counter a sender cannot move 2^31 ahead of its peer's
/// window in practice (keys are renewed long before), and a wrong guess only makes
/// the tag fail. All 8 header bytes are associated data: a receiver acts on the index
/// and counter only after the tag proved them. 24 bytes of overhead per packet: every
/// byte saved is payload on a full-size datagram (a bonded 1500-byte uplink carries
/// 1444 bytes of inner packet).
enum DataRecord {
    static let type: UInt8 = 4
    static let headerBytes = 8
    static let overhead = headerBytes + AEADCipher.tagBytes
    /// Receiver indices are 24 bits.
    static let maxIndex: UInt32 = 0xFF_FFFF

    enum OpenError: Error, Equatable { case truncated, malformed, authentication, replayed, tooOld }

    /// Seal `packet` in place: header into the headroom, tag into the tailroom.
    /// False when the packet lacks the room (the caller drops it as `no_room`).
    @inline(__always)
    static func seal(_ packet: inout Packet, key: AEADKey, receiverIndex: UInt32, counter: UInt64) -> Bool {
        let length = packet.length
        guard packet.headroom >= headerBytes, packet.tailroom >= AEADCipher.tagBytes else { return false }
        let header = packet.prepend(headerBytes)!
        header.storeBytes(of: (UInt32(type) | (receiverIndex & maxIndex) << 8).littleEndian, as: UInt32.self)
        header.storeBytes(of: UInt32(truncatingIfNeeded: counter).littleEndian, toByteOffset: 4, as: UInt32.self)
        let tag = packet.append(AEADCipher.tagBytes)!
        key.seal(header + headerBytes, count: length, tag: tag, ad: header, adCount: headerBytes, counter: counter)
        return true
    }

    /// The receiver index of a record and the low half of its counter, before
    /// authentication (to find the key). Nothing here may change state.
    @inline(__always)
    static func peek(_ packet: Packet) -> Result<(index: UInt32, counter: UInt32), OpenError> {
        guard packet.length >= overhead else { return .failure(.truncated) }
        let header = packet.base + packet.offset
        let first = UInt32(littleEndian: header.loadUnaligned(as: UInt32.self))
        guard first & 0xFF == UInt32(type) else { return .failure(.malformed) }
        return .success((first >> 8, UInt32(littleEndian: header.loadUnaligned(fromByteOffset: 4, as: UInt32.self))))
    }

    /// Authenticate and decrypt in place a record `peek` accepted (the low half of
    /// its counter is passed back, so the header is parsed once), then record the
    /// counter in `window`; on success the packet is the inner packet. Replays are
    /// refused before the costly decryption and again after it (two copies of one
    /// packet in one batch).
    @inline(__always)
    static func open(_ packet: inout Packet, counter low: UInt32, key: AEADKey, window: ReplayWindow) -> OpenError? {
        let counter = window.expand(low)
        switch window.check(counter) {
        case .replayed: return .replayed
        case .tooOld: return .tooOld
        case .fresh: break
        }
        let header = packet.base + packet.offset
        let bodyLength = packet.length - overhead
        guard key.open(header + headerBytes, count: bodyLength, tag: header + headerBytes + bodyLength,
                       ad: header, adCount: headerBytes, counter: counter) else { return .authentication }
        switch window.accept(counter) {
        case .replayed: return .replayed
        case .tooOld: return .tooOld
        case .fresh: break
        }
        _ = packet.trimFront(headerBytes)
        _ = packet.trimBack(AEADCipher.tagBytes)
        return nil
    }
}
