#!/usr/bin/env python3
"""The client of benches/season.sh: the 2024 regular season posted day by day to a server
that started from the data through 2023.

    season-client.py REFERENCE_PORT PORT [OTHER_PORT]

REFERENCE_PORT is a server on the full data: each day's results are read from its
`GET /api/v1/games?date=`, and the correct price of each game is its answer by game id (its
features are computed from every game before the game's date, which is what the replayed
server knows once the day before is posted). For each day: the next day's games are asked of
the replayed server (and OTHER_PORT, a second replica) first, so the results must drop
them; the day's results are posted to PORT; then the next day's first game is asked of PORT
until it is correct, and of OTHER_PORT likewise. Prints one JSON object of medians and 95th
percentiles in ms. Fails on any answer but 200, and on a wrong price after 5 s.
"""
import datetime
import http.client
import json
import statistics
import sys
import time

REFERENCE, PORT = int(sys.argv[1]), int(sys.argv[2])
OTHER = int(sys.argv[3]) if len(sys.argv) > 3 else None


def connect(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def call(connection, method, path, body=None):
    connection.request(method, path, json.dumps(body) if body is not None else None,
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200:
        sys.exit(f"{method} {path}: {response.status} {payload[:300]!r}")
    return json.loads(payload)


reference, server = connect(REFERENCE), connect(PORT)
other = connect(OTHER) if OTHER else None
# Every regular-season date of 2024, from the reference's games.
days = []
date = datetime.date(2024, 3, 20)
while date <= datetime.date(2024, 9, 30):
    games = [g for g in call(reference, "GET", f"/api/v1/games?date={date}")["games"]
             if g["phase"] == "regular"]
    if games:
        days.append((date, games))
    date += datetime.timedelta(days=1)


def scheduled(game):
    return {"game": {"home": game["home"]["team"], "away": game["away"]["team"],
                     "date": game["date"], "number": game["number"]}}


def price(connection, game):
    return call(connection, "POST", "/api/v1/predict", scheduled(game))["home_win_probability"]


def until_correct(connection, game, want, started):
    while True:
        if abs(price(connection, game) - want) <= 1e-6:
            return (time.perf_counter() - started) * 1000
        if time.perf_counter() - started > 5:
            sys.exit(f"{game['game_id']}: no correct price 5 s after the results")


post_ms, same_ms, other_ms, dropped = [], [], [], 0
for (date, games), (_, tomorrow) in zip(days, days[1:]):
    # The next day's games cached before their features change.
    for connection in filter(None, (server, other)):
        call(connection, "POST", "/api/v1/predict/batch",
             {"items": [scheduled(game) for game in tomorrow]})
    first = tomorrow[0]
    want = call(reference, "POST", "/api/v1/predict", {"game_id": first["game_id"]})
    want = want["home_win_probability"]
    before = price(server, first)
    started = time.perf_counter()
    outcome = call(server, "POST", "/api/v1/admin/results", {"results": games})
    post_ms.append((time.perf_counter() - started) * 1000)
    if len(outcome["added"]) != len(games):
        sys.exit(f"{date}: {outcome}")
    same_ms.append(until_correct(server, first, want, started))
    if other:
        other_ms.append(until_correct(other, first, want, started))
    dropped += before != want


def summary(values):
    values = sorted(values)
    if not values:
        return None
    return {"p50": round(statistics.median(values), 2),
            "p95": round(values[int(0.95 * (len(values) - 1))], 2)}


print(json.dumps({
    "days": len(post_ms),
    "results": sum(len(games) for _, games in days[:-1]),
    "results_per_day_p50": statistics.median(len(games) for _, games in days[:-1]),
    "post_ms": summary(post_ms),
    "first_correct_same_ms": summary(same_ms),
    "first_correct_other_ms": summary(other_ms),
    "cached_prices_changed": dropped,
}))
