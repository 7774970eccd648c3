import Framework

/// The `bonding.scheduler` stage: picks a path for every packet sent.
///
/// Each path has a virtual queue: a clock of when what was put on it will have left,
/// advanced by each packet's size over the path's measured delivery rate, and set
/// right by every probe echo to the queue the probe really met (`BondPath.anchor`).
/// `aggregate` mode sends each packet on the path that delivers it first:
///  * bulk packets (the reorder stage marks them; the far side aligns them to the
///    longest live path) arrive at (when the path's queue has sent them) + the
///    longest delay, the same for every path, so they go where the queue empties
///    first: every path fills in proportion to what it delivers, at any load;
///  * other packets (small ones: ACKs, DNS, VoIP, pings) are not held at the far
///    end, so their arrival counts each path's own delay: a short path takes them,
///    and a longer one only when the short one's queue is deeper than the difference.
/// Usable paths are tried by tier: normal up, normal lossy/slow, fallback up,
/// fallback lossy/slow.
///
/// To learn that a path can do more than it was given, each path in turn may hold
/// twice `link-queue` for an eighth of a cycle. A path with spare capacity drains the
/// extra at once, the echoes then let more through and its delivery estimate grows; a
/// full one only holds `link-queue` more for that eighth. Offering 25 % more by rate
/// instead (BBR's gain) queued up to 25 ms on a full path each cycle: the far end's
/// reorder stage turned that into bursts, BBR read them as bandwidth it then kept
/// queued in the bond, and CoDel dropped from it (README, Bonding: the queue).
///
/// `redundant` mode sends every packet on the two best paths (latency over capacity);
/// the far side keeps the first copy.
final class SchedulerStage: Stage {
    /// `Packet.mark` flags set above this stage (the index of a path in the low bits).
    static let forcedPath: UInt32 = 1 << 31
    static let pinnedPath: UInt32 = 1 << 30
    static let bulkPacket: UInt32 = 1 << 29
    static let pathMask: UInt32 = 0xFFFF

    private let bond: BondingSession
    private let noUsablePath: DropReason
    /// Second copies in redundant mode (nil in aggregate mode).
    private let copies: PacketBatch?
    private unowned let session: Session
    /// Extra queue each path may hold now (its probe), set once per batch.
    private var probes: [Double] = []

    init(context: StageContext) throws {
        bond = try BondingPlugin.registry(of: context).bond(for: context.session, tunnel: context.tunnel)
        session = context.session
        bond.pins = try context.settings.list(Self.pin.name).map { try PinRule.parse($0.description) }
        noUsablePath = context.dropReason("no_usable_path")
        let tunnel = context.tunnel
        let redundant = context.settings.string(Self.mode) == "redundant"
        bond.redundant = redundant
        bond.linkQueue = Double(context.settings.integer(Self.linkQueue)) / 1000
        bond.queueSettings = context.settings.string(Self.queue) != "fq-codel" ? nil
            : BondQueue.Settings(limit: context.settings.integer(Self.queueLimit),
                                 codelTarget: Double(context.settings.integer(Self.codelTarget)) / 1000,
                                 codelInterval: Double(context.settings.integer(Self.codelInterval)) / 1000,
                                 // Only a TUN device's packets are known to be IP
                                 // (marking rewrites IP header bytes).
                                 ecn: context.settings.boolean(Self.ecn) && tunnel.spec.deviceKind == .tun)
        copies = redundant ? PacketBatch(capacity: tunnel.spec.batchSize, slotSize: tunnel.slotSize,
                                         headroom: tunnel.headroom, tailroom: tunnel.tailroom) : nil
    }

