#!/usr/bin/env bash
# Single-stream TCP between the same two namespaces, measured in the same run: raw
# veth, the plain tunnel, and the encrypted p2p tunnel; prints all three and the
# ratios plain/raw and encrypted/plain.
#   sudo Benchmarks/throughput.sh [seconds]   (default 10; cubic and bbr both measured)
cd "$(dirname "$0")/.."
source Benchmarks/lib.sh
A=tbench-a B=tbench-b
bench_setup $A $B
bench_veth $A $B tbench 1
printf 'profile: plain\ndevice: { name: tun0, mtu: 1400, address: 10.99.0.1/30 }\nlinks:\n  - { name: wan1, bind: 10.201.1.1:5080, remote: 10.201.1.2:5080 }\n' > "$WORK/a.yaml"
printf 'profile: plain\ndevice: { name: tun0, mtu: 1400, address: 10.99.0.2/30 }\nlinks:\n  - { name: wan1, bind: 10.201.1.2:5080, remote: 10.201.1.1:5080 }\n' > "$WORK/b.yaml"
# The encrypted tunnel on its own port and device, keys made for the run.
bench_keys
printf 'profile: p2p\ndevice: { name: tun1, mtu: 1400, address: 10.98.0.1/30 }\nlinks:\n  - { name: wan1, bind: 10.201.1.1:5081, remote: 10.201.1.2:5081 }\nsettings: { crypto.aead: { private-key-file: a.key, peer-public-key: "%s" } }\n' "$PB" > "$WORK/pa.yaml"
printf 'profile: p2p\ndevice: { name: tun1, mtu: 1400, address: 10.98.0.2/30 }\nlinks:\n  - { name: wan1, bind: 10.201.1.2:5081 }\nsettings: { crypto.aead: { private-key-file: b.key, peer-public-key: "%s" } }\n' "$PA" > "$WORK/pb.yaml"
for side in a b; do
    ns=$A; [ $side = b ] && ns=$B
    ip netns exec $ns "$BIN" run "$WORK/$side.yaml" 2>"$WORK/$side.log" &
    ip netns exec $ns "$BIN" run "$WORK/p$side.yaml" 2>"$WORK/p$side.log" &
done
sleep 1
bench_wait_up $A 10.99.0.2 10.98.0.2

echo "single-stream TCP, $SECONDS_PER_RUN s per run, tunnel MTU 1400, $(nproc) cores"
for cc in cubic bbr; do
    raw=$(bench_tcp $B $A 10.201.1.2 $cc)
    tunnel=$(bench_tcp $B $A 10.99.0.2 $cc)
    encrypted=$(bench_tcp $B $A 10.98.0.2 $cc)
    python3 -c "r=$raw; t=$tunnel; e=$encrypted; print(f'{\"$cc\":6} raw veth {r/1e9:6.2f}   plain {t/1e9:5.2f} (x{t/r:.3f} of raw)   encrypted {e/1e9:5.2f} Gbit/s (x{e/t:.3f} of plain)')"
done
grep -h "keys established" "$WORK"/pa.log | sed 's/.*session/encrypted tunnel: session/'
