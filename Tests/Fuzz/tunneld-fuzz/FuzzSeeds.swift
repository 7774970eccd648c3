#if FUZZING
@testable import Bonding
@testable import Crypto
import Foundation
@testable import Framework
@testable import L2TPv3
@testable import Monitoring

/// Seed inputs for every target: the examples and the tunneldigger test vectors from the
/// repository, and valid messages made by the same code the tests check. The fuzzer
/// mutates these; `scripts/fuzz` keeps them in Tests/Fuzz/corpus/NAME.
enum FuzzSeeds {
    static func write(into directory: String) {
        var seeds: [String: [[UInt8]]] = [:]
        let root = ProfileTargets.repository
        let examples = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/dist/examples")) ?? []).sorted()
        seeds["site-file"] = examples.compactMap { FileManager.default.contents(atPath: root + "/dist/examples/" + $0).map { Array($0) } }
            + [Array("profile: plain\nlinks:\n  - { name: wan, bind: 10.0.0.1:5000, remote: 10.0.0.2:5000 }\n".utf8)]
        seeds["stock-profiles"] = [FileManager.default.contents(atPath: root + "/plugins.yaml").map { Array($0) } ?? []]
        seeds["handshake"] = handshakeSeeds()
        seeds["data-record"] = recordSeeds()
        let tcp = (0..<4).map { tcpPacket(sequence: 1_000 + UInt32($0) * 1000, payload: 1000, push: $0 == 3) }
        seeds["ip-header"] = [tcp[0], tcpPacket(sequence: 1, payload: 100, ipv6: true), [0x45, 0, 0, 20] + [UInt8](repeating: 0, count: 16)]
        seeds["tcp-segmenter"] = segmenterSeeds()
        seeds["tcp-coalescer"] = [[1] + tcp.flatMap { [UInt8($0.count >> 8), UInt8($0.count & 0xff)] + $0 },
                                  [1] + (0..<3).flatMap { i -> [UInt8] in
                                      let p = tcpPacket(sequence: 7 + UInt32(i) * 1200, payload: 1200, ipv6: true)
                                      return [UInt8(p.count >> 8), UInt8(p.count & 0xff)] + p }]
        seeds["bonding-wire"] = bondingSeeds()
        seeds["http-request"] = ["GET /status HTTP/1.1\r\nHost: a\r\n\r\n", "GET /metrics HTTP/1.1\r\n\r\n", "HEAD / HTTP/1.0\r\n\r\n",
                                 "GET /history?pretty=1 HTTP/1.1\r\nConnection: close\r\n\r\n", "POST /status HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"]
            .map { Array($0.utf8) }
        seeds["status-json"] = [Array((try? StatusJSON.encode(MonitoringTargets.content.snapshots.current.status)) ?? Data())]
        seeds["l2tp-control"] = l2tpSeeds()
        seeds["l2tp-data"] = [[0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 0] + [UInt8](repeating: 0xaa, count: 14)]
        for target in FuzzTarget.all {
            let folder = directory + "/" + target.name
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            guard let inputs = seeds[target.name], !inputs.isEmpty else { FuzzMain.fail("no seeds for \(target.name)") }
            for (index, input) in inputs.enumerated() {
                FileManager.default.createFile(atPath: folder + "/seed-\(index + 1)", contents: Data(input))
            }
        }
    }

    /// A valid initiation from the tunnel's peer (mode 0 and with mac1 fixed), and messages
    /// shaped like a response, a cookie reply and a data record, aimed at the pending handshake.
    static func handshakeSeeds() -> [[UInt8]] {
        let noise = NoiseIKpsk2(initiator: CryptoTargets.peerKey, responderStatic: CryptoTargets.tunnelKey.publicKey,
                                psk: [UInt8](repeating: 0, count: 32), prologue: HandshakeLayout.prologue)
        let payload = HandshakeLayout.timestamp() + [HandshakeLayout.aesBit | HandshakeLayout.chachaBit]
        let message = try! noise.writeInitiation(payload: payload)
        let initiation = HandshakeLayout.initiation(senderIndex: 99, noiseMessage: message,
                                                    responderPublicKey: CryptoTargets.tunnelKey.publicKey, cookie: nil).message
        let response = HandshakeLayout.header(type: HandshakeLayout.responseType, index: 5)
            + [UInt8](repeating: 0, count: HandshakeLayout.responseBytes - 8)
        let cookie = HandshakeLayout.header(type: HandshakeLayout.cookieType, index: 0) + [UInt8](repeating: 1, count: HandshakeLayout.cookieBytes - 8)
        return [[0] + initiation, [1] + initiation, [3] + response, [2] + cookie, [0, 4, 1, 0, 0] + [UInt8](repeating: 0, count: 40)]
    }

