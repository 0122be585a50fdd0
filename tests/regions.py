#!/usr/bin/env python3
"""The loss of a region (issue 29): two regions on one machine (scripts/regions: network
namespaces, 30 ms each way between them, region a's Patroni cluster primary and b's a standby
cluster), `bullpen loadtest` through the global balancer (open loop, stored and scheduled
games), and a writer posting one day of 2024 results a second to region a. After each
acknowledged day, the time until region b prices a later game of those teams anew (the
cross-region propagation of a result). Then region a is killed (every process SIGKILLed, its
WAN link cut); once the global balancer has taken it out, the runbook's step promotes b's
standby cluster (`scripts/regions promote b`) and the writer posts to b. Last, a returns as
b's standby (`scripts/regions return a`).

Judged: no failed prediction after the global balancer's checks took a out (only requests
in flight to a before); every request answered by b (a out of the global balancer) within
10 s of the kill; a result acknowledged by b within 30 s; no acknowledged result missing in b
with synchronous replication (measured with asynchronous: the bench runs both); after the
return, every result b holds is in a too.

    tests/regions.py                    # CI: synchronous, 100 req/s, about three minutes
    tests/regions.py --bench --write    # asynchronous then synchronous, 300 req/s; figures
                                        # appended to BENCHMARKS.md

Needs root (network namespaces). Exit status: 0 every goal held, 1 one missed.
"""

import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults import ROOT, LoadRun, free_port  # noqa: E402
from ha import Timeline, days_of_results, run_drill  # noqa: E402

REGIONS = ROOT / "scripts" / "regions"
READ_RTO_GOAL = 10.0
WRITE_RTO_GOAL = 30.0
# The global balancer checks each region every second and takes one out after two failures.
CHECK_GRACE = 3.0


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP to a region's balancer through its UNIX socket (it lives in another network
    namespace)."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.socket_path))


