#!/usr/bin/env bash
# Soak: nothing lost, nothing leaked (issue 15, point 4). Two encrypted tunnels run at once
# between two namespaces for MINUTES:
#   bonding   bonding-client → bonding-server over two uplinks (tbf 20 and 10 Mbit/s)
#   p2p       p2p → p2p over one link (tbf 10 Mbit/s)
# each carrying one long-lived TCP stream (iperf3, cubic, paced below the slowest uplink so
# that no queue ever drops a ping: every loss is then the tunnel's) and a ping every 0.2 s.
# Meanwhile one bonding uplink at a time goes down for 3 s (alternating, 3 s apart), the p2p
# link is blackholed for 2 s every 20 s, keys are renewed every 10 s (rekey-after), and all
# four daemons get SIGHUP every 30 s. Every second each daemon's RSS, descriptors, timers
# and sessions go to samples.csv. Benchmarks/soak-sample.py samples and judges; it fails
# the run (exit 1, one line per reason) on growth without bound, a broken or stalled TCP
# stream, a ping lost outside a cut window, a dead daemon or a reload that did not count.
#   sudo Benchmarks/soak.sh MINUTES          (fractional is fine: 1 is the CI version)
# A failed run keeps its work folder (samples, logs, ping and iperf3 output) and names it;
# SOAK_KEEP=1 keeps it after a run that passed too.
cd "$(dirname "$0")/.." || exit 2
[[ "${1:-}" =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "usage: $0 MINUTES   (e.g. 1, 0.5, 30)" >&2; exit 2; }
source Benchmarks/lib.sh
DURATION=$(python3 -c "print(max(30, round($1 * 60)))")   # seconds of cuts, rekeys and reloads
GRACE=4                    # after the last cut: its window closes before pings and TCP stop
BOND_CUT=3 BOND_GAP=3      # an uplink is down this long, then both are up this long
P2P_CUT=2 P2P_GAP=18       # TCP's backed-off retransmission (0.2, 0.6, 1.4, 3 s) still comes 1 s after it
RELOAD_EVERY=30
BOND_RATE=6M P2P_RATE=4M   # TCP pacing: below the slower uplink (10 Mbit/s) with the tunnel's overhead
LOG_LEVEL=${SOAK_LOG_LEVEL:-debug}   # debug logs each renewed key: that is how rekeys are counted
A=tsoak-a B=tsoak-b        # A: the site / p2p initiator side, B: the hub / p2p responder side
SAMPLER=Benchmarks/soak-sample.py
JOBS=()                    # background jobs outside the namespaces, killed on exit
TRAFFIC=() SERVERS=()      # pings and iperf3 clients: the run ends when they have; iperf3 servers

# Everything in the namespaces dies with them; the host-side jobs (sampler, cut and reload
# loops) are killed by their ids. The work folder stays only when the run failed.
soak_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for job in "${JOBS[@]}"; do kill "$job" 2>/dev/null || true; done
    for ns in $A $B; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
    sleep 0.3
    for ns in $A $B; do ip netns del "$ns" 2>/dev/null || true; done
    if [ "$rc" = 1 ] || [ -n "${SOAK_KEEP:-}" ]; then echo "soak: work folder kept: $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}

now() { date +%s.%N; }
event() { echo "$(now) $*" >> "$WORK/events.log"; }           # read by the judge: cut windows, reloads
ms() { echo $(( $(date +%s%N) / 1000000 )); }
before_end() { (( $(ms) + $1 * 1000 < END_MS )); }           # an action of $1 s still fits
pause() {  # SECONDS, but not past the end: the traffic stops GRACE after it
    local want=$(( $1 * 1000 )) left=$(( END_MS - $(ms) ))
    (( left < want )) && want=$left
    if (( want > 0 )); then sleep "$(( want / 1000 )).$(printf %03d $(( want % 1000 )))"; fi
}

setup_network() {
    for ns in $A $B; do ip netns del "$ns" 2>/dev/null || true; done   # a killed earlier run's
    bench_setup $A $B
    trap soak_cleanup EXIT; trap 'exit 130' INT TERM
    bench_veth $A $B tsoak1 1; bench_veth $A $B tsoak2 2; bench_veth $A $B tsoak3 3
    shape tsoak1 20mbit; shape tsoak2 10mbit; shape tsoak3 10mbit
}

shape() {  # DEVICE RATE: both directions of the veth pair
    ip netns exec $A tc qdisc add dev "$1" root tbf rate "$2" burst 32kb latency 50ms
    ip netns exec $B tc qdisc add dev "$1b" root tbf rate "$2" burst 32kb latency 50ms
}

write_configs() {
    local crypto="rekey-after: 10s" bond_links="" hub_links=""
    for n in 1 2; do
        bond_links+="  - { name: up$n, bind: 10.201.$n.1:5091, remote: 10.201.$n.2:5091 }"$'\n'
        hub_links+="  - { name: hub$n, bind: 10.201.$n.2:5091 }"$'\n'
    done
    config bond-site bonding-client "soakbond 10.98.0.1/30" "$bond_links" "private-key-file: a.key, peer-public-key: \"$PB\", $crypto"
    config bond-hub bonding-server "soakbond 10.98.0.2/30" "$hub_links" "private-key-file: b.key, peers: [\"site=$PA\"], $crypto"
    config p2p-a p2p "soakp2p 10.98.1.1/30" "  - { name: wan, bind: 10.201.3.1:5093, remote: 10.201.3.2:5093 }" \
        "private-key-file: a.key, peer-public-key: \"$PB\", $crypto"
    config p2p-b p2p "soakp2p 10.98.1.2/30" "  - { name: wan, bind: 10.201.3.2:5093, remote: 10.201.3.1:5093 }" \
        "private-key-file: b.key, peer-public-key: \"$PA\", $crypto"
}

config() {  # NAME PROFILE "DEVICE ADDRESS" LINKS CRYPTO-SETTINGS
    local device; read -r -a device <<< "$3"
    printf 'profile: %s\nlog: %s\ndevice: { name: %s, address: %s }\nlinks:\n%s\nstatus: { socket: %s }\nsettings: { crypto.aead: { %s } }\n' \
        "$2" "$LOG_LEVEL" "${device[0]}" "${device[1]}" "$4" "$WORK/$1.sock" "$5" > "$WORK/$1.yaml"
}

declare -A PID
start_daemons() {
    local name
    for name in bond-hub p2p-b; do ip netns exec $B "$BIN" run "$WORK/$name.yaml" 2>"$WORK/$name.log" & PID[$name]=$!; done
    for name in bond-site p2p-a; do ip netns exec $A "$BIN" run "$WORK/$name.yaml" 2>"$WORK/$name.log" & PID[$name]=$!; done
    sleep 1.5
    bench_wait_up $A 10.98.0.2 10.98.1.2
}

start_sampler() {
    python3 $SAMPLER sample "$WORK/samples.csv" \
        "bond-site=${PID[bond-site]}:$WORK/bond-site.sock" "bond-hub=${PID[bond-hub]}:$WORK/bond-hub.sock" \
        "p2p-a=${PID[p2p-a]}:$WORK/p2p-a.sock" "p2p-b=${PID[p2p-b]}:$WORK/p2p-b.sock" &
    JOBS+=($!)
}

# One TCP stream and one ping per tunnel, for the whole run and the grace after it. The
# iperf3 server reports what it received every 0.5 s: the judge looks for stalls in it.
start_traffic() {  # TUNNEL ADDRESS PORT RATE
    ip netns exec $B iperf3 -s -1 -p "$3" -i 0.5 -J > "$WORK/tcp-$1-server.json" 2>"$WORK/tcp-$1-server.err" &
    SERVERS+=($!)
    sleep 0.3
    ( ip netns exec $A iperf3 -c "$2" -p "$3" -t $((DURATION + GRACE)) -C cubic --fq-rate "$4" -J \
        > "$WORK/tcp-$1-client.json" 2>"$WORK/tcp-$1-client.err"; echo $? > "$WORK/tcp-$1.rc" ) &
    TRAFFIC+=($!)
    ip netns exec $A ping -D -i 0.2 -w $((DURATION + GRACE)) "$2" > "$WORK/ping-$1.log" 2>&1 &
    TRAFFIC+=($!)
}

# Bonding: an uplink is set down at the site (the hub's end loses carrier: a cable pulled,
# a modem dead), the other carries everything; then both are up, and the other one goes.
cut_bonding_uplinks() {
    local n=1
    pause 2
    while before_end $BOND_CUT; do
        event bond-cut tsoak$n; ip -n $A link set tsoak$n down
        sleep $BOND_CUT
        ip -n $A link set tsoak$n up; event bond-restore tsoak$n
        pause $BOND_GAP
        n=$((3 - n))
    done
}

# p2p: its only link is blackholed (interfaces stay up, packets vanish: an ISP outage).
# Without netfilter or tc actions here, each end's neighbour entry for the other is pointed
# at a MAC address nobody has; deleting the entries lets ARP find the real one again.
cut_p2p_link() {
    pause 8
    while before_end $P2P_CUT; do
        event p2p-cut tsoak3
        ip -n $A neigh replace 10.201.3.2 lladdr 02:00:00:00:50:4b nud permanent dev tsoak3
        ip -n $B neigh replace 10.201.3.1 lladdr 02:00:00:00:50:4b nud permanent dev tsoak3b
        sleep $P2P_CUT
        ip -n $A neigh del 10.201.3.2 dev tsoak3; ip -n $B neigh del 10.201.3.1 dev tsoak3b
        event p2p-restore tsoak3
        pause $P2P_GAP
    done
}

# The files are unchanged: a reload still re-reads and re-applies them, and counts in
# daemon.reloads only when it took effect.
reload_daemons() {
    pause 15
    while before_end 5; do
        event hup all; kill -HUP "${PID[@]}"
        pause $RELOAD_EVERY
    done
}

stop_late() {  # SECONDS PID...: wait that long (past the end of the traffic) for them, then kill them
    local deadline=$(( END_MS + (GRACE + $1) * 1000 )) pid
    for pid in "${@:2}"; do
        while kill -0 "$pid" 2>/dev/null && (( $(ms) < deadline )); do sleep 0.2; done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

run_chaos() {
    local loops=()
    cut_bonding_uplinks & loops+=($!)
    cut_p2p_link & loops+=($!)
    reload_daemons & loops+=($!)
    JOBS+=("${loops[@]}")
    wait "${loops[@]}"
}

setup_network
bench_keys
write_configs
start_daemons
start_sampler
END_MS=$(( $(ms) + DURATION * 1000 ))   # cuts and reloads stop here; the traffic GRACE later
event start
start_traffic bond 10.98.0.2 5201 $BOND_RATE
start_traffic p2p 10.98.1.2 5202 $P2P_RATE
echo "soak: $DURATION s, bonding (20 + 10 Mbit/s uplinks) and p2p (10 Mbit/s), work folder $WORK"
run_chaos
event chaos-end
# Pings end by their deadline, iperf3 after its -t (GRACE after the chaos). An iperf3 whose
# tunnel died would wait minutes for its results: whatever still runs 15 s later is stopped
# (the judge sees the missing results). Then a last sample, and the verdict.
stop_late 15 "${TRAFFIC[@]}"
stop_late 17 "${SERVERS[@]}"
event end
kill "${JOBS[0]}"; wait "${JOBS[0]}" || true
python3 $SAMPLER judge "$WORK" "$DURATION" "$(nproc)" || exit 1
