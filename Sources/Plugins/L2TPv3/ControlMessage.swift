/// The tunneldigger control protocol (protocol reference §1): a 6-byte header
/// `80 73 A7 | 01 | type | L`, then `L` payload bytes, then zero padding up to 12
/// bytes. Every integer is big-endian.
///
/// The magic bytes read as an L2TP header with the T (control) bit set and version
/// nibble 3, so the kernel's L2TP receive hook hands these datagrams to the socket
/// rather than treating them as data (§4.5): control and data share one UDP socket.
///
/// This file is the pure codec: no I/O, no state. The decoder is strict like the C
/// client (drops what it cannot read fully) and never traps on any input.

/// Message type bytes (§1.3). Types 0x80–0xFF are "reliable": their payload starts
/// with a u16 sequence number the receiver echoes in a REL_ACK.
enum ControlType: UInt8, Sendable, CaseIterable {
    case cookie = 0x01
    case prepare = 0x02
    case error = 0x03
    case tunnel = 0x04
    case keepalive = 0x05
    case pmtuProbe = 0x06
    case pmtuAck = 0x07
    case reliableAck = 0x08
    case pmtuNotify = 0x09
    case usage = 0x0A
    case limit = 0x80
}

/// Feature flags (§1.7), a 32-bit big-endian bitmask in USAGE requests, PREPARE
/// and TUNNEL. Undefined bits are kept as received; the broker masks them out with
/// `supported` before answering.
struct FeatureFlags: OptionSet, Hashable, Sendable {
    let rawValue: UInt32
    init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Both ends use their tunnel ids as L2TPv3 session ids instead of the constant 1.
    static let uniqueSessionID = FeatureFlags(rawValue: 1 << 0)
    /// Everything this implementation understands (what a broker may agree to).
    static let supported: FeatureFlags = [.uniqueSessionID]
}

/// ERROR reason bytes (§1.6). High nibble: who sent it (0x00 broker, 0x10 client);
/// the two sides number their low nibbles differently. Nobody acts on the value
/// beyond logging, so it stays a plain byte (unknown values must still decode).
enum ErrorReason {
    static let brokerOtherRequested: UInt8 = 0x01
    static let brokerShutdown: UInt8 = 0x02
    static let brokerTimeout: UInt8 = 0x03
    static let brokerFailure: UInt8 = 0x04
    /// The upstream broker's default value; no code path emits it.
    static let brokerUndefined: UInt8 = 0x05
    static let clientOtherRequested: UInt8 = 0x10
    static let clientShutdown: UInt8 = 0x11
    static let clientTimeout: UInt8 = 0x12
    static let clientFailure: UInt8 = 0x13

    /// True when the high nibble says the client sent it.
    static func isFromClient(_ reason: UInt8) -> Bool { reason & 0xF0 == 0x10 }
}

/// The 8-byte cookie of a COOKIE reply, echoed verbatim in PREPARE. Clients treat
/// it as opaque; the issuing broker reads the first two bytes as its issue tick
/// (§3.3, see `CookieMint`). Stored as the 8 wire bytes packed big-endian, so it
/// is a plain value (hashable, no allocation).
struct Cookie: Hashable, Sendable, CustomStringConvertible {
    static let size = 8

    /// The wire bytes as one big-endian number: byte 0 is the top byte.
    var value: UInt64

    init(value: UInt64) { self.value = value }

    /// Exactly 8 bytes (a programmer error otherwise: the decoder only ever passes 8).
    init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == Cookie.size, "a cookie is \(Cookie.size) bytes, got \(bytes.count)")
        var value: UInt64 = 0
        for byte in bytes { value = value << 8 | UInt64(byte) }
        self.value = value
    }

    /// The wire bytes, in order.
    var bytes: [UInt8] { (0..<Cookie.size).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }

    /// The first two bytes: the broker's issue tick.
    var timestamp: UInt16 { UInt16(truncatingIfNeeded: value >> 48) }

    /// The last six bytes: the MAC.
    var mac: UInt64 { value & 0xFFFF_FFFF_FFFF }

    var description: String { bytes.map { String($0, radix: 16).leftPadded(2) }.joined() }
}

