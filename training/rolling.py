#!/usr/bin/env python3
"""Rolling-origin comparison of two feature specs on the same games.

For each test season, LightGBM is trained as train.py trains a model, on every regular
season before it: parameters chosen by train.py's grid on the last three of them (fit on the
ones before), then refit on all of them. Once on the baseline spec's features and once on the
candidate's; both score the test season. Per season: Brier and log loss of each, and the paired Brier difference
(candidate − baseline) with its standard error; pooled over every test game the same.

Used by train.py (--baseline-spec) for the REPORT, or alone:
    rolling.py --table games.csv --spec spec-v2.json --baseline-spec spec-v1.json
"""

import argparse
import json

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss

# 2020 (60 games, no fans) is no test season; 2024 stays held out.
TEST_SEASONS = [2016, 2017, 2018, 2019, 2021, 2022, 2023]


def fit(train, cols, validation_seasons=3):
    """train.py's procedure on `train`: grid on its last seasons, refit on all of it."""
    from train import choose_params, lgb_params  # noqa: PLC0415 (train.py imports this module)

    first_val = train.season.max() - validation_seasons + 1
    fit_part, val = train[train.season < first_val], train[train.season >= first_val]
    x_of = lambda df: df[cols].to_numpy(dtype=np.float32)  # noqa: E731
    y_of = lambda df: df["home_win"].to_numpy(dtype=np.int64)  # noqa: E731
    params, trees, _ = choose_params(x_of(fit_part), y_of(fit_part), x_of(val), y_of(val), quiet=True)
    final = lgb_params(**params)
    final["n_estimators"] = max(1, round(trees * len(train) / len(fit_part)))
    return lgb.LGBMClassifier(**final).fit(x_of(train), y_of(train))


def compare(table, names, baseline_names, seasons=TEST_SEASONS, first=2010):
    """Rows per test season and pooled, as dicts."""
    y_of = lambda df: df["home_win"].to_numpy(dtype=np.int64)  # noqa: E731
    rows, diffs, pooled = [], [], {"y": [], "base": [], "cand": []}
    for season in seasons:
        train = table[(table.season >= first) & (table.season < season)]
        test = table[table.season == season]
        probs = {}
        for label, cols in (("base", baseline_names), ("cand", names)):
            model = fit(train, cols)
            probs[label] = model.predict_proba(test[cols].to_numpy(dtype=np.float32))[:, 1]
        y = y_of(test)
        d = (probs["cand"] - y) ** 2 - (probs["base"] - y) ** 2
        diffs.append(d)
        for key, value in (("y", y), ("base", probs["base"]), ("cand", probs["cand"])):
            pooled[key].append(value)
        rows.append(row(str(season), y, probs["base"], probs["cand"], d))
        print(f"  {season}: Brier {rows[-1]['base_brier']:.4f} -> {rows[-1]['cand_brier']:.4f} "
              f"({rows[-1]['diff']:+.4f} ± {rows[-1]['se']:.4f})")
    y = np.concatenate(pooled["y"])
    rows.append(row("pooled", y, np.concatenate(pooled["base"]), np.concatenate(pooled["cand"]),
                    np.concatenate(diffs)))
    return rows


def row(label, y, base, cand, d):
    clip = lambda p: np.clip(p, 1e-7, 1 - 1e-7)  # noqa: E731
    return {
        "season": label,
        "games": int(len(y)),
        "base_brier": float(brier_score_loss(y, base)),
        "cand_brier": float(brier_score_loss(y, cand)),
        "base_log_loss": float(log_loss(y, clip(base), labels=[0, 1])),
        "cand_log_loss": float(log_loss(y, clip(cand), labels=[0, 1])),
        "diff": float(d.mean()),
        "se": float(d.std(ddof=1) / np.sqrt(len(d))),
    }


def markdown(rows, base_label, cand_label):
    lines = [
        f"| test season | games | Brier {base_label} | Brier {cand_label} | log loss {base_label} "
        f"| log loss {cand_label} | Brier difference ± SE |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        bold = "**" if r["season"] == "pooled" else ""
        lines.append(
            f"| {bold}{r['season']}{bold} | {r['games']} | {r['base_brier']:.4f} | {r['cand_brier']:.4f} "
            f"| {r['base_log_loss']:.4f} | {r['cand_log_loss']:.4f} "
            f"| {bold}{r['diff']:+.4f} ± {r['se']:.4f}{bold} |"
        )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--baseline-spec", required=True)
    args = parser.parse_args()

    table = pd.read_csv(args.table)
    spec, base = json.load(open(args.spec)), json.load(open(args.baseline_spec))
    rows = compare(table, spec["names"], base["names"])
    print("\n".join(markdown(rows, base["version"], spec["version"])))


if __name__ == "__main__":
    main()