    func send(_ batch: PacketBatch) {
        let paths = bond.paths
        let count = paths.count
        let records = batch.records
        guard count > 0 else {
            for index in 0..<batch.count { batch.drop(index, noUsablePath) }
            return
        }
        let now = MonotonicClock.now()
        if probes.count != count { probes = [Double](repeating: 0, count: count) }
        for index in 0..<count {
            probes[index] = SchedulerStage.probeAllowance(of: index, count: count, now: now, linkQueue: bond.linkQueue,
                                                          backlogged: paths[index].isBacklogged)
        }
        let baseline = SchedulerStage.baseline(paths)
        copies?.reset()
        for index in 0..<batch.count where records[index].dropReason == nil {
            let mark = records[index].mark
            let length = records[index].length
            var chosen = -1
            if mark & SchedulerStage.forcedPath != 0 {
                let wanted = Int(mark & SchedulerStage.pathMask)
                if wanted < count { chosen = wanted }
            } else {
                if mark & SchedulerStage.pinnedPath != 0 {
                    let wanted = Int(mark & SchedulerStage.pathMask)
                    if wanted < count && paths[wanted].tier != BondPath.unusable { chosen = wanted }
                }
                let bulk = mark & SchedulerStage.bulkPacket != 0
                if chosen < 0 {
                    chosen = SchedulerStage.earliest(paths, size: length, now: now, probes: probes, baseline: baseline, bulk: bulk, except: -1)
                }
                if let copies, chosen >= 0 {
                    let second = SchedulerStage.earliest(paths, size: length, now: now, probes: probes, baseline: baseline, bulk: bulk,
                                                         except: chosen)
                    if second >= 0 { duplicate(records[index], into: copies, on: paths[second], now: now) }
                }
            }
            guard chosen >= 0 else {
                batch.drop(index, noUsablePath)
                continue
            }
            let path = paths[chosen]
            records[index].link = Int32(path.link.index)
            records[index].peer = path.remote
            account(path, bytes: length, now: now)
        }
        if let copies, !copies.isEmpty, let transport = session.pipeline?.stages.last {
            transport.send(copies)
            copies.removeDropped()
        }
    }

    @inline(__always)
    private func account(_ path: BondPath, bytes: Int, now: Double) {
        path.freeAt = max(path.freeAt, now) + Double(bytes) / path.rate.estimate
        path.rate.noteSent(bytes)
        path.sentPackets &+= 1
        path.sentBytes &+= UInt64(bytes)
    }

    private func duplicate(_ packet: Packet, into copies: PacketBatch, on path: BondPath, now: Double) {
        guard let record = copies.nextFree else { return }
        (record.pointee.base + record.pointee.offset).copyMemory(from: packet.base + packet.offset, byteCount: packet.length)
        record.pointee.link = Int32(path.link.index)
        record.pointee.peer = path.remote
        copies.commit(length: packet.length)
        account(path, bytes: packet.length, now: now)
    }

    /// The shortest one-way base delay of the usable paths (on the far side's clock,
    /// so only differences mean anything); 0 when none is measured.
    static func baseline(_ paths: [BondPath]) -> Double {
        var lowest = Double.infinity
        for path in paths where path.tier != BondPath.unusable {
            if let base = path.outbound.base { lowest = min(lowest, base) }
        }
        return lowest.isFinite ? lowest : 0
    }

    /// The usable path of the best tier that delivers `size` bytes first: by when its
    /// queue has sent them, plus its extra one-way delay unless `bulk` (the far side
    /// aligns bulk packets to the longest path, so delay does not tell paths apart);
    /// -1 when none is usable. A bulk packet counts a probing path's queue short by
    /// its `probes` allowance, so the probe is filled; small packets do not, so a ping
    /// is not put behind a probe.
    static func earliest(_ paths: [BondPath], size: Int, now: Double, probes: [Double], baseline: Double,
                         bulk: Bool, except: Int) -> Int {
        var best = -1
        var bestTier = BondPath.unusable
        var bestArrival = Double.infinity
        for index in 0..<paths.count where index != except {
            let path = paths[index]
            let tier = path.tier
            guard tier != BondPath.unusable, tier <= bestTier else { continue }
            var arrival = Double(size) / path.rate.estimate
            if bulk {
                arrival += max(path.freeAt - probes[index], now)
            } else {
                arrival += max(path.freeAt, now) + path.propagation(above: baseline)
            }
            if tier < bestTier || arrival < bestArrival {
                best = index
                bestTier = tier
                bestArrival = arrival
            }
        }
        return best
    }

