#!/usr/bin/env bash
# Single-stream TCP through a plain tunnel against raw veth between the same two
# namespaces, measured in the same run; prints both and their ratio.
#   sudo Benchmarks/throughput.sh [seconds]   (default 10; cubic and bbr both measured)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
BIN=${TUNNELD_BIN:-$PWD/.build/release/tunneld}
[ -x "$BIN" ] || { echo "build first: swift build -c release --product tunneld" >&2; exit 1; }
A=tbench-a B=tbench-b
WORK=$(mktemp -d /tmp/tunneld-bench.XXXXXX)
cleanup() {
    for ns in $A $B; do ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null || true; done
    sleep 0.3
    for ns in $A $B; do ip netns del $ns 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
ip netns add $A; ip netns add $B
ip link add tbench0 netns $A type veth peer name tbench1 netns $B
ip -n $A addr add 10.201.1.1/24 dev tbench0; ip -n $A link set tbench0 up; ip -n $A link set lo up
ip -n $B addr add 10.201.1.2/24 dev tbench1; ip -n $B link set tbench1 up; ip -n $B link set lo up
printf 'profile: plain\ndevice: { name: tun0, mtu: 1400, address: 10.99.0.1/30 }\nlinks:\n  - { name: wan1, bind: 10.201.1.1:5080, remote: 10.201.1.2:5080 }\n' > "$WORK/a.yaml"
printf 'profile: plain\ndevice: { name: tun0, mtu: 1400, address: 10.99.0.2/30 }\nlinks:\n  - { name: wan1, bind: 10.201.1.2:5080, remote: 10.201.1.1:5080 }\n' > "$WORK/b.yaml"
ip netns exec $A "$BIN" run "$WORK/a.yaml" 2>"$WORK/a.log" &
ip netns exec $B "$BIN" run "$WORK/b.yaml" 2>"$WORK/b.log" &
sleep 1

run() {  # run ADDRESS CONGESTION -> bits per second (receiver side)
    ip netns exec $B iperf3 -s -1 -D -p 5201; sleep 0.3
    ip netns exec $A iperf3 -c "$1" -p 5201 -t "$SECONDS_PER_RUN" -C "$2" -J |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])'
}
echo "single-stream TCP, $SECONDS_PER_RUN s per run, tunnel MTU 1400, $(nproc) cores"
for cc in cubic bbr; do
    raw=$(run 10.201.1.2 $cc)
    tunnel=$(run 10.99.0.2 $cc)
    python3 -c "r=$raw; t=$tunnel; print(f'{\"$cc\":6} raw veth {r/1e9:6.2f} Gbit/s   plain tunnel {t/1e9:6.2f} Gbit/s   ratio {t/r:.3f}')"
done
