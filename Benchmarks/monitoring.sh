#!/usr/bin/env bash
# Does monitoring cost throughput? Two encrypted p2p tunnels between the same two
# namespaces: one with monitoring off ('status: off', no HTTP), one with the status
# socket and HTTP on while a scraper reads /metrics, /status and /history and the
# status socket SCRAPES_PER_SECOND times a second each (1 is a live page, a Prometheus
# scraping every second and 'tunneld status --watch' together; 0 is no client). Runs
# alternate off/on ROUNDS times per congestion control, which goes first alternating;
# the medians, and the on/off ratio of each round, are printed. This VM's runs vary by
# ±10 %, so resolving a few per cent takes many rounds.
# With a fourth argument 'control', the second pair runs with monitoring off too (an
# A/A run): what it prints then is the difference between the two tunnels themselves.
#   sudo Benchmarks/monitoring.sh [seconds] [rounds] [scrapes per second] [control]   (default 10 10 1)
cd "$(dirname "$0")/.."
source Benchmarks/lib.sh
ROUNDS=${2:-10}
SCRAPES_PER_SECOND=${3:-1}
A=mbench-a B=mbench-b
bench_setup $A $B
bench_veth $A $B mbench 1
bench_keys
site() {  # site NAME DEVICE ADDRESS PORT KEY PEER MONITORING
    printf 'profile: p2p\ndevice: { name: %s, mtu: 1400, address: %s }\nlinks:\n  - { name: wan1, bind: %s, remote: %s }\nsettings: { crypto.aead: { private-key-file: %s, peer-public-key: "%s" } }\n%s\n' \
        "$2" "$3" "$4" "$5" "$6" "$7" "$8" > "$WORK/$1.yaml"
}
# Monitoring is on at both ends of the second pair, as it would be in service.
site off-a tun0 10.98.0.1/30 10.201.1.1:5080 10.201.1.2:5080 a.key "$PB" "status: off"
site off-b tun0 10.98.0.2/30 10.201.1.2:5080 10.201.1.1:5080 b.key "$PA" "status: off"
MONITORING_A="status: { socket: $WORK/on-a.sock }
http: { listen: \"127.0.0.1:9190\" }"
MONITORING_B="status: { socket: $WORK/on-b.sock }
http: { listen: \"127.0.0.1:9190\" }"
if [ "${4:-}" = control ]; then MONITORING_A="status: off"; MONITORING_B="status: off"; SCRAPES_PER_SECOND=0; fi
site on-a tun1 10.97.0.1/30 10.201.1.1:5081 10.201.1.2:5081 a.key "$PB" "$MONITORING_A"
site on-b tun1 10.97.0.2/30 10.201.1.2:5081 10.201.1.1:5081 b.key "$PA" "$MONITORING_B"
for side in a b; do
    ns=$A; [ $side = b ] && ns=$B
    for mode in off on; do ip netns exec $ns "$BIN" run "$WORK/$mode-$side.yaml" 2>"$WORK/$mode-$side.log" & done
done
sleep 1
bench_wait_up $A 10.98.0.2 10.97.0.2

# The scraper: one light process per side, so its own CPU stays small beside tunneld's.
# The scraper: one light process per side, raw sockets rather than urllib, so the
# client's own CPU (it shares the two cores) stays small beside tunneld's.
cat > "$WORK/scrape.py" <<'PY'
import socket, sys, time
rate, path = float(sys.argv[1]), sys.argv[2]
def fetch(family, address, request):
    s = socket.socket(family)
    s.connect(address)
    if request: s.sendall(request)
    while s.recv(65536): pass
    s.close()
while True:
    start = time.time()
    for page in (b"/metrics", b"/status", b"/history"):
        fetch(socket.AF_INET, ("127.0.0.1", 9190), b"GET " + page + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    fetch(socket.AF_UNIX, path, b"")
    time.sleep(max(0, 1 / rate - (time.time() - start)))
PY

measure() {  # measure MODE CC → bits per second, with the scraper running for 'on'
    local address=10.98.0.2 scrapers=()
    [ "$1" = on ] && address=10.97.0.2
    if [ "$1" = on ] && [ "$SCRAPES_PER_SECOND" != 0 ]; then
        ip netns exec $A python3 "$WORK/scrape.py" "$SCRAPES_PER_SECOND" "$WORK/on-a.sock" & scrapers+=($!)
        ip netns exec $B python3 "$WORK/scrape.py" "$SCRAPES_PER_SECOND" "$WORK/on-b.sock" & scrapers+=($!)
    fi
    bench_tcp $B $A $address "$2"
    [ ${#scrapers[@]} -eq 0 ] || kill "${scrapers[@]}" 2>/dev/null || true
}

# CPU seconds each thread of the monitored tunnels has used: the loop (which moves
# packets and takes the snapshots) and the HTTP thread, to set beside each other.
thread_cpu() {
    for pid in $(pgrep -f "run $WORK/on-"); do
        for task in /proc/$pid/task/*; do
            # comm is in parentheses and may hold spaces; utime and stime follow it.
            sed -E 's/^[0-9]+ \((.*)\) [A-Z] (([^ ]+ ){10})([0-9]+) ([0-9]+).*/\1 \4 \5/' "$task/stat"
        done
    done | awk -v hz="$(getconf CLK_TCK)" '{ cpu = ($(NF-1) + $NF) / hz; if ($1 ~ /^NIO/) http += cpu; else loop += cpu }
        END { printf "%.3f %.3f\n", loop, http }'
}
before=$(thread_cpu)

echo "single-stream TCP through an encrypted p2p tunnel, $SECONDS_PER_RUN s per run, $ROUNDS rounds of off/on,"
echo "scraping /metrics, /status, /history and the socket $SCRAPES_PER_SECOND times a second each when on; $(nproc) cores"
for cc in cubic bbr; do
    off=() on=()
    for round in $(seq "$ROUNDS"); do
        # Which goes first alternates, so a drift of the machine does not favour one.
        if [ $((round % 2)) -eq 1 ]; then
            off+=("$(measure off $cc)"); on+=("$(measure on $cc)")
        else
            on+=("$(measure on $cc)"); off+=("$(measure off $cc)")
        fi
    done
    python3 - "$cc" "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
cc, off, on = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
ratios = sorted(b / a for a, b in zip(off, on))
runs = lambda xs: " ".join(f"{x / 1e9:.2f}" for x in xs)
print(f"{cc:6} off median {statistics.median(off) / 1e9:5.2f} Gbit/s [{runs(off)}]")
print(f"{'':6} on  median {statistics.median(on) / 1e9:5.2f} Gbit/s [{runs(on)}]")
print(f"{'':6} on/off per round: median x{statistics.median(ratios):.3f} (from x{ratios[0]:.3f} to x{ratios[-1]:.3f});"
      f" ratio of medians x{statistics.median(on) / statistics.median(off):.3f}")
PY
done
read -r loop0 http0 <<< "$before"; read -r loop1 http1 <<< "$(thread_cpu)"
[ "${4:-}" = control ] && echo "control run: both pairs with monitoring off"
python3 -c "l=$loop1-$loop0; h=$http1-$http0; print(f'monitored tunnels (both ends), CPU over the whole run: loop threads {l:.2f} s, HTTP threads {h:.3f} s = {100*h/l:.2f} % of the loops')"
