#!/usr/bin/env python3
"""Load reports under load (issue 28): three replicas behind HAProxy (scripts/local-cluster
--balancer haproxy, deploy/haproxy/bullpen.cfg), each answering the agent check
(`lb.agent_port`), and one of them made slow from outside: SIGSTOPped 50 ms of every 100 ms,
a noisy neighbour. The same replicas behind three HAProxy front ends, asked in turn with the
same open-loop `bullpen loadtest`: round robin and least connections without the agents, and
round robin weighted by the agents (the file's own setting). Then a drain through the agent-weighted one: a replica SIGTERMed
under load.

Judged: the agent-weighted p99 at most half of round robin's (medians over the rounds), no
failed request through it; the agent says `drain` within a second of the SIGTERM and no
request fails through the drain.

    tests/lb.py                  # CI: one round of 8 s each, about a minute
    tests/lb.py --bench --write  # three rounds of 20 s; the figures appended to BENCHMARKS.md

Exit status: 0 every goal held, 1 one missed.
"""

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults import (DRAIN_SECS, Cluster, LoadRun, Redis, export_ids, free_port,  # noqa: E402
                    metric_value, wait_port, warm)
from ha import run_drill  # noqa: E402

SLOW = 1  # the replica a noisy neighbour slows
STOPPED_MS, PERIOD_MS = 50, 100
# The replicas' latency goal for their weight: their p95 is a few ms when nothing slows them.
SLO_P95_MS = 20
P99_GOAL = 0.5
DRAIN_GOAL_S = 1.0


class Noisy(threading.Thread):
    """Stops `pid` STOPPED_MS of every PERIOD_MS until `done` is set, then lets it run."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.done = pid, threading.Event()

    def run(self):
        try:
            while not self.done.is_set():
                signal_pid(self.pid, signal.SIGSTOP)
                time.sleep(STOPPED_MS / 1000)
                signal_pid(self.pid, signal.SIGCONT)
                self.done.wait((PERIOD_MS - STOPPED_MS) / 1000)
        finally:
            signal_pid(self.pid, signal.SIGCONT)


def signal_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class FrontEnd:
    """Another HAProxy before the cluster's replicas: the cluster's configuration with
    `balance STRATEGY`, without the agent check unless `agent`, and without the hashing of
    requests that name their game unless `affinity`."""

    def __init__(self, cluster, name, strategy, agent, affinity=True):
        conf = (cluster.dir / "haproxy.cfg").read_text()
        conf = re.sub(r"balance \w+", f"balance {strategy}", conf, count=1)
        if not affinity:
            conf = re.sub(r"\n *use_backend bullpen_by_game [^\n]*", "", conf)
        if not agent:
            conf = conf.replace(" agent-check agent-inter 1s", "")
            conf = re.sub(r" agent-port \d+", "", conf)
        self.port = free_port()
        conf = re.sub(r"bind 127\.0\.0\.1:\d+", f"bind 127.0.0.1:{self.port}", conf)
        # Beside the cluster's, so its errors/ folder is found.
        path = cluster.dir / f"haproxy-{name}.cfg"
        path.write_text(conf)
        self.process = subprocess.Popen(["haproxy", "-db", "-f", str(path)],
                                        stdout=open(cluster.dir / f"haproxy-{name}.log", "ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


def answered(ports):
    """Predictions each replica has answered so far."""
    return [metric_value(port, "bullpen_http_requests_total", ['route="/api/v1/predict"'])
            for port in ports]


def agent_line(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        return connection.makefile().read()


def compare(args, work, cluster, games, fronts, figures, notes):
    """Each front end in turn, `rounds` times, under the noisy neighbour: the medians of
    p99, failures and the slow replica's share by front end."""
    p = args.profile
    ports = cluster.ports()
    noisy = Noisy(cluster.pids()[SLOW])
    noisy.start()
    results = {name: [] for name in fronts}
    try:
        time.sleep(3)  # the agents' weights follow the slowdown
        for round_ in range(p["rounds"]):
            for name, url in fronts.items():
                before = answered(ports)
                load = LoadRun(args.bin, url, work, f"{name}-{round_}".replace(" ", "-"),
                               ["--rate", p["rate"], "--duration", f"{p['seconds']}s",
                                "--games", games])
                report = load.report()
                after = answered(ports)
                deltas = [a - b for a, b in zip(after, before)]
                share = deltas[SLOW] / sum(deltas) if sum(deltas) else None
                results[name].append((report["latency_ms"]["p99"], report["failed"], share))
    finally:
        noisy.done.set()
        noisy.join()
    medians = {}
    for name, runs in results.items():
        p99 = statistics.median(r[0] for r in runs)
        failed = sum(r[1] for r in runs)
        share = statistics.median(r[2] for r in runs if r[2] is not None)
        medians[name] = p99
        figures[f"{name}: p99 ms"] = round(p99, 1)
        figures[f"{name}: failed"] = failed
        figures[f"{name}: slow replica's share"] = f"{share:.0%}"
        notes.append(f"{name}, each round's p99 (ms): "
                     + ", ".join(f"{r[0]:.1f}" for r in runs))
    return medians, results