/// Who sent a datagram. COOKIE and USAGE use one type byte for both the client's
/// request and the broker's reply, and a request can be exactly as long as a reply
/// (both COOKIE forms have L = 8), so the bytes alone cannot say which one it is:
/// the receiver knows its peer's role. The broker decodes with `.client`, the
/// client with `.broker`.
enum ControlSender: Sendable {
    case client
    case broker
}

/// One decoded control message (§1.4).
enum ControlMessage: Equatable, Sendable {
    /// C→B. L ≥ 8 filler bytes (content ignored; we send ASCII `XXXXXXXX` like the C client).
    case cookieRequest
    /// B→C. L == 8.
    case cookieReply(cookie: Cookie)
    /// C→B. L ≥ 8 filler, then optional u32 features. Absent features mean 0 to the
    /// broker, so the decoder reports absent as `[]` and the encoder writes the
    /// word only when it is non-zero (old clients send none).
    case usageRequest(features: FeatureFlags)
    /// B→C. L == 2: load, 0 = empty … 0xFFFF = full or unsuitable.
    case usageReply(load: UInt16)
    /// C→B. Cookie, UUID (length-prefixed, at most 255 bytes), then the optional
    /// client tunnel id and, only after it, the optional features. nil = absent on
    /// the wire (the broker then assumes tunnel id 1 and features 0).
    case prepare(cookie: Cookie, uuid: [UInt8], tunnelID: UInt32?, features: FeatureFlags?)
    /// B→C. Broker tunnel id, then optional agreed features. nil ⇒ the 4-byte legacy
    /// form; the encoder writes the features word only when non-nil (the upstream
    /// broker sends it only when non-zero: pass nil for zero to match it).
    case tunnel(id: UInt32, features: FeatureFlags?)
    /// Both directions. nil ⇒ L = 0 (the broker's refusal of a PREPARE).
    case error(reason: UInt8?)
    /// Both directions. The broker sends a u16 counter (`wide` false), the C client
    /// a u32 (`wide` true). Content is never interpreted.
    case keepalive(counter: UInt32, wide: Bool)
    /// Both directions. `size` is the whole UDP payload including the 6-byte
    /// header (L = 0, the rest zeros): that is the number the ACK reports back.
    case pmtuProbe(size: Int)
    /// Both directions. L == 2: the UDP payload size of the probe received.
    case pmtuAck(size: UInt16)
    /// B→C. L == 2: the sequence number of the reliable message acknowledged.
    case reliableAck(sequence: UInt16)
    /// Both directions. L == 2: the sender's tunnel MTU.
    case pmtuNotify(mtu: UInt16)
    /// C→B, reliable (0x80). L = 8: sequence, limit type 0x01 (BANDWIDTH_DOWN),
    /// value length 0x04, u32 kbit/s.
    case limit(sequence: UInt16, bandwidthKbps: UInt32)
    /// Any other reliable type (≥ 0x80), or a LIMIT whose TLV is not the one known
    /// form, so the receiver can still REL_ACK it as the upstream broker does.
    case reliable(type: UInt8, sequence: UInt16)
}

enum ControlDecodeError: Error, Equatable, Sendable {
    /// Fewer than 6 bytes: no complete header.
    case tooShort
    /// Bytes 0–2 are not `80 73 A7` (e.g. an L2TP data packet passed up by the kernel).
    case badMagic
    /// Byte 3 is not 1.
    case badVersion
    /// L is larger than what follows the header. The upstream broker would read the
    /// truncated payload; like the C client we drop it.
    case truncatedPayload
    /// The payload length does not fit the type's layout.
    case badLength(type: UInt8)
    /// Type 0x00 (the upstream parser's "invalid") or an undefined type below 0x80.
    case unknownType(UInt8)
}

enum ControlEncodeError: Error, Equatable, Sendable {
    /// The payload does not fit the one-byte length (PREPARE with a long UUID).
    case tooLong(payload: Int)
    /// PREPARE with features but no tunnel id: the features word is only read after
    /// a tunnel id, so it cannot be expressed on the wire.
    case featuresWithoutTunnelID
    /// `.reliable` with a type below 0x80 would decode as something else.
    case notReliable(UInt8)
    /// A probe must hold at least the header and fit in one IPv4 UDP datagram.
    case badProbeSize(Int)
}

