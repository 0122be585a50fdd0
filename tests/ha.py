#!/usr/bin/env python3
"""PostgreSQL failover under load (issue 32): a Patroni cluster (scripts/pg-ha), bullpen on
its multi-host URL with the PostgreSQL feature store, the prediction log and Redis, an
open-loop `bullpen loadtest`, and a writer posting one day of 2024 results a second. Then
the primary is SIGKILLed with its Patroni, as a lost host, and later started again.

Judged: no failed prediction; result writes back within 15 s of the kill (RTO); every result
the server acknowledged is on the new primary (RPO 0: synchronous mode); no prediction-log
row lost; the old primary rejoins as a replica by itself (pg_rewind). Then a planned
switchover (`patronictl switchover`): no failed prediction, writes paused at most 3 s; and
HAProxy (deploy/haproxy/postgres.cfg) in front of the members reaches the primary after both.

Backups run through it all (`scripts/pg-ha up --archive`, `scripts/pg-backup backup` after
the import): at a moment T after the moves the writer is held, T read from the primary and
some predictions recorded; after the run, `scripts/pg-backup restore --to T`. Judged: every
result acknowledged before T is in the restored database and none posted after; bullpen on it
gives the recorded predictions; the restore's time is measured.

    tests/ha.py                    # CI: 100 req/s, under a minute and a half in all
    tests/ha.py --bench --write    # 500 req/s, longer; the figures appended to BENCHMARKS.md

Exit status: 0 every goal held, 1 one missed.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults import (ROOT, LoadRun, Redis, export_ids, free_port,  # noqa: E402
                    metric_value, windows)

PG_HA = ROOT / "scripts" / "pg-ha"
PG_BACKUP = ROOT / "scripts" / "pg-backup"
PSQL = shutil.which("psql") or "/usr/bin/psql"
WRITE_RTO_GOAL = 15.0
SWITCHOVER_PAUSE_GOAL = 3.0


class Server:
    """One `bullpen serve` with the given settings, on a free port."""

    def __init__(self, binary, work, name, env):
        self.port = free_port()
        self.log = work / f"{name}.log"
        full = dict(os.environ, BULLPEN__SERVER__PORT=str(self.port),
                    BULLPEN__SERVER__GRPC_PORT="0", BULLPEN__TELEMETRY__LEVEL="warn", **env)
        full.pop("RUST_LOG", None)
        self.process = subprocess.Popen([binary, "serve"], cwd=ROOT, env=full,
                                        stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while self.status("/ready") != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not get ready:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def status(self, path):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            connection.request("GET", path)
            return connection.getresponse().status
        except OSError:
            return None

    def get(self, path):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        return json.loads(response.read())

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


def pg_ha(work, *args, script=PG_HA):
    done = subprocess.run([sys.executable, script, "--dir", work / "pg", *args],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/{script.name} {' '.join(args)}: {done.stderr}")
    return done.stdout.strip().splitlines()


def pg_backup(work, *args):
    return pg_ha(work, *args, script=PG_BACKUP)


def probes(days):
    """Eight scheduled games on the season's last day between teams of the first days:
    their features hold every result posted before them."""
    return [{"game": {"home": g["home"]["team"], "away": g["away"]["team"],
                      "date": "2024-09-29"}} for day in days for g in day][:8]


def prices(port, games):
    """Each game's home-win probability from the server on `port`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    answers = []
    for game in games:
        connection.request("POST", "/api/v1/predict", json.dumps(game),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        body = json.loads(response.read())
        answers.append(body.get("home_win_probability", f"status {response.status}"))
    return answers


def sql(url, query):
    done = subprocess.run([PSQL, url, "-tAc", query], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def days_of_results(binary, work, count):
    """The first `count` days of 2024's regular season as results bodies, from a server on
    the embedded data (the games it answers are the results it holds)."""
    reference = Server(binary, work, "reference", {})
    days = []
    date = datetime.date(2024, 3, 20)
    try:
        while len(days) < count:
            games = [g for g in reference.get(f"/api/v1/games?date={date}")["games"]
                     if g["phase"] == "regular"]
            if games:
                days.append(games)
            date += datetime.timedelta(days=1)
    finally:
        reference.stop()
    return days


class Writer(threading.Thread):
    """Posts the next day of results every second; a day not acknowledged is posted again a
    quarter of a second later. Keeps what was acknowledged and when posts failed, in seconds
    from `started` (a `time.time()`)."""

    def __init__(self, port, days, started):
        super().__init__(daemon=True)
        self.port, self.days, self.started = port, days, started
        self.acknowledged = []  # (sent, answered: seconds into the run, game ids)
        self.failed = []  # (sent, answered, status or error)
        self.stopping = threading.Event()
        # Held around each post: whoever holds it sees no post in flight.
        self.posting = threading.Lock()

    def post(self, games):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("POST", "/api/v1/admin/results", json.dumps({"results": games}),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status

    def run(self):
        next_day = 0
        while not self.stopping.is_set() and next_day < len(self.days):
            sent = time.time() - self.started
            games = self.days[next_day]
            try:
                with self.posting:
                    status = self.post(games)
            except OSError as error:
                status = type(error).__name__
            at = time.time() - self.started
            if status == 200:
                self.acknowledged.append((sent, at, [g["game_id"] for g in games]))
                next_day += 1
                self.stopping.wait(max(0.0, 1.0 - (at - sent)))
            else:
                # A refused day is posted again soon: the write pause is seen to a quarter
                # of a second.
                self.failed.append((sent, at, status))
                self.stopping.wait(0.25)

    def back_after(self, moment, limit):
        """Seconds from `moment` until a post sent after it was acknowledged; waits up to
        `limit` seconds for one, else None."""
        deadline = time.time() + limit
        while time.time() < deadline:
            back = [at for sent, at, _ in self.acknowledged if sent >= moment]
            if back:
                return back[0] - moment
            time.sleep(0.1)
        return None

    def pause(self, begin, end):
        """The longest writes stopped in [begin, end] (seconds into the run): from the
        first refused post to the next acknowledged one; with none refused, the slowest
        acknowledgement of a post sent then."""
        refused = [(sent, at) for sent, at, _ in self.failed if begin <= sent <= end]
        if refused:
            last = refused[-1][1]
            back = [at for _, at, _ in self.acknowledged if at > last]
            return (back[0] - refused[0][0]) if back else None
        return max((at - sent for sent, at, _ in self.acknowledged if begin <= sent <= end),
                   default=0.0)


def drill(args, work):
    checks, notes, figures = [], [], {}
    lines = pg_ha(work, "up", "--members", "3", "--haproxy", "0", "--archive")
    url, haproxy = lines[-1], lines[-2].removeprefix("haproxy: ")
    data = work / "data"
    data.mkdir()
    for season in range(2010, 2024):
        (data / f"teams-{season}.csv.gz").symlink_to(
            ROOT / "data" / "retrosheet" / f"teams-{season}.csv.gz")
    env = {"BULLPEN__DATABASE__URL": url}
    subprocess.run([args.bin, "import", "--dir", data], cwd=ROOT, check=True,
                   env=dict(os.environ, BULLPEN__TELEMETRY__LEVEL="warn", **env),
                   stdout=subprocess.DEVNULL)
    backup = pg_backup(work, "backup")
    figures["backup_s"] = float(backup[-2].removeprefix("backup_seconds: "))
    p = args.profile
    timeline = Timeline(args, work, "drill-postgres-failover")
    days = days_of_results(args.bin, work, p["seconds"] + 10)
    games = export_ids(args.bin, 2023, work / "2023.csv")
    redis = Redis(work)
    server = Server(args.bin, work, "bullpen", dict(
        env, BULLPEN__FEATURES__STORE="postgres", BULLPEN__PREDICTION_LOG__ENABLED="true",
        BULLPEN__REDIS__ENABLED="true", BULLPEN__REDIS__URL=redis.url))
    try:
        # Scheduled games are drawn for the season after the data's last (2024), between
        # 2023's teams, so within the scheduling horizon of what the cluster holds.
        load = LoadRun(args.bin, f"http://127.0.0.1:{server.port}", work, "load",
                       ["--rate", p["rate"], "--duration", f"{p['seconds']}s", "--games", games,
                        "--mix", "stored=60,scheduled=40,odds=50", *timeline.arguments()],
                       env={"BULLPEN__DATA__DIR": str(data)})
        writer = Writer(server.port, days, started=load.started)
        writer.start()
        time.sleep(max(0.0, p["lead"] - load.at()))

        # 1. The primary lost with its host.
        killed = pg_ha(work, "kill-primary")[-1]
        killed_at = load.at()
        timeline.mark(f"{killed} killed")
        rto = writer.back_after(killed_at, limit=30)
        figures["write_rto_s"] = rto if rto is None else round(rto, 1)
        checks.append((f"result writes back within {WRITE_RTO_GOAL:.0f} s of the kill",
                       rto is not None and rto <= WRITE_RTO_GOAL))
        notes.append(f"killed {killed} at {killed_at:.1f} s; writes back "
                     f"{rto if rto is None else round(rto, 1)} s after the kill")

        # 2. It returns: Patroni rewinds it and it follows the new leader, no manual step.
        started = time.monotonic()
        timeline.mark(f"{killed} started")
        pg_ha(work, "start", killed)
        status = pg_ha(work, "status")
        role = next((line.split()[2] for line in status if line.startswith(killed + " ")), "?")
        figures["rejoin_s"] = round(time.monotonic() - started, 1)
        notes.append(f"{killed} rejoined as {role} after {figures['rejoin_s']} s")
        checks.append(("the old primary rejoins as a replica",
                       role in ("replica", "sync_standby")))

        # 3. A planned switchover (patronictl) to a replica.
        # The switchover's command returns once the new leader runs: it began before.
        switched_at = load.at()
        timeline.mark("switchover")
        leader = pg_ha(work, "switchover")[-1]
        switched = load.at()
        time.sleep(3)  # posts sent up to the switchover's end are answered
        pause = writer.pause(switched_at, switched)
        figures["switchover_write_pause_s"] = pause if pause is None else round(pause, 1)
        notes.append(f"switchover to {leader} at {switched_at:.1f} s; writes paused "
                     f"{pause if pause is None else round(pause, 1)} s")
        checks.append((f"switchover pauses writes at most {SWITCHOVER_PAUSE_GOAL:.0f} s",
                       pause is not None and pause <= SWITCHOVER_PAUSE_GOAL))

        # 4. The moment a restore will go back to: no post in flight, the prices then.
        with writer.posting:
            target = sql(url, "SELECT clock_timestamp()")
            timeline.mark("restore target T")
            before_target = len(writer.acknowledged)
            prices_at_target = prices(server.port, probes(days))
        notes.append(f"restore target T = {target}, after {before_target} acknowledged days")

        report = load.report()
        writer.stopping.set()
        writer.join()
        figures["posts_refused"] = len(writer.failed)
        notes.append(f"posts refused: {len(writer.failed)} "
                     f"({sorted({str(status) for _, _, status in writer.failed})})")
        for name, (begin, end) in (("kill", (killed_at, killed_at + (rto or 0))),
                                   ("switchover", (switched_at, switched_at + (pause or 0)))):
            parts, _ = windows(report, begin, end)
            notes.append(f"predictions around the {name}: "
                         + "; ".join(f"{k} {w.text()}" for k, w in parts.items()))
        _, total = windows(report, 0, 0)
        figures["predictions"], figures["failed_predictions"] = total.requests, total.failed
        if report["errors"]:
            notes.append(f"failed predictions: errors {report['errors']}, "
                         f"statuses {report['status']}")
        checks.append(("no failed prediction", total.failed == 0))
        checks.append(timeline.check())

        prices_at_end = prices(server.port, probes(days))
        # Stop the server (its log flushes), then count on the cluster's primary.
        answered = metric_value(server.port, "bullpen_http_requests_total",
                                ['route="/api/v1/predict"', 'status="200"'])
        server.stop()
        acknowledged = sorted({game for _, _, ids in writer.acknowledged for game in ids})
        present = int(sql(url, "SELECT count(*) FROM games WHERE game_id = ANY('{"
                          + ",".join(acknowledged) + "}')")) if acknowledged else 0
        figures["results_acknowledged"] = len(acknowledged)
        figures["results_missing"] = len(acknowledged) - present
        checks.append(("every acknowledged result on the primary (RPO 0)",
                       present == len(acknowledged) > 0))
        rows = int(sql(url, "SELECT count(*) FROM prediction_log"))
        figures["log_rows"], figures["answered"] = rows, int(answered)
        notes.append(f"prediction log: {rows} rows for {answered:.0f} answers")
        checks.append(("no prediction-log row lost", rows >= answered > 0))
        # HAProxy (deploy/haproxy/postgres.cfg) follows the leader through both moves.
        recovery = sql(haproxy, "SELECT pg_is_in_recovery()")
        notes.append(f"through HAProxy after the moves: pg_is_in_recovery() = {recovery}")
        checks.append(("HAProxy's /primary check reaches the current primary", recovery == "f"))

        # 5. Point-in-time restore to T, beside the cluster.
        restored = pg_backup(work, "restore", "--to", target)
        restored_url = restored[-1]
        figures["restore_s"] = float(restored[-2].removeprefix("restore_seconds: "))
        kept = [ids for _, _, ids in writer.acknowledged[:before_target]]
        dropped = [ids for _, _, ids in writer.acknowledged[before_target:]]

        def present(days_of_ids):
            ids = [game for day in days_of_ids for game in day]
            return int(sql(restored_url, "SELECT count(*) FROM games WHERE game_id = ANY('{"
                           + ",".join(ids) + "}')")) if ids else 0

        figures["results_before_T_restored"] = f"{present(kept)} of {sum(map(len, kept))}"
        figures["results_after_T_restored"] = f"{present(dropped)} of {sum(map(len, dropped))}"
        checks.append(("restored to T: every result acknowledged before T, none after",
                       present(kept) == sum(map(len, kept)) > 0 and dropped
                       and present(dropped) == 0))
        on_restored = Server(args.bin, work, "restored", {
            "BULLPEN__DATABASE__URL": restored_url, "BULLPEN__FEATURES__STORE": "postgres"})
        try:
            restored_prices = prices(on_restored.port, probes(days))
        finally:
            on_restored.stop()
        notes.append(f"prices at T: {prices_at_target}; on the restored database: "
                     f"{restored_prices}; at the end of the run: {prices_at_end}")
        checks.append(("bullpen on the restored database answers as at T (not as at the end)",
                       restored_prices == prices_at_target != prices_at_end))
    finally:
        server.stop()
        redis.stop()
    return checks, notes, figures


class Timeline:
    """A drill's load drawn by `bullpen loadtest --plot`: into docs/ with --write (for
    docs/disaster-recovery.md), else into the work folder; `mark` notes a moment to draw."""

    def __init__(self, args, work, name):
        folder = ROOT / "docs" if args.write else work
        self.svg = folder / f"{name}.svg"
        self.marks = work / f"{name}.marks"
        self.marks.touch()

    def arguments(self):
        return ["--plot", self.svg, "--plot-marks", self.marks]

    def mark(self, label):
        with open(self.marks, "a") as out:
            out.write(f"{time.time()} {label}\n")

    def check(self):
        drawn = self.svg.exists() and self.svg.read_text().startswith("<svg")
        return (f"the timeline drawn ({self.svg.name})", drawn)


def markdown(title, setup, checks, notes, figures):
    """A drill's section of BENCHMARKS.md: how it ran, its figures, notes and goals."""
    lines = [
        f"## {title}, {datetime.date.today()}",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}; {setup}",
        "",
        "| figure | measured |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in figures.items()]
    lines += ["", *[f"- {note}" for note in notes],
              *[f"- {'held' if ok else 'MISSED'}: {name}" for name, ok in checks], ""]
    return "\n".join(lines)


def run_drill(drill, title, setup, bench, quick, cleanup=lambda work: None):
    """A drill's whole run: its command line (--bin; --bench for the `bench` profile instead
    of `quick`; --write to append the report to BENCHMARKS.md), a temp folder for
    `drill(args, work)` (handed to `cleanup`, then removed), and the report, with
    `setup(args)` saying how it ran. Returns the exit status: 0 when every goal held."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=str(ROOT / "target" / "release" / "bullpen"))
    parser.add_argument("--bench", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    args.profile = bench if args.bench else quick
    work = Path(tempfile.mkdtemp(prefix="bullpen-drill-"))
    # The postgres user (a Patroni member) reaches its folders through this one.
    work.chmod(0o755)
    try:
        checks, notes, figures = drill(args, work)
    finally:
        cleanup(work)
        shutil.rmtree(work, ignore_errors=True)
    text = markdown(title, setup(args), checks, notes, figures)
    print(text)
    if args.write:
        with open(ROOT / "BENCHMARKS.md", "a") as out:
            out.write("\n" + text)
    return 0 if all(ok for _, ok in checks) else 1


def stop_cluster(work):
    for script, command in ((PG_BACKUP, "stop"), (PG_HA, "down")):
        subprocess.run([sys.executable, script, "--dir", work / "pg", command],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    # The load lasts long enough for the kill, the return and the switchover, then some.
    return run_drill(
        drill, "PostgreSQL failover under load", lambda args: (
            f"`tests/ha.py{' --bench' if args.bench else ''}`: a 3-member Patroni cluster "
            "(`scripts/pg-ha`, synchronous mode, ttl 10 s), one bullpen replica on its "
            "multi-host URL (`target_session_attrs=read-write`; PostgreSQL feature store, "
            f"prediction log, Redis), `bullpen loadtest` open loop at {args.profile['rate']} "
            "req/s (60 % stored, 40 % scheduled, half with odds), a day of 2024 results "
            "posted every second; the primary SIGKILLed with its Patroni, started again, then "
            "a planned switchover; WAL archived with pgBackRest from the start "
            "(`scripts/pg-ha up --archive`), a full backup after the import "
            "(`scripts/pg-backup backup`), and after the run a restore to a moment T after "
            "the moves (`scripts/pg-backup restore --to T`)."),
        bench={"rate": 500, "lead": 20, "seconds": 90},
        quick={"rate": 100, "lead": 8, "seconds": 50},
        cleanup=stop_cluster)


if __name__ == "__main__":
    sys.exit(main())
