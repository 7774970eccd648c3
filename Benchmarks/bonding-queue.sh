#!/usr/bin/env bash
# The bond's own queue (issue 14, point 6), each figure next to its raw baseline measured
# in the same run and next to the issue's bar:
#  (2) latency under load: 40 + 20 Mbit/s uplinks (tc tbf both ways) of equal delay, one bulk
#      TCP stream with 50 pings at 0.1 s during it, cubic and bbr: average ping RTT idle and
#      under load through the bond with `queue: fq-codel` (the default) and with
#      `queue: off`, and over the raw 40 Mbit/s link under the same load; the bond's goodput
#      against the raw links' sum. Bars: within 5 ms of idle, never above the raw fast
#      link, goodput >= 0.95.
#  (3) loss: the same uplinks with 10 and 40 ms one-way delay, cubic and bbr, queue on and
#      off: goodput against the raw sum, TCP retransmissions as % of segments sent. Bars:
#      retransmissions <= 1 %, goodput >= 0.95.
#  (4) CPU: two unlimited veth links bonded against the single-link `p2p` profile of the
#      same build, one TCP stream, cubic and bbr: Gbit/s, the ratio, and each daemon's CPU
#      time per Gbit carried (utime+stime from /proc/PID/stat around each run). Bar: >= 0.9
#      of p2p, judged on the median over ROUNDS rounds of p2p, bond off, bond on back to
#      back (each round's ratio against that round's p2p): one 8 s run moves by ±10 % here.
# The uplinks are built as the integration tests build them (BondingLab.swift): site ─veth N,
# tbf─ middle box running udp-delay-relay (a userspace delay and NAT; there is no netem here)
# ─ hub. The raw sum is both uplinks at once without the tunnel (one iperf3 each to the
# middle box, bbr, first 2 s left out), as the tests measure it.
#   sudo Benchmarks/bonding-queue.sh [seconds]   (default 8: measured seconds of each TCP run,
#                                                 after 2 s left out in parts 2 and 3; >= 6)
#   PARTS="2 3" ...                              only those parts (default "2 3 4")
#   BOND_QUEUE="queue: fq-codel, link-queue: 2"  the queued tunnel's bonding.scheduler settings, both ends
#                                                 (default "queue: fq-codel"), to try others
#   ROUNDS=5 ...                                 part 4's rounds (default 3)
#   RATE4=2G PARTS=4 ...                         every TCP run at that fixed rate (iperf3 -b): the CPU
#                                                 columns then compare the tunnels' cost at equal load
#   PERF_DIR=/tmp/perf ...                       part 4 also records each daemon with perf during the
#                                                 first round (DIR/CC-{p,n,q}-{client,hub}.data)
# Namespaces tbq-*, addresses 10.x only; everything is removed on exit.
cd "$(dirname "$0")/.."
export LC_ALL=C
set -- "${1:-8}"
case $1 in ''|*[!0-9]*) echo "usage: sudo $0 [seconds, at least 6]" >&2; exit 2 ;; esac
[ "$1" -ge 6 ] || { echo "usage: sudo $0 [seconds, at least 6]: 50 pings at 0.1 s must fit in a run" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0 $1" >&2; exit 1; }
for tool in iperf3 tc ping python3; do command -v $tool >/dev/null || { echo "$tool is needed" >&2; exit 1; }; done
RELAY=${TUNNELD_RELAY:-$PWD/.build/release/udp-delay-relay}
[ -x "$RELAY" ] || { echo "build first: swift build -c release (udp-delay-relay)" >&2; exit 1; }
SITE=tbq-site MID=tbq-mid HUB=tbq-hub A=tbq-a B=tbq-b
for ns in $SITE $MID $HUB $A $B; do
    ! ip netns list | grep -qw "^$ns" || { echo "namespace $ns exists: another run? (ip netns del $ns)" >&2; exit 1; }
done
source Benchmarks/lib.sh
PARTS=" ${PARTS:-2 3 4} " BOND_QUEUE=${BOND_QUEUE:-queue: fq-codel} ROUNDS=${ROUNDS:-3}
case $ROUNDS in ''|0|*[!0-9]*) echo "ROUNDS must be a whole number of at least 1" >&2; exit 2 ;; esac
part() { [[ $PARTS == *" $1 "* ]]; }
S=$SECONDS_PER_RUN OMIT=2 STOCK=$PWD/plugins.yaml TICKS=$(getconf CLK_TCK)
bench_setup $SITE $MID $HUB $A $B
trap bench_cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
START=$(date +%s)

