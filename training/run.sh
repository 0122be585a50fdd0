#!/usr/bin/env bash
# Retrain the model from the data in data/ and write it to models/<name>/<version>/.
#   training/run.sh [VERSION] [ALGORITHM] [FEATURES]   (defaults: 1, lightgbm, v1)
#   training/run.sh 2 logistic              (home_win@2: logistic regression, train_logistic.py)
#   training/run.sh 3 lightgbm v2           (home_win@3: the teams and the starting pitchers;
#                                            its REPORT compares v2 with v1, rolling origin)
# Steps: build bullpen (release), export the training table and feature spec with it,
# create the pinned Python environment once, train, evaluate and export to ONNX.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:-1}"
algorithm="${2:-lightgbm}"
features="${3:-v1}"
out="models/home_win/${version}"
work="training/data"
mkdir -p "$work"

cargo build --release --locked
target/release/bullpen features export --seasons 2010-2024 --version "$features" \
  --output "$work/games-$features.csv"
target/release/bullpen features spec --version "$features" > "$work/spec-$features.json"
compare=()
if [ "$features" != v1 ]; then
  target/release/bullpen features spec --version v1 > "$work/spec-v1.json"
  compare=(--baseline-spec "$work/spec-v1.json")
fi

if [ ! -x training/.venv/bin/python ]; then
  python3 -m venv training/.venv
  training/.venv/bin/pip install --quiet -r training/requirements.txt
fi
case "$algorithm" in
  lightgbm) script=training/train.py ;;
  logistic) script=training/train_logistic.py ;;
  *) echo "unknown algorithm $algorithm (lightgbm or logistic)" >&2; exit 2 ;;
esac
training/.venv/bin/python "$script" \
  --table "$work/games-$features.csv" --spec "$work/spec-$features.json" \
  --out-dir "$out" --name home_win --version "$version" "${compare[@]}"
