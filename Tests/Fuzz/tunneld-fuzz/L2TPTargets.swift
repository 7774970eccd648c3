#if FUZZING
@testable import L2TPv3

/// What brokers and clients receive: tunneldigger control messages and L2TPv3 data
/// headers, from anyone who can reach the port.
enum L2TPTargets {
    static let all = [
        FuzzTarget(name: "l2tp-control", summary: "tunneldigger control messages (mode byte 1: as the client reads them, else as the broker)",
                   run: control),
        FuzzTarget(name: "l2tp-data", summary: "L2TPv3 data headers (session id)", run: { input in
            if let id = PseudowireHeader.sessionID(of: input) { precondition(input.count >= 8, "session id \(id) from a short header") }
        }),
    ]

    /// Decoded messages encoded again must decode to the same message.
    static func control(_ input: UnsafeRawBufferPointer) {
        let (mode, rest) = input.modeAndRest
        let sender: ControlSender = mode & 1 == 1 ? .broker : .client
        guard case .success(let message) = ControlMessage.decode(rest, from: sender),
              let encoded = try? message.encode() else { return }
        guard case .success(let again) = ControlMessage.decode(encoded, from: sender), again == message else {
            fatalError("control message round trip: \(message) → \(encoded) → \(ControlMessage.decode(encoded, from: sender))")
        }
    }
}
#endif