# Parsing, figures and bars in one small helper.
cat > "$WORK/calc.py" <<'EOF'
import json, math, statistics, sys
cmd, args = sys.argv[1], sys.argv[2:]
def iperf(path):
    """receiver Mbit/s, sender retransmits, sender bytes, MSS; nan when iperf3 failed"""
    try:
        j = json.load(open(path))
        if 'error' in j: raise ValueError(j['error'])
        e = j['end']
        return (e['sum_received']['bits_per_second'] / 1e6, e['sum_sent'].get('retransmits', 0), e['sum_sent']['bytes'],
                j['start'].get('tcp_mss_default') or 1392, e['sum_received']['bytes'])
    except Exception as error:
        print(f'iperf3 run {path} failed: {error}', file=sys.stderr)
        return (math.nan,) * 5
def ping(path):
    """average RTT ms, lost of 50"""
    text = open(path).read(); avg, received = math.nan, 0
    for line in text.splitlines():
        if 'min/avg/max' in line: avg = float(line.split('=')[1].split('/')[1])
        if ' received' in line: received = int(line.split(',')[1].split()[0])
    sent = int(text.split(' packets transmitted')[0].split()[-1]) if ' packets transmitted' in text else 50
    return avg, sent - received
def mark(ok): return 'ok  ' if ok else 'MISS'
def measured(path, cc, name):     # iperf(path), or a FAILED row and exit
    figures = iperf(path)
    if math.isnan(figures[0]):
        print(f'  {cc:6} {name:16} FAILED: iperf3 gave no result (above)'); sys.exit(0)
    return figures
if cmd == 'mbps':                 # FILE... → sum of receiver Mbit/s, and the parts
    parts = [iperf(p)[0] for p in args]
    print(f'{sum(parts):.1f}', ' + '.join(f'{x:.1f}' for x in parts))
elif cmd == 'mss':                # FILE → the MSS iperf3 reports
    print(iperf(args[0])[3])
elif cmd == 'ping':               # FILE → avg lost
    print(*ping(args[0]))
elif cmd == 'head2':
    print(f'  {"cc":6} {"path":15} {"ping ms":>7} {"idle":>6} {"lost":>4} {"Mbit/s":>6} {"of raw":>6} {"rtx":>5} |'
          f' {"<= idle + 5 ms":14} {"<= raw fast":14} {">= 0.95":10}')
elif cmd == 'row2':               # CC PATH IDLE_MS PING_FILE IPERF_FILE RAW_SUM RAW_FAST_LOADED_MS(or -)
    cc, name, idle, pf, jf, raw = args[0], args[1], float(args[2]), args[3], args[4], float(args[5])
    avg, lost = ping(pf); mbps, rtx, sent, mss, _ = measured(jf, cc, name)
    line = f'  {cc:6} {name:15} {avg:7.2f} {idle:6.2f} {lost:4d} {mbps:6.1f}'
    if args[6] == '-':
        print(line + f' {"":6} {rtx:5} | (baseline)')
    else:
        fast = float(args[6]); ratio = mbps / raw
        print(line + f' {ratio:6.3f} {rtx:5} | {mark(avg <= idle + 5)} {avg - idle:+7.2f}  {mark(avg <= fast)} {avg - fast:+7.2f}'
                     f'  {mark(ratio >= 0.95)} {ratio:.3f}')
elif cmd == 'head3':
    print(f'  {"cc":6} {"queue":8} {"Mbit/s":>6} {"of raw":>6} {"kernel: retrans/segments":>24} {"iperf3: rtx/segments":>25} {"q drops":>7} |'
          f' {"<= 1 % (kernel, iperf3)":23} {">= 0.95":10}')
elif cmd == 'row3':               # CC QUEUE IPERF_FILE RAW_SUM OUTSEGS RETRANSSEGS CODEL_DROPS
    cc, queue, jf, raw, out, re, drops = args[0], args[1], args[2], float(args[3]), int(args[4]), int(args[5]), args[6]
    mbps, rtx, sent, mss, _ = measured(jf, cc, queue); ratio = mbps / raw; segments = sent / mss
    kernel = 100 * re / max(out, 1); window = 100 * rtx / max(segments, 1)
    print(f'  {cc:6} {queue:8} {mbps:6.1f} {ratio:6.3f} {re:6d}/{out:<7d} = {kernel:5.2f} % {rtx:6d}/{segments:<7.0f} = {window:5.2f} % {drops:>7} |'
          f' {mark(kernel <= 1)} {mark(window <= 1)} {kernel:5.2f} %   {mark(ratio >= 0.95)} {ratio:.3f}')
