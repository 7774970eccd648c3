#!/usr/bin/env bash
# tunneld against the kernel, all in one run (issue 16, point 3): single-stream TCP between
# two namespaces over raw veth, kernel VXLAN (the kernel's own UDP encapsulation, no
# encryption), and tunneld's `plain`, `p2p` and `bonding` (client and server over two
# unlimited veths), cubic and bbr, each the median of ROUNDS runs taken in turns so a
# slow minute of the VM hits all of them alike. With TUNNELD_BEFORE=path/to/old/tunneld the
# three tunnels also run from that binary (A/B: the same run, the same namespaces).
# Prints Gbit/s and the ratios the issue sets bars on: plain/VXLAN >= 0.5, and p2p and
# bonding >= 1.4x the before binary.
#   sudo [TUNNELD_BEFORE=...] [ROUNDS=3] [PATHS="raw vxlan plain p2p bond"] [SCHED=1] Benchmarks/kernel-compare.sh [seconds]   (default 5)
# Namespaces kc-a, kc-b, addresses 10.x only; everything is removed on exit.
cd "$(dirname "$0")/.."
export LC_ALL=C
set -- "${1:-5}"
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0 $1" >&2; exit 1; }
for tool in iperf3 ip python3; do command -v $tool >/dev/null || { echo "$tool is needed" >&2; exit 1; }; done
ROUNDS=${ROUNDS:-3}
BEFORE=${TUNNELD_BEFORE:-}
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || { echo "TUNNELD_BEFORE=$BEFORE is not an executable" >&2; exit 1; }
A=kc-a B=kc-b
for ns in $A $B; do
    ! ip netns list | grep -qw "^$ns" || { echo "namespace $ns exists: another run? (ip netns del $ns)" >&2; exit 1; }
done
source Benchmarks/lib.sh
bench_setup $A $B
bench_veth $A $B kc1 1; bench_veth $A $B kc2 2
bench_keys

# Kernel VXLAN over the first veth, the same inner MTU as the tunnels.
for side in 1 2; do
    ns=$([ $side = 1 ] && echo $A || echo $B); peer=$((3 - side)); dev=$([ $side = 1 ] && echo kc1 || echo kc1b)
    ip -n $ns link add vx0 type vxlan id 42 local 10.201.1.$side remote 10.201.1.$peer dstport 4789 dev $dev
    ip -n $ns link set vx0 mtu 1400 up
    ip -n $ns addr add 10.90.0.$side/30 dev vx0
done

# A site file in $WORK: tunnel_file NAME PROFILE DEVICE ADDRESS KEY_AND_PEER LINK... (KEY_AND_PEER
# is the crypto.aead setting's inside, empty for none; each LINK the inside of one links entry).
tunnel_file() {
    local name=$1 profile=$2 device=$3 address=$4 crypto=$5 link; shift 5
    {
        echo "profile: $profile"
        echo "device: { name: $device, mtu: 1400, address: $address }"
        echo "links:"
        for link; do echo "  - { $link }"; done
        [ -z "$crypto" ] || echo "settings: { crypto.aead: { $crypto } }"
    } > "$WORK/$name.yaml"
    chmod 600 "$WORK/$name.yaml"
}