    static let cycle = 0.8
    /// The extra queue path `index` (of `count`) may hold now: `linkQueue` in its eighth
    /// of the cycle, else 0. Not for a lone path (nothing to move its traffic from) or a
    /// backlogged one (full already: its delivery measures it, and a probe would only
    /// move its queue against the others', which the far end sees as reordering).
    @inline(__always)
    static func probeAllowance(of index: Int, count: Int, now: Double, linkQueue: Double, backlogged: Bool) -> Double {
        guard count > 1, !backlogged else { return 0 }
        let phase = Int((now / (cycle / 8)).rounded(.down)) % 8
        return phase == (index * 8 / count) % 8 ? linkQueue : 0
    }

    static let mode = SettingSpec("mode", .choice(["aggregate", "redundant"]), default: .string("aggregate"),
                                  help: "aggregate: each packet on the link that delivers it first; redundant: every packet on the two best links")
    static let pin = SettingSpec("pin", .list(.string), default: .list([]),
                                 help: "keep matching traffic on one link, e.g. 'udp port 5060 -> wan2', 'dscp 46 -> wan1', 'icmp -> wan1'")

    // On by default: pings under a bulk upload stay within a few ms of idle instead of
    // waiting behind the uplinks' full queues, and one TCP stream still gets 0.95 of the
    // links (README, Bonding: the queue, with the figures).
    static let queue = SettingSpec("queue", .choice(["fq-codel", "off"]), default: .string("fq-codel"),
                                   help: "fq-codel: pace each link to link-queue of queue and keep the rest in tunneld, sparse flows (ping, DNS, VoIP, ACKs) first and standing bulk queues kept short by CoDel; off: send every packet at once (the links' own queues fill)")
    static let linkQueue = SettingSpec("link-queue", .milliseconds(1...200), default: .integer(3),
                                       help: "most queue the pacer lets build on each link (by its measured rate)")
    static let queueLimit = SettingSpec("queue-limit", .integer(64...65536), default: .integer(1024),
                                        help: "packets tunneld's own queue holds; when full, the longest flow loses its oldest")
    // 15 ms, not fq_codel's 5: after each signal cubic keeps 0.7 of its window, so one
    // flow keeps the links busy only if the queue it may keep is a good part of its RTT
    // (one cubic stream over bonded 10 and 40 ms paths: README, Bonding, for the figures);
    // sparse flows skip the bulk queues, so pings do not pay for it.
    static let codelTarget = SettingSpec("codel-target", .milliseconds(1...1000), default: .integer(15),
                                         help: "CoDel: a flow whose packets waited longer than this for an interval is told to slow down (a drop, or an ECN mark); only that flow's own packets wait this long, sparse flows go first")
    static let codelInterval = SettingSpec("codel-interval", .milliseconds(10...10_000), default: .integer(100),
                                           help: "CoDel: how long a queue may stand above codel-target before the first drop or mark (about a worst-case RTT)")
    static let ecn = SettingSpec("ecn", .boolean, default: .boolean(true),
                                 help: "CoDel marks ECN-capable packets 'congestion experienced' instead of dropping them (RFC 3168, as fq_codel): the sender slows down and nothing is retransmitted (TUN devices only)")

    static let descriptor = StageDescriptor(
        name: "bonding.scheduler",
        summary: "spreads packets over the bonded links by earliest delivery (measured rates and delays); fallback links, pinning, redundant mode",
        slots: [.schedule],
        settings: [mode, pin, queue, linkQueue, queueLimit, codelTarget, codelInterval, ecn],
        dropReasons: ["no_usable_path"],
        check: { settings in
            for rule in settings.list(pin.name) { _ = try PinRule.parse(rule.description) }
        },
        make: { context in try SchedulerStage(context: context) })
}
