import Framework
import NIOConcurrencyHelpers
import Prometheus

/// Prometheus text exposition of a status snapshot, through swift-prometheus.
///
/// The data path keeps its own counters (plain memory, no lock); this copies a
/// snapshot of them into a `PrometheusCollectorRegistry` when `/metrics` is read:
/// counters advance by the difference since the last scrape, gauges are set, and
/// the metrics of sessions and paths that are gone are unregistered. The same
/// registry backs swift-metrics (`MetricsSystem`), so a custom stage's own
/// `Counter(label:)` appears at `/metrics` too.
final class MetricsExporter: Sendable {
    let registry: PrometheusCollectorRegistry
    private let state = NIOLockedValueBox(Registered())

    private struct Key: Hashable {
        let name: String
        let labels: [String]
    }

    private struct Registered {
        var counters: [Key: (metric: Counter, value: UInt64)] = [:]
        var gauges: [Key: Gauge] = [:]
        var seen: Set<Key> = []
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// The exposition text for `status`, HELP and TYPE lines included.
    func render(_ status: TunnelStatus) -> [UInt8] {
        state.withLockedValue { registered in
            var writer = Writer(registry: registry, registered: registered)
            writer.write(status)
            registered = writer.finish()
            var text: [UInt8] = []
            registry.emit(into: &text)
            return text
        }
    }

    /// One pass over a snapshot: registers what is new, updates every value, then
    /// drops what the snapshot no longer has.
    private struct Writer {
        let registry: PrometheusCollectorRegistry
        var registered: Registered

        init(registry: PrometheusCollectorRegistry, registered: Registered) {
            self.registry = registry
            self.registered = registered
            self.registered.seen = []
        }

        mutating func counter(_ name: String, _ help: String, _ labels: [(String, String)], _ value: UInt64) {
            let key = Key(name: name, labels: labels.flatMap { [$0.0, $0.1] })
            registered.seen.insert(key)
            if var entry = registered.counters[key] {
                if value < entry.value {
                    // A new session under an old name: its count starts again.
                    entry.metric.reset()
                    entry.value = 0
                }
                if value > entry.value { entry.metric.increment(by: Int64(clamping: value - entry.value)) }
                entry.value = value
                registered.counters[key] = entry
            } else {
                let metric = registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels)
                if value > 0 { metric.increment(by: Int64(clamping: value)) }
                registered.counters[key] = (metric, value)
            }
        }

        mutating func gauge(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
            let key = Key(name: name, labels: labels.flatMap { [$0.0, $0.1] })
            registered.seen.insert(key)
            let metric = registered.gauges[key] ?? registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels)
            registered.gauges[key] = metric
            metric.set(value)
        }