# One set of tunnels per binary: tag a (this build) and b (before), each on its own ports,
# devices and inner networks: plain 10.N.1.x, p2p 10.N.2.x, bonding 10.N.3.x.
start_tunnels() {  # TAG BINARY NET PORTBASE
    local tag=$1 bin=$2 net=$3 port=$4 kind side
    local p2p=$((port + 1)) bond=$((port + 2)) akey="private-key-file: $WORK/a.key" bkey="private-key-file: $WORK/b.key"
    tunnel_file plain-a$tag plain pl$tag 10.$net.1.1/30 "" "name: wan1, bind: 10.201.1.1:$port, remote: 10.201.1.2:$port"
    tunnel_file plain-b$tag plain pl$tag 10.$net.1.2/30 "" "name: wan1, bind: 10.201.1.2:$port, remote: 10.201.1.1:$port"
    tunnel_file p2p-a$tag p2p pp$tag 10.$net.2.1/30 "$akey, peer-public-key: \"$PB\"" \
        "name: wan1, bind: 10.201.1.1:$p2p, remote: 10.201.1.2:$p2p"
    tunnel_file p2p-b$tag p2p pp$tag 10.$net.2.2/30 "$bkey, peer-public-key: \"$PA\"" "name: wan1, bind: 10.201.1.2:$p2p"
    tunnel_file bond-a$tag bonding-client bd$tag 10.$net.3.1/30 "$akey, peer-public-key: \"$PB\"" \
        "name: wan1, bind: \"10.201.1.1:$bond\", remote: \"10.201.1.2:$bond\"" \
        "name: wan2, bind: \"10.201.2.1:$bond\", remote: \"10.201.2.2:$bond\""
    tunnel_file bond-b$tag bonding-server bd$tag 10.$net.3.2/30 "$bkey, peers: [\"site1=$PA\"]" \
        "name: hub1, bind: \"10.201.1.2:$bond\"" "name: hub2, bind: \"10.201.2.2:$bond\""
    for kind in plain p2p bond; do
        for side in a b; do
            ip netns exec $([ $side = a ] && echo $A || echo $B) "$bin" run "$WORK/$kind-$side$tag.yaml" \
                2>"$WORK/$kind-$side$tag.log" &
        done
    done
}
start_tunnels a "$BIN" 91 5100
[ -z "$BEFORE" ] || start_tunnels b "$BEFORE" 81 5200
sleep 1
bench_wait_up $A 10.90.0.2 10.91.1.2 10.91.2.2 10.91.3.2
[ -z "$BEFORE" ] || bench_wait_up $A 10.81.1.2 10.81.2.2 10.81.3.2
sleep 2  # the bond's second link joins after its first probe round

declare -A TARGET=([raw]=10.201.1.2 [vxlan]=10.90.0.2 [plain]=10.91.1.2 [p2p]=10.91.2.2 [bond]=10.91.3.2
                   [plain-before]=10.81.1.2 [p2p-before]=10.81.2.2 [bond-before]=10.81.3.2)
# PATHS="plain vxlan" measures only those (profiling one path, say).
PATHS=${PATHS:-raw vxlan plain p2p bond}
[ -z "$BEFORE" ] || PATHS="$PATHS plain-before p2p-before bond-before"
echo "tunneld vs the kernel: $("$BIN" --version | head -1)${BEFORE:+ against $("$BEFORE" --version | head -1) ($BEFORE)}"
echo "single-stream TCP from kc-a to kc-b; $1 s per run, median of $ROUNDS rounds, inner MTU 1400, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$WORK/results"
# SCHED=1: also how each tunnel's two daemons spent the run, from 1.3 s in to 0.7 s before its
# end: running, runnable but waiting for a core (their loop thread's /proc/PID/task/PID/schedstat),
# and preempted (involuntary context switches) per second. A daemon that waits for a core while the
# machine has idle time is scheduling-bound, not bound by its own work (README, Data path).
daemon_pids() {  # PATH: the sending (kc-a) and the receiving (kc-b) daemon of that tunnel
    local kind=${1%-before} tag=a
    [ "$1" = "$kind" ] || tag=b
    echo "$(pgrep -f "$WORK/$kind-a$tag.yaml") $(pgrep -f "$WORK/$kind-b$tag.yaml")"
}
sched_snapshot() {  # PIDS: time, then per pid: run ns, wait ns, involuntary switches
    echo "$(date +%s.%N) $(for p in $1; do echo "$(cut -d' ' -f1,2 /proc/$p/task/$p/schedstat)" \
        "$(awk '/^nonvoluntary_ctxt_switches/ {print $2}' /proc/$p/task/$p/status)"; done | tr '\n' ' ')"
}
: > "$WORK/sched"
for round in $(seq "$ROUNDS"); do
    for cc in cubic bbr; do
        for path in $PATHS; do
            sampler=
            if [ -n "${SCHED:-}" ] && [ "$path" != raw ] && [ "$path" != vxlan ]; then
                pids=$(daemon_pids $path)
                { sleep 1.3; sched_snapshot "$pids"; sleep "$(( SECONDS_PER_RUN - 2 ))"; sched_snapshot "$pids"; } \
                    > "$WORK/snapshots" &
                sampler=$!
            fi
            bits=$(bench_tcp $B $A "${TARGET[$path]}" $cc 2>/dev/null || echo nan)
            echo "$cc $path $bits" >> "$WORK/results"
            if [ -n "$sampler" ]; then
                wait $sampler
                echo "$cc $path $(tr '\n' ' ' < "$WORK/snapshots")" >> "$WORK/sched"
            fi
        done
    done
