"""Cross-validated RUL benchmark on NASA C-MAPSS FD001 (train_FD001.txt), through the product.

The product path, end to end:

* FD001 is uploaded to ``POST /api/v1/orgs/{org}/maintenance/imports/run-to-failure`` (format ``cmapss``; the
  real view, authenticated with an organisation API key, in this process through Django's request handler) into
  an asset type ``turbofan`` whose channels are C-MAPSS's columns (setting_1..3 marked as operating settings).
  That creates 100 assets, their telemetry (one reading per channel and cycle, about 500,000 rows, COPY) and a
  failure at each engine's last cycle.
* For each fold, the ``maintenance.train`` job is created through the service the API uses
  (``training_start`` with the fold's training engines) and run in this process by the job runner (the Celery
  task function called directly: claim, heartbeat, events, finish, metering). It reads the run-to-failure
  histories back from PostgreSQL (averaged into cycles by ``date_bin``), trains, and stores the model.
* Held-out engines are scored with the stored model (``RulModel.from_bytes`` of the row the job wrote) on frames
  the product's own selector builds from the stored telemetry, truncated at the cut.

Protocol (unchanged from the engine-only version; all of it seeded, so reruns give the same figures):

* 100 engines run to failure. Engines are shuffled with ``--seed`` and split into ``--folds`` folds of engines
  (default 5, 20 engines each). Each fold's model is trained only on the other folds' engines; feature
  normalisation is fitted inside the training on those training engines only.
* Each held-out engine of length L is truncated ``--cuts`` times (default 5) to mimic the official test set,
  whose engines stop at random points with true RUL between about 7 and 145 and at least 31 cycles of history:
  the true RULs r are drawn uniformly without replacement from the integers [7, min(145, L - 31)] with
  ``numpy.random.default_rng(seed)`` (one stream, engines in unit order). The model sees the first L - r
  cycles and predicts RUL at the last of them.
* Metrics over all truncations (500 by default): RMSE and the NASA score
  s = sum(exp(-d/13) - 1 if d < 0 else exp(d/10) - 1), d = predicted - true. "capped": true RUL capped at
  ``--cap`` (125), the usual convention and the cap the model is trained with. "uncapped": the raw true RUL,
  for honesty (a model trained on a capped target cannot predict beyond the cap). The NASA score is a sum, so
  it grows with the number of predictions; we also report it per 100 predictions, comparable to the official
  100-engine test set.

It needs PostgreSQL and Redis: ``make bench`` runs it under ``python -m controlplane.embedded``, and run on its
own it re-executes itself that way (``.cache/embedded-bench``)::

    .venv/bin/python benchmarks/maintenance_cmapss.py [path/to/train_FD001.txt]
    make bench BENCH_ARGS="maintenance_cmapss"
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
DEFAULT_PATH = REPO_ROOT / ".." / "shared" / "data" / "cmapss" / "train_FD001.txt"
EMBEDDED_DIR = ".cache/embedded-bench"
ORG_SLUG = "maintenance-bench"
OWNER_EMAIL = "maintenance-bench@example.com"
ASSET_TYPE = "turbofan"
CYCLE_SECONDS = 60
MIN_HISTORY = 31  # shortest history in the official FD001 test set
MIN_RUL, MAX_RUL = 7, 145  # range of true RUL in the official FD001 test set


def nasa_score(d: np.ndarray) -> float:
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def truncation_plan(*, lengths: dict[int, int], cuts: int, seed: int) -> dict[int, list[int]]:
    """True RULs at which each engine is truncated (see module docstring)."""
    rng = np.random.default_rng(seed)
    plan: dict[int, list[int]] = {}
    for unit in sorted(lengths):
        highest = min(MAX_RUL, lengths[unit] - MIN_HISTORY)
        choices = np.arange(MIN_RUL, highest + 1)
        plan[unit] = sorted(int(r) for r in rng.choice(choices, size=min(cuts, len(choices)), replace=False))
    return plan


class Product:
    """The product's side: a fresh benchmark organisation, its API client, and the maintenance services."""

    def start(self, *, cap: float) -> None:
        env = {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings.local",
            "DJANGO_DEBUG": "false",
            "API_RATE_LIMIT_PER_MINUTE": str(10**6),
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            check=True,
        )
        os.environ.update(env)
        import django

        django.setup()
        from rest_framework.test import APIClient

        from automation.maintenance import services as maintenance
        from automation.maintenance.engine.cmapss import SENSOR_COLUMNS, SETTING_COLUMNS
        from automation.maintenance.models import Asset, AssetType
        from tenants import services as tenant_services
        from tenants.actor import Actor
        from tenants.models import Organization, Region, User
        from tenants.roles import Role, Scope

        owner = User.objects.filter(email=OWNER_EMAIL).first() or tenant_services.user_sign_up(
            email=OWNER_EMAIL, password=hashlib.sha256(os.urandom(16)).hexdigest()
        )
        self.organization = Organization.objects.filter(slug=ORG_SLUG).first() or tenant_services.organization_create(
            name="Maintenance benchmark", slug=ORG_SLUG, country="DE", region=Region.EU_CENTRAL, created_by=owner
        )
        self.actor = Actor.for_member(organization=self.organization, user=owner, role=Role.OWNER)
        # A fresh start: the previous run's engines (and their telemetry) go.
        Asset.objects.filter(organization=self.organization).delete()
        AssetType.objects.filter(organization=self.organization).delete()
        channels = [{"name": name, "is_setting": True} for name in SETTING_COLUMNS]
        channels += [{"name": name} for name in SENSOR_COLUMNS]
        self.asset_type = maintenance.asset_type_create(
            organization=self.organization,
            code=ASSET_TYPE,
            name="C-MAPSS turbofan",
            channels=channels,
            cycle_seconds=CYCLE_SECONDS,
            rul_cap=cap,
        )
        _, plaintext = tenant_services.api_key_create(
            organization=self.organization,
            name=f"maintenance bench {time.time():.0f}",
            scopes=[Scope.ORG_READ, Scope.ORG_WRITE, Scope.JOBS],
            actor=self.actor,
        )
        self.client = APIClient(SERVER_NAME="localhost")
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    def import_cmapss(self, path: Path) -> dict:
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="text/plain")
        response = self.client.post(
            f"/api/v1/orgs/{ORG_SLUG}/maintenance/imports/run-to-failure",
            {"file": upload, "asset_type": ASSET_TYPE, "format": "cmapss", "asset_prefix": "unit-"},
            format="multipart",
        )
        if response.status_code != 201:
            raise RuntimeError(f"The import was refused: {response.status_code} {response.content[:2000]!r}")
        return response.json()

    def train(self, unit_codes: list[str]):
        """The `maintenance.train` job for these engines, run here by the job runner; returns (job, model)."""
        from automation.maintenance import services as maintenance
        from automation.maintenance.engine import RulModel
        from automation.maintenance.models import TrainedModel
        from automation.maintenance.tasks import train

        job = maintenance.training_start(
            organization=self.organization, asset_type=self.asset_type, actor=self.actor, asset_codes=unit_codes
        )
        train(organization_id=str(self.organization.pk), job_id=str(job.pk))  # the task body: runs the job here
        job.refresh_from_db()
        if job.status != "succeeded":
            raise RuntimeError(f"The training job {job.status}: {job.error_code} {job.error_message}")
        assert job.result is not None  # a succeeded job has its result
        stored = TrainedModel.objects.get(pk=job.result["model_id"])
        return job, RulModel.from_bytes(bytes(stored.artefact))

    def truncated_frames(self, tests: dict[tuple[int, int], str], lengths: dict[int, int]) -> dict:
        """Frames the product builds from stored telemetry, up to each cut."""
        from automation.maintenance.models import Asset, AssetEvent
        from automation.maintenance.selectors import asset_frame

        channels = list(self.asset_type.channels.all())
        assets = {a.code: a for a in Asset.objects.filter(organization=self.organization)}
        failures = dict(
            AssetEvent.objects.filter(organization=self.organization, kind="failure").values_list(
                "asset__code", "occurred_at"
            )
        )
        frames = {}
        for (unit, r), code in tests.items():
            cut = failures[code] - timedelta(seconds=CYCLE_SECONDS * r)  # the last cycle seen has RUL r
            frame = asset_frame(asset=assets[code], channels=channels, cycle_seconds=CYCLE_SECONDS, until=cut)
            assert len(frame) == lengths[unit] - r, (code, r, len(frame))
            frames[(unit, r)] = frame
        return frames


