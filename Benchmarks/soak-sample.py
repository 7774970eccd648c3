#!/usr/bin/env python3
"""Benchmarks/soak.sh's sampler and judge.

  soak-sample.py sample CSV NAME=PID:SOCKET...   every second until SIGTERM, one row per daemon:
      RSS (VmRSS), open descriptors, and from its status socket (the document `tunneld status
      SOCKET --json` prints) daemon.timers, the number of sessions and daemon.reloads.
  soak-sample.py judge WORK DURATION CORES       reads WORK's samples.csv, events.log, ping and
      iperf3 output and daemon logs; prints the report and exits 1 if the run failed.
"""
import csv
import json
import os
import re
import signal
import socket
import sys
import time

COLUMNS = ["time", "daemon", "pid", "state", "rss_kb", "fds", "timers", "sessions", "reloads"]
DAEMONS = ["bond-site", "bond-hub", "p2p-a", "p2p-b"]
TUNNEL_OF = {"bond-site": "bond", "bond-hub": "bond", "p2p-a": "p2p", "p2p-b": "p2p"}
# A ping may be lost from a cut until this long after its restore: bonding's failover takes
# 0.3-0.6 s and a restored uplink must answer three probes; the p2p tunnel has no other link.
WINDOW_AFTER = {"bond": 2.0, "p2p": 3.0}
WINDOW_BEFORE = 0.05        # the cut is logged just before the command that makes it
# The longest a TCP stream may receive nothing. Bonding keeps one uplink: failover and one
# retransmission. p2p loses its only link for 2 s, and TCP's backed-off retransmission
# timer (0.2, 0.4, 0.8, 1.6 s) brings it back about 3 s after the cut: the cut window.
STALL_LIMIT = {"bond": 2.0, "p2p": 5.0}
# Growth allowed from the middle third of the run to the last one: allocator and kernel
# noise, not a trend.
SLACK = {"rss_kb": 3 * 1024, "fds": 3, "timers": 5}


# ---------------------------------------------------------------- sampling

def status_document(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data)


def proc_figures(pid):
    """(state, rss_kb, fds); state is 'dead' when the process is gone or a zombie."""
    try:
        fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
        if fields["State"].strip().startswith("Z"):
            return "dead", "", ""
        return "ok", int(fields["VmRSS"].split()[0]), len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, KeyError):
        return "dead", "", ""


def sample_row(name, pid, path):
    state, rss, fds = proc_figures(pid)   # descriptors first: the status connection is one of them
    timers = sessions = reloads = ""
    if state == "ok":
        try:
            doc = status_document(path)
            timers = doc["daemon"].get("timers", "")
            sessions = len(doc.get("sessions", []))
            reloads = doc["daemon"]["reloads"]
        except (OSError, ValueError, KeyError):
            state = "no-status"
    return [f"{time.time():.3f}", name, pid, state, rss, fds, timers, sessions, reloads]


def sample(out, specs):
    daemons = []
    for spec in specs:
        name, rest = spec.split("=", 1)
        pid, path = rest.split(":", 1)
        daemons.append((name, int(pid), path))
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        tick = time.time()
        while not stopping:
            for daemon in daemons:
                writer.writerow(sample_row(*daemon))
            f.flush()
            tick += 1
            time.sleep(max(0.0, tick - time.time()))
        for daemon in daemons:   # the last row: the state at the end, after the traffic stopped
            writer.writerow(sample_row(*daemon))


# ---------------------------------------------------------------- judging

class Verdict:
    def __init__(self):
        self.failures = []

    def fail(self, reason):
        self.failures.append(reason)


def read_events(work):
    events = []
    for line in open(os.path.join(work, "events.log")):
        stamp, kind, *rest = line.split()
        events.append((float(stamp), kind, rest[0] if rest else ""))
    return events


def cut_windows(events, tunnel, run_end):
    """[(start, end)] in which pings of the tunnel may be lost, and the number of cuts."""
    windows, cut_at = [], None
    for stamp, kind, _ in events:
        if kind == f"{tunnel}-cut":
            cut_at = stamp
        elif kind == f"{tunnel}-restore" and cut_at is not None:
            windows.append((cut_at - WINDOW_BEFORE, stamp + WINDOW_AFTER[tunnel]))
            cut_at = None
    if cut_at is not None:       # never restored: should not happen, but then it lasts to the end
        windows.append((cut_at - WINDOW_BEFORE, run_end))
    return windows


PING_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+) .*time=([\d.]+) ms")
PING_SUMMARY = re.compile(r"(\d+) packets transmitted")