extension ControlMessage {
    static let magic: [UInt8] = [0x80, 0x73, 0xA7]
    static let version: UInt8 = 1
    static let headerSize = 6
    /// Ordinary messages are padded to this many bytes: some firewalls drop tiny UDP
    /// datagrams on port 53, one of the conventional broker ports (§1.2).
    static let paddedSize = 12
    /// L is one byte. (The upstream broker asserts its own payloads stay below 255,
    /// but all of them are at most 8 bytes; a client's PREPARE may use all 255.)
    static let maxPayload = 255
    /// Largest UDP payload over IPv4 (65535 − 20 − 8).
    static let maxProbeSize = 65507
    /// Request filler: the C client's bytes, so our requests look like its requests.
    /// The filler makes a request as large as its reply (no amplification).
    static let cookieFiller: UInt8 = 0x58  // "X"
    static let usageFiller: UInt8 = 0x55  // "U"
    static let fillerSize = 8

    /// The wire type byte.
    var typeByte: UInt8 {
        switch self {
        case .cookieRequest, .cookieReply: ControlType.cookie.rawValue
        case .usageRequest, .usageReply: ControlType.usage.rawValue
        case .prepare: ControlType.prepare.rawValue
        case .tunnel: ControlType.tunnel.rawValue
        case .error: ControlType.error.rawValue
        case .keepalive: ControlType.keepalive.rawValue
        case .pmtuProbe: ControlType.pmtuProbe.rawValue
        case .pmtuAck: ControlType.pmtuAck.rawValue
        case .reliableAck: ControlType.reliableAck.rawValue
        case .pmtuNotify: ControlType.pmtuNotify.rawValue
        case .limit: ControlType.limit.rawValue
        case .reliable(let type, _): type
        }
    }

    /// The named type; nil only for a reliable type this protocol does not define.
    var type: ControlType? { ControlType(rawValue: typeByte) }

    /// Whether the receiver must answer with a REL_ACK (types 0x80–0xFF).
    var isReliable: Bool { typeByte & 0x80 != 0 }

    /// The sequence number a REL_ACK must echo, for reliable messages.
    var reliableSequence: UInt16? {
        switch self {
        case .limit(let sequence, _), .reliable(_, let sequence): sequence
        default: nil
        }
    }
}

// MARK: - Decoding