def run(*, path: Path, folds: int, cuts: int, cap: float, seed: int) -> dict:
    from automation.maintenance.engine import read_cmapss

    lengths = {unit: len(frame) for unit, frame in read_cmapss(path=path)}  # for the plan only
    units = sorted(lengths)
    plan = truncation_plan(lengths=lengths, cuts=cuts, seed=seed)
    order = np.random.default_rng(seed).permutation(len(units))
    fold_members = np.array_split(order, folds)

    product = Product()
    product.start(cap=cap)
    started = time.perf_counter()
    imported = product.import_cmapss(path)
    import_seconds = time.perf_counter() - started
    print(
        f"imported {imported['assets_created']} engines, {imported['readings_stored']} readings in "
        f"{import_seconds:.1f} s",
        file=sys.stderr,
    )

    def code(unit: int) -> str:
        return f"unit-{unit:03d}"

    records, fold_timings = [], []
    for fold_number, members in enumerate(fold_members, start=1):
        held_out = {units[i] for i in members}
        train_codes = [code(u) for u in units if u not in held_out]
        started, started_cpu = time.perf_counter(), time.process_time()
        job, model = product.train(train_codes)
        trained, trained_cpu = time.perf_counter(), time.process_time()
        tests = {(u, r): code(u) for u in sorted(held_out) for r in plan[u]}
        frames = product.truncated_frames(tests, lengths)
        predictions = model.predict_many(frames)
        timings = {
            "train_wall": trained - started,
            "train_cpu": trained_cpu - started_cpu,
            "job_wall": (job.finished_at - job.started_at).total_seconds(),
            "engine_train_wall": model.summary.seconds,
            "score_wall": time.perf_counter() - trained,
        }
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
            f"fold {fold_number}: job {job.pk} trained on {len(train_codes)} engines in "
            f"{timings['train_wall']:.1f} s ({timings['train_cpu']:.1f} s CPU; engine {model.summary.seconds:.1f} s,"
            f" CV RMSE {job.result['cv_rmse']}), scored {len(tests)} truncations in {timings['score_wall']:.1f} s",
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
        "path": "product: import API -> PostgreSQL telemetry -> maintenance.train job -> stored model",
        "engines": len(units),
        "readings_imported": imported["readings_stored"],
        "import_seconds": round(import_seconds, 1),
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
        "train_job_wall_seconds_per_fold": [round(t["train_wall"], 1) for t in fold_timings],
        "train_cpu_seconds_per_fold": [round(t["train_cpu"], 1) for t in fold_timings],
        "engine_train_seconds_per_fold": [round(t["engine_train_wall"], 1) for t in fold_timings],
        "train_job_wall_seconds_total": round(sum(t["train_wall"] for t in fold_timings), 1),
        "train_cpu_seconds_total": round(sum(t["train_cpu"] for t in fold_timings), 1),
        "score_wall_seconds_per_fold": [round(t["score_wall"], 1) for t in fold_timings],
    }


def _under_embedded(argv: list[str]) -> int:
    """Re-run this benchmark under the embedded PostgreSQL and Redis (what `make bench` does)."""
    command = [
        sys.executable,
        "-m",
        "controlplane.embedded",
        "--dir",
        EMBEDDED_DIR,
        sys.executable,
        str(Path(__file__).resolve()),
        *argv,
    ]
    return subprocess.run(command, cwd=REPO_ROOT).returncode


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cuts", type=int, default=5, help="truncations per held-out engine")
    parser.add_argument("--cap", type=float, default=125.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    if not args.path.exists():
        parser.error(f"{args.path} not found")
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        return _under_embedded(argv)
    report = run(path=args.path.resolve(), folds=args.folds, cuts=args.cuts, cap=args.cap, seed=args.seed)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