    static func recordSeeds() -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        for (mode, cipher) in [(UInt8(0), AEADCipher.chacha20poly1305), (1, .aes256gcm)] {
            guard let key = CryptoTargets.recordKeys[cipher] else { continue }
            for size in [0, 1, 100, 1400] {
                let batch = PacketBatch(capacity: 1, slotSize: 2048, headroom: 64, tailroom: 64)
                let slot = batch.nextFree!
                for i in 0..<size { (slot.pointee.base + slot.pointee.offset + i).storeBytes(of: UInt8(truncatingIfNeeded: i), as: UInt8.self) }
                batch.commit(length: size)
                _ = DataRecord.seal(&batch[0], key: key, receiverIndex: 7, counter: UInt64(size))
                seeds.append([mode] + Array(UnsafeRawBufferPointer(start: batch[0].base + batch[0].offset, count: batch[0].length)))
            }
        }
        return seeds + [[2] + [UInt8](repeating: 0x45, count: 60), [3] + Array("a packet".utf8)]
    }

    /// IPv4 or IPv6 TCP (with timestamps) carrying `payload` bytes, checksums valid.
    static func tcpPacket(sequence: UInt32, payload: Int, push: Bool = false, ipv6: Bool = false) -> [UInt8] {
        let ipLength = ipv6 ? 40 : 20, tcpLength = 32
        var p = [UInt8](repeating: 0, count: ipLength + tcpLength + payload)
        if ipv6 {
            p[0] = 0x60; p[4] = UInt8((tcpLength + payload) >> 8); p[5] = UInt8((tcpLength + payload) & 0xff); p[6] = 6; p[7] = 64
            p[23] = 1; p[39] = 2
        } else {
            p[0] = 0x45; p[2] = UInt8(p.count >> 8); p[3] = UInt8(p.count & 0xff); p[4] = 0x12; p[6] = 0x40; p[8] = 64; p[9] = 6
            p[12] = 10; p[15] = 1; p[16] = 10; p[19] = 2
        }
        let t = ipLength
        p[t] = 0x13; p[t + 1] = 0x89; p[t + 2] = 0xc0; p[t + 3] = 0x01
        withUnsafeBytes(of: sequence.bigEndian) { p.replaceSubrange(t + 4..<t + 8, with: $0) }
        p[t + 11] = 1; p[t + 12] = 0x80; p[t + 13] = push ? 0x18 : 0x10; p[t + 14] = 0x01; p[t + 15] = 0xf5
        p.replaceSubrange(t + 20..<t + 32, with: [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78])
        for i in 0..<payload { p[t + tcpLength + i] = UInt8(truncatingIfNeeded: i &* 7) }
        p.withUnsafeMutableBytes { PacketTargets.fixChecksums($0.baseAddress!, length: $0.count) }
        return p
    }

    /// TSO super-packets (IPv4, IPv6) and a packet whose checksum the kernel left to us.
    static func segmenterSeeds() -> [[UInt8]] {
        func header(_ gso: UInt8, ipLength: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: VirtioNetHeader.size)
            VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: gso, headerLength: UInt16(ipLength + 32), gsoSize: 1000,
                            checksumStart: UInt16(ipLength), checksumOffset: 16).write(to: &bytes)
            return bytes
        }
        return [header(VirtioNetHeader.gsoTCPv4, ipLength: 20) + tcpPacket(sequence: 1, payload: 3500),
                header(VirtioNetHeader.gsoTCPv6, ipLength: 40) + tcpPacket(sequence: 1, payload: 2500, ipv6: true),
                header(VirtioNetHeader.gsoNone, ipLength: 20) + tcpPacket(sequence: 1, payload: 500)]
    }

    static func bondingSeeds() -> [[UInt8]] {
        let batch = PacketBatch(capacity: 1, slotSize: 2048, headroom: 64, tailroom: 32)
        var packet = batch.nextFree!.pointee
        _ = BondingWire.write(BondingWire.Probe(id: 3, sentAt: 123_456, name: "wan-4g", fallback: true, nextSequence: 77), into: &packet)
        let probe = Array(UnsafeRawBufferPointer(start: packet.base + packet.offset, count: packet.length))
        _ = BondingWire.write(BondingWire.Echo(id: 3, sentAt: 123_456, receivedBytes: 9000, echoedAt: 123_999, nextSequence: 12), into: &packet)
        let echo = Array(UnsafeRawBufferPointer(start: packet.base + packet.offset, count: packet.length))
        return [[0] + probe, [1] + echo, [2, 0, 0, 0, 42, 0x45]]
    }

    /// The tunneldigger protocol's test vectors (tunneldigger-protocol.md, as ControlMessageTests has them).
    static func l2tpSeeds() -> [[UInt8]] {
        let client: [String] = ["80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01", "80 73 a7 01 0a 08 55 55 55 55 55 55 55 55",
                                "80 73 a7 01 01 08 58 58 58 58 58 58 58 58",
                                "80 73 a7 01 02 14 00 00 95 b9 11 20 12 21 03 61 62 63 00 00 00 01 00 00 00 01",
                                "80 73 a7 01 02 0c 00 05 2e 26 c9 6f 30 38 03 61 62 63", "80 73 a7 01 05 04 00 00 00 02 00 00",
                                "80 73 a7 01 07 02 05 c0 00 00 00 00", "80 73 a7 01 80 08 00 00 01 04 00 00 07 d0"]
        let broker: [String] = ["80 73 a7 01 0a 02 00 00 00 00 00 00", "80 73 a7 01 01 08 00 00 95 b9 11 20 12 21",
                                "80 73 a7 01 04 08 00 00 00 64 00 00 00 01", "80 73 a7 01 05 02 00 01 00 00 00 00",
                                "80 73 a7 01 07 02 05 1a 00 00 00 00", "80 73 a7 01 09 02 05 a6 00 00 00 00"]
        func bytes(_ hex: String) -> [UInt8] { hex.split(separator: " ").map { UInt8($0, radix: 16)! } }
        return client.map { [0] + bytes($0) } + broker.map { [1] + bytes($0) }
    }
}

extension VirtioNetHeader {
    func write(to bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { write(to: $0.baseAddress!) }
    }
}
#endif
