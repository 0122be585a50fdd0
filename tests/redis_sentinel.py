#!/usr/bin/env python3
"""A Redis master watched by Sentinel lost under load (issue 32): a master, its replica and
three Sentinels (quorum 2) of the drill's own, two bullpen replicas on them (`redis.sentinel`)
as their shared tier and their shared rate limit, and an open-loop `bullpen loadtest` to each.
The master is SIGKILLed; the Sentinels promote the replica and bullpen follows.

Judged: no failed prediction on either replica, and the rate limit shared across both after
the failover as before it: a key's allowance spent on one replica is not spendable on the
other (a replica that lost Redis would admit its own share, half the burst).

    tests/redis_sentinel.py                  # CI: 100 req/s to each replica, about 40 s
    tests/redis_sentinel.py --bench --write  # longer; the figures appended to BENCHMARKS.md

Debian's `redis-sentinel` is installed when missing. Exit status: 0 every goal held, 1 one
missed.
"""

import hashlib
import http.client
import json
import secrets
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import debian_packages  # noqa: E402
from faults import LoadRun, export_ids, free_ports, wait_port, windows  # noqa: E402
from ha import Server, Timeline, run_drill  # noqa: E402

MASTER_NAME = "bullpen"
# How long a silent master is given before the Sentinels agree it is down.
DOWN_AFTER_MS = 1000
# The limited key: a burst of 20, refilled 2 a second; a replica without Redis admits half.
BURST, PER_MINUTE = 20, 120


