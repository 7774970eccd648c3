#!/usr/bin/env bash
# Bonding throughput, measured in one run between the same two namespaces joined by
# two unlimited veth pairs (each one "uplink"):
#   raw veth TCP → encrypted bonding tunnel over one link → over two links.
# Prints Gbit/s and the ratios one-link/raw and two-links/one-link.
#   sudo Benchmarks/bonding.sh [seconds]   (default 10; cubic and bbr both measured)
cd "$(dirname "$0")/.."
source Benchmarks/lib.sh
A=tbond-a B=tbond-b
bench_setup $A $B
bench_veth $A $B tbond1 1; bench_veth $A $B tbond2 2
bench_keys
site() {  # NAME DEVICE ADDRESS PORT LINKS...
    local name=$1 device=$2 address=$3 port=$4; shift 4
    { echo "profile: bonding-client"; echo "device: { name: $device, address: $address }"; echo "links:"
      for n in "$@"; do echo "  - { name: wan$n, bind: 10.201.$n.1:$port, remote: 10.201.$n.2:$port }"; done
      echo "status: { socket: $WORK/$name.sock }"
      echo "settings: { crypto.aead: { private-key-file: a.key, peer-public-key: \"$PB\" } }"; } > "$WORK/$name.yaml"
}
hub() {  # NAME DEVICE ADDRESS PORT LINKS...
    local name=$1 device=$2 address=$3 port=$4; shift 4
    { echo "profile: bonding-server"; echo "device: { name: $device, address: $address }"; echo "links:"
      for n in "$@"; do echo "  - { name: hub$n, bind: 10.201.$n.2:$port }"; done
      echo "status: { socket: $WORK/$name.sock }"
      echo "settings: { crypto.aead: { private-key-file: b.key, peers: [\"site=$PA\"] } }"; } > "$WORK/$name.yaml"
}
site one bond1 10.97.0.1/30 5081 1;   hub hubone bond1 10.97.0.2/30 5081 1
site two bond2 10.96.0.1/30 5082 1 2; hub hubtwo bond2 10.96.0.2/30 5082 1 2
for name in hubone hubtwo; do ip netns exec $B "$BIN" run "$WORK/$name.yaml" 2>"$WORK/$name.log" & done
for name in one two; do ip netns exec $A "$BIN" run "$WORK/$name.yaml" 2>"$WORK/$name.log" & done
sleep 1.5
bench_wait_up $A 10.97.0.2 10.96.0.2

echo "single-stream TCP, $SECONDS_PER_RUN s per run, bonding-client/-server (encrypted, MTU 1444), $(nproc) cores"
for cc in cubic bbr; do
    raw=$(bench_tcp $B $A 10.201.1.2 $cc)
    one=$(bench_tcp $B $A 10.97.0.2 $cc)
    two=$(bench_tcp $B $A 10.96.0.2 $cc)
    python3 -c "r=$raw; o=$one; t=$two; print(f'{\"$cc\":6} raw veth {r/1e9:6.2f}   one link {o/1e9:5.2f} (x{o/r:.3f} of raw)   two links {t/1e9:5.2f} Gbit/s (x{t/o:.3f} of one link)')"
done