elif cmd == 'head4':
    print(f'  {"cc":6} {"tunnel":16} {"Gbit/s":>6} {"of p2p":>6} | {">= 0.9":11} | {"client CPU s, s/Gbit":>20} {"hub CPU s, s/Gbit":>18} {"rtx":>5} {"idle":>5}')
elif cmd == 'row4':               # CC NAME IPERF_FILE P2P_GBPS(or -) CLIENT_TICKS HUB_TICKS TICKS_PER_S IDLE_TICKS ALL_TICKS [RATIOS_FILE]
    cc, name, jf = args[0], args[1], args[2]
    mbps, rtx, sent, mss, received = measured(jf, cc, name); gbps = mbps / 1e3; gbit = received * 8 / 1e9
    client, hub = int(args[4]) / int(args[6]), int(args[5]) / int(args[6])
    line = f'  {cc:6} {name:16} {gbps:6.2f}'
    if args[3] == '-': line += f' {"":6} | {"(baseline)":11} |'
    else:
        ratio = gbps / float(args[3]); line += f' {ratio:6.3f} | {mark(ratio >= 0.9) + " " + format(ratio, ".3f"):11} |'
        if len(args) > 9: open(args[9], 'a').write(f'{ratio}\n')
    idle = 100 * int(args[7]) / max(int(args[8]), 1)
    print(line + f' {client:9.1f} {client / gbit:10.3f} {hub:7.1f} {hub / gbit:10.3f} {rtx:5d} {idle:4.0f}%')
elif cmd == 'median4':            # CC NAME RATIOS_FILE → the median of the rounds' ratios, judged
    cc, name = args[0], args[1]
    ratios = sorted(float(x) for x in open(args[2]).read().split())
    middle = statistics.median(ratios)
    print(f'  {cc:6} {name:16} {"median":>6} {middle:6.3f} | {mark(middle >= 0.9) + " " + format(middle, ".3f"):11} |'
          f' of {len(ratios)} rounds: ' + ' '.join(f'{x:.3f}' for x in ratios))
elif cmd == 'reorder':            # NAME STATUS_JSON → the hub reorder stage's holds and copies
    try:
        r = json.load(open(args[1]))['sessions'][0]['details']['reorder']
        kept, copied = r.get('held_in_place', 0), r.get('copied_at_refill', 0)
        print(f"  {args[0]}: hub reorder over the part: in order {r.get('in_order', 0)}, held {r.get('held', 0)}, "
              f"aligned {r.get('aligned', 0)}; held in their read's batch {kept}, copied out when it was refilled "
              f"{copied} ({100 * copied / max(kept, 1):.0f} %); released as lost {r.get('released_as_lost', 0)}, "
              f"hold {r.get('hold_ms', 0):.2f} ms")
    except Exception as error:
        print(f"  {args[0]}: no reorder counters ({error})")
elif cmd == 'drops':              # STATUS_JSON → the client queue's CoDel + overflow drops
    try:
        d = json.load(open(args[0])); s = d['sessions'][0]['details']['queue']
        get = lambda *keys: next((s[k] for k in keys if k in s), 0)
        print(get('codelDrops', 'codel_drops') + get('overflowDrops', 'overflow_drops'))
    except Exception:
        print(0)
EOF
calc() { python3 "$WORK/calc.py" "$@"; }