extension ControlMessage {
    /// Strict decoder (C-client-like, §1.2, §6.4): fewer than 6 bytes ⇒ `tooShort`;
    /// magic and version checked; L larger than what is there ⇒ `truncatedPayload`;
    /// bytes after 6 + L are padding and ignored (the C client pads with stack
    /// garbage). Per-type length rules from §1.4; a wrong length ⇒ `badLength`.
    ///
    /// `sender` is who sent the datagram; it decides how COOKIE and USAGE are read
    /// (see `ControlSender`). Every other type is read the same from either side:
    /// whether a message is acceptable in the receiver's state is not the codec's call.
    static func decode(_ datagram: UnsafeRawBufferPointer, from sender: ControlSender)
        -> Result<ControlMessage, ControlDecodeError>
    {
        guard datagram.count >= headerSize else { return .failure(.tooShort) }
        guard datagram[0] == magic[0], datagram[1] == magic[1], datagram[2] == magic[2] else {
            return .failure(.badMagic)
        }
        guard datagram[3] == version else { return .failure(.badVersion) }
        let typeByte = datagram[4]
        let length = Int(datagram[5])
        guard length <= datagram.count - headerSize else { return .failure(.truncatedPayload) }
        let payload = Payload(bytes: UnsafeRawBufferPointer(rebasing: datagram[headerSize..<(headerSize + length)]))
        let badLength = Result<ControlMessage, ControlDecodeError>.failure(.badLength(type: typeByte))

        if typeByte & 0x80 != 0 {
            // Reliable: a sequence number first, whatever the type, so it can be acknowledged.
            guard length >= 2 else { return badLength }
            let sequence = payload.u16(at: 0)
            // LIMIT: the one TLV defined. Like the upstream broker, bytes after the
            // 4-byte value are ignored; any other TLV is acknowledged, not applied.
            if typeByte == ControlType.limit.rawValue, length >= 8, payload[2] == 0x01, payload[3] == 0x04 {
                return .success(.limit(sequence: sequence, bandwidthKbps: payload.u32(at: 4)))
            }
            return .success(.reliable(type: typeByte, sequence: sequence))
        }

        guard let type = ControlType(rawValue: typeByte) else { return .failure(.unknownType(typeByte)) }
        switch type {
        case .cookie:
            switch sender {
            case .client:
                // The broker ignores shorter requests: without the filler the reply
                // would be larger than the request.
                return length >= fillerSize ? .success(.cookieRequest) : badLength
            case .broker:
                guard length == Cookie.size else { return badLength }
                return .success(.cookieReply(cookie: Cookie(value: payload.u64(at: 0))))
            }

        case .usage:
            switch sender {
            case .client:
                guard length >= fillerSize else { return badLength }
                let features = length >= fillerSize + 4 ? FeatureFlags(rawValue: payload.u32(at: fillerSize)) : []
                return .success(.usageRequest(features: features))
            case .broker:
                guard length == 2 else { return badLength }
                return .success(.usageReply(load: payload.u16(at: 0)))
            }

        case .prepare:
            // cookie(8) | N(1) | uuid(N) | [tunnel id(4) | [features(4)]]
            guard length >= Cookie.size + 1 else { return badLength }
            let cookie = Cookie(value: payload.u64(at: 0))
            let uuidLength = Int(payload[Cookie.size])
            let uuidStart = Cookie.size + 1
            guard uuidStart + uuidLength <= length else { return badLength }
            let uuid = Array(payload.bytes[uuidStart..<(uuidStart + uuidLength)])
            var offset = uuidStart + uuidLength
            var tunnelID: UInt32?
            var features: FeatureFlags?
            // Each optional word is read only if all 4 bytes are there; a partial
            // word is ignored, as the upstream broker's unpack-or-skip does.
            if length - offset >= 4 {
                tunnelID = payload.u32(at: offset)
                offset += 4
                if length - offset >= 4 { features = FeatureFlags(rawValue: payload.u32(at: offset)) }
            }
            return .success(.prepare(cookie: cookie, uuid: uuid, tunnelID: tunnelID, features: features))

        case .tunnel:
            guard length >= 4 else { return badLength }
            let features = length >= 8 ? FeatureFlags(rawValue: payload.u32(at: 4)) : nil
            return .success(.tunnel(id: payload.u32(at: 0), features: features))

        case .error:
            // L = 0 is the broker's PREPARE refusal and a real ERROR to the C client
            // (teardown). The upstream broker acts only on exactly L = 1; we take the
            // first byte of a longer payload rather than dropping it, and leave any
            // stricter policy to the broker's state machine.
            return .success(.error(reason: length >= 1 ? payload[0] : nil))

        case .keepalive:
            // Nobody interprets the counter; any length still proves the peer is alive.
            switch length {
            case 2: return .success(.keepalive(counter: UInt32(payload.u16(at: 0)), wide: false))
            case 4: return .success(.keepalive(counter: payload.u32(at: 0), wide: true))
            default: return .success(.keepalive(counter: 0, wide: false))
            }

        case .pmtuProbe:
            // The probe's size is what arrived, padding and all: that is what the ACK reports.
            return .success(.pmtuProbe(size: datagram.count))

        case .pmtuAck:
            return length == 2 ? .success(.pmtuAck(size: payload.u16(at: 0))) : badLength

        case .reliableAck:
            return length == 2 ? .success(.reliableAck(sequence: payload.u16(at: 0))) : badLength

        case .pmtuNotify:
            return length == 2 ? .success(.pmtuNotify(mtu: payload.u16(at: 0))) : badLength

        case .limit:
            return .failure(.unknownType(typeByte))  // unreachable: 0x80 is handled above
        }
    }

    static func decode(_ bytes: [UInt8], from sender: ControlSender) -> Result<ControlMessage, ControlDecodeError> {
        bytes.withUnsafeBytes { decode($0, from: sender) }
    }
}

/// Big-endian reads from a payload whose length the caller has already checked.
private struct Payload {
    let bytes: UnsafeRawBufferPointer

    subscript(offset: Int) -> UInt8 { bytes[offset] }

