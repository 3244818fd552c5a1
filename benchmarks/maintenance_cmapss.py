"""Cross-validated RUL benchmark on NASA C-MAPSS FD001 (train_FD001.txt).

Protocol (all of it seeded, so reruns give the same figures):

* 100 engines run to failure. Engines are shuffled with ``--seed`` and split
  into ``--folds`` folds of engines (default 5, 20 engines each). Each fold's
  model is trained only on the other folds' engines; feature normalisation is
  fitted inside ``train_rul_model`` on those training engines only.
* Each held-out engine of length L is truncated ``--cuts`` times (default 5)
  to mimic the official test set, whose engines stop at random points with
  true RUL between about 7 and 145 and at least 31 cycles of history: the
  true RULs r are drawn uniformly without replacement from the integers
  [7, min(145, L - 31)] with ``numpy.random.default_rng(seed)`` (one stream,
  engines in unit order). The model sees the first L - r cycles and predicts
  RUL at the last of them.
* Metrics over all truncations (500 by default): RMSE and the NASA score
  s = sum(exp(-d/13) - 1 if d < 0 else exp(d/10) - 1), d = predicted - true.
  "capped": true RUL capped at ``--cap`` (125), the usual convention and the
  cap the model is trained with. "uncapped": the raw true RUL, for honesty
  (a model trained on a capped target cannot predict beyond the cap).
  The NASA score is a sum, so it grows with the number of predictions; we
  also report it per 100 predictions, comparable to the official 100-engine
  test set.

Run from the repository root:

    .venv/bin/python benchmarks/maintenance_cmapss.py [path/to/train_FD001.txt]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from automation.maintenance.engine.cmapss import SETTING_COLUMNS, read_cmapss  # noqa: E402
from automation.maintenance.engine.rul import RulConfig, RulPrediction, train_rul_model  # noqa: E402

DEFAULT_PATH = REPO_ROOT / ".." / "shared" / "data" / "cmapss" / "train_FD001.txt"
MIN_HISTORY = 31  # shortest history in the official FD001 test set
MIN_RUL, MAX_RUL = 7, 145  # range of true RUL in the official FD001 test set


def train_and_predict(
    *,
    train_histories: Sequence[tuple[Hashable, pd.DataFrame]],
    test_frames: Mapping[Hashable, pd.DataFrame],
    cap: float,
    config: RulConfig | None = None,
) -> tuple[dict[Hashable, RulPrediction], dict[str, float]]:
    """Train on run-to-failure histories and score truncated histories.

    The one place the benchmark touches the engine: the lead will route this
    through the product's ingestion API and training job. Returns the
    predictions (with drivers, as the product scores) and timings in seconds:
    wall clock and CPU (this process, all threads) for training and scoring.
    CPU time is reported because wall time on a shared machine depends on
    what else runs there.
    """
    started, started_cpu = time.perf_counter(), time.process_time()
    model = train_rul_model(
        histories=train_histories,
        cap=cap,
        setting_columns=SETTING_COLUMNS,
        config=config,
    )
    trained, trained_cpu = time.perf_counter(), time.process_time()
    predictions = model.predict_many(test_frames)
    timings = {
        "train_wall": trained - started,
        "train_cpu": trained_cpu - started_cpu,
        "score_wall": time.perf_counter() - trained,
        "score_cpu": time.process_time() - trained_cpu,
    }
    return predictions, timings


def nasa_score(d: np.ndarray) -> float:
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def truncation_plan(*, engines: Sequence[tuple[int, pd.DataFrame]], cuts: int, seed: int) -> dict[int, list[int]]:
    """True RULs at which each engine is truncated (see module docstring)."""
    rng = np.random.default_rng(seed)
    plan: dict[int, list[int]] = {}
    for unit, frame in sorted(engines, key=lambda item: item[0]):
        highest = min(MAX_RUL, len(frame) - MIN_HISTORY)
        choices = np.arange(MIN_RUL, highest + 1)
        plan[unit] = sorted(int(r) for r in rng.choice(choices, size=min(cuts, len(choices)), replace=False))
    return plan


def run(*, path: Path, folds: int, cuts: int, cap: float, seed: int) -> dict:
    engines = read_cmapss(path=path)
    plan = truncation_plan(engines=engines, cuts=cuts, seed=seed)
    order = np.random.default_rng(seed).permutation(len(engines))
    fold_members = np.array_split(order, folds)

    records = []
    fold_timings: list[dict[str, float]] = []
    for fold_number, members in enumerate(fold_members, start=1):
        held_out = {engines[i][0] for i in members}
        train = [(unit, frame) for unit, frame in engines if unit not in held_out]
        tests = {}
        for unit, frame in engines:
            if unit in held_out:
                for r in plan[unit]:
                    tests[(unit, r)] = frame.iloc[: len(frame) - r]
        predictions, timings = train_and_predict(train_histories=train, test_frames=tests, cap=cap)
        fold_timings.append(timings)
        for (unit, r), prediction in predictions.items():
            records.append(
                {
                    "fold": fold_number,
                    "unit": unit,
                    "true_rul": r,
                    "predicted": prediction.rul,
                    "low": prediction.low,
                    "high": prediction.high,
                }
            )
        print(
            f"fold {fold_number}: trained on {len(train)} engines in {timings['train_wall']:.1f} s "
            f"({timings['train_cpu']:.1f} s CPU), scored {len(tests)} truncations in "
            f"{timings['score_wall']:.1f} s",
            file=sys.stderr,
        )

    results = pd.DataFrame(records)
    predicted = results["predicted"].to_numpy()
    truth = results["true_rul"].to_numpy(dtype=np.float64)
    capped = np.minimum(truth, cap)
    d_capped = predicted - capped
    d_raw = predicted - truth
    n = len(results)
    edges = [0, 25, 50, 75, 100, 125, 150]
    by_bucket = {}
    for low, high in itertools.pairwise(edges):
        in_bucket = (truth > low) & (truth <= high)
        if in_bucket.any():
            by_bucket[f"({low}, {high}]"] = round(float(np.sqrt(np.mean(d_capped[in_bucket] ** 2))), 2)
    return {
        "data": str(path),
        "engines": len(engines),
        "folds": folds,
        "truncations": n,
        "cap": cap,
        "rmse_capped": float(np.sqrt(np.mean(d_capped**2))),
        "rmse_uncapped": float(np.sqrt(np.mean(d_raw**2))),
        "mae_capped": float(np.mean(np.abs(d_capped))),
        "nasa_score_capped": nasa_score(d_capped),
        "nasa_score_capped_per_100": nasa_score(d_capped) * 100 / n,
        "nasa_score_uncapped": nasa_score(d_raw),
        "nasa_score_uncapped_per_100": nasa_score(d_raw) * 100 / n,
        "band_coverage_capped": float(np.mean((capped >= results["low"]) & (capped <= results["high"]))),
        "rmse_capped_by_true_rul": by_bucket,
        "train_wall_seconds_per_fold": [round(t["train_wall"], 1) for t in fold_timings],
        "train_cpu_seconds_per_fold": [round(t["train_cpu"], 1) for t in fold_timings],
        "train_wall_seconds_total": round(sum(t["train_wall"] for t in fold_timings), 1),
        "train_cpu_seconds_total": round(sum(t["train_cpu"] for t in fold_timings), 1),
        "score_wall_seconds_per_fold": [round(t["score_wall"], 1) for t in fold_timings],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cuts", type=int, default=5, help="truncations per held-out engine")
    parser.add_argument("--cap", type=float, default=125.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.path.exists():
        parser.error(f"{args.path} not found")
    report = run(path=args.path.resolve(), folds=args.folds, cuts=args.cuts, cap=args.cap, seed=args.seed)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