class Sentinels:
    """A master, a replica of it and three Sentinels on free loopback ports."""

    def __init__(self, work):
        self.dir = work / "redis"
        self.dir.mkdir()
        master, replica, *sentinels = free_ports(5)
        self.processes = {}
        for port, extra in ((master, []), (replica, ["--replicaof", "127.0.0.1", str(master)])):
            self.processes[port] = self.spawn(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", *extra], port)
        self.sentinel_ports = sentinels
        for port in sentinels:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n")
            self.processes[port] = self.spawn(["redis-sentinel", str(conf)], port)
        for port in self.processes:
            wait_port(port)
        self.wait_watching()

    def spawn(self, command, port):
        return subprocess.Popen(command, cwd=self.dir, stdout=open(self.dir / f"{port}.log", "ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)

    def ask(self, *args):
        """A Sentinel command on the first live Sentinel, as `redis-cli` prints it."""
        for port in self.sentinel_ports:
            done = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                                  text=True, timeout=5)
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.split()
        return []

    def wait_watching(self, limit=30):
        """Until every Sentinel knows the replica and the two other Sentinels."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            ready = 0
            for port in self.sentinel_ports:
                fields = subprocess.run(
                    ["redis-cli", "-p", str(port), "sentinel", "master", MASTER_NAME],
                    capture_output=True, text=True, timeout=5).stdout.split()
                info = dict(zip(fields[::2], fields[1::2]))
                if info.get("num-slaves") == "1" and info.get("num-other-sentinels") == "2":
                    ready += 1
            if ready == len(self.sentinel_ports):
                return
            time.sleep(0.2)
        raise RuntimeError("the Sentinels never all saw the replica and each other")

    def master(self):
        """The master's port as the Sentinels name it."""
        address = self.ask("sentinel", "get-master-addr-by-name", MASTER_NAME)
        return int(address[1]) if len(address) == 2 else None

    @property
    def urls(self):
        return ",".join(f"redis://127.0.0.1:{port}" for port in self.sentinel_ports)

    def kill(self, port):
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait()

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def api_key():
    """A key as `bullpen keys create` makes them: `bp_` and 43 letters or digits."""
    return "bp_" + "".join(secrets.choice(string.ascii_letters + string.digits)
                           for _ in range(43))


def config_dir(work, keys):
    """A config folder with auth on and `keys` ({name: (key, per_minute, burst)})."""
    folder = work / "config"
    folder.mkdir()
    entries = "".join(
        f'\n[[auth.keys]]\nname = "{name}"\nhash = "{hashlib.sha256(key.encode()).hexdigest()}"\n'
        f'scopes = ["predict"]\nrate_per_minute = {per_minute}\nburst = {burst}\n'
        for name, (key, per_minute, burst) in keys.items())
    (folder / "default.toml").write_text("[auth]\nenabled = true\n" + entries)
    return folder


def admitted(server, key, game, count):
    """How many of `count` predictions, asked one after another, were admitted (200); any
    other status than 200 and 429 is an error."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = json.dumps({"game_id": game})
    admitted = 0
    for _ in range(count):
        connection.request("POST", "/api/v1/predict", body,
                           {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status not in (200, 429):
            raise RuntimeError(f"a prediction answered {response.status}")
        admitted += response.status == 200
    return admitted


def shared_limit(first, second, key, game):
    """(admitted by `first`, then by `second`) for a fresh key's burst and a half spent on
    `first` first, then the same asked of `second`."""
    spent = admitted(first, key, game, BURST + BURST // 2)
    return spent, admitted(second, key, game, BURST + BURST // 2)


def is_shared(counts):
    """The first replica spent (nearly) the whole burst and the second got (nearly) nothing;
    apart, each would have admitted half."""
    first, second = counts
    return first >= BURST * 3 // 4 and second <= BURST // 4


def drill(args, work):
    checks, notes, figures = [], [], {}
    p = args.profile
    debian_packages.ensure({"redis-sentinel": "redis-sentinel"})
    redis = Sentinels(work)
    # The first replica's load is drawn.
    timeline = Timeline(args, work, "drill-redis-sentinel")
    games = export_ids(args.bin, 2024, work / "2024.csv")
    game = next(line.split(",")[0] for line in open(games) if not line.startswith("game_id"))
    keys = {"load": (api_key(), 60_000_000, 1_000_000),
            "before": (api_key(), PER_MINUTE, BURST),
            "after": (api_key(), PER_MINUTE, BURST)}
    env = {"BULLPEN_CONFIG_DIR": str(config_dir(work, keys)),
           "BULLPEN__REDIS__ENABLED": "true",
           "BULLPEN__REDIS__SENTINEL__NODES": redis.urls,
           "BULLPEN__REDIS__SENTINEL__MASTER_NAME": MASTER_NAME,
           "BULLPEN__RATE_LIMIT__REPLICAS": "2",
           # A small in-process tier: most answers are looked up in Redis.
           "BULLPEN__CACHE__PREDICTIONS_MAX_ENTRIES": "64",
           "BULLPEN__CACHE__FEATURES_MAX_ENTRIES": "64"}
    servers = [Server(args.bin, work, f"bullpen-{n}", env) for n in (1, 2)]
    try:
        before = shared_limit(*servers, keys["before"][0], game)
        loads = [LoadRun(args.bin, f"http://127.0.0.1:{server.port}", work, f"load-{n}",
                         ["--rate", p["rate"], "--duration", f"{p['seconds']}s",
                          "--games", games, "--mix", "stored=60,scheduled=40",
                          *(timeline.arguments() if n == 1 else [])],
                         env={"BULLPEN_LOADTEST_TOKEN": keys["load"][0]})
                 for n, server in enumerate(servers, 1)]
        while loads[0].at() < p["lead"]:
            time.sleep(0.2)
        master = redis.master()
        redis.kill(master)
        killed_at = loads[0].at()
        timeline.mark("master killed")
        promoted_at = None
        while any(load.process.poll() is None for load in loads):
            if promoted_at is None and redis.master() not in (None, master):
                promoted_at = loads[0].at()
            time.sleep(0.2)
        reports = [load.report() for load in loads]
        after = shared_limit(*servers, keys["after"][0], game)
        figures["predictions"] = sum(report["requests"] for report in reports)
        figures["failed"] = sum(report["failed"] for report in reports)
        figures["replica_promoted_s"] = (round(promoted_at - killed_at, 1)
                                         if promoted_at else None)
        figures["limit_before (first, second)"] = before
        figures["limit_after (first, second)"] = after
        notes.append(f"master on port {master} SIGKILLed at {killed_at:.1f} s")
        for n, report in enumerate(reports, 1):
            parts, _ = windows(report, killed_at, killed_at + (figures["replica_promoted_s"]
                                                               or DOWN_AFTER_MS / 1000))
            notes.append(f"replica {n} until the promotion: "
                         + "; ".join(f"{k} {w.text()}" for k, w in parts.items()))
        notes.append(f"a fresh key's burst of {BURST} (refilled {PER_MINUTE // 60}/s) asked "
                     f"{BURST + BURST // 2} times of one replica, then of the other")
        for report in reports:
            if report["errors"]:
                notes.append(f"failed: errors {report['errors']}, statuses {report['status']}")
        checks.append(("no failed prediction", figures["failed"] == 0))
        checks.append(("the Sentinels promoted the replica", promoted_at is not None))
        checks.append(timeline.check())
        checks.append(("rate limit shared across the 2 replicas before the kill",
                       is_shared(before)))
        checks.append(("rate limit shared across the 2 replicas after the failover",
                       is_shared(after)))
    finally:
        for server in servers:
            server.stop()
        redis.stop()
    return checks, notes, figures


def main():
    return run_drill(
        drill, "A Redis Sentinel master lost under load", lambda args: (
            f"`tests/redis_sentinel.py{' --bench' if args.bench else ''}`: a Redis master, its "
            f"replica and three Sentinels (quorum 2, down-after {DOWN_AFTER_MS} ms); two bullpen "
            "replicas with `redis.sentinel` (shared tier and shared rate limit, in-process tier "
            f"of 64 entries), `bullpen loadtest` open loop at {args.profile['rate']} req/s to "
            "each (60 % stored, 40 % scheduled games of 2024); the master SIGKILLed."),
        bench={"rate": 250, "lead": 15, "seconds": 45},
        quick={"rate": 100, "lead": 8, "seconds": 25})


if __name__ == "__main__":
    sys.exit(main())