def ping_losses(path):
    """(transmitted, {lost seq: estimated send time}). A reply's send time is its stamp less its
    round trip; a lost ping's is interpolated between its answered neighbours."""
    sent_at, transmitted = {}, None
    for line in open(path):
        if m := PING_REPLY.match(line):
            seq = int(m.group(2))
            sent_at.setdefault(seq, float(m.group(1)) - float(m.group(3)) / 1000)
        elif m := PING_SUMMARY.search(line):
            transmitted = int(m.group(1))
    if transmitted is None:
        transmitted = max(sent_at, default=0)
    answered = sorted(sent_at)
    lost = {}
    for seq in range(1, transmitted + 1):
        if seq in sent_at:
            continue
        below = max((s for s in answered if s < seq), default=None)
        above = min((s for s in answered if s > seq), default=None)
        if below is not None and above is not None:
            t = sent_at[below] + (sent_at[above] - sent_at[below]) * (seq - below) / (above - below)
        elif below is not None:
            t = sent_at[below] + 0.2 * (seq - below)
        elif above is not None:
            t = sent_at[above] - 0.2 * (above - seq)
        else:
            t = None
        lost[seq] = t
    return transmitted, lost


def judge_pings(work, tunnel, windows, verdict):
    transmitted, lost = ping_losses(os.path.join(work, f"ping-{tunnel}.log"))
    if transmitted == 0 or len(lost) == transmitted:
        verdict.fail(f"ping {tunnel}: no ping answered of {transmitted} sent")
        return f"{tunnel} sent {transmitted}, none answered"
    lost.pop(transmitted, None)   # the last one may have been in flight when ping's deadline came
    inside = sorted(seq for seq, t in lost.items() if any(a <= t <= b for a, b in windows))
    outside = sorted(seq for seq in lost if seq not in inside)
    if outside:
        first = min(outside)
        verdict.fail(f"ping {tunnel}: {len(outside)} lost outside cut windows "
                     f"(icmp_seq {', '.join(map(str, outside[:8]))}{' …' if len(outside) > 8 else ''}; "
                     f"the first sent at {time.strftime('%H:%M:%S', time.localtime(lost[first]))})")
    return f"{tunnel} sent {transmitted}, lost {len(inside)} in cut windows, {len(outside)} outside"


def judge_tcp(work, tunnel, verdict):
    def load(name):
        try:
            return json.load(open(os.path.join(work, f"tcp-{tunnel}-{name}.json")))
        except (OSError, ValueError):
            return {}
    client, server = load("client"), load("server")
    try:
        rc = int(open(os.path.join(work, f"tcp-{tunnel}.rc")).read())
    except (OSError, ValueError):
        rc = None
    if rc is None:
        verdict.fail(f"tcp {tunnel}: iperf3 client did not finish; stopped 15 s after the end of the run")
    elif rc != 0:
        verdict.fail(f"tcp {tunnel}: iperf3 client exited {rc}: {client.get('error', 'see tcp-' + tunnel + '-client.json')}")
    if "error" in server:
        verdict.fail(f"tcp {tunnel}: iperf3 server: {server['error']}")
    intervals = [i["sum"] for i in server.get("intervals", [])]
    stall = longest = 0.0
    for interval in intervals:
        stall = stall + interval["seconds"] if interval["bytes"] == 0 else 0.0
        longest = max(longest, stall)
    received = server.get("end", {}).get("sum_received", {})
    total, seconds = received.get("bytes", 0), received.get("seconds", 0) or 1
    if longest > STALL_LIMIT[tunnel]:
        verdict.fail(f"tcp {tunnel}: received nothing for {longest:.1f} s in a row (limit {STALL_LIMIT[tunnel]:.0f} s)")
    if not intervals:
        verdict.fail(f"tcp {tunnel}: the iperf3 server reported no intervals")
    return f"{tunnel} {total / 1e6:.1f} MB ({total * 8 / seconds / 1e6:.2f} Mbit/s), longest stall {longest:.1f} s"


def read_samples(work):
    rows = list(csv.DictReader(open(os.path.join(work, "samples.csv"))))
    for row in rows:
        row["time"] = float(row["time"])
        for key in ("rss_kb", "fds", "timers", "sessions", "reloads"):
            row[key] = int(row[key]) if row[key] not in ("", None) else None
    return rows


def judge_daemon(name, rows, start, warmup, chaos_end, hups, verdict):
    """Checks one daemon's samples; returns its line of the report."""
    mine = [r for r in rows if r["daemon"] == name]
    dead = [r for r in mine if r["state"] == "dead"]
    if dead:
        verdict.fail(f"{name}: died (gone at {dead[0]['time'] - start:.0f} s)")
    silent = [r for r in mine if r["state"] == "no-status"]
    if silent:
        verdict.fail(f"{name}: status socket did not answer within 2 s {len(silent)} times "
                     f"(first at {silent[0]['time'] - start:.0f} s)")
    ok = [r for r in mine if r["state"] == "ok"]
    if not ok:
        return f"{name:10} no samples"
    if ok[0]["timers"] is None:
        verdict.fail(f"{name}: status has no daemon.timers (is the binary older than the field?)")
    steady = [r for r in ok if start + warmup <= r["time"] <= chaos_end]
    first, last = (steady[0] if steady else ok[0]), ok[-1]
    third = (chaos_end - start - warmup) / 3
    middle = [r for r in steady if r["time"] < start + warmup + 2 * third and r["time"] >= start + warmup + third]
    final = [r for r in steady if r["time"] >= start + warmup + 2 * third]
    for key, slack in SLACK.items():
        a = max((r[key] for r in middle if r[key] is not None), default=None)
        b = max((r[key] for r in final if r[key] is not None), default=None)
        if a is not None and b is not None and b - a > slack:
            unit = " kB" if key == "rss_kb" else ""
            verdict.fail(f"{name}: {key} grows: max {a}{unit} in the middle third, {b}{unit} in the last "
                         f"(slack {slack}{unit})")
    if first["sessions"] != last["sessions"]:
        verdict.fail(f"{name}: {first['sessions']} sessions after warm-up, {last['sessions']} at the end")
    if last["reloads"] != hups:
        verdict.fail(f"{name}: {last['reloads']} reloads took effect of {hups} SIGHUPs")

    def figure(key, scale=1, fmt="{:.0f}"):
        values = [r[key] for r in ok if r[key] is not None]
        if not values:
            return "-"
        return "/".join(fmt.format(v / scale) for v in (first[key], last[key], max(values)))
    sessions = f"{first['sessions']}/{last['sessions']}/{min(r['sessions'] for r in ok)}"
    return (f"{name:10} {figure('rss_kb', 1024, '{:.1f}'):>16} {figure('fds'):>12} {figure('timers'):>12} "
            f"{sessions:>12} {last['reloads']}/{hups}")


