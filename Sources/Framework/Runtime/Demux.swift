/// Splits received datagrams by their first byte: data (stays in the batch for the
/// session manager), control (handed to the stage or manager that claimed that byte),
/// or unclaimed (dropped and counted).
public final class Demux {
    public typealias ControlHandler = (_ packet: Packet, _ link: UDPLink) -> Void

    enum Claim { case none, data, control(Int) }

    private var table = [Claim](repeating: .none, count: 256)
    private var handlers: [ControlHandler] = []
    private var owners = [String](repeating: "", count: 256)

    public init() {}

    /// Claim first bytes for data datagrams.
    public func claimData(_ ranges: [ClosedRange<UInt8>], by owner: String) throws {
        // Check everything first, so a refused claim leaves the table as it was.
        for range in ranges {
            for byte in range {
                if case .none = table[Int(byte)] {} else {
                    throw ClaimError(byte: byte, owner: owner, holder: owners[Int(byte)])
                }
            }
        }
        for range in ranges {
            for byte in range {
                table[Int(byte)] = .data
                owners[Int(byte)] = owner
            }
        }
    }

    /// Claim a first byte for control messages of one kind.
    public func claimControl(_ byte: UInt8, by owner: String, _ handler: @escaping ControlHandler) throws {
        if case .none = table[Int(byte)] {} else {
            throw ClaimError(byte: byte, owner: owner, holder: owners[Int(byte)])
        }
        handlers.append(handler)
        table[Int(byte)] = .control(handlers.count - 1)
        owners[Int(byte)] = owner
    }

    struct ClaimError: Error, CustomStringConvertible {
        let byte: UInt8, owner: String, holder: String
        var description: String { "\(owner) claims first byte \(byte), already claimed by \(holder)" }
    }

    /// Leave only data datagrams in the batch; dispatch control ones; drop the rest.
    /// Empty datagrams are `truncated`, unknown first bytes `unclaimed`. A control
    /// packet is valid only during its handler's call.
    public func filter(_ batch: PacketBatch, link: UDPLink) {
        for index in 0..<batch.count where batch[index].dropReason == nil {
            let packet = batch[index]
            guard packet.length > 0 else {
                batch.drop(index, .truncated)
                continue
            }
            switch table[Int(packet.byte(at: 0))] {
            case .data:
                continue
            case .control(let handler):
                handlers[handler](packet, link)
                batch.discard(index)
            case .none:
                batch.drop(index, .unclaimed)
            }
        }
        batch.removeDropped()
    }
}
