#!/usr/bin/env python3
"""Train bullpen's home-win model on real MLB games and export it to ONNX.

Input is the table written by `bullpen features export` and the spec printed by
`bullpen features spec`. Seasons up to --last-train-season train the model; the
--holdout season is never looked at until the final evaluation. Hyper-parameters are chosen
on the last --validation-seasons training seasons (trained on the ones before them), then the
model is refit on every training season.

Writes into --out-dir: model.onnx, manifest.json, parity.json (a few holdout games with their
features and probabilities, for the Rust test), REPORT.md and calibration.png. With
--baseline-spec (a spec whose features are a subset of the table's), the REPORT also compares
the two specs: rolling-origin over earlier seasons (rolling.py) and on the holdout, and lists
the features that carry the model's signal.
"""

import argparse
import datetime as dt
import itertools
import json
import os
import platform

import lightgbm as lgb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxmltools  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pandas as pd  # noqa: E402
from onnxmltools.convert.common.data_types import FloatTensorType  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

SEED = 20240328
# Published closing-line figures for MLB 2009-2025, quoted for reference (not recomputed here).
MARKET = {"accuracy": 0.586, "brier": 0.239, "log_loss": 0.671}
PARITY_GAMES = 8
GRID = {
    "num_leaves": [2, 4, 8, 16],
    "min_child_samples": [100, 400],
    "learning_rate": [0.02],
    "reg_lambda": [1.0, 10.0],
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="CSV from `bullpen features export`")
    parser.add_argument("--spec", required=True, help="JSON from `bullpen features spec`")
    parser.add_argument("--out-dir", required=True, help="models/<name>/<version>")
    parser.add_argument("--name", default="home_win")
    parser.add_argument("--version", default="1")
    parser.add_argument("--first-train-season", type=int, default=2010)
    parser.add_argument("--last-train-season", type=int, default=2023)
    parser.add_argument("--validation-seasons", type=int, default=3)
    parser.add_argument("--holdout", type=int, default=2024)
    parser.add_argument("--baseline-spec", help="JSON of a spec to compare against (e.g. v1 for a v2 model)")
    return parser.parse_args()


def metrics(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return {
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "auc": float(roc_auc_score(y, p)) if len(set(y)) == 2 else float("nan"),
    }


def lgb_params(**grid_point):
    return dict(
        objective="binary",
        n_estimators=3000,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        random_state=SEED,
        deterministic=True,
        force_row_wise=True,
        n_jobs=2,
        verbose=-1,
        **grid_point,
    )


def choose_params(x_fit, y_fit, x_val, y_val, quiet=False):
    """Grid search with early stopping on the validation seasons; returns (params, trees, table)."""
    rows = []
    for values in itertools.product(*GRID.values()):
        point = dict(zip(GRID.keys(), values))
        model = lgb.LGBMClassifier(**lgb_params(**point))
        model.fit(
            x_fit, y_fit,
            eval_X=(x_val,),
            eval_y=(y_val,),
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(200, verbose=False)],
        )
        trees = model.best_iteration_
        p = model.predict_proba(x_val, num_iteration=trees)[:, 1]
        rows.append({**point, "trees": trees, **metrics(y_val, p)})
        if not quiet:
            print(f"  {point} trees={trees} log_loss={rows[-1]['log_loss']:.5f}")
    best = min(rows, key=lambda r: r["log_loss"])
    params = {k: best[k] for k in GRID}
    return params, best["trees"], rows


