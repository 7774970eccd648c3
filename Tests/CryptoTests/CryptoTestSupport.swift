import Framework
@testable import Crypto

func hexBytes(_ hex: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        bytes.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

func makeKey(_ cipher: AEADCipher, _ bytes: [UInt8] = Array(0..<32)) throws -> AEADKey {
    try bytes.withUnsafeBytes { try AEADKey(cipher: cipher, bytes: $0) }
}

/// A one-packet batch holding `bytes` at the headroom.
func batch(holding bytes: [UInt8]) -> PacketBatch {
    let batch = PacketBatch(capacity: 4, slotSize: 2048, headroom: 128, tailroom: 64)
    let record = batch.nextFree!
    bytes.withUnsafeBytes { record.pointee.base.advanced(by: record.pointee.offset).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    batch.commit(length: bytes.count)
    return batch
}

func bytes(of packet: Packet) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: packet.base + packet.offset, count: packet.length))
}

/// Peek, then open: what the stage does with every received record.
func openRecord(_ packet: inout Packet, key: AEADKey, window: ReplayWindow) -> DataRecord.OpenError? {
    switch DataRecord.peek(packet) {
    case .failure(let error): return error
    case .success(let fields): return DataRecord.open(&packet, counter: fields.counter, key: key, window: window)
    }
}

/// The fixed keys both vector generators (generate_noise_vectors.py,
/// generate_handshake_vectors.py) use.
enum NoiseFixture {
    static var initiatorStatic: X25519KeyPair { X25519KeyPair(privateKey: Array(1...32)) }
    static var initiatorEphemeral: X25519KeyPair { X25519KeyPair(privateKey: Array(33...64)) }
    static var responderStatic: X25519KeyPair { X25519KeyPair(privateKey: Array(65...96)) }
    static var responderEphemeral: X25519KeyPair { X25519KeyPair(privateKey: Array(97...128)) }
    static let psk = [UInt8](repeating: 0xA5, count: 32)
}
