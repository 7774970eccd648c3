import Framework

/// Stages for the microbenchmark, built only from the public Framework API (as a
/// plugin would be): an IP header check, an encapsulation header pushed on send and
/// popped on receive, and a sink at each end.
final class IPCheckStage: Stage {
    func send(_ batch: PacketBatch) { check(batch) }
    func receive(_ batch: PacketBatch) { check(batch) }

    private func check(_ batch: PacketBatch) {
        for index in 0..<batch.count {
            if case .ok = IPHeader.check(batch[index]) { continue }
            batch.drop(index, .malformed)
        }
    }
}

final class HeaderStage: Stage {
    static let size = 16
    func send(_ batch: PacketBatch) {
        for index in 0..<batch.count {
            guard let header = batch[index].prepend(HeaderStage.size) else {
                batch.drop(index, .noRoom)
                continue
            }
            header.storeBytes(of: UInt64(index).bigEndian, as: UInt64.self)
            header.storeBytes(of: UInt64(0x7475_6e6e_656c_6400), toByteOffset: 8, as: UInt64.self)
        }
    }

    func receive(_ batch: PacketBatch) {
        for index in 0..<batch.count where !batch[index].trimFront(HeaderStage.size) {
            batch.drop(index, .truncated)
        }
    }
}

/// Consumes what reaches it, counting bytes so the work cannot be optimised away.
final class SinkStage: Stage {
    var bytes = 0
    func send(_ batch: PacketBatch) { consume(batch) }
    func receive(_ batch: PacketBatch) { consume(batch) }

    private func consume(_ batch: PacketBatch) {
        for index in 0..<batch.count { bytes &+= batch[index].length }
        batch.consumeAll()
    }
}

/// Makes `count` 1400-byte IPv4/TCP packets live. The payload bytes are written
/// only when `payload` is set (once, before measuring): slots keep their bytes between
/// runs, so a measured loop pays for the headers a source would write, not a memset.
func fillIPv4TCP(_ batch: PacketBatch, count: Int, length: Int = 1400, payload: Bool = false) {
    batch.reset()
    for _ in 0..<count {
        let record = batch.nextFree!
        let p = record.pointee.base + record.pointee.offset
        if payload { p.initializeMemory(as: UInt8.self, repeating: 0xab, count: length) }
        p.storeBytes(of: 0x45, as: UInt8.self)
        p.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: 6, toByteOffset: 9, as: UInt8.self)
        batch.commit(length: length)
    }
}