def export_onnx(model, n_features, path):
    onx = onnxmltools.convert_lightgbm(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        zipmap=False,
        target_opset=15,
    )
    # onnxmltools fixes the batch dimension of `label` to 1; name it so any batch size is
    # declared (ONNX Runtime otherwise warns on every batch).
    for value in list(onx.graph.input) + list(onx.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "N"
    onx.graph.name = "home_win"  # the converter picks a random name; keep exports reproducible
    onnx.checker.check_model(onx)
    onnx.save(onx, path)
    names = {o.name for o in onx.graph.output}
    assert "probabilities" in names, names
    return "input", "probabilities"


def calibration_table(y, p, edges):
    out = []
    idx = np.digitize(p, edges[1:-1])
    for b in range(len(edges) - 1):
        mask = idx == b
        if mask.sum() == 0:
            continue
        out.append((edges[b], edges[b + 1], int(mask.sum()), float(p[mask].mean()), float(y[mask].mean())))
    return out


def plot_calibration(y, series, edges, path, title):
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0.1, 0.9], [0.1, 0.9], color="grey", linestyle="--", label="perfect calibration")
    for label, p in series.items():
        table = calibration_table(y, p, edges)
        ax.plot([r[3] for r in table], [r[4] for r in table], marker="o", label=label)
        for lo, hi, n, mean_p, obs in table:
            ax.annotate(str(n), (mean_p, obs), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlim(0.1, 0.9)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("predicted P(home win)")
    ax.set_ylabel("observed home-win rate")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    args = parse_args()
    spec = json.load(open(args.spec))
    names = spec["names"]
    table = pd.read_csv(args.table)
    missing = [n for n in names if n not in table.columns]
    assert not missing, f"table lacks spec features {missing}"
    assert not table[names + ["home_win"]].isna().any().any(), "table has missing values"

    train = table[(table.season >= args.first_train_season) & (table.season <= args.last_train_season)]
    holdout = table[table.season == args.holdout]
    assert len(holdout), f"no {args.holdout} games in {args.table}"
    first_val = args.last_train_season - args.validation_seasons + 1
    fit, val = train[train.season < first_val], train[train.season >= first_val]
    x = lambda df: df[names].to_numpy(dtype=np.float32)  # noqa: E731
    y = lambda df: df["home_win"].to_numpy(dtype=np.int64)  # noqa: E731

    print(f"choosing parameters: fit {fit.season.min()}-{fit.season.max()} ({len(fit)} games), "
          f"validate {val.season.min()}-{val.season.max()} ({len(val)} games)")
    params, trees, grid = choose_params(x(fit), y(fit), x(val), y(val))
    # Refit on every training season with proportionally more trees for the extra data.
    trees = max(1, round(trees * len(train) / len(fit)))
    print(f"refit on {args.first_train_season}-{args.last_train_season} ({len(train)} games): {params}, {trees} trees")
    final = lgb_params(**params)
    final["n_estimators"] = trees
    model = lgb.LGBMClassifier(**final).fit(x(train), y(train))

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "model.onnx")
    input_name, output_name = export_onnx(model, len(names), onnx_path)

    # Everything below looks at the holdout season for the first time.
    xh, yh = x(holdout), y(holdout)
    p_model = model.predict_proba(xh)[:, 1]
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    p_onnx = session.run([output_name], {input_name: xh})[0][:, 1]
    onnx_max_diff = float(np.max(np.abs(p_onnx - p_model)))
    print(f"ONNX vs LightGBM on {len(xh)} holdout games: max |diff| = {onnx_max_diff:.3e}")

    home_rate = float(y(train).mean())
    logistic = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(x(train), y(train))
    rows = {
        "LightGBM (this model)": metrics(yh, p_model),
        "Logistic regression, same features": metrics(yh, logistic.predict_proba(xh)[:, 1]),
        "Elo rating alone": metrics(yh, holdout["elo_home_win_prob"].to_numpy()),
        f"Always home ({home_rate:.3f}, training home-win rate)": metrics(yh, np.full(len(yh), home_rate)),
    }

    comparison = None
    if args.baseline_spec:
        import rolling  # noqa: PLC0415 (rolling.py imports this module)

        baseline = json.load(open(args.baseline_spec))
        print(f"baseline {baseline['version']} on the same procedure, then rolling origin")
        base_model = rolling.fit(train, baseline["names"], args.validation_seasons)
        p_base = base_model.predict_proba(holdout[baseline["names"]].to_numpy(dtype=np.float32))[:, 1]
        rows[f"LightGBM, same procedure on `{baseline['version']}` features"] = metrics(yh, p_base)
        comparison = {
            "baseline": baseline["version"],
            "holdout_diff": float(np.mean((p_model - yh) ** 2 - (p_base - yh) ** 2)),
            "holdout_se": paired_se(yh, p_model, p_base),
            "rolling": rolling.compare(table, names, baseline["names"]),
            "importance": sorted(
                zip(names, model.booster_.feature_importance(importance_type="gain")),
                key=lambda pair: -pair[1],
            ),
        }

    edges = np.array([0.0, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 1.0])
    plot_calibration(
        yh,
        {"LightGBM": p_model, "Elo alone": holdout["elo_home_win_prob"].to_numpy()},
        edges,
        os.path.join(args.out_dir, "calibration.png"),
        f"Calibration, {args.holdout} regular season ({len(yh)} games)",
    )

    # A handful of real holdout games for the Rust parity test: spread over the season.
    picks = holdout.iloc[np.linspace(0, len(holdout) - 1, PARITY_GAMES).astype(int)]
    parity_x = x(picks)
    parity_p = model.predict_proba(parity_x)[:, 1]
    parity = [
        {"game_id": game_id, "features": [float(v) for v in features], "probability": float(p)}
        for game_id, features, p in zip(picks.game_id, parity_x, parity_p)
    ]
    json.dump({"tolerance": 1e-5, "games": parity}, open(os.path.join(args.out_dir, "parity.json"), "w"), indent=2)

    model_metrics = rows["LightGBM (this model)"]
    manifest = {
        "name": args.name,
        "version": args.version,
        "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "model_file": "model.onnx",
        "feature_spec": {"version": spec["version"], "names": names},
        "input": input_name,
        "output": output_name,
        "training": {
            "algorithm": f"lightgbm {lgb.__version__}",
            "seasons": list(range(args.first_train_season, args.last_train_season + 1)),
            "rows": int(len(train)),
            "params": {**params, "n_estimators": trees},
            "selection": f"chosen on {first_val}-{args.last_train_season}, fit on {args.first_train_season}-{first_val - 1}",
        },
        "metrics": {"holdout_season": args.holdout, "games": int(len(yh)), **model_metrics,
                    "onnx_max_abs_diff": onnx_max_diff},
    }
    json.dump(manifest, open(os.path.join(args.out_dir, "manifest.json"), "w"), indent=2)

    write_report(args, manifest, rows, grid, yh, p_model, holdout["elo_home_win_prob"].to_numpy(), edges, onnx_max_diff,
                 comparison)
    print(f"wrote {args.out_dir}")


