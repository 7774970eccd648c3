#!/usr/bin/env bash
# Can the l2tp-broker profile replace the tunneldigger broker for 10 000 community
# routers on a 2-core VM? One run, on this machine, in a network namespace of its
# own, with td-loadgen playing the clients over loopback:
#   A  CLIENTS clients at RATE/s (or RATE=burst): time until all are established;
#      hold HOLD s with keepalives every KEEPALIVE s: the broker's CPU over the hold,
#      descriptors and RSS per tunnel, TAP devices; then SIGTERM: time until every
#      client got its ERROR and until no TAP device is left
#   B  fresh broker, BURST_CLIENTS clients all at once, 3 s retransmits: how many are
#      established within 1 s / 5 s / 15 s
#   C  fresh broker with a trivial session.up hook, HOOK_CLIENTS clients: time until
#      the hook has run for all of them, and the handshake time in the same run
# Prints a table of each figure beside its target and the command lines used. It
# measures, it does not judge: the exit status only says whether the run worked.
#   sudo Benchmarks/l2tp-scale.sh
#   sudo CLIENTS=1000 HOLD=10 Benchmarks/l2tp-scale.sh        (a quick run)
# Knobs (environment): CLIENTS (10000), RATE (4000 or burst), HOLD (30),
# KEEPALIVE (5), RETRY (3), BURST_CLIENTS (CLIENTS*2/5), HOOK_CLIENTS (CLIENTS),
# SCENARIOS ("A B C"), PORT (8942), TD_LOADGEN (path of td-loadgen),
# WAKEUP_COALESCING (the broker's wakeup-coalescing in ms; unset: its default).
# Needs: swift build -c release --product tunneld; swift build -c release --product td-loadgen
cd "$(dirname "$0")/.." || exit 1
source Benchmarks/lib.sh   # BIN, WORK, bench_setup (namespace + cleanup trap); set -euo pipefail

CLIENTS=${CLIENTS:-10000}
RATE=${RATE:-4000}
HOLD=${HOLD:-30}
KEEPALIVE=${KEEPALIVE:-5}
RETRY=${RETRY:-3}
BURST_CLIENTS=${BURST_CLIENTS:-$((CLIENTS * 2 / 5))}
HOOK_CLIENTS=${HOOK_CLIENTS:-$CLIENTS}
SCENARIOS=${SCENARIOS:-A B C}
PORT=${PORT:-8942}
WAKEUP_COALESCING=${WAKEUP_COALESCING:-}   # ms; empty: the broker's default
MOST=$((CLIENTS > HOOK_CLIENTS ? CLIENTS : HOOK_CLIENTS)); MOST=$((MOST > BURST_CLIENTS ? MOST : BURST_CLIENTS))
MAX_TUNNELS=$((MOST + MOST / 5 > 12000 ? MOST + MOST / 5 : 12000))   # the brief's 12000, or 20 % headroom
SHUTDOWN_WAIT=60   # how long the clients wait for their ERROR after SIGTERM
HOOK_WAIT=120      # how long scenario C waits for the hook lines

LOADGEN=${TD_LOADGEN:-}
if [ -z "$LOADGEN" ]; then
    for candidate in .build/release/td-loadgen .build/debug/td-loadgen; do
        [ -x "$candidate" ] && { LOADGEN=$PWD/$candidate; break; }
    done
fi
if [ -z "$LOADGEN" ] || [ ! -x "$LOADGEN" ]; then
    echo "build the load generator first: swift build -c release --product td-loadgen" >&2; exit 1
fi
if [ "$RATE" = burst ]; then START=(--burst); else START=(--rate "$RATE"); fi
BROKER_ADDR=127.0.0.1:$PORT

# 10 000 tunnels need more than the usual 1024 descriptors. td-loadgen raises its own
# soft limit; the broker may not, so it gets the hard limit from here.
ulimit -n "$(ulimit -Hn)"

