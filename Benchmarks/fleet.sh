#!/usr/bin/env bash
# What a session costs as a tunnel grows to 10, 1 000 and 10 000 sessions, in one run:
#  * through a real session manager (the l2tp-broker with real TAP devices and td-loadgen
#    clients keeping alive every 5 s, Benchmarks/l2tp-scale.sh scenario A): time to
#    establish (a TAP device and a session each), RSS growth per session, idle CPU;
#  * in process (tunneld-bench fleet): RSS per bare session, inbound demux ns/packet
#    (which must stay flat as sessions grow), TAP creation per session and batch
#    removal, and the bonding hub's reorder memory per idle session.
#   sudo Benchmarks/fleet.sh                 (about 2 minutes)
#   sudo COUNTS="10 1000" HOLD=5 Benchmarks/fleet.sh
# Needs: swift build -c release (tunneld, td-loadgen, tunneld-bench).
cd "$(dirname "$0")/.." || exit 1
set -euo pipefail
COUNTS=${COUNTS:-10 1000 10000}
HOLD=${HOLD:-10}
for binary in tunneld td-loadgen tunneld-bench; do
    [ -x ".build/release/$binary" ] || { echo "build first: swift build -c release" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)"

echo "== in process: tunneld-bench fleet $COUNTS"
# shellcheck disable=SC2086
LD_PRELOAD=.build/release/libMallocInterposerSwift.so .build/release/tunneld-bench fleet $COUNTS

echo
echo "== through the l2tp-broker session manager (userspace data plane, a TAP per session, keepalive 5 s, hold ${HOLD} s)"
printf '%10s  %14s  %16s  %16s  %14s\n' sessions "establish (s)" "per session (µs)" "RSS/session (KB)" "idle CPU (%)"
for count in $COUNTS; do
    # Its exit status also judges the shutdown handshake, which a run of 10 clients
    # can finish before td-loadgen starts watching for it; the figures used here are
    # taken before that.
    out=$(SCENARIOS=A CLIENTS=$count HOLD=$HOLD RATE=burst Benchmarks/l2tp-scale.sh 2>&1) || true
    echo "$out" | grep -q "^A: RSS growth per tunnel" || { echo "$out" | tail -20; exit 1; }
    # The "measured" column of l2tp-scale.sh's table (printf '%-52s %14s …').
    field() { echo "$out" | grep -E "^A: $1" | head -1 | cut -c54-67 | awk '{ print $1 }'; }
    established=$(field "time to establish all")
    rss=$(field "RSS growth per tunnel")
    cpu=$(field "broker CPU over the")
    per=$(awk -v t="$established" -v n="$count" 'BEGIN { printf "%.0f", t * 1e6 / n }')
    printf '%10s  %14s  %16s  %16s  %14s\n' "$count" "$established" "$per" "$rss" "$cpu"
done