def call(path, method, url, body=None):
    """(status, JSON body) of one request to the region whose socket is `path`."""
    connection = UnixHTTPConnection(path)
    try:
        connection.request(method, url, json.dumps(body) if body is not None else None,
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def price(path, home, away):
    """The home side's probability for a game of `home` and `away` on the season's last day,
    from the region at `path` (its features hold every result posted before it)."""
    status, body = call(path, "POST", "/api/v1/predict",
                        {"game": {"home": home, "away": away, "date": "2024-09-29"}})
    return body.get("home_win_probability") if status == 200 else None


class Writer(threading.Thread):
    """Posts the next day of results every second to the region `target` names (moved by
    the drill); a day not acknowledged is posted again a quarter of a second later. After
    each acknowledged day, while `probe` names another region, measures how long that region
    takes to price the day's first game anew."""

    def __init__(self, sockets, days, started):
        super().__init__(daemon=True)
        self.sockets, self.days, self.started = sockets, days, started
        self.target, self.probe = "a", "b"
        self.acknowledged = []  # (answered: seconds into the run, region, game ids)
        self.failed = 0
        self.propagation = []  # seconds
        self.post_ms = []  # (region, ms a day of results took to be acknowledged)
        self.stopping = threading.Event()

    def run(self):
        next_day = 0
        while not self.stopping.is_set() and next_day < len(self.days):
            sent = time.time()
            games = self.days[next_day]
            first = games[0]
            home, away = first["home"]["team"], first["away"]["team"]
            probe = self.probe
            before = price(self.sockets[probe], home, away) if probe else None
            target = self.target
            posted = time.time()
            try:
                status, _ = call(self.sockets[target], "POST", "/api/v1/admin/results",
                                 {"results": games})
            except OSError:
                status = None
            if status != 200:
                self.failed += 1
                self.stopping.wait(0.25)
                continue
            answered = time.time()
            self.acknowledged.append((answered - self.started, target,
                                      [g["game_id"] for g in games]))
            self.post_ms.append((target, (answered - posted) * 1000))
            next_day += 1
            if probe and before is not None:
                while (time.time() - answered < 10 and self.probe
                       and not self.stopping.is_set()):
                    now = price(self.sockets[probe], home, away)
                    if now is not None and now != before:
                        self.propagation.append(time.time() - answered)
                        break
                    time.sleep(0.02)
            self.stopping.wait(max(0.0, 1.0 - (time.time() - sent)))

    def first_after(self, moment, region, limit):
        """Seconds from `moment` (into the run) until `region` acknowledged a day; None when
        none within `limit` seconds."""
        deadline = time.time() + limit
        while time.time() < deadline:
            back = [at for at, where, _ in self.acknowledged if where == region and at >= moment]
            if back:
                return back[0] - moment
            time.sleep(0.1)
        return None


def regions(work, *args):
    done = subprocess.run([sys.executable, REGIONS, "--dir", work / "regions", *map(str, args)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/regions {' '.join(map(str, args))}:\n"
                           f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def region_state(work, region):
    """The global balancer's view of `region` (UP, DOWN, ...), from its stats socket."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(work / "regions" / "global.sock"))
        connection.sendall(b"show stat\n")
        text = b""
        while chunk := connection.recv(65536):
            text += chunk
    for line in text.decode().splitlines():
        fields = line.split(",")
        if len(fields) > 17 and fields[0] == "regions" and fields[1] == region:
            return fields[17]
    return None


def missing(sockets, region, ids):
    """Those of the game ids `region` does not show on their day."""
    days = {}
    for game_id in ids:
        days.setdefault(f"{game_id[3:7]}-{game_id[7:9]}-{game_id[9:11]}", []).append(game_id)
    gone = []
    for date, wanted in sorted(days.items()):
        _, body = call(sockets[region], "GET", f"/api/v1/games?date={date}")
        held = {g["game_id"] for g in (body or {}).get("games", [])}
        gone += [game_id for game_id in wanted if game_id not in held]
    return gone


def loss(args, work, sync, checks, notes, figures):
    """One region's loss with `sync` (synchronous cross-region replication) or not."""
    p = args.profile
    mode = "sync" if sync else "async"
    data = work / "data"
    if not data.exists():
        data.mkdir()
        for season in range(2010, 2024):
            (data / f"teams-{season}.csv.gz").symlink_to(
                ROOT / "data" / "retrosheet" / f"teams-{season}.csv.gz")
    days = days_of_results(args.bin, work, p["seconds"] + 20)
    up = ["up", "--bin", args.bin, "--port", free_port(), "--set", f"data.dir={data}"]
    regions(work, *(up + (["--sync"] if sync else [])))
    folder = work / "regions"
    sockets = {r: folder / r / "balancer.sock" for r in ("a", "b")}
    timeline = Timeline(args, work, f"drill-region-loss-{mode}")
    try:
        port = json.loads((folder / "regions.json").read_text())["port"]
        load = LoadRun(args.bin, f"http://127.0.0.1:{port}", work, f"load-{mode}",
                       ["--rate", p["rate"], "--duration", f"{p['seconds']}s",
                        "--mix", "stored=60,scheduled=40", *timeline.arguments()],
                       env={"BULLPEN__DATA__DIR": str(data)})
        writer = Writer(sockets, days, started=load.started)
        writer.start()
        time.sleep(max(0.0, p["lead"] - load.at()))

        # Region a lost: every process, and its link.
        writer.probe = None
        killed_at = load.at()
        regions(work, "kill", "a")
        timeline.mark("region a killed")
        read_rto = None
        while load.at() - killed_at < 30:
            if (region_state(work, "a") or "").startswith("DOWN"):
                read_rto = load.at() - killed_at
                break
            time.sleep(0.1)
        timeline.mark("a out of the global balancer")
        # The runbook: b's standby cluster promoted, writes sent to b.
        promoted = regions(work, "promote", "b").strip()
        timeline.mark("b promoted")
        writer.target = "b"
        write_rto = writer.first_after(killed_at, "b", limit=WRITE_RTO_GOAL + 10)
        by_a = [i for _, where, ids in writer.acknowledged if where == "a" for i in ids]
        lost = missing(sockets, "b", by_a)

        report = load.report()
        writer.stopping.set()
        writer.join()

        # Region a returns as b's standby.
        started = time.monotonic()
        regions(work, "return", "a")
        back_s = time.monotonic() - started
        held_by_b = [i for _, _, ids in writer.acknowledged for i in ids if i not in lost]
        lost_on_return = missing(sockets, "a", held_by_b)
    finally:
        subprocess.run([sys.executable, REGIONS, "--dir", work / "regions", "down"],
                       capture_output=True)

    after = killed_at + (read_rto or 0) + CHECK_GRACE
    failed_after = sum(s["failed"] for s in report["timeline"] if s["second"] >= after)
    failed = sum(s["failed"] for s in report["timeline"])
    figures[f"{mode}: predictions, failed"] = f"{report['requests']}, {failed}"
    figures[f"{mode}: failed after a left the global balancer"] = failed_after
    figures[f"{mode}: read RTO (a out of the global balancer) s"] = (
        read_rto if read_rto is None else round(read_rto, 1))
    figures[f"{mode}: write RTO (a result acknowledged by b) s"] = (
        write_rto if write_rto is None else round(write_rto, 1))
    figures[f"{mode}: results acknowledged by a, missing in b (RPO)"] = (
        f"{len(lost)} of {len(by_a)}")
    if writer.propagation:
        ordered = sorted(writer.propagation)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        figures[f"{mode}: propagation a -> b, p50 / p95 ms"] = (
            f"{statistics.median(ordered) * 1000:.0f} / {p95 * 1000:.0f}")
    in_a = [ms for where, ms in writer.post_ms if where == "a"]
    if in_a:
        # A day's results in one transaction: with synchronous replication its commit waits
        # for b, a WAN round trip away.
        figures[f"{mode}: a day of results posted to a, p50 ms"] = round(
            statistics.median(in_a), 1)
    figures[f"{mode}: return as standby s"] = round(back_s, 1)
    figures[f"{mode}: results b holds, missing in a after the return"] = len(lost_on_return)
    notes.append(f"{mode}: killed a at {killed_at:.1f} s; {promoted}; "
                 f"{len(writer.acknowledged)} days acknowledged, {writer.failed} posts refused")
    checks.append((f"{mode}: no failed prediction once a left the global balancer",
                   failed_after == 0))
    checks.append((f"{mode}: every request answered by b within {READ_RTO_GOAL:.0f} s",
                   read_rto is not None and read_rto <= READ_RTO_GOAL))
    checks.append((f"{mode}: a result acknowledged by b within {WRITE_RTO_GOAL:.0f} s",
                   write_rto is not None and write_rto <= WRITE_RTO_GOAL))
    if sync:
        checks.append(("sync: no acknowledged result missing in b (RPO 0)", not lost))
    checks.append((f"{mode}: after the return a holds every result b holds",
                   not lost_on_return))
    checks.append(timeline.check())


def drill(args, work):
    checks, notes, figures = [], [], {}
    for sync in args.profile["modes"]:
        loss(args, work, sync, checks, notes, figures)
    return checks, notes, figures


def main():
    return run_drill(
        drill, "The loss of a region", lambda args: (
            f"`tests/regions.py{' --bench' if args.bench else ''}`: two regions "
            "(`scripts/regions`: network namespaces, 30 ms each way between them; in each "
            "Redis, a Patroni cluster of two, two replicas behind HAProxy; b's cluster a "
            "standby of a's) behind the global HAProxy; `bullpen loadtest` open loop at "
            f"{args.profile['rate']} req/s (60 % stored, 40 % scheduled) through it, one day "
            "of 2024 results posted a second to a; a killed (every process, its link) "
            f"{args.profile['lead']} s in, b promoted by the runbook's command once the "
            "global balancer took a out, a returned as b's standby; replication "
            + " then ".join("synchronous" if s else "asynchronous"
                            for s in args.profile["modes"]) + "."),
        bench={"rate": 300, "lead": 20, "seconds": 50, "modes": (False, True)},
        quick={"rate": 100, "lead": 10, "seconds": 30, "modes": (True,)})


if __name__ == "__main__":
    sys.exit(main())
