/// The outcome of one handshake: a key each way, the index the peer puts in records
/// meant for us (`localIndex`) and the one we put in records for it (`remoteIndex`),
/// the send counter (the nonce) and the replay window of the receive direction.
final class Keypair {
    let sendKey: AEADKey
    let receiveKey: AEADKey
    let localIndex: UInt32
    let remoteIndex: UInt32
    let created: Double
    /// Whether this end sent the initiation: the initiator rekeys by time.
    let initiatedLocally: Bool
    var sendCounter: UInt64 = 0
    let window = ReplayWindow()

    /// Counters stop here, far below 2^64, whatever the rekey settings say: a key is
    /// never used for a nonce twice.
    static let rejectAfterMessages: UInt64 = 1 << 62

    init(cipher: AEADCipher, send: [UInt8], receive: [UInt8], localIndex: UInt32, remoteIndex: UInt32,
         created: Double, initiatedLocally: Bool) throws {
        sendKey = try send.withUnsafeBytes { try AEADKey(cipher: cipher, bytes: $0) }
        receiveKey = try receive.withUnsafeBytes { try AEADKey(cipher: cipher, bytes: $0) }
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        self.created = created
        self.initiatedLocally = initiatedLocally
    }
}
