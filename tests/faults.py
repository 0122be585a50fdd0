#!/usr/bin/env python3
"""Faults under load: three bullpen replicas behind nginx (scripts/local-cluster), a steady
open-loop `bullpen loadtest` through nginx, and one fault injected per scenario:

  kill      one replica SIGKILLed, then started again
  rolling   each replica SIGTERMed (drains) and started again, in turn
  freeze    one replica frozen (SIGSTOP) for 5 s, then resumed
  redis     Redis killed, then started again
  postgres  PostgreSQL restarted (feature store and prediction log there)
  burst     5x capacity for 10 s on top of the steady load

Each scenario gets a cluster of its own, with a Redis and (for `postgres`) a PostgreSQL of
its own on free loopback ports, so no fault touches the services other tests share. The
report gives, before / during / after the fault: requests, failed, availability and the
worst one-second p99 of the answers that succeeded; each scenario is then judged against
issue 15's acceptance. Exit status: 0 all held, 1 one missed.

    tests/faults.py                # CI (.ci/run): 300 req/s, short phases, ~3 minutes
    tests/faults.py --bench        # half of the measured capacity, longer phases
    tests/faults.py --bench --write    # ... and the figures appended to BENCHMARKS.md
    tests/faults.py --only kill,redis
"""

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_CLUSTER = ROOT / "scripts" / "local-cluster"
# Debian's PostgreSQL server programs (initdb, pg_ctl), the newest installed.
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"),
             key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
             default=Path("/usr/lib/postgresql/15/bin"))
REPLICAS = 3
# Every replica of the suite admits this many requests at once; over it, 503 at once.
MAX_IN_FLIGHT = 32
DRAIN_SECS = 2


@dataclass
class Profile:
    lead: float  # seconds of steady load before the fault
    tail: float  # seconds after it
    capacity_seconds: int
    rate: float | None  # fixed steady rate, or None: half the measured capacity


QUICK = Profile(lead=3, tail=4, capacity_seconds=3, rate=300)
BENCH = Profile(lead=10, tail=10, capacity_seconds=10, rate=None)


def free_ports(count):
    """COUNT distinct free loopback ports: every probe stays bound until all are chosen, so
    the kernel cannot hand out one port twice."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port():
    return free_ports(1)[0]


def wait_port(port, limit=20.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Redis:
    """A redis-server of the scenario's own, on a free port, keeping nothing on disk."""

    def __init__(self, work):
        self.port = free_port()
        self.log = work / "redis.log"
        self.process = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no"],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_port(self.port)

    def kill(self):
        self.process.kill()
        self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            self.kill()


class Postgres:
    """A PostgreSQL of the scenario's own: initdb on a temp folder, pg_ctl on a free port."""

    def __init__(self, work):
        self.port = free_port()
        self.dir = work / "postgres"
        self.dir.mkdir()
        self.log = self.dir / "server.log"
        if os.geteuid() == 0:  # initdb refuses root: run it as the postgres user
            shutil.chown(self.dir, "postgres")
        self.run("initdb", "-D", self.dir / "data", "-U", "postgres", "-A", "trust",
                 "--no-sync", "-E", "UTF8")
        self.start()
        self.run("createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", "bullpen")

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/bullpen"

    def run(self, tool, *args):
        command = [str(PG_BIN / tool), *map(str, args)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self.run("pg_ctl", "-D", self.dir / "data", "-l", self.log, "-w", "-o",
                 # fsync stays on: "no row lost" means on disk, as in production.
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode="fast"):
        self.run("pg_ctl", "-D", self.dir / "data", "-m", mode, "-w", "stop")

    def count(self, table):
        done = subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", "bullpen", "-tAc", f"SELECT count(*) FROM {table}"],
            check=True, capture_output=True, text=True,
        )
        return int(done.stdout.strip())


