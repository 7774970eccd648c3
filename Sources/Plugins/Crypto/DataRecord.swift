import Framework

/// The encrypted data record on the wire:
///
///     0       type (4)
///     1..3    reserved, zero
///     4..7    receiver index, little-endian: which key pair the receiver opens it with
///     8..15   counter, little-endian: the nonce, and the replay-window position
///     16..    the packet, encrypted
///     end     16-byte authentication tag
///
/// All 16 header bytes are associated data: a receiver acts on the index and counter
/// only after the tag proved them. 32 bytes of overhead per packet.
public enum DataRecord {
    public static let type: UInt8 = 4
    public static let headerBytes = 16
    public static let overhead = headerBytes + AEADCipher.tagBytes

    public enum OpenError: Error, Equatable { case truncated, malformed, authentication, replayed, tooOld }

    /// Seal `packet` in place: header into the headroom, tag into the tailroom.
    /// False when the packet lacks the room (the caller drops it as `no_room`).
    @inline(__always)
    public static func seal(_ packet: inout Packet, key: AEADKey, receiverIndex: UInt32, counter: UInt64) -> Bool {
        let length = packet.length
        guard packet.headroom >= headerBytes, packet.tailroom >= AEADCipher.tagBytes else { return false }
        let header = packet.prepend(headerBytes)!
        header.storeBytes(of: UInt32(type).littleEndian, as: UInt32.self)  // type, then 3 zero bytes
        header.storeBytes(of: receiverIndex.littleEndian, toByteOffset: 4, as: UInt32.self)
        header.storeBytes(of: counter.littleEndian, toByteOffset: 8, as: UInt64.self)
        let tag = packet.append(AEADCipher.tagBytes)!
        key.seal(header + headerBytes, count: length, tag: tag, ad: header, adCount: headerBytes, counter: counter)
        return true
    }

    /// The receiver index and counter of a record, before authentication (to find the
    /// key and pre-check the replay window). Nothing here may change state.
    @inline(__always)
    public static func peek(_ packet: Packet) -> Result<(index: UInt32, counter: UInt64), OpenError> {
        guard packet.length >= overhead else { return .failure(.truncated) }
        let header = packet.base + packet.offset
        guard header.loadUnaligned(as: UInt32.self) == UInt32(type).littleEndian else { return .failure(.malformed) }
        return .success((UInt32(littleEndian: header.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
                         UInt64(littleEndian: header.loadUnaligned(fromByteOffset: 8, as: UInt64.self))))
    }

    /// Authenticate and decrypt in place a record `peek` accepted (its counter is
    /// passed back, so the header is parsed once), then record the counter in
    /// `window`; on success the packet is the inner packet. Replays are refused
    /// before the costly decryption and again after it (two copies of one packet in
    /// one batch).
    @inline(__always)
    public static func open(_ packet: inout Packet, counter: UInt64, key: AEADKey, window: ReplayWindow) -> OpenError? {
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
