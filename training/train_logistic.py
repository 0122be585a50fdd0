#!/usr/bin/env python3
"""Train a logistic regression on the same features as the LightGBM model, for a second
version to roll out beside it (canary, shadow), and export it to ONNX.

The same data, split and holdout as train.py: the regularisation strength C is chosen on the
last --validation-seasons training seasons (fit on the ones before), the model is refit on
every training season, and the --holdout season is looked at only for the final evaluation.

--shuffle-labels trains the same way on home-win labels shuffled within each training
season: a real model of the same shape that has learnt nothing, used by the rollback-guard
test (never shipped under models/).

Writes into --out-dir: model.onnx, manifest.json, REPORT.md and calibration.png.
"""

import argparse
import datetime as dt
import json
import os
import platform

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import sklearn
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from train import MARKET, SEED, calibration_table, metrics, paired_se, plot_calibration

C_GRID = [0.001, 0.01, 0.1, 1.0, 10.0]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="CSV from `bullpen features export`")
    parser.add_argument("--spec", required=True, help="JSON from `bullpen features spec`")
    parser.add_argument("--out-dir", required=True, help="models/<name>/<version>")
    parser.add_argument("--name", default="home_win")
    parser.add_argument("--version", default="2")
    parser.add_argument("--baseline", default="models/home_win/1", help="the version this one is compared with")
    parser.add_argument("--first-train-season", type=int, default=2010)
    parser.add_argument("--last-train-season", type=int, default=2023)
    parser.add_argument("--validation-seasons", type=int, default=3)
    parser.add_argument("--holdout", type=int, default=2024)
    parser.add_argument("--shuffle-labels", action="store_true")
    return parser.parse_args()


def logistic(c):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=SEED))


