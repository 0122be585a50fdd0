#!/usr/bin/env python3
"""Cache affinity (issue 28): three replicas behind HAProxy (deploy/haproxy/bullpen.cfg),
each keeping fewer answers in memory than the working set (`cache.predictions_max_entries`
below two seasons of games), asked every game of 2023 and 2024 by
`GET /api/v1/games/{id}/prediction` (`bullpen loadtest --mix get=100`, closed loop), through
two front ends in turn: round robin, and the file's consistent hash on the game
(`balance hash`, `hash-balance-factor 150`). Each run starts cold (every cache dropped on
every replica). Once with Redis as the shared tier (L2), once without.

Per run: inferences per distinct game (`bullpen_predictions_total{tier="computed"}` over the
replicas), the share of answers from a replica's own memory (tier `memory`), answers read
from Redis, throughput and p99.

Judged: with hashing about one inference per game (at most 1.2), with and without Redis;
the memory share up with hashing. Throughput is reported (medians over the rounds and the
ratio), judged only in the bench.

    tests/affinity.py                  # CI: one round of 10 s a run, about a minute and a half
    tests/affinity.py --bench --write  # three rounds of 20 s; figures appended to BENCHMARKS.md

Exit status: 0 every goal held, 1 one missed.
"""

import json
import statistics
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults import Cluster, LoadRun, Redis, export_ids, metric_value  # noqa: E402
from ha import run_drill  # noqa: E402
from lb import FrontEnd  # noqa: E402

SEASONS = (2023, 2024)
# Below the two seasons' 4,900 games; above a third of them, what hashing leaves a replica.
MEMORY = 2000
USERS = 16
INFERENCES_GOAL = 1.2
TIERS = ("computed", "memory", "redis")


def games_file(binary, work):
    """Every game id of SEASONS, one column."""
    ids = []
    for season in SEASONS:
        path = export_ids(binary, season, work / f"{season}.csv")
        with open(path) as table:
            header = table.readline().rstrip("\n").split(",")
            column = header.index("game_id")
            ids += [line.split(",")[column] for line in table if line.strip()]
    path = work / "games.csv"
    path.write_text("game_id\n" + "\n".join(ids) + "\n")
    return path, len(set(ids))


def answers(ports):
    """Answers so far by where they came from, summed over the replicas."""
    return {tier: sum(metric_value(port, "bullpen_predictions_total", [f'tier="{tier}"'])
                      for port in ports) for tier in TIERS}


def drop_caches(ports):
    """Every cached answer dropped on every replica (and in Redis): a cold start."""
    for port in ports:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/admin/cache/invalidate",
            data=json.dumps({"pattern": "*"}).encode(),
            headers={"content-type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=10).read()


def measure(args, work, cluster, games, distinct, label):
    """Round robin and hashing in turn, `rounds` times, each from cold."""
    p = args.profile
    ports = cluster.ports()
    fronts = {"round robin": FrontEnd(cluster, f"rr-{label}", "roundrobin", agent=True,
                                      affinity=False),
              "hash on the game": None}
    runs = {name: [] for name in fronts}
    try:
        for round_ in range(p["rounds"]):
            for name, front in fronts.items():
                drop_caches(ports)
                before = answers(ports)
                url = front.url if front else cluster.url
                load = LoadRun(args.bin, url, work, f"{label}-{name}-{round_}".replace(" ", "-"),
                               ["--users", USERS, "--duration", f"{p['seconds']}s",
                                "--mix", "get=100", "--games", games])
                report = load.report()
                after = answers(ports)
                delta = {tier: after[tier] - before[tier] for tier in TIERS}
                total = sum(delta.values()) or 1
                runs[name].append({
                    "inferences": delta["computed"] / distinct,
                    "memory": delta["memory"] / total,
                    "redis": delta["redis"] / total,
                    "rps": report["achieved_rps"],
                    "p99": report["latency_ms"]["p99"],
                    "failed": report["failed"],
                })
    finally:
        for front in fronts.values():
            if front:
                front.stop()
    return {name: {key: statistics.median(run[key] for run in rounds) for key in rounds[0]}
            | {"failed": sum(run["failed"] for run in rounds)}
            for name, rounds in runs.items()}


def drill(args, work):
    checks, notes, figures = [], [], {}
    games, distinct = games_file(args.bin, work)
    notes.append(f"{distinct} distinct games; each replica keeps {MEMORY} answers in memory")
    redis = Redis(work)
    for label, settings in (("with Redis", []), ("without Redis", ["redis.enabled=false"])):
        cluster = Cluster(work, args.bin, redis, balancer="haproxy", settings=[
            f"cache.predictions_max_entries={MEMORY}", *settings])
        try:
            medians = measure(args, work, cluster, games, distinct,
                              label.replace(" ", "-"))
        finally:
            cluster.stop()
        rr, hashed = medians["round robin"], medians["hash on the game"]
        for name, m in medians.items():
            figures[f"{label}, {name}: inferences per game"] = round(m["inferences"], 2)
            figures[f"{label}, {name}: answers from memory"] = f"{m['memory']:.0%}"
            figures[f"{label}, {name}: answers from Redis"] = f"{m['redis']:.0%}"
            figures[f"{label}, {name}: req/s, p99 ms"] = f"{m['rps']:.0f}, {m['p99']:.1f}"
            figures[f"{label}, {name}: failed"] = m["failed"]
        ratio = hashed["rps"] / rr["rps"] if rr["rps"] else 0
        figures[f"{label}: throughput, hashing / round robin"] = round(ratio, 2)
        checks.append((f"{label}: hashing computes at most {INFERENCES_GOAL} inferences per game",
                       hashed["inferences"] <= INFERENCES_GOAL))
        checks.append((f"{label}: more answers from memory with hashing",
                       hashed["memory"] > rr["memory"]))
        checks.append((f"{label}: no failed request", rr["failed"] + hashed["failed"] == 0))
        if args.bench:
            checks.append((f"{label}: throughput up with hashing", ratio > 1))
    redis.stop()
    return checks, notes, figures


def main():
    return run_drill(
        drill, "Cache affinity: round robin against hashing on the game", lambda args: (
            f"`tests/affinity.py{' --bench' if args.bench else ''}`: three replicas behind "
            f"HAProxy, each keeping {MEMORY} answers in memory "
            f"(`cache.predictions_max_entries`), every stored game of "
            f"{SEASONS[0]}–{SEASONS[-1]} asked by `GET /api/v1/games/{{id}}/prediction` "
            f"(`bullpen loadtest --mix get=100 --users {USERS}`, {args.profile['seconds']} s a "
            "run) through round robin and through deploy/haproxy/bullpen.cfg's consistent hash "
            f"on the game, each from cold, {args.profile['rounds']} round(s), medians; with "
            "Redis as the shared tier, then without."),
        bench={"seconds": 20, "rounds": 3},
        quick={"seconds": 10, "rounds": 1})


if __name__ == "__main__":
    sys.exit(main())
