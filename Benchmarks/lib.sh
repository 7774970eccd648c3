# Shared by the benchmark scripts (source it): the binary, a work folder, namespaces
# removed on exit, and one iperf3 measurement.
#   bench_setup NAMESPACE...      creates them (loopback up) and the cleanup trap
#   bench_veth NS_A NS_B NAME N   a veth pair NAME (in A, 10.201.N.1/24) — NAMEb (in B, 10.201.N.2/24)
#   bench_keys                    key pairs a.key, b.key in $WORK; their public keys in PA, PB
#   bench_wait_up NS ADDRESS...   ping each through its tunnel, or print the logs and exit
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

bench_veth() {
    ip link add "$3" netns "$1" type veth peer name "$3b" netns "$2"
    ip -n "$1" addr add "10.201.$4.1/24" dev "$3"; ip -n "$1" link set "$3" up
    ip -n "$2" addr add "10.201.$4.2/24" dev "$3b"; ip -n "$2" link set "$3b" up
}

bench_keys() {
    "$BIN" genkey --out "$WORK/a.key"; "$BIN" genkey --out "$WORK/b.key"
    PA=$("$BIN" pubkey "$WORK/a.key"); PB=$("$BIN" pubkey "$WORK/b.key")
}

bench_wait_up() {
    local ns=$1 address; shift
    for address in "$@"; do
        ip netns exec "$ns" ping -c 1 -W 3 "$address" >/dev/null ||
            { echo "the tunnel to $address did not come up" >&2; cat "$WORK"/*.log >&2; exit 1; }
    done
}

bench_tcp() {
    ip netns exec "$1" iperf3 -s -1 -D -p 5201; sleep 0.3
    ip netns exec "$2" iperf3 -c "$3" -p 5201 -t "$SECONDS_PER_RUN" -C "$4" -J |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])'
}