        static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }

        mutating func traffic(_ prefix: String, _ what: String, _ labels: [(String, String)], _ c: TunnelStatus.Counters) {
            counter("\(prefix)_packets_total", "Packets \(what), by direction.", labels + [("direction", "tx")], c.txPackets)
            counter("\(prefix)_packets_total", "Packets \(what), by direction.", labels + [("direction", "rx")], c.rxPackets)
            counter("\(prefix)_bytes_total", "Bytes \(what), by direction.", labels + [("direction", "tx")], c.txBytes)
            counter("\(prefix)_bytes_total", "Bytes \(what), by direction.", labels + [("direction", "rx")], c.rxBytes)
            for (reason, count) in c.drops {
                counter("\(prefix)_drops_total", "Packets \(what) dropped, by reason.", labels + [("reason", reason)], count)
            }
        }

        mutating func write(_ status: TunnelStatus) {
            let d = status.daemon
            gauge("tunneld_info", "Always 1; the labels say which tunneld runs which profile.",
                  [("version", d.version), ("profile", d.profile), ("site", d.site)], 1)
            gauge("tunneld_start_time_seconds", "Unix time the daemon started.", [], d.started)
            gauge("tunneld_uptime_seconds", "Seconds since the daemon started.", [], d.uptimeSeconds)
            gauge("tunneld_reloads", "SIGHUP reloads that took effect.", [], Double(d.reloads))
            if let last = d.lastReload {
                gauge("tunneld_last_reload_time_seconds", "Unix time of the last reload that took effect.", [], last)
            }
            gauge("tunneld_sessions", "Sessions the daemon has now.", [], Double(status.sessions.count))
            if let stalls = d.stalls {
                counter("tunneld_loop_stalls_total", "Event-loop wake-ups more than 10 ms after a timer was due (the process or machine did not run).",
                        [], UInt64(stalls))
            }
            if case .object(let members)? = status.manager {
                for (key, value) in members {
                    guard let number = value.number else { continue }
                    gauge("tunneld_manager_\(StatusTable.snakeCase(key))", "Reported by the session manager (\(d.profile)): \(key).", [], number)
                }
            }
            traffic("tunneld_unclaimed", "received before any session claimed them", [], status.tunnel)
            if let device = status.device {
                traffic("tunneld_device", "through the TUN/TAP device", [("device", device.name)], device.counters)
            }
            for link in status.links {
                traffic("tunneld_socket", "through the UDP socket", [("socket", link.name)], link.counters)
            }
            for session in status.sessions {
                let s = [("session", session.name)]
                gauge("tunneld_session_up", "1 when the session is up, 0 while it handshakes.", s, session.state == "up" ? 1 : 0)
                gauge("tunneld_session_start_time_seconds", "Unix time the session started.", s, session.since)
                traffic("tunneld_session", "of the session", s, session.counters)
                let multipath = session.multipath
                if let details = session.details, multipath == nil { sessionDetails(details, s + [("data_plane", session.dataPlane)]) }
                guard let multipath else { continue }
                for path in multipath.paths {
                    let l = s + [("link", path.name)]
                    for state in ["up", "lossy", "slow", "down"] {
                        gauge("tunneld_link_state", "1 for the link's current state (up, lossy, slow, down).",
                              l + [("state", state)], path.state == state ? 1 : 0)
                    }
                    gauge("tunneld_link_up", "1 when the link carries traffic (up, lossy or slow), 0 when down.", l,
                          path.state == "down" ? 0 : 1)
                    if let srtt = path.srttMs {
                        gauge("tunneld_link_srtt_seconds", "Smoothed round-trip time of the link's probes.", l, srtt / 1000)
                    }
                    if let rttvar = path.rttvarMs {
                        gauge("tunneld_link_rttvar_seconds", "Round-trip time variation of the link's probes.", l, rttvar / 1000)
                    }
                    gauge("tunneld_link_loss_ratio", "Probes lost over the last window, 0 to 1.", l, path.lossPercent / 100)
                    gauge("tunneld_link_rate_bits_per_second", "What the scheduler measures the link delivers now.", l,
                          path.rateMbps * 1e6)
                    gauge("tunneld_link_last_packet_age_seconds", "Seconds since a packet last came by the link.", l,
                          path.lastPacketSeconds)
                    counter("tunneld_link_disconnects_total", "Times the link went down.", l, UInt64(path.disconnects))
                    counter("tunneld_link_quiet_spells_total", "Times data moved off the link because a probe went unanswered or its traffic stopped.", l,
                            UInt64(path.quietSpells))
                    traffic("tunneld_link", "over the link", l, TunnelStatus.Counters(
                        txPackets: path.txPackets, txBytes: path.txBytes, rxPackets: path.rxPackets, rxBytes: path.rxBytes, drops: [:]))
                }
                let r = multipath.reorder
                for (outcome, value) in [("in_order", r.inOrder), ("held", r.held), ("released_by_timeout", r.releasedByTimeout),
                                         ("released_as_lost", r.releasedAsLost), ("overflow", r.overflow),
                                         ("late", r.late), ("duplicate", r.duplicate), ("aligned", r.aligned)] {
                    counter("tunneld_reorder_packets_total", "Packets through the reorder buffer, by outcome.",
                            s + [("outcome", outcome)], value)
                }
                gauge("tunneld_reorder_holding_packets", "Packets waiting in the reorder buffer now.", s, Double(r.holding))
                gauge("tunneld_reorder_hold_seconds", "How long the reorder buffer waits for a gap now.", s, r.holdMs / 1000)
            }
        }

        /// A plugin's session details: numbers become gauges `tunneld_session_<key>`,
        /// text and flags the labels of `tunneld_session_info` (tunnel ids, uuid, client).
        mutating func sessionDetails(_ details: StatusValue, _ labels: [(String, String)]) {
            guard case .object(let members) = details else { return }
            var info = labels
            for (key, value) in members {
                let name = StatusTable.snakeCase(key)
                switch value {
                case .string(let text): info.append((name, text))
                case .bool(let flag): info.append((name, flag ? "true" : "false"))
                case .int, .uint, .double:
                    // Identifiers are labels, not values to graph.
                    if name.hasSuffix("_id") {
                        info.append((name, StatusTable.scalarText(value)))
                    } else if let number = value.number {
                        gauge("tunneld_session_\(name)", "Reported by the session's plugin: \(key).", labels.prefix(1).map { $0 }, number)
                    }
                default: continue
                }
            }
            gauge("tunneld_session_info", "Always 1; the labels say what the session's plugin reports (ids, peer, interface).", info, 1)
        }

        /// Unregister what this pass did not see (sessions and paths that are gone).
        func finish() -> Registered {
            var result = registered
            for (key, entry) in result.counters where !result.seen.contains(key) {
                registry.unregisterCounter(entry.metric)
                result.counters[key] = nil
            }
            for (key, metric) in result.gauges where !result.seen.contains(key) {
                registry.unregisterGauge(metric)
                result.gauges[key] = nil
            }
            return result
        }
    }
}