    func u16(at offset: Int) -> UInt16 {
        UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    func u32(at offset: Int) -> UInt32 {
        UInt32(u16(at: offset)) << 16 | UInt32(u16(at: offset + 2))
    }

    func u64(at offset: Int) -> UInt64 {
        UInt64(u32(at: offset)) << 32 | UInt64(u32(at: offset + 4))
    }
}

// MARK: - Encoding

extension ControlMessage {
    /// The whole datagram: header, payload, and zero padding up to 12 bytes when
    /// shorter (§1.2) — every message but the probe, whose size is its point.
    func encode() throws -> [UInt8] {
        if case .pmtuProbe(let size) = self {
            guard size >= ControlMessage.headerSize, size <= ControlMessage.maxProbeSize else {
                throw ControlEncodeError.badProbeSize(size)
            }
            var datagram = [UInt8](repeating: 0, count: size)
            datagram.replaceSubrange(0..<ControlMessage.headerSize, with: ControlMessage.header(typeByte, length: 0))
            return datagram
        }

        var payload: [UInt8] = []
        switch self {
        case .cookieRequest:
            payload = [UInt8](repeating: ControlMessage.cookieFiller, count: ControlMessage.fillerSize)
        case .cookieReply(let cookie):
            payload = cookie.bytes
        case .usageRequest(let features):
            payload = [UInt8](repeating: ControlMessage.usageFiller, count: ControlMessage.fillerSize)
            if !features.isEmpty { payload.appendBigEndian(features.rawValue) }
        case .usageReply(let load):
            payload.appendBigEndian(load)
        case .prepare(let cookie, let uuid, let tunnelID, let features):
            guard uuid.count <= Int(UInt8.max) else {
                throw ControlEncodeError.tooLong(payload: Cookie.size + 1 + uuid.count)
            }
            if features != nil, tunnelID == nil { throw ControlEncodeError.featuresWithoutTunnelID }
            payload = cookie.bytes
            payload.append(UInt8(uuid.count))
            payload += uuid
            if let tunnelID { payload.appendBigEndian(tunnelID) }
            if let features { payload.appendBigEndian(features.rawValue) }
        case .tunnel(let id, let features):
            payload.appendBigEndian(id)
            if let features { payload.appendBigEndian(features.rawValue) }
        case .error(let reason):
            if let reason { payload.append(reason) }
        case .keepalive(let counter, let wide):
            // The broker's counter is a u16 that wraps at 65536: keep the low half.
            if wide { payload.appendBigEndian(counter) } else { payload.appendBigEndian(UInt16(truncatingIfNeeded: counter)) }
        case .pmtuAck(let size):
            payload.appendBigEndian(size)
        case .reliableAck(let sequence):
            payload.appendBigEndian(sequence)
        case .pmtuNotify(let mtu):
            payload.appendBigEndian(mtu)
        case .limit(let sequence, let bandwidthKbps):
            payload.appendBigEndian(sequence)
            payload += [0x01, 0x04]  // BANDWIDTH_DOWN, 4-byte value
            payload.appendBigEndian(bandwidthKbps)
        case .reliable(let type, let sequence):
            guard type & 0x80 != 0 else { throw ControlEncodeError.notReliable(type) }
            payload.appendBigEndian(sequence)
        case .pmtuProbe:
            break  // handled above
        }
        guard payload.count <= ControlMessage.maxPayload else { throw ControlEncodeError.tooLong(payload: payload.count) }

        var datagram = ControlMessage.header(typeByte, length: UInt8(payload.count))
        datagram.reserveCapacity(max(ControlMessage.paddedSize, ControlMessage.headerSize + payload.count))
        datagram += payload
        if datagram.count < ControlMessage.paddedSize {
            datagram += [UInt8](repeating: 0, count: ControlMessage.paddedSize - datagram.count)
        }
        return datagram
    }

    /// The broker's KEEPALIVE (u16 counter, padded to 12 bytes) written without
    /// allocating: the one message a broker sends to every client every few seconds.
    static func writeBrokerKeepalive(counter: UInt16, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= paddedSize)
        for (offset, byte) in magic.enumerated() { buffer[offset] = byte }
        buffer[3] = version
        buffer[4] = ControlType.keepalive.rawValue
        buffer[5] = 2
        buffer[6] = UInt8(counter >> 8)
        buffer[7] = UInt8(counter & 0xFF)
        for offset in 8..<paddedSize { buffer[offset] = 0 }
        return paddedSize
    }

    private static func header(_ type: UInt8, length: UInt8) -> [UInt8] {
        magic + [version, type, length]
    }
}

extension [UInt8] {
    fileprivate mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var big = value.bigEndian
        Swift.withUnsafeBytes(of: &big) { append(contentsOf: $0) }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