done
python3 - "$WORK/results" "$PATHS" "$ROUNDS" <<'EOF'
import math, statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
paths, rounds = sys.argv[2].split(), int(sys.argv[3])
def median(cc, path):
    values = [float(b) / 1e9 for c, p, b in rows if c == cc and p == path and b != 'nan']
    return statistics.median(values) if values else math.nan
def verdict(value, bar):
    return 'not measured' if math.isnan(value) else 'meets' if value >= bar else 'BELOW'
for cc in ('cubic', 'bbr'):
    m = {path: median(cc, path) for path in paths}
    m.update({path: math.nan for path in ('raw', 'vxlan', 'plain', 'p2p', 'bond') if path not in m})  # PATHS left it out
    runs = {path: ' '.join(f'{float(b)/1e9:.2f}' for c, p, b in rows if c == cc and p == path) for path in paths}
    print(f'\n{cc}: Gbit/s (median; the {rounds} runs)')
    for path in paths:
        print(f'  {path:13} {m[path]:6.2f}   ({runs[path]})')
    ratio = m['plain'] / m['vxlan']
    print(f'  plain / kernel VXLAN   {ratio:.2f}   bar >= 0.5: {verdict(ratio, 0.5)}')
    print(f'  VXLAN / raw veth       {m["vxlan"] / m["raw"]:.2f};  p2p / plain {m["p2p"] / m["plain"]:.2f};  bond / p2p {m["bond"] / m["p2p"]:.2f}')
    if 'p2p-before' in m:
        for path in ('plain', 'p2p', 'bond'):
            ab = m[path] / m[path + '-before']
            bar = '' if path == 'plain' else f'   bar >= 1.4: {verdict(ab, 1.4)}'
            print(f'  {path:5} this build / before   {ab:.2f}{bar}')
EOF
[ -z "${SCHED:-}" ] || python3 - "$WORK/sched" <<'EOF'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    cc, path, *numbers = line.split()
    values = [float(v) for v in numbers]
    half = len(values) // 2
    if half != 7:  # a daemon was gone: no figure
        continue
    before, after = values[:half], values[half:]
    seconds = after[0] - before[0]
    for side, base in (('sender', 1), ('receiver', 4)):
        run = (after[base] - before[base]) / 1e9 / seconds
        wait = (after[base + 1] - before[base + 1]) / 1e9 / seconds
        preempted = (after[base + 2] - before[base + 2]) / seconds
        rows[(cc, path, side)].append((run, wait, preempted))
print('\nthe daemons (SCHED=1; medians over the rounds): share of the run on a core, waiting for one, preemptions/s')
for (cc, path, side), samples in rows.items():
    run, wait, preempted = (statistics.median(column) for column in zip(*samples))
    print(f'  {cc:5} {path:13} {side:8}  running {run * 100:3.0f} %  waiting {wait * 100:3.0f} %  preempted {preempted:6.0f}/s')
EOF