class Cluster:
    """scripts/local-cluster with a folder and nginx port of its own."""

    def __init__(self, work, binary, redis, postgres=None, access_log=False,
                 balancer="nginx", settings=()):
        self.dir = work / "cluster"
        self.port = free_port()
        args = ["up", "--replicas", str(REPLICAS), "--port", str(self.port), "--bin", binary,
                "--redis", redis.url, "--balancer", balancer,
                "--set", f"server.drain_secs={DRAIN_SECS}",
                "--set", f"server.max_in_flight={MAX_IN_FLIGHT}",
                "--set", "telemetry.level=warn"]
        for setting in settings:
            args += ["--set", setting]
        if postgres:
            args += ["--postgres", postgres.url]
        if access_log:
            args.append("--access-log")
        self.ctl(*args)
        self.url = f"http://127.0.0.1:{self.port}"

    def ctl(self, *args):
        subprocess.run([str(LOCAL_CLUSTER), "--dir", str(self.dir), *map(str, args)],
                       check=True, stdout=subprocess.DEVNULL)

    def replica(self, index, action):
        self.ctl("replica", index, action)

    def ports(self, key="port"):
        """Each replica's port (or its `agent_port`)."""
        state = json.loads((self.dir / "cluster.json").read_text())
        return [r[key] for r in state["replicas"]]

    def metric(self, name, labels=()):
        """`name` summed over the replicas (counters restart with a replica)."""
        return sum(metric_value(port, name, labels) for port in self.ports())

    def pids(self):
        state = json.loads((self.dir / "cluster.json").read_text())
        return [r["pid"] for r in state["replicas"] if r["pid"]]

    def stop(self):
        if (self.dir / "cluster.json").exists():
            # The logs stay with the scenario's (kept when it fails).
            for log in self.dir.glob("*.log"):
                shutil.copy(log, self.dir.parent / f"cluster-{log.name}")
            self.ctl("down")