def paired_se(y, p_a, p_b):
    """Standard error of the mean Brier difference between two predictors on the same games."""
    d = (p_a - y) ** 2 - (p_b - y) ** 2
    return float(d.std(ddof=1) / np.sqrt(len(d)))


def comparison_lines(args, comparison):
    import rolling  # noqa: PLC0415

    base = comparison["baseline"]
    spec = "this model's spec"
    pooled = comparison["rolling"][-1]
    total_gain = sum(gain for _, gain in comparison["importance"])
    lines = [
        "",
        f"## Against `{base}` features",
        "",
        f"Rolling origin (`training/rolling.py`): for each test season, a model on {spec} and one on "
        f"`{base}` are trained as this one was (grid on the last three earlier seasons, refit on every "
        "earlier season from 2010) and score the test season; the difference is paired game by game "
        "(negative: this spec is better), its standard error from the per-game differences. "
        f"The {args.holdout} season stays held out.",
        "",
    ]
    lines += rolling.markdown(comparison["rolling"], f"`{base}`", "this spec")
    lines += [
        "",
        f"Pooled over {pooled['games']} games: Brier {pooled['diff']:+.5f} ± {pooled['se']:.5f}. "
        f"On the {args.holdout} holdout: Brier {comparison['holdout_diff']:+.5f} ± {comparison['holdout_se']:.5f}.",
        "",
        "### The features that carry the signal (share of the model's total split gain)",
        "",
        "| feature | gain share |",
        "|---|---|",
    ]
    for name, gain in comparison["importance"][:20]:
        lines.append(f"| `{name}` | {gain / total_gain:.1%} |")
    starter_share = sum(gain for name, gain in comparison["importance"] if "sp_" in name) / total_gain
    lines += ["", f"Starter features (`*sp_*`) together: {starter_share:.1%} of the gain."]
    return lines


