#!/usr/bin/env python3
"""The client of benches/scheduled.sh: scheduled games nobody asked for before (cold: each
(home, away, date) once), as a hostile client would send them.

    scheduled-client.py PORT IDS_FILE SECONDS

Prints one JSON object: the latency of 200 cold scheduled games asked one at a time; the
throughput, median latency and failures of 8 clients asking cold scheduled games for SECONDS, and the
median latency of cached stored games asked meanwhile by a ninth client; the time of one
batch of 64 cold scheduled games (or its status when it fails). Fails on any other answer
but 200.
"""
import http.client
import itertools
import json
import statistics
import sys
import threading
import time

PORT, IDS, SECONDS = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
ids = [line.strip() for line in open(IDS) if line.strip()]
teams = sorted({game_id[:3] for game_id in ids})
dates = sorted({f"{i[3:7]}-{i[7:9]}-{i[9:11]}" for i in ids})
# Every (date, home, away) once, in an order that spreads dates: all cold.
combos = (
    (date, home, away)
    for offset in itertools.count()
    for date in dates[offset % 7::7]
    for home, away in zip(teams, teams[offset % (len(teams) - 1) + 1:] + teams)
    if home != away
)
lock = threading.Lock()


def next_game():
    with lock:
        date, home, away = next(combos)
    return {"game": {"home": home, "away": away, "date": date}}


def send(connection, path, body):
    """The answer's status and latency in ms."""
    started = time.perf_counter()
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    return response.status, (time.perf_counter() - started) * 1000, payload


def post(connection, path, body):
    status, latency, payload = send(connection, path, body)
    if status != 200:
        sys.exit(f"{path} {body}: {status} {payload[:300]!r}")
    return latency


def connect():
    return http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main():
    connection = connect()
    # Warm what is not the scheduled path: the connection, and the in-memory games.
    post(connection, "/api/v1/predict", next_game())
    alone = [post(connection, "/api/v1/predict", next_game()) for _ in range(200)]

    cached_ids = ids[:50]
    for game_id in cached_ids:
        post(connection, "/api/v1/predict", {"game_id": game_id})
    stop = time.monotonic() + SECONDS
    cold, cached = [], []

    failed = []

    def cold_client():
        # Under this load a slow build answers 503 (timed out) and closes the connection:
        # counted, and the client reconnects.
        own = connect()
        while time.monotonic() < stop:
            try:
                status, latency, _ = send(own, "/api/v1/predict", next_game())
            except OSError:
                own = connect()
                status, latency = "closed", None
            with lock:
                if status == 200:
                    cold.append(latency)
                else:
                    failed.append(status)

    def cached_client():
        own = connect()
        for game_id in itertools.cycle(cached_ids):
            if time.monotonic() >= stop:
                return
            cached.append(post(own, "/api/v1/predict", {"game_id": game_id}))

    threads = [threading.Thread(target=cold_client) for _ in range(8)]
    threads.append(threading.Thread(target=cached_client))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The batch may time out (503): its status is part of the answer.
    batch = {"items": [next_game() for _ in range(64)]}
    try:
        status, batch_ms, _ = send(connection, "/api/v1/predict/batch", batch)
    except OSError:
        connection = connect()
        status, batch_ms, _ = send(connection, "/api/v1/predict/batch", batch)
    print(json.dumps({
        "cold_p50_ms": round(statistics.median(alone), 2),
        "cold_p99_ms": round(percentile(alone, 0.99), 2),
        "clients8_rps": round(len(cold) / SECONDS, 1),
        "clients8_failed": len(failed),
        "clients8_p50_ms": round(statistics.median(cold), 2),
        "cached_meanwhile_p50_ms": round(statistics.median(cached), 2),
        "batch64_cold_ms": round(batch_ms, 1) if status == 200 else f"{status} after {batch_ms:.0f}",
    }))


if __name__ == "__main__":
    main()