class RssSampler(threading.Thread):
    """The largest resident set of any replica, sampled every 250 ms, by wall time."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.25):
            largest = 0
            for pid in self.cluster.pids():
                try:
                    for line in open(f"/proc/{pid}/status"):
                        if line.startswith("VmRSS:"):
                            largest = max(largest, int(line.split()[1]) // 1024)
                except (FileNotFoundError, ProcessLookupError):
                    pass
            self.samples.append((time.time(), largest))


@dataclass
class Window:
    requests: int = 0
    failed: int = 0
    worst_p99_ms: float = 0.0

    @property
    def availability(self):
        return 1.0 if self.requests == 0 else 1.0 - self.failed / self.requests

    def text(self):
        return (f"{self.requests} sent, {self.failed} failed, "
                f"{self.availability * 100:.3f} % available, worst-second p99 "
                f"{self.worst_p99_ms:.1f} ms")


@dataclass
class Result:
    name: str
    fault: str
    rate: float
    windows: dict
    total: Window
    start: float  # seconds into the steady run the fault began and ended
    end: float
    checks: list = field(default_factory=list)  # (what, held)
    notes: list = field(default_factory=list)
    started: float = 0.0  # wall time the steady run began

    @property
    def held(self):
        return all(held for _, held in self.checks)


@dataclass
class Scenario:
    work: Path
    redis: Redis
    postgres: "Postgres | None"
    cluster: Cluster


class LoadRun:
    """`bullpen loadtest` in the background; seconds are counted from when it started."""

    def __init__(self, binary, url, work, name, args, env=None):
        self.report_path = work / f"{name}.json"
        self.started = time.time()
        self.process = subprocess.Popen(
            [binary, "loadtest", "--quiet", "--url", url, "--json", self.report_path,
             "--timeout", "10s", *map(str, args)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "ab"),
            env=dict(os.environ, **(env or {})),
        )

    def at(self):
        return time.time() - self.started

    def report(self):
        status = self.process.wait()
        if status not in (0, 1):
            raise RuntimeError(f"bullpen loadtest exited {status}")
        return json.loads(self.report_path.read_text())


def windows(report, start, end):
    """Before / during / after a fault that ran from `start` to `end` seconds into the run."""
    first, last = math.floor(start), math.ceil(end)
    parts = {"before": Window(), "during": Window(), "after": Window()}
    total = Window()
    for second in report["timeline"]:
        at = second["second"]
        part = parts["before" if at < first else "during" if at < last else "after"]
        for window in (part, total):
            window.requests += second["requests"]
            window.failed += second["failed"]
            window.worst_p99_ms = max(window.worst_p99_ms, second["ok_p99_ms"])
    return parts, total


def export_ids(binary, season, path):
    subprocess.run([binary, "features", "export", "--seasons", str(season), "--output", path],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def warm(binary, cluster, games, work):
    """Every game of `games` asked through nginx (closed loop), so its answer is cached."""
    ids = sum(1 for _ in open(games)) - 1
    load = LoadRun(binary, cluster.url, work, "warm",
                   ["--users", 8, "--duration", "60s", "--games", games])
    # User i asks games i, i + 8, ...: once twice as many answers as games were counted,
    # every user has passed the end of the list (users run at the same pace; one would have
    # to lag a whole cycle behind to leave a game unasked).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and load.process.poll() is None:
        time.sleep(0.2)
        if cluster.metric("bullpen_predictions_total") >= 2 * ids:
            break
    load.process.send_signal(signal.SIGKILL)
    load.process.wait()


def metric_value(port, name, labels=()):
    """The sum of the series of `name` on one replica whose labels include every `labels`."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except OSError:
        return 0
    total = 0.0
    for line in text.decode().splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and all(
                label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Suite:
    def __init__(self, args):
        self.profile = BENCH if args.bench else QUICK
        self.binary = args.bin
        self.root = Path(tempfile.mkdtemp(prefix="bullpen-faults-"))
        # The postgres user (initdb refuses root) reaches its folder through this one.
        self.root.chmod(0o755)
        self.ids = export_ids(self.binary, 2024, self.root / "2024.csv")
        self.rate = self.profile.rate
        self.capacity = None

    @contextmanager
    def scenario(self, name, postgres=False, access_log=False):
        """A folder, a Redis (and PostgreSQL) of the scenario's own and a cluster on them,
        its cache warm over every 2024 game; all stopped on the way out."""
        work = self.root / name
        work.mkdir()
        redis = Redis(work)
        started = [redis]
        try:
            database = Postgres(work) if postgres else None
            if database:
                started.append(database)
            cluster = Cluster(work, self.binary, redis, postgres=database,
                              access_log=access_log)
            started.append(cluster)
            warm(self.binary, cluster, self.ids, work)
            yield Scenario(work, redis, database, cluster)
        finally:
            for server in reversed(started):
                try:
                    server.stop()
                except (OSError, subprocess.SubprocessError) as error:
                    print(f"{name}: could not stop {type(server).__name__}: {error}",
                          file=sys.stderr)

    def steady(self, cluster, work, seconds):
        return LoadRun(self.binary, cluster.url, work, "steady",
                       ["--rate", self.rate, "--duration", f"{seconds:.0f}s",
                        "--games", self.ids])

    def measure_capacity(self):
        """Closed loop, 64 users through nginx: the answers per second this machine gives."""
        with self.scenario("capacity") as on:
            load = LoadRun(self.binary, on.cluster.url, on.work, "capacity",
                           ["--users", 64, "--duration", f"{self.profile.capacity_seconds}s",
                            "--games", self.ids])
            self.capacity = load.report()["achieved_rps"]
        if self.rate is None:
            self.rate = round(self.capacity / 2)

    def fault_run(self, name, on, budget, inject, description):
        """Steady load for lead + budget + tail seconds, `inject` called after lead; returns
        the windows around what `inject` reported as its start and end."""
        p = self.profile
        load = self.steady(on.cluster, on.work, p.lead + budget + p.tail)
        time.sleep(p.lead)
        start = load.at()
        inject()
        end = load.at()
        report = load.report()
        parts, total = windows(report, start, end)
        result = Result(name, description, self.rate, parts, total, start, end,
                        started=load.started)
        result.notes.append(f"fault from {start:.1f} s to {end:.1f} s of the run")
        return result, report

    # The scenarios ------------------------------------------------------------------------

    def run_kill(self):
        with self.scenario("kill") as on:
            def inject():
                on.cluster.replica(0, "kill")
                time.sleep(2)
                on.cluster.replica(0, "start")

            result, _ = self.fault_run("kill", on, 6, inject,
                                       "one replica SIGKILLed, started again 2 s later")
            result.checks.append(("no failed request", result.total.failed == 0))
            return result

    def run_rolling(self):
        with self.scenario("rolling") as on:
            def inject():
                for index in range(REPLICAS):
                    on.cluster.replica(index, "term")
                    on.cluster.replica(index, "start")

            result, _ = self.fault_run(
                "rolling", on, REPLICAS * (DRAIN_SECS + 3), inject,
                f"each replica SIGTERMed (drain {DRAIN_SECS} s) and started again, in turn")
            result.checks.append(("no failed request", result.total.failed == 0))
            return result

    def run_freeze(self):
        with self.scenario("freeze") as on:
            def inject():
                on.cluster.replica(0, "stop")
                time.sleep(5)
                on.cluster.replica(0, "cont")

            result, report = self.fault_run("freeze", on, 6, inject,
                                            "one replica frozen (SIGSTOP) 5 s, then resumed")
            result.checks.append(
                ("availability >= 99.9 %", result.total.availability >= 0.999))
            # A request caught on the frozen replica waits nginx's read timeout (2.5 s), then
            # goes to another: within the retry budget (5 s) it still succeeds.
            result.notes.append(f"slowest answer {report['latency_ms']['max']:.0f} ms "
                                "(nginx: 2.5 s read timeout, 5 s retry budget)")
            return result

    def run_redis(self):
        with self.scenario("redis") as on:
            def inject():
                on.redis.kill()
                time.sleep(3)
                on.redis.start()

            result, _ = self.fault_run("redis", on, 5, inject,
                                       "Redis killed, started again 3 s later (empty)")
            result.checks.append(("no failed request", result.total.failed == 0))
            return result

    def run_postgres(self):
        with self.scenario("postgres", postgres=True) as on:
            p = self.profile
            budget = 6
            # Games asked before (cached) beside games never asked (each computed from
            # PostgreSQL): a tenth of the steady rate, at most what asks each 2023 game once.
            uncached_ids = export_ids(self.binary, 2023, on.work / "2023.csv")
            seconds = p.lead + budget + p.tail
            games = sum(1 for _ in open(uncached_ids)) - 1
            uncached = LoadRun(self.binary, on.cluster.url, on.work, "uncached",
                               ["--rate", max(10, min(round(self.rate / 10), games // seconds)),
                                "--duration", f"{seconds:.0f}s", "--games", uncached_ids])

            def inject():
                on.postgres.stop()
                time.sleep(2)
                on.postgres.start()

            result, report = self.fault_run("postgres", on, budget, inject,
                                            "PostgreSQL stopped (fast) and started 2 s later")
            uncached_report = uncached.report()
            u_parts, _ = windows(uncached_report, result.start, result.end)
            result.notes.append("uncached games: " + "; ".join(
                f"{k} {w.text()}" for k, w in u_parts.items()))
            result.checks.append(("no failed cached answer", result.total.failed == 0))
            result.checks.append(("uncached answers recover (none failed after)",
                                  u_parts["after"].failed == 0))
            # Every prediction answered 200 is a row: count the answers, stop the replicas
            # (their logs flush), then count the rows.
            answered = on.cluster.metric("bullpen_http_requests_total",
                                         ['route="/api/v1/predict"', 'status="200"'])
            client = report["succeeded"] + uncached_report["succeeded"]
            on.cluster.stop()
            rows = on.postgres.count("prediction_log")
            result.notes.append(f"prediction log: {rows} rows for {answered:.0f} answers "
                                f"(200s seen by the load runs: {client}, the rest warm-up)")
            result.checks.append(("no prediction-log row lost", rows >= answered >= client))
            return result

    def run_burst(self):
        with self.scenario("burst", access_log=True) as on:
            cluster, work = on.cluster, on.work
            rss = RssSampler(cluster)
            rss.start()
            burst_rate = round(5 * self.capacity - self.rate)
            burst_seconds = 10

            burst_report = {}

            def inject():
                burst = LoadRun(self.binary, cluster.url, work, "burst",
                                ["--rate", burst_rate, "--duration", f"{burst_seconds}s",
                                 "--connections", 512, "--games", self.ids])
                burst_report.update(burst.report())

            result, report = self.fault_run(
                "burst", on, burst_seconds + 1, inject,
                f"{burst_rate} req/s more (5x capacity in all) for {burst_seconds} s")
            rss.done.set()
            start, end = result.start, result.end
            # Admitted requests as nginx saw them (no client-side queue): p99 of the 200s.
            began = result.started
            edge = [line.split() for line in open(cluster.dir / "access.log")]
            admitted = sorted(float(t) * 1000 for at, status, t in edge
                              if status == "200" and start <= float(at) - began <= end)
            refused = sum(1 for at, status, _ in edge
                          if status != "200" and start <= float(at) - began <= end)
            p99 = admitted[int(len(admitted) * 0.99)] if admitted else 0.0
            result.notes.append(
                f"the burst sent {burst_report['requests']} requests "
                f"({burst_report['requests'] / burst_seconds:.0f} req/s; "
                f"{burst_report['unsent']} due were never sent: the load tool shares the "
                f"cores), {burst_report['failed']} failed")
            result.notes.append(f"during the burst at nginx: {len(admitted)} answered 200 "
                                f"(p99 {p99:.1f} ms), {refused} refused")
            before = max((mb for t, mb in rss.samples if t - began < start), default=0)
            peak = max((mb for _, mb in rss.samples), default=0)
            result.notes.append(f"largest replica RSS: {before} MB before, {peak} MB at peak")
            # Recovery: the first second after the burst from which every second answers
            # the steady rate (95 %) with nothing failed; and from which the p99 is also no
            # worse than twice the worst second before the burst (at least 20 ms): the
            # client's own backlog, due while the burst took the cores, has cleared.
            normal = max(2 * result.windows["before"].worst_p99_ms, 20.0)
            seconds = [s for s in report["timeline"] if s["second"] >= math.ceil(end)]

            def recovery(good):
                for i, second in enumerate(seconds):
                    if all(good(s) for s in (seconds[i:-1] or seconds[i:])):
                        return max(second["second"] - end, 0.0)
                return None

            def answered(s):
                return s["failed"] == 0 and s["requests"] >= 0.95 * self.rate

            recovered = recovery(answered)
            cleared = recovery(lambda s: answered(s) and s["ok_p99_ms"] <= normal)
            result.notes.append("steady rate back " + (
                f"{recovered:.1f} s after the burst" if recovered is not None
                else "not within the run") + "; its p99 back under "
                f"{normal:.0f} ms " + (f"{cleared:.1f} s after" if cleared is not None
                                       else "not within the run"))
            result.checks.append(("admitted p99 < 500 ms (nginx)", p99 < 500))
            result.checks.append(("RSS bounded (peak < 2x before + 100 MB)",
                                  peak < 2 * before + 100))
            result.checks.append(("throughput back within 5 s",
                                   recovered is not None and recovered <= 5))
            return result


SCENARIOS = ["kill", "rolling", "freeze", "redis", "postgres", "burst"]


def markdown(suite, results, command):
    lines = [
        f"Three replicas behind nginx (scripts/local-cluster, deploy/nginx/bullpen.conf), each "
        f"with `server.max_in_flight = {MAX_IN_FLIGHT}` and `drain_secs = {DRAIN_SECS}`; "
        f"steady open-loop `bullpen loadtest` at {suite.rate:.0f} req/s through nginx "
        f"(capacity measured closed loop, 64 users: {suite.capacity:.0f} req/s), every "
        f"2024 game, cache warm; all on the same cores. `{command}`.",
        "",
        "| fault | before | during | after | held |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        cells = [f"{w.requests} sent, {w.failed} failed, p99 {w.worst_p99_ms:.1f} ms"
                 for w in r.windows.values()]
        checks = "; ".join(f"{what}: {'yes' if held else '**no**'}" for what, held in r.checks)
        lines.append(f"| {r.name}: {r.fault} | {' | '.join(cells)} | {checks} |")
    lines.append("")
    lines.append("p99 is the worst one-second p99 of the answers that succeeded in the window, "
                 "counted by the client from when each request was due.")
    for r in results:
        lines.append(f"- {r.name}: availability {r.total.availability * 100:.3f} % over "
                     f"{r.total.requests} requests; " + "; ".join(r.notes))
    return "\n".join(lines)


def main():
    # Stopped from outside (a CI time limit): unwind, so every cluster, Redis and PostgreSQL
    # started so far is stopped by the `finally` blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", action="store_true",
                        help="half the measured capacity, longer phases")
    parser.add_argument("--write", action="store_true", help="append to BENCHMARKS.md")
    parser.add_argument("--only", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    parser.add_argument("--bin", help="bullpen binary (default: build the release one)")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else SCENARIOS
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not args.bin:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT,
                       check=True)
        args.bin = str(ROOT / "target" / "release" / "bullpen")
    suite = Suite(args)
    results = []
    try:
        for name in SCENARIOS:
            if name not in chosen:
                continue
            if suite.capacity is None:
                suite.measure_capacity()
            began = time.monotonic()
            result = getattr(suite, f"run_{name}")()
            results.append(result)
            verdict = "held" if result.held else "MISSED"
            print(f"{name} ({time.monotonic() - began:.0f} s): {verdict}", flush=True)
            for part, window in result.windows.items():
                print(f"  {part:6} {window.text()}")
            for what, held in result.checks:
                print(f"  {'ok ' if held else 'NO '} {what}")
            for note in result.notes:
                print(f"  - {note}")
    finally:
        if all(r.held for r in results) and len(results) == len(chosen):
            shutil.rmtree(suite.root, ignore_errors=True)
        else:
            print(f"logs kept in {suite.root}", file=sys.stderr)
    command = "tests/faults.py " + " ".join(sys.argv[1:])
    text = markdown(suite, results, command.strip())
    print()
    print(text)
    if args.write:
        with open(ROOT / "BENCHMARKS.md", "a") as out:
            out.write(f"\n## Faults under load, {time.strftime('%Y-%m-%d', time.gmtime())} "
                      f"({subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()})\n\n")
            out.write(f"Machine: {os.cpu_count()} cores. " + text + "\n")
    return 0 if all(r.held for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