def write_report(args, manifest, rows, grid, yh, p_model, p_elo, edges, onnx_max_diff, comparison=None):
    m = rows["LightGBM (this model)"]
    target = 0.244
    lines = [
        f"# {args.name}@{args.version}: evaluation on the {args.holdout} regular season",
        "",
        f"LightGBM trained on {args.first_train_season}–{args.last_train_season} regular seasons "
        f"({manifest['training']['rows']} games), feature spec `{manifest['feature_spec']['version']}` "
        f"({len(manifest['feature_spec']['names'])} features). The {args.holdout} season "
        f"({len(yh)} games) was held out: parameters were {manifest['training']['selection']} "
        "(then refit on every training season), never on the holdout.",
        "",
        "| predictor | log loss | Brier | accuracy | AUC |",
        "|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        lines.append(f"| {label} | {r['log_loss']:.4f} | {r['brier']:.4f} | {r['accuracy']:.3f} | {r['auc']:.3f} |")
    lines.append(f"| Betting market, MLB 2009–2025 (published, for reference) | {MARKET['log_loss']:.3f} | "
                 f"{MARKET['brier']:.3f} | {MARKET['accuracy']:.3f} | – |")
    home = rows[[k for k in rows if k.startswith("Always home")][0]]
    elo = rows["Elo rating alone"]
    se_elo = paired_se(yh, p_model, p_elo)
    verdict = "reached" if m["brier"] <= target else "**not reached**"
    lines += [
        "",
        "## Reading it",
        "",
        f"- Against always-home: log loss {m['log_loss'] - home['log_loss']:+.4f}, Brier {m['brier'] - home['brier']:+.4f} "
        f"({'better' if m['brier'] < home['brier'] and m['log_loss'] < home['log_loss'] else 'NOT better'}).",
        f"- Against the Elo rating alone: log loss {m['log_loss'] - elo['log_loss']:+.4f}, Brier {m['brier'] - elo['brier']:+.4f} "
        f"(paired standard error of the Brier difference {se_elo:.4f}: "
        + ("within two standard errors, so one season cannot separate the two with confidence)."
           if abs(m["brier"] - elo["brier"]) < 2 * se_elo else "more than two standard errors)."),
        f"- Against the market figure: Brier {m['brier'] - MARKET['brier']:+.4f}, log loss {m['log_loss'] - MARKET['log_loss']:+.4f}. "
        + ("The market sees line-ups, bullpens and injuries; these features see team results and the starters."
         if any("sp_" in n for n in manifest["feature_spec"]["names"])
         else "The market sees starting pitchers, line-ups and injuries; these features see team results only."),
        f"- Target Brier ≤ {target}: {verdict} (Brier {m['brier']:.4f}).",
        f"- ONNX export reproduces LightGBM on all {len(yh)} holdout games: max |difference| {onnx_max_diff:.2e}.",
    ]
    if comparison:
        lines += comparison_lines(args, comparison)
    lines += [
        "",
        "## Calibration (LightGBM, holdout)",
        "",
        "| predicted range | games | mean predicted | observed home-win rate |",
        "|---|---|---|---|",
    ]
    for lo, hi, n, mean_p, obs in calibration_table(yh, p_model, edges):
        lines.append(f"| {lo:.2f}–{hi:.2f} | {n} | {mean_p:.3f} | {obs:.3f} |")
    lines += [
        "",
        "![calibration](calibration.png)",
        "",
        "## Parameter selection",
        "",
        "| " + " | ".join(list(GRID) + ["trees", "val log loss", "val Brier"]) + " |",
        "|" + "---|" * (len(GRID) + 3),
    ]
    for r in grid:
        lines.append("| " + " | ".join(str(r[k]) for k in GRID) + f" | {r['trees']} | {r['log_loss']:.5f} | {r['brier']:.5f} |")
    lines += [
        "",
        f"Produced by `training/train.py` (python {platform.python_version()}, lightgbm {lgb.__version__}, "
        f"onnxruntime {ort.__version__}) on {manifest['created_at']}.",
        "",
    ]
    open(os.path.join(args.out_dir, "REPORT.md"), "w").write("\n".join(lines))


if __name__ == "__main__":
    main()
