# Shared by the benchmark scripts (source it): the binary, a work folder, namespaces
# removed on exit, and one iperf3 measurement.
#   bench_setup NAMESPACE...      creates them (loopback up) and the cleanup trap
#   bench_tcp SERVER_NS CLIENT_NS ADDRESS CONGESTION  → receiver bits per second
set -euo pipefail
SECONDS_PER_RUN=${1:-10}
BIN=${TUNNELD_BIN:-$PWD/.build/release/tunneld}
[ -x "$BIN" ] || { echo "build first: swift build -c release --product tunneld" >&2; exit 1; }
WORK=$(mktemp -d /tmp/tunneld-bench.XXXXXX)
BENCH_NAMESPACES=()

bench_cleanup() {
    for ns in "${BENCH_NAMESPACES[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
    sleep 0.3
    for ns in "${BENCH_NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}

bench_setup() {
    BENCH_NAMESPACES=("$@")
    trap bench_cleanup EXIT INT TERM
    for ns in "$@"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
}

bench_tcp() {
    ip netns exec "$1" iperf3 -s -1 -D -p 5201; sleep 0.3
    ip netns exec "$2" iperf3 -c "$3" -p 5201 -t "$SECONDS_PER_RUN" -C "$4" -J |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])'
}