def count_rekeys(work, name):
    """Renewed keys, which tunneld logs at debug level (the status does not count them)."""
    return open(os.path.join(work, f"{name}.log"), errors="replace").read().count("keys renewed")


def judge(work, duration, cores):
    verdict = Verdict()
    events = read_events(work)
    start = next(t for t, kind, _ in events if kind == "start")
    chaos_end = next((t for t, kind, _ in events if kind == "chaos-end"), events[-1][0])
    run_end = events[-1][0]
    hups = sum(1 for _, kind, _ in events if kind == "hup")
    warmup = max(10.0, duration / 10)
    rows = read_samples(work)

    print(f"soak: {(chaos_end - start) / 60:.1f} min of cuts, rekeys and reloads ({chaos_end - start:.0f} s, "
          f"then {run_end - chaos_end:.0f} s of quiet), {cores} cores, warm-up {warmup:.0f} s; samples in samples.csv")
    print("start = first sample after the warm-up, end = last sample (after the traffic stopped), max = whole run")
    print(f"{'daemon':10} {'RSS MiB s/e/max':>16} {'fds s/e/max':>12} {'timers s/e/max':>12} {'sess s/e/min':>12} reloads/SIGHUPs")
    for name in DAEMONS:
        print(judge_daemon(name, rows, start, warmup, chaos_end, hups, verdict))

    bond_windows = cut_windows(events, "bond", run_end)
    p2p_windows = cut_windows(events, "p2p", run_end)
    per_uplink = {}
    for _, kind, what in events:
        if kind == "bond-cut":
            per_uplink[what] = per_uplink.get(what, 0) + 1
    print(f"cuts: bonding {len(bond_windows)} ({', '.join(f'{k} {v}' for k, v in sorted(per_uplink.items()))}; "
          f"3 s down each), p2p {len(p2p_windows)} (2 s blackholed each)")

    expected = int((chaos_end + 4 - start) // 10)   # the traffic runs 4 s (GRACE) past the chaos
    observed = [f"{name} {count_rekeys(work, name)}" for name in DAEMONS]
    print(f"rekeys: keys renewed (from debug logs) {', '.join(observed)}; expected about {expected} per tunnel "
          f"(rekey-after 10 s)")
    for tunnel in ("bond", "p2p"):
        renewed = [count_rekeys(work, n) for n in DAEMONS if TUNNEL_OF[n] == tunnel]
        if max(renewed) and max(renewed) < expected / 2:
            verdict.fail(f"rekey {tunnel}: only {max(renewed)} renewals logged, about {expected} expected")

    refused = []
    for name in DAEMONS:
        for line in open(os.path.join(work, f"{name}.log"), errors="replace"):
            if "reload refused" in line or "takes a restart" in line:
                refused.append(f"{name}: {line.strip()}")
    for line in refused[:4]:
        verdict.fail(f"reload: {line}")
    print(f"reloads: {hups} SIGHUP{'s' if hups != 1 else ''} to each daemon, all counted in daemon.reloads unless a FAIL line says so")

    ping_bond = judge_pings(work, "bond", bond_windows, verdict)
    ping_p2p = judge_pings(work, "p2p", p2p_windows, verdict)
    print(f"pings (0.2 s): {ping_bond}; {ping_p2p}")
    print(f"tcp (cubic, paced): {judge_tcp(work, 'bond', verdict)}; {judge_tcp(work, 'p2p', verdict)}")

    for reason in verdict.failures:
        print(f"soak: FAIL {reason}")
    print("soak: FAILED" if verdict.failures else "soak: ok")
    return 1 if verdict.failures else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "sample":
        sample(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 5 and sys.argv[1] == "judge":
        sys.exit(judge(sys.argv[2], float(sys.argv[3]), sys.argv[4]))
    else:
        sys.exit(__doc__)