def drain(args, work, cluster, url, checks, figures):
    """A replica SIGTERMed under load through the agent-weighted front end."""
    p = args.profile
    agents = cluster.ports("agent_port")
    load = LoadRun(args.bin, url, work, "drain",
                   ["--rate", p["rate"], "--duration", f"{DRAIN_SECS + 6}s"])
    time.sleep(2)
    sent = time.monotonic()
    subprocess.Popen([sys.executable, str(Path(__file__).resolve().parent.parent / "scripts"
                                          / "local-cluster"), "--dir", str(cluster.dir),
                      "replica", "0", "term"], stdout=subprocess.DEVNULL)
    said = None
    while time.monotonic() - sent < DRAIN_SECS:
        try:
            if agent_line(agents[0]) == "drain\n":
                said = time.monotonic() - sent
                break
        except OSError:
            pass
        time.sleep(0.02)
    report = load.report()
    cluster.replica(0, "start")
    figures["drain: agent said drain after (s)"] = round(said, 2) if said is not None else None
    figures["drain: requests, failed"] = f"{report['requests']}, {report['failed']}"
    checks.append((f"the agent says drain within {DRAIN_GOAL_S:.0f} s of the SIGTERM",
                   said is not None and said <= DRAIN_GOAL_S))
    checks.append(("no failed request through the drain", report["failed"] == 0))


def drill(args, work):
    checks, notes, figures = [], [], {}
    redis = Redis(work)
    cluster = Cluster(work, args.bin, redis, balancer="haproxy",
                      settings=[f"lb.slo_p95_ms={SLO_P95_MS}"])
    others = []
    try:
        games = export_ids(args.bin, 2024, work / "2024.csv")
        warm(args.bin, cluster, games, work)
        others = [FrontEnd(cluster, "roundrobin", "roundrobin", agent=False),
                  FrontEnd(cluster, "leastconn", "leastconn", agent=False)]
        fronts = {"round robin": others[0].url, "least connections": others[1].url,
                  "agent-weighted": cluster.url}
        medians, results = compare(args, work, cluster, games, fronts, figures, notes)
        ratio = medians["agent-weighted"] / medians["round robin"]
        figures["agent-weighted p99 / round robin's"] = round(ratio, 2)
        checks.append((f"agent-weighted p99 at most {P99_GOAL}x round robin's",
                       ratio <= P99_GOAL))
        checks.append(("no failed request through the agent-weighted front end",
                       sum(r[1] for r in results["agent-weighted"]) == 0))
        drain(args, work, cluster, cluster.url, checks, figures)
    finally:
        for front in others:
            front.stop()
        cluster.stop()
        redis.stop()
    return checks, notes, figures


def main():
    return run_drill(
        drill, "Load reports: a slow replica and a drain behind HAProxy", lambda args: (
            f"`tests/lb.py{' --bench' if args.bench else ''}`: three replicas (Redis shared, "
            f"lb.slo_p95_ms {SLO_P95_MS}) behind HAProxy (deploy/haproxy/bullpen.cfg), replica "
            f"{SLOW} SIGSTOPped {STOPPED_MS} ms of every {PERIOD_MS} ms; `bullpen loadtest` "
            f"open loop at {args.profile['rate']} req/s for {args.profile['seconds']} s through "
            "each front end in turn (round robin and least connections without the agents, "
            f"round robin weighted by them), {args.profile['rounds']} round(s), medians; then replica 0 "
            "SIGTERMed under load through the agent-weighted one."),
        bench={"rate": 400, "seconds": 20, "rounds": 3},
        quick={"rate": 300, "seconds": 8, "rounds": 1})


if __name__ == "__main__":
    sys.exit(main())