NS=l2tp-scale-$$
bench_setup "$NS"
BROKER_PID=
COMMANDS=()
on_exit() {
    local status=$?
    if [ $status -ne 0 ]; then
        for log in "$WORK"/*.log "$WORK"/*.err; do
            [ -s "$log" ] && { echo "--- last lines of $log" >&2; tail -n 20 "$log" >&2; }
        done
    fi
    bench_cleanup
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ helpers
now() { date +%s.%N; }
calc() { awk "BEGIN { x = $1; printf \"%.${2:-3}f\", x }"; }
# kv FILE KEY -> the value of one key=value line of td-loadgen's report, or n/a
kv() { local v; v=$(sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -n 1); echo "${v:-n/a}"; }
# utime + stime of the whole process (all threads), in clock ticks; comm may hold spaces
cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" | wc -l; }
tap_count() { ip -n "$NS" -o link show type tun 2>/dev/null | wc -l; }
alive() { kill -0 "$1" 2>/dev/null; }

# wait_event FILE EVENT SECONDS PID: until td-loadgen (PID) logs event=EVENT; 1 if it
# ends first or the time runs out
wait_event() {
    local deadline; deadline=$(calc "$(now) + $3")
    until grep -q "event=$2 " "$1" 2>/dev/null; do
        alive "$4" || grep -q "event=$2 " "$1" 2>/dev/null || return 1
        [ "$(calc "$(now) > $deadline" 0)" = 1 ] && return 1
        sleep 0.05
    done
}
event_wall() { sed -n "s/.*event=$2 .* wall=//p" "$1" | head -n 1; }

# site NAME [HOOK]: the broker's site file. Each name is unique to this run, as the
# status socket's default path derives from it.
site() {
    {
        echo "profile: l2tp-broker"
        echo "links:"
        echo "  - { name: td, bind: \"$BROKER_ADDR\" }"
        echo "sessions:"
        echo "  max-tunnels: $MAX_TUNNELS"
        echo "  tunnel-id-base: 100"
        echo "  pmtu: 1446            # fixed PMTU (0 = discovery)"
        echo "  connection-rate-limit: 0"
        echo "  data-plane: userspace"
        if [ -n "$WAKEUP_COALESCING" ]; then echo "  wakeup-coalescing: $WAKEUP_COALESCING"; fi
        if [ -n "${2:-}" ]; then
            echo "  session.up: $2"
        fi
    } > "$WORK/$1.yaml"
}

# start_broker NAME [HOOK]: a fresh broker; returns once it answers a COOKIE
start_broker() {
    local name=$NS-$1
    site "$name" "${2:-}"
    ip netns exec "$NS" "$BIN" run "$WORK/$name.yaml" 2>"$WORK/$1-broker.log" &
    BROKER_PID=$!
    COMMANDS+=("$1: ip netns exec $NS $BIN run $WORK/$name.yaml")
    local tries=0
    # a COOKIE round trip creates no tunnel, so the probe leaves nothing behind
    until ip netns exec "$NS" "$LOADGEN" --broker "$BROKER_ADDR" --clients 1 --cookie-only \
            --retry 0.2 --timeout 0.5 >/dev/null 2>&1; do
        alive "$BROKER_PID" || { echo "scenario $1: the broker exited at start-up" >&2; exit 1; }
        tries=$((tries + 1))
        [ $tries -lt 60 ] || { echo "scenario $1: the broker does not answer on $BROKER_ADDR" >&2; exit 1; }
    done
    # ip netns exec execs the command, so the pid is the broker's own; check anyway
    if [ "$(cat "/proc/$BROKER_PID/comm" 2>/dev/null)" != tunneld ]; then
        BROKER_PID=$(pgrep -f -n "$BIN run $WORK/$name.yaml")
    fi
}

# stop_broker: SIGTERM, then wait (60 s at most) for it to exit and its devices to go
stop_broker() {
    [ -n "$BROKER_PID" ] || return 0
    if alive "$BROKER_PID"; then
        kill -TERM "$BROKER_PID"
        for _ in $(seq 600); do alive "$BROKER_PID" || break; sleep 0.1; done
        alive "$BROKER_PID" && { echo "the broker ignored SIGTERM for 60 s; killing it" >&2; kill -KILL "$BROKER_PID"; }
    fi
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=
    for _ in $(seq 100); do [ "$(tap_count)" -eq 0 ] && break; sleep 0.1; done
}

# loadgen NAME ARGS...: td-loadgen in the namespace, in the background (pid in LOADGEN_PID)
loadgen() {
    local name=$1; shift
    COMMANDS+=("$name: ip netns exec $NS $LOADGEN --broker $BROKER_ADDR $*")
    ip netns exec "$NS" "$LOADGEN" --broker "$BROKER_ADDR" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    LOADGEN_PID=$!
}

# ---------------------------------------------------------------- scenario A
A_TIME=n/a A_CPU=n/a A_FD=n/a A_FD_DELTA=n/a A_RSS=n/a A_TAPS=n/a A_SHUT_ERR=n/a A_SHUT_TAP=n/a
A_SHUT_EXIT=n/a A_HANDSHAKE_CPU=n/a A_EST=n/a A_HOLD_S=n/a
scenario_a() {
    echo "A: $CLIENTS clients (${START[*]}), hold ${HOLD}s, then SIGTERM" >&2
    start_broker A
    local pid=$BROKER_PID hz; hz=$(getconf CLK_TCK)
    local rss0 fd0 c0 c1 c2 t1 t2
    rss0=$(rss_kb "$pid"); fd0=$(fd_count "$pid"); c0=$(cpu_ticks "$pid")
    rm -f "$WORK/mark"
    loadgen A --clients "$CLIENTS" "${START[@]}" --retry "$RETRY" --keepalive "$KEEPALIVE" \
        --hold "$HOLD" --await-shutdown "$SHUTDOWN_WAIT" --mark "$WORK/mark"
    local lg=$LOADGEN_PID budget=60
    [ "$RATE" = burst ] || budget=$(calc "$CLIENTS / $RATE + 60" 0)
    if wait_event "$WORK/A.err" all_established "$budget" "$lg"; then
        t1=$(now); c1=$(cpu_ticks "$pid")
        A_HANDSHAKE_CPU=$(calc "($c1 - $c0) / $hz" 2)
        if wait_event "$WORK/A.err" awaiting_shutdown "$((HOLD + 30))" "$lg"; then
            t2=$(now); c2=$(cpu_ticks "$pid")
            A_HOLD_S=$(calc "$t2 - $t1" 1)
            A_CPU=$(calc "100 * ($c2 - $c1) / $hz / ($t2 - $t1)" 2)
        fi
        local rss1 fd1
        rss1=$(rss_kb "$pid"); fd1=$(fd_count "$pid"); A_TAPS=$(tap_count)
        A_FD=$(calc "$fd1 / $CLIENTS" 3)
        A_FD_DELTA=$(calc "($fd1 - $fd0) / $CLIENTS" 3)
        A_RSS=$(calc "($rss1 - $rss0) / $CLIENTS" 2)
        echo "A: broker fds $fd0 -> $fd1, VmRSS $rss0 -> $rss1 KB, $A_TAPS TAP devices" >&2
    else
        echo "A: not every client was established; no hold figures" >&2
    fi
    # Shutdown: the mark's mtime is the start instant for the clients' figure.
    local ts taps_gone=
    touch "$WORK/mark"; ts=$(now)
    kill -TERM "$pid"
    for _ in $(seq 1200); do
        if [ -z "$taps_gone" ] && [ "$(tap_count)" -eq 0 ]; then taps_gone=$(now); fi
        [ -n "$taps_gone" ] && ! alive "$pid" && break
        sleep 0.05
    done
    [ -n "$taps_gone" ] && A_SHUT_TAP=$(calc "$taps_gone - $ts" 2)
    alive "$pid" || A_SHUT_EXIT=$(calc "$(now) - $ts" 1)   # upper bound: polled with the TAP count
    stop_broker
    wait "$lg" || true
    A_TIME=$(kv "$WORK/A.out" time_to_all)
    A_EST=$(kv "$WORK/A.out" established)
    A_SHUT_ERR=$(kv "$WORK/A.out" shutdown_seconds)
}

# ---------------------------------------------------------------- scenario B
scenario_b() {
    echo "B: $BURST_CLIENTS clients in one burst, ${RETRY}s retransmits" >&2
    start_broker B
    loadgen B --clients "$BURST_CLIENTS" --burst --retry "$RETRY" --keepalive "$KEEPALIVE" --timeout 30
    wait "$LOADGEN_PID" || true
    stop_broker
}

# ---------------------------------------------------------------- scenario C
C_HOOK=n/a C_LINES=0
scenario_c() {
    echo "C: $HOOK_CLIENTS clients (${START[*]}) with a session.up hook" >&2
    local lines=$WORK/hook.lines
    printf '#!/bin/sh\necho "$@" >> %s\n' "$lines" > "$WORK/up.sh"
    chmod +x "$WORK/up.sh"
    : > "$lines"
    start_broker C "$WORK/up.sh"
    loadgen C --clients "$HOOK_CLIENTS" "${START[@]}" --retry "$RETRY" --keepalive "$KEEPALIVE" --hold "$HOOK_WAIT"
    local lg=$LOADGEN_PID start
    wait_event "$WORK/C.err" start 10 "$lg" || { echo "C: the load generator did not start" >&2; return; }
    start=$(event_wall "$WORK/C.err" start)
    local deadline; deadline=$(calc "$start + $HOOK_WAIT" 0)
    while :; do
        C_LINES=$(wc -l < "$lines")
        if [ "$C_LINES" -ge "$HOOK_CLIENTS" ]; then C_HOOK=$(calc "$(now) - $start" 2); break; fi
        [ "$(calc "$(now) > $deadline" 0)" = 1 ] && break
        alive "$lg" || break
        sleep 0.1
    done
    # the clients' report (handshake time) comes out when they are told to stop
    kill -TERM "$lg" 2>/dev/null || true
    wait "$lg" || true
    stop_broker
}

for s in $SCENARIOS; do
    case $s in
        A) scenario_a ;; B) scenario_b ;; C) scenario_c ;;
        *) echo "unknown scenario $s (A, B or C)" >&2; exit 1 ;;
    esac
done

# ------------------------------------------------------------------ summary
ROWS=()
row() { ROWS+=("$(printf '%-52s %14s   %-11s %s' "$1" "$2" "$3" "${4:-}")"); }
# within VALUE OP LIMIT -> "yes"/"no"/"" for the last column (information, not a verdict)
within() { [ "$1" = n/a ] || [ "$1" = -1.000 ] && return 0; awk "BEGIN { exit !($1 $2 $3) }" && echo yes || echo no; }

case " $SCENARIOS " in *" A "*)
    row "A: time to establish all $CLIENTS (${START[*]})" "$A_TIME s" "<= 5 s" "$(within "$A_TIME" '<=' 5)"
    [ "$A_EST" = "$CLIENTS" ] || row "A: established" "$A_EST of $CLIENTS" "all"
    row "A: broker CPU during the handshake" "$A_HANDSHAKE_CPU s" ""
    row "A: broker CPU over the ${A_HOLD_S}s hold (keepalive ${KEEPALIVE}s)" "$A_CPU %" "<= 2 %" "$(within "$A_CPU" '<=' 2)"
    row "A: descriptors per tunnel (all / added)" "$A_FD / $A_FD_DELTA" "<= 1.05" "$(within "$A_FD" '<=' 1.05)"
    row "A: RSS growth per tunnel" "$A_RSS KB" "<= 16 KB" "$(within "$A_RSS" '<=' 16)"
    row "A: TAP devices while holding" "$A_TAPS" "= $CLIENTS"
    row "A: SIGTERM -> last client got its ERROR" "$A_SHUT_ERR s" "<= 5 s" "$(within "$A_SHUT_ERR" '<=' 5)"
    row "A: SIGTERM -> no TAP device left" "$A_SHUT_TAP s" "<= 5 s" "$(within "$A_SHUT_TAP" '<=' 5)"
    row "A: SIGTERM -> broker process gone (polled)" "$A_SHUT_EXIT s" ""
    row "A: td-loadgen's own CPU while holding" "$(kv "$WORK/A.out" loadgen_cpu_hold_percent) %" "" ;;
esac
case " $SCENARIOS " in *" B "*)
    B=$WORK/B.out
    row "B: burst of $BURST_CLIENTS: established within 5 s" "$(kv "$B" established_by_5s) of $BURST_CLIENTS" "all <= 5 s" \
        "$([ "$(kv "$B" established_by_5s)" = "$BURST_CLIENTS" ] && echo yes || echo no)"
    row "B: established within 1 s / 15 s" "$(kv "$B" established_by_1s) / $(kv "$B" established_by_15s)" ""
    row "B: time to establish all; retransmits; refused" "$(kv "$B" time_to_all) s; $(kv "$B" retries); $(kv "$B" refused)" "" ;;
esac
case " $SCENARIOS " in *" C "*)
    row "C: session.up hook run for all $HOOK_CLIENTS" "$C_HOOK s" "<= 20 s" "$(within "$C_HOOK" '<=' 20)"
    [ "$C_LINES" -ge "$HOOK_CLIENTS" ] || row "C: hook lines written" "$C_LINES of $HOOK_CLIENTS" ""
    row "C: time to establish all, same run" "$(kv "$WORK/C.out" time_to_all) s" "<= 5 s" "$(within "$(kv "$WORK/C.out" time_to_all)" '<=' 5)" ;;
esac

echo
echo "l2tp-broker scale, $(nproc) cores, $(uname -r), loopback in namespace $NS"
printf '%-52s %14s   %-11s %s\n' figure measured target within
printf '%s\n' "${ROWS[@]}"
echo
echo "command lines:"
printf '  %s\n' "${COMMANDS[@]}"
for s in A B C; do
    if [ -f "$WORK/$NS-$s.yaml" ]; then echo "site file of scenario $s:"; sed 's/^/  /' "$WORK/$NS-$s.yaml"; fi
done
for s in A B C; do
    if [ -f "$WORK/$s.out" ]; then echo "td-loadgen report, scenario $s:"; paste -sd ' ' "$WORK/$s.out" | fold -s -w 110 | sed 's/^/  /'; fi
done