def export_onnx(model, n_features, path):
    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={id(model.steps[-1][1]): {"zipmap": False}},
        target_opset=15,
    )
    for value in list(onx.graph.input) + list(onx.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "N"
    onx.graph.name = "home_win_logistic"
    onnx.checker.check_model(onx)
    onnx.save(onx, path)
    names = {o.name for o in onx.graph.output}
    assert "probabilities" in names, names
    return "input", "probabilities"


def main():
    args = parse_args()
    spec = json.load(open(args.spec))
    names = spec["names"]
    table = pd.read_csv(args.table)
    train = table[(table.season >= args.first_train_season) & (table.season <= args.last_train_season)].copy()
    holdout = table[table.season == args.holdout]
    if args.shuffle_labels:
        rng = np.random.default_rng(SEED)
        train["home_win"] = train.groupby("season")["home_win"].transform(lambda s: rng.permutation(s.to_numpy()))
    first_val = args.last_train_season - args.validation_seasons + 1
    fit, val = train[train.season < first_val], train[train.season >= first_val]
    x = lambda df: df[names].to_numpy(dtype=np.float32)  # noqa: E731
    y = lambda df: df["home_win"].to_numpy(dtype=np.int64)  # noqa: E731

    grid = []
    for c in C_GRID:
        p = logistic(c).fit(x(fit), y(fit)).predict_proba(x(val))[:, 1]
        grid.append({"C": c, **metrics(y(val), p)})
        print(f"  C={c} log_loss={grid[-1]['log_loss']:.5f}")
    best = min(grid, key=lambda r: r["log_loss"])["C"]
    model = logistic(best).fit(x(train), y(train))

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "model.onnx")
    input_name, output_name = export_onnx(model, len(names), onnx_path)

    xh, yh = x(holdout), y(holdout)
    p_model = model.predict_proba(xh)[:, 1]
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    p_onnx = session.run([output_name], {input_name: xh})[0][:, 1]
    onnx_max_diff = float(np.max(np.abs(p_onnx - p_model)))
    print(f"ONNX vs scikit-learn on {len(xh)} holdout games: max |diff| = {onnx_max_diff:.3e}")

    baseline = ort.InferenceSession(os.path.join(args.baseline, "model.onnx"), providers=["CPUExecutionProvider"])
    p_base = baseline.run(["probabilities"], {"input": xh})[0][:, 1]
    base_label = os.path.basename(os.path.dirname(os.path.abspath(args.baseline)))
    base_label = f"{base_label}@{os.path.basename(os.path.abspath(args.baseline))}"
    home_rate = float(y(train).mean())
    rows = {
        "Logistic regression (this model)": metrics(yh, p_model),
        f"{base_label} (LightGBM)": metrics(yh, p_base),
        "Elo rating alone": metrics(yh, holdout["elo_home_win_prob"].to_numpy()),
        f"Always home ({home_rate:.3f}, training home-win rate)": metrics(yh, np.full(len(yh), home_rate)),
    }

    edges = np.array([0.0, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 1.0])
    plot_calibration(
        yh,
        {"Logistic regression": p_model, base_label: p_base},
        edges,
        os.path.join(args.out_dir, "calibration.png"),
        f"Calibration, {args.holdout} regular season ({len(yh)} games)",
    )

    algorithm = f"logistic regression (scikit-learn {sklearn.__version__}), standardised inputs"
    manifest = {
        "name": args.name,
        "version": args.version,
        "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "model_file": "model.onnx",
        "feature_spec": {"version": spec["version"], "names": names},
        "input": input_name,
        "output": output_name,
        "training": {
            "algorithm": algorithm + (", labels shuffled within each season" if args.shuffle_labels else ""),
            "seasons": list(range(args.first_train_season, args.last_train_season + 1)),
            "rows": int(len(train)),
            "params": {"C": best},
            "selection": f"C chosen on {first_val}-{args.last_train_season}, fit on {args.first_train_season}-{first_val - 1}",
        },
        "metrics": {"holdout_season": args.holdout, "games": int(len(yh)),
                    **rows["Logistic regression (this model)"], "onnx_max_abs_diff": onnx_max_diff},
    }
    json.dump(manifest, open(os.path.join(args.out_dir, "manifest.json"), "w"), indent=2)

    m, b = rows["Logistic regression (this model)"], rows[f"{base_label} (LightGBM)"]
    se = paired_se(yh, p_model, p_base)
    lines = [
        f"# {args.name}@{args.version}: evaluation on the {args.holdout} regular season",
        "",
        f"A {algorithm} on the same {len(names)} features (spec `{spec['version']}`) as {base_label}, "
        f"trained on {args.first_train_season}–{args.last_train_season} ({len(train)} games); "
        f"C = {best} chosen on {first_val}–{args.last_train_season}, then refit on every training season. "
        f"The {args.holdout} season ({len(yh)} games) was held out."
        + (" **Labels were shuffled within each training season: this model has learnt nothing, on purpose.**"
           if args.shuffle_labels else ""),
        "",
        "| predictor | log loss | Brier | accuracy | AUC |",
        "|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        lines.append(f"| {label} | {r['log_loss']:.4f} | {r['brier']:.4f} | {r['accuracy']:.3f} | {r['auc']:.3f} |")
    lines.append(f"| Betting market, MLB 2009–2025 (published, for reference) | {MARKET['log_loss']:.3f} | "
                 f"{MARKET['brier']:.3f} | {MARKET['accuracy']:.3f} | – |")
    lines += [
        "",
        "## Reading it",
        "",
        f"- Against {base_label} on the same games: Brier {m['brier'] - b['brier']:+.4f}, log loss "
        f"{m['log_loss'] - b['log_loss']:+.4f} (paired standard error of the Brier difference {se:.4f}: "
        + ("within two standard errors, so one season cannot tell the two apart)."
           if abs(m["brier"] - b["brier"]) < 2 * se else "more than two standard errors)."),
        "- A canary of this version against it, compared by bullpen's rollback guard on the same games, "
        "should see a paired Brier difference of that size.",
        f"- ONNX export reproduces scikit-learn on all {len(yh)} holdout games: max |difference| {onnx_max_diff:.2e}.",
        "",
        "## Calibration (holdout)",
        "",
        "| predicted range | games | mean predicted | observed home-win rate |",
        "|---|---|---|---|",
    ]
    for lo, hi, n, mean_p, obs in calibration_table(yh, p_model, edges):
        lines.append(f"| {lo:.2f}–{hi:.2f} | {n} | {mean_p:.3f} | {obs:.3f} |")
    lines += ["", "![calibration](calibration.png)", "", "## Choosing C", "",
              "| C | val log loss | val Brier |", "|---|---|---|"]
    for r in grid:
        lines.append(f"| {r['C']} | {r['log_loss']:.5f} | {r['brier']:.5f} |")
    lines += ["", f"Produced by `training/train_logistic.py` (python {platform.python_version()}, scikit-learn "
              f"{sklearn.__version__}, onnxruntime {ort.__version__}) on {manifest['created_at']}.", ""]
    open(os.path.join(args.out_dir, "REPORT.md"), "w").write("\n".join(lines))
    print(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main()