# Processes of a phase (relays, daemons), stopped by their ids when the phase ends.
PHASE_PIDS=()
stop_phase() {
    local pid
    for pid in "${PHASE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PHASE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PHASE_PIDS=()
}
# tunneld NS NAME: run $WORK/NAME.yaml in NS, wait for "running profile"; its pid in LAST_PID.
tunneld() {
    ip netns exec "$1" "$BIN" run "$WORK/$2.yaml" --stock "$STOCK" >"$WORK/$2.log" 2>&1 &
    LAST_PID=$!; PHASE_PIDS+=($!)
    local i
    for i in $(seq 150); do
        grep -qs "running profile" "$WORK/$2.log" && return 0
        kill -0 $LAST_PID 2>/dev/null || break
        sleep 0.1
    done
    echo "tunneld $2 did not start:" >&2; cat "$WORK/$2.log" >&2; exit 1
}
# relay N LISTEN_PORT HUB_PORT DELAY_MS: the middle box's relay for uplink N.
relay() {
    local log="$WORK/relay-$1-$2.log" i
    ip netns exec $MID "$RELAY" --listen "10.201.$1.2:$2" --forward "10.201.9.2:$3" --delay-ms "$4" >"$log" 2>&1 &
    PHASE_PIDS+=($!)
    for i in $(seq 50); do grep -qs "relay ready" "$log" && return 0; sleep 0.1; done
    echo "relay did not start:" >&2; cat "$log" >&2; exit 1
}
# wait_links NAME LINK...: the client's log says each link went up.
wait_links() {
    local name=$1 link i; shift
    for link in "$@"; do
        for i in $(seq 100); do grep -qs "link $link (.*→ up" "$WORK/$name.log" && continue 2; sleep 0.1; done
        echo "link $link of $name did not come up:" >&2; cat "$WORK"/*.log >&2; exit 1
    done
}
tcp_counters() {  # NS → OutSegs RetransSegs (the namespace's kernel TCP counters)
    ip netns exec "$1" awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) k[$i] = i; h = 1 }
                                       else print $k["OutSegs"], $k["RetransSegs"] }' /proc/net/snmp
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
machine() { awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }  # → idle+iowait, all (ticks)
PORT=5400
# iperf_start SERVER_NS CLIENT_NS TARGET CC OMIT OUT: server (one test, daemonised), client in
# the background writing JSON to OUT; the client's pid in IPERF_PID.
iperf_start() {
    PORT=$((PORT + 1))
    ip netns exec "$1" iperf3 -s -1 -D -p $PORT; sleep 0.3
    ip netns exec "$2" iperf3 -c "$3" -p $PORT -t "$S" -O "$5" -J -C "$4" -i 1 ${RATE4:+-b $RATE4} >"$6" 2>&1 &
    IPERF_PID=$!
}
iperf_wait() { wait "$IPERF_PID" || echo "iperf3 exited $? ($1)" >&2; }
# loaded SERVER_NS TARGET CC OUT: one bulk stream to TARGET and 50 pings at 0.1 s to it from
# 0.5 s after the omitted start (as BondingLab.pingDuringTCP): OUT.json, OUT.ping.
loaded() {
    iperf_start "$1" $SITE "$2" "$3" $OMIT "$4.json"
    sleep $((OMIT)).5
    ip netns exec $SITE ping -n -q -c 50 -i 0.1 -W 2 "$2" >"$4.ping" 2>&1 || true
    iperf_wait "$4"
}
idle_ping() {  # TARGET → average ms of 20 pings at 0.1 s
    ip netns exec $SITE ping -n -q -c 20 -i 0.1 -W 2 "$1" >"$WORK/idle.ping" 2>&1 || true
    calc ping "$WORK/idle.ping" | cut -d' ' -f1
}
# raw_sum → RAW ("57.3") and RAW_TEXT ("38.2 + 19.1"): both uplinks at once, bbr, to the middle box.
raw_sum() {
    local n pids=()
    for n in 1 2; do ip netns exec $MID iperf3 -s -1 -D -p $((5300 + n)); done; sleep 0.3
    for n in 1 2; do
        ip netns exec $SITE iperf3 -c 10.201.$n.2 -p $((5300 + n)) -t "$S" -O $OMIT -J -C bbr -i 1 >"$WORK/raw$n.json" 2>&1 &
        pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || true; done
    read -r RAW RAW_TEXT < <(calc mbps "$WORK/raw1.json" "$WORK/raw2.json")
}

# The uplinks: site 10.201.N.1 ─ tbf ─ 10.201.N.2 middle, N = 1 (40 Mbit/s), 2 (20 Mbit/s);
# middle 10.201.9.1 ─ 10.201.9.2 hub. tbf as Lab.limit: burst 256kb, latency 50ms.
bench_veth $SITE $MID tbq1 1; bench_veth $SITE $MID tbq2 2; bench_veth $MID $HUB tbqh 9
for n in 1 2; do
    rate=$([ $n = 1 ] && echo 40mbit || echo 20mbit)
    ip netns exec $SITE tc qdisc replace dev tbq$n root tbf rate $rate burst 256kb latency 50ms
    ip netns exec $MID tc qdisc replace dev tbq${n}b root tbf rate $rate burst 256kb latency 50ms
done
# Part 4's two unlimited links: tbq-a 10.201.1N.1 ─ 10.201.1N.2 tbq-b.
bench_veth $A $B tbqu1 11; bench_veth $A $B tbqu2 12
bench_keys   # a.key: the site's (client's), b.key: the hub's
secret() { chmod 600 "$WORK/$1.yaml"; }

# Two bonded tunnels over the same uplinks, each through its own relays to its own hub:
# q with `queue: fq-codel` (10.99.0.1 → .2), n with `queue: off` (10.98.0.1 → .2).
bond_pair() {  # FAST_DELAY_MS SLOW_DELAY_MS
    local t net cport rport hport queue
    for t in q n; do
        if [ $t = q ]; then net=10.99.0 cport=5081 rport=6001 hport=5080 queue="  bonding.scheduler: { $BOND_QUEUE }"
        else net=10.98.0 cport=5082 rport=6002 hport=5090 queue="  bonding.scheduler: { queue: off }"; fi
        relay 1 $rport $hport "$1"; relay 2 $rport $hport "$2"
        cat > "$WORK/hub$t.yaml" <<EOF
profile: bonding-server
device: { name: tun$t, address: $net.2/30 }
links:
  - { name: hub, bind: "10.201.9.2:$hport" }
settings:
  crypto.aead: { private-key-file: $WORK/b.key, peers: ["site1=$PA"] }
$queue
status: { socket: $WORK/hub$t.sock }
EOF
        cat > "$WORK/site$t.yaml" <<EOF
profile: bonding-client
device: { name: tun$t, address: $net.1/30 }
links:
  - { name: fast, bind: "10.201.1.1:$cport", remote: "10.201.1.2:$rport" }
  - { name: slow, bind: "10.201.2.1:$cport", remote: "10.201.2.2:$rport" }
settings:
  crypto.aead: { private-key-file: $WORK/a.key, peer-public-key: "$PB" }
$queue
status: { socket: $WORK/site$t.sock }
EOF
        secret hub$t; secret site$t
        tunneld $HUB hub$t; tunneld $SITE site$t
    done
    wait_links siteq fast slow; wait_links siten fast slow
    bench_wait_up $SITE 10.99.0.2 10.98.0.2
}
client_drops() {  # → CoDel + overflow drops of the fq-codel client so far
    "$BIN" status "$WORK/siteq.sock" --json >"$WORK/status.json" 2>/dev/null || true
    calc drops "$WORK/status.json"
}

echo "bonding queue benchmark (issue 14, point 6): $("$BIN" --version | head -1), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "TCP runs: one iperf3 stream, $S s measured (receiver's goodput); parts 2 and 3 leave the first $OMIT s out (slow start, tbf burst)"

# ---------------------------------------------------------------------------------------------
if part 2; then
bond_pair 0 0
raw_sum
IDLE_FAST=$(idle_ping 10.201.1.2); IDLE_Q=$(idle_ping 10.99.0.2); IDLE_N=$(idle_ping 10.98.0.2)
echo
echo "(2) latency under load: 40 + 20 Mbit/s, equal delay (0 ms, through the relays), 50 pings at 0.1 s during the stream"
echo "    raw sum (both links at once, bbr): $RAW_TEXT = $RAW Mbit/s"
echo "    ping ms: average of the 50 under load; idle: 20 pings before any load; rtx: iperf3's retransmits over the measured $S s"
echo "    bars: within 5 ms of the path's idle ping, never above the raw fast link's under the same load; goodput >= 0.95 of the raw sum"
calc head2
for cc in cubic bbr; do
    loaded $MID 10.201.1.2 $cc "$WORK/fast-$cc"
    FAST=$(calc ping "$WORK/fast-$cc.ping" | cut -d' ' -f1)
    calc row2 $cc "raw 40 Mbit/s" "$IDLE_FAST" "$WORK/fast-$cc.ping" "$WORK/fast-$cc.json" "$RAW" -
    loaded $HUB 10.99.0.2 $cc "$WORK/q-$cc"
    calc row2 $cc "bond fq-codel" "$IDLE_Q" "$WORK/q-$cc.ping" "$WORK/q-$cc.json" "$RAW" "$FAST"
    loaded $HUB 10.98.0.2 $cc "$WORK/n-$cc"
    calc row2 $cc "bond queue off" "$IDLE_N" "$WORK/n-$cc.ping" "$WORK/n-$cc.json" "$RAW" "$FAST"
done
stop_phase
fi

# ---------------------------------------------------------------------------------------------
if part 3; then
bond_pair 10 40
raw_sum
echo
echo "(3) loss: 40 + 20 Mbit/s, one-way delay 10 and 40 ms"
echo "    raw sum (both links at once, bbr, straight to the middle box: no delay, as the tests): $RAW_TEXT = $RAW Mbit/s"
echo "    retransmissions as % of segments sent, two ways: kernel = TcpRetransSegs / TcpOutSegs of the site namespace (/proc/net/snmp)"
echo "    over the whole run, the omitted start included; iperf3 = its 'retransmits' / (bytes sent / MSS) over the measured $S s only."
echo "    q drops: the fq-codel client's CoDel + overflow drops during the run (ECN marks are not drops). Bars: <= 1 % (marked for both figures), goodput >= 0.95"
echo "    fq-c+ecn: the same queued tunnel with the site's TCP negotiating ECN (tcp_ecn=1), so CoDel marks ECN-capable packets instead of dropping them"
calc head3
for cc in cubic bbr; do
    # q+ecn: the queued tunnel with the site's TCP asking for ECN (net.ipv4.tcp_ecn=1; Linux's
    # default, 2, only answers it), so CoDel marks instead of dropping.
    for t in q q+ecn n; do
        [ $t = q+ecn ] && ip netns exec $SITE sysctl -qw net.ipv4.tcp_ecn=1
        before=$(tcp_counters $SITE); drops0=$([ $t = n ] && echo 0 || client_drops)
        iperf_start $HUB $SITE $([ $t = n ] && echo 10.98.0.2 || echo 10.99.0.2) $cc $OMIT "$WORK/loss-$t-$cc.json"
        iperf_wait "loss $t $cc"
        after=$(tcp_counters $SITE)
        ip netns exec $SITE sysctl -qw net.ipv4.tcp_ecn=2
        case $t in
            q) drops=$(( $(client_drops) - drops0 )) queue=fq-codel ;;
            q+ecn) drops=$(( $(client_drops) - drops0 )) queue=fq-c+ecn ;;
            n) drops=- queue=off ;;
        esac
        read -r out0 re0 <<<"$before"; read -r out1 re1 <<<"$after"
        calc row3 $cc $queue "$WORK/loss-$t-$cc.json" "$RAW" $((out1 - out0)) $((re1 - re0)) "$drops"
    done
done
echo "    (MSS through the tunnel as iperf3 reports it: $(calc mss "$WORK/loss-q-cubic.json") bytes)"
stop_phase
fi

# ---------------------------------------------------------------------------------------------
if part 4; then
# Part 4: tbq-a (client) to tbq-b (hub) over two unlimited veths; p2p over the first alone.
# All three tunnels use inner MTU 1400 (p2p's default), so the ratio is the bond's own cost.
cat > "$WORK/p2pa.yaml" <<EOF
profile: p2p
device: { name: tunp, mtu: 1400, address: 10.96.0.1/30 }
links:
  - { name: wan1, bind: 10.201.11.1:5085, remote: 10.201.11.2:5085 }
settings: { crypto.aead: { private-key-file: $WORK/a.key, peer-public-key: "$PB" } }
EOF
cat > "$WORK/p2pb.yaml" <<EOF
profile: p2p
device: { name: tunp, mtu: 1400, address: 10.96.0.2/30 }
links:
  - { name: wan1, bind: 10.201.11.2:5085 }
settings: { crypto.aead: { private-key-file: $WORK/b.key, peer-public-key: "$PA" } }
EOF
for t in n q; do
    if [ $t = q ]; then net=10.95.0 port=5082 queue="  bonding.scheduler: { $BOND_QUEUE }"; else net=10.97.0 port=5081 queue="  bonding.scheduler: { queue: off }"; fi
    cat > "$WORK/cpu-site$t.yaml" <<EOF
profile: bonding-client
device: { name: tun$t, mtu: 1400, address: $net.1/30 }
links:
  - { name: wan1, bind: "10.201.11.1:$port", remote: "10.201.11.2:$port" }
  - { name: wan2, bind: "10.201.12.1:$port", remote: "10.201.12.2:$port" }
settings:
  crypto.aead: { private-key-file: $WORK/a.key, peer-public-key: "$PB" }
$queue
EOF
    cat > "$WORK/cpu-hub$t.yaml" <<EOF
profile: bonding-server
device: { name: tun$t, mtu: 1400, address: $net.2/30 }
status: { socket: $WORK/cpu-hub$t.sock }
links:
  - { name: hub1, bind: "10.201.11.2:$port" }
  - { name: hub2, bind: "10.201.12.2:$port" }
settings:
  crypto.aead: { private-key-file: $WORK/b.key, peers: ["site1=$PA"] }
$queue
EOF
done
for f in p2pa p2pb cpu-siten cpu-hubn cpu-siteq cpu-hubq; do secret $f; done
declare -A CLIENT HUBPID
tunneld $B p2pb; HUBPID[p]=$LAST_PID; tunneld $A p2pa; CLIENT[p]=$LAST_PID
for t in n q; do tunneld $B cpu-hub$t; HUBPID[$t]=$LAST_PID; tunneld $A cpu-site$t; CLIENT[$t]=$LAST_PID; done
wait_links cpu-siten wan1 wan2; wait_links cpu-siteq wan1 wan2
bench_wait_up $A 10.96.0.2 10.97.0.2 10.95.0.2
echo
echo "(4) CPU: two unlimited veth links bonded against p2p over one, inner MTU 1400, no time left out; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "    CPU: each daemon's utime+stime (/proc/PID/stat) over the run, and that per Gbit carried (= cores busy per Gbit/s);"
echo "    rtx: iperf3's retransmits; idle: the whole machine's idle time during the run (/proc/stat; near 0: CPU-bound)"
echo "    bar: >= 0.9 of p2p's Gbit/s (the bond over two links against p2p over one, same cc), on the median of"
echo "    $ROUNDS rounds (p2p, bond off, bond on, back to back; each round's ratio against its own p2p)"
calc head4
name() { case $1 in p) echo "p2p, one link" ;; n) echo "bond, queue off" ;; q) echo "bond, fq-codel" ;; esac; }
for cc in cubic bbr; do
    for round in $(seq $ROUNDS); do
        for t in p n q; do
            target=$(case $t in p) echo 10.96.0.2 ;; n) echo 10.97.0.2 ;; q) echo 10.95.0.2 ;; esac)
            json="$WORK/cpu-$t-$cc-$round.json"
            iperf_start $B $A $target $cc 0 "$json"
            c0=$(ticks ${CLIENT[$t]}); h0=$(ticks ${HUBPID[$t]}); read -r i0 a0 < <(machine)
            if [ -n "${PERF_DIR:-}" ] && [ "$round" = 1 ]; then  # where each daemon's time goes, first round only
                mkdir -p "$PERF_DIR"
                for side in client hub; do
                    pid=$([ $side = client ] && echo ${CLIENT[$t]} || echo ${HUBPID[$t]})
                    perf record -q -F 999 -g -p "$pid" -o "$PERF_DIR/$cc-$t-$side.data" -- sleep $((S - 2)) >/dev/null 2>&1 &
                done
            fi
            iperf_wait "cpu $t $cc"
            c1=$(ticks ${CLIENT[$t]}); h1=$(ticks ${HUBPID[$t]}); read -r i1 a1 < <(machine)
            ref=-; [ $t = p ] || ref=$(calc mbps "$WORK/cpu-p-$cc-$round.json" | awk '{ print $1 / 1000 }')
            calc row4 $cc "$(name $t)" "$json" "$ref" $((c1 - c0)) $((h1 - h0)) "$TICKS" $((i1 - i0)) $((a1 - a0)) \
                "$WORK/ratios-$t-$cc.txt"
        done
    done
    for t in n q; do [ -s "$WORK/ratios-$t-$cc.txt" ] && calc median4 $cc "$(name $t)" "$WORK/ratios-$t-$cc.txt"; done
done
# Copies the hub's reorder stage makes when a read's batch is refilled while it still holds
# packets of it: memory traffic the single-link p2p does not pay.
for t in n q; do
    "$BIN" status "$WORK/cpu-hub$t.sock" --json >"$WORK/hub$t-status.json" 2>/dev/null || true
    calc reorder "$(name $t)" "$WORK/hub$t-status.json"
done
stop_phase
fi
echo
echo "one run took $(( $(date +%s) - START )) s; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
