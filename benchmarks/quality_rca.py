"""Root-cause ranking on causRCA (Mehling, Pieper, Lüke 2025), through the product, and analysis time at 1 million
step values.

The product path, end to end:

* The lathe is described through the quality API (``POST /api/v1/orgs/{org}/quality/...``, the real views with
  an organisation API key, in this process through Django's request handler): one station ``lathe`` with two
  machines, ``twin`` (the hardware-in-the-loop digital twin) and ``real`` (the production lathe); every variable
  of the data set as a process variable whose ``causes`` are its parents in the authors' expert causal graph
  (the "causal prior"); one inspection characteristic per subsystem (coolant, hydraulics, probe) whose
  ``affected_by`` are the subsystem's alarms, with one defect code each.
* Every recording is a unit: the 170 normal-operation recordings (machine ``real``) and the 100 fault runs
  (machine ``twin``). Their value changes are uploaded as step records (``POST .../quality/ingest/steps``, one
  CSV, long form, about 500,000 values, COPY); booleans as 0/1, the three text variables as codes. Inspections
  (``POST .../quality/ingest/inspections``): a fault run fails its subsystem's characteristic at the time the
  authors give for the alarm's detection (``alarms_detected_at``) and passes the other two at its end; a
  normal recording passes all three at its end. Nothing else of ``causes.json`` (not the cause's start or end)
  reaches the product.
* Per subsystem, one analysis (``POST .../quality/analyses``: method ``unit``, the subsystem's fault runs,
  candidates = the subsystem's variables, alarms excluded, as in the authors' ``-sub`` protocol, window 30 s)
  is run by the ``quality.analyse`` job in this process (the Celery task body: claim, events, finish,
  metering). The job reads the traces back from PostgreSQL and ranks, per failed unit, the variables whose state
  their causes do not explain in the 30 s before the failure, against healthy units of the same machine
  (here: the twin's runs of the other subsystems, which passed this characteristic).

Protocol: the authors' (``eval/rca/results/*.csv``, ``-sub`` columns): per fault run, the ground truth is the
experiment's ``manipulatedVars``; precision at k = |top k ∩ truth| / min(k, |truth|), averaged over the
subsystem's runs; MAP@k = mean of precision at 1..k (RCAEval's definitions, which we believe the authors use;
their unsupervised MAP@1 differs from their Prec@1 in some rows, which we cannot reproduce, so compare MAP with
care). A run the product answers "cannot tell" counts as a miss. The published figures are printed beside ours,
read from the authors' CSVs.

Scale: a synthetic line of 5 stations x 2 parallel machines, 10 variables per station and 2 material lots in
use, 20,000 units x 50 variables = 1,000,000 step values uploaded in one CSV through the API; one variable of
one machine drifts in the second half and drives the defect; the ``line`` analysis job is timed end to end
(floor: under 60 s on 2 cores).

It needs PostgreSQL and Redis: ``make bench BENCH_ARGS="quality_rca"`` runs it under
``python -m controlplane.embedded``; run on its own it re-executes itself that way (``.cache/embedded-bench``).
"""

from __future__ import annotations

import argparse
import csv
import glob
import graphlib
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
_CANDIDATES = [REPO_ROOT / ".." / "shared" / "data" / "causrca", Path("/work/shared/data/causrca")]
DEFAULT_PATH = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])
EMBEDDED_DIR = ".cache/embedded-bench"
ORG_SLUG = "quality-bench"
SCALE_SLUG = "quality-bench-scale"
OWNER_EMAIL = "quality-bench@example.com"
SUBSYSTEMS = {"probe": "Lathe/MeasuringProbe", "coolant": "Lathe/Coolant", "hydraulics": "Lathe/Hydraulics"}
PUBLISHED_UNSUPERVISED = ["Baro", "PageRankRCA", "CausalPrioTimeRecencyRCA", "TimeRecency_BaselineUnsupervisedRCA",
                          "RandomWalkRCA"]  # fmt: skip
BASE = datetime(2025, 1, 1, tzinfo=UTC)


class Product:
    """A fresh benchmark organisation, its API client, and the job runner in this process."""

    def start(self, slug: str) -> None:
        env = {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings.local",
            "DJANGO_DEBUG": "false",
            "API_RATE_LIMIT_PER_MINUTE": str(10**6),
        }
        if not os.environ.get("_QUALITY_BENCH_MIGRATED"):
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=REPO_ROOT,
                env={**os.environ, **env},
                check=True,
            )
            os.environ["_QUALITY_BENCH_MIGRATED"] = "1"
        os.environ.update(env)
        import django

        django.setup()
        from rest_framework.test import APIClient

        from automation.quality.models import Analysis, Characteristic, Lot, Machine, ProcessVariable, Station, Unit
        from tenants import services as tenant_services
        from tenants.actor import Actor
        from tenants.models import Organization, Region, User
        from tenants.roles import Role, Scope

        owner = User.objects.filter(email=OWNER_EMAIL).first() or tenant_services.user_sign_up(
            email=OWNER_EMAIL, password=hashlib.sha256(os.urandom(16)).hexdigest()
        )
        self.organization = Organization.objects.filter(slug=slug).first() or tenant_services.organization_create(
            name="Quality benchmark", slug=slug, country="DE", region=Region.EU_CENTRAL, created_by=owner
        )
        self.actor = Actor.for_member(organization=self.organization, user=owner, role=Role.OWNER)
        # A fresh start: the previous run's line, units (and their steps) and analyses go.
        for model in (Analysis, Unit, Lot, Characteristic, ProcessVariable, Machine, Station):
            model.objects.filter(organization=self.organization).delete()
        _, plaintext = tenant_services.api_key_create(
            organization=self.organization,
            name=f"quality bench {time.time():.0f}",
            scopes=[Scope.ORG_READ, Scope.ORG_WRITE, Scope.JOBS],
            actor=self.actor,
        )
        self.slug = slug
        self.client = APIClient(SERVER_NAME="localhost")
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    def url(self, path: str) -> str:
        return f"/api/v1/orgs/{self.slug}/quality/{path}"

    def post(self, path: str, body, *, expect: int = 201) -> dict:
        response = self.client.post(self.url(path), body, format="json")
        if response.status_code != expect:
            raise RuntimeError(f"POST {path} answered {response.status_code}: {response.content[:2000]!r}")
        return response.json()

    def upload(self, kind: str, content: bytes) -> dict:
        from django.core.files.uploadedfile import SimpleUploadedFile

        response = self.client.post(
            self.url(f"ingest/{kind}"),
            {"file": SimpleUploadedFile(f"{kind}.csv", content, content_type="text/csv")},
            format="multipart",
        )
        if response.status_code != 201:
            raise RuntimeError(f"The {kind} upload was refused: {response.status_code} {response.content[:2000]!r}")
        return response.json()

    def analyse(self, body: dict) -> tuple[dict, float]:
        """Create the analysis through the API, run its job here (the task body), return it and the job's time."""
        from automation.quality.tasks import analyse
        from jobs.models import Job

        created = self.post("analyses", body, expect=202)
        started = time.perf_counter()
        analyse(organization_id=str(self.organization.pk), job_id=created["job"])
        seconds = time.perf_counter() - started
        job = Job.objects.get(pk=created["job"])
        if job.status != "succeeded":
            raise RuntimeError(f"The analysis job {job.status}: {job.error_code} {job.error_message}")
        return self.client.get(self.url(f"analyses/{created['id']}")).json(), seconds


# --- causRCA ----------------------------------------------------------------------------------------------------


def _value(text: str, codes: dict[str, int]) -> str:
    if text == "True":
        return "1"
    if text == "False":
        return "0"
    try:
        float(text)
    except ValueError:
        return str(codes.setdefault(text, len(codes) + 1))
    return text


def causrca_load(root: Path) -> dict:
    data = root / "data"
    graph = data / "expert_graph"
    nodes = list(csv.DictReader(io.StringIO((graph / "all_nodes.csv").read_text(encoding="utf-8"))))
    edges = list(csv.DictReader(io.StringIO((graph / "all_edges.csv").read_text(encoding="utf-8"))))
    runs: list[dict[str, Any]] = []
    for path in sorted(glob.glob(str(data / "real_op" / "*.csv"))):
        runs.append({"serial": "real-" + Path(path).stem.rsplit("_", 1)[-1], "machine": "real", "path": path})
    for description in sorted(glob.glob(str(data / "dig_twin" / "exp_*" / "exp_*" / "exp_*_description.json"))):
        info = json.loads(Path(description).read_text())
        group = info["group"]
        for run_dir in sorted(glob.glob(str(Path(description).parent / "run_*"))):
            causes = json.loads((Path(run_dir) / "causes.json").read_text())
            [path] = glob.glob(str(Path(run_dir) / "*.csv"))
            runs.append(
                {
                    "serial": f"twin-{group}-{info['exp_id']}-{Path(run_dir).name}",
                    "machine": "twin",
                    "path": path,
                    "group": group,
                    "experiment": info["exp_id"],
                    "truth": sorted(info["manipulatedVars"]),
                    "detected_at": float(causes["alarms_detected_at"]),
                }
            )
    return {"nodes": nodes, "edges": edges, "runs": runs}


def causrca_import(product: Product, data: dict) -> dict:
    """The lathe, its variables with the expert graph as causes, the characteristics, then the recordings."""
    parents: dict[str, list[str]] = {}
    for edge in data["edges"]:
        parents.setdefault(edge["target_label"], []).append(edge["source_label"])
    labels = {n["label"] for n in data["nodes"]}
    product.post("stations", {"code": "lathe", "name": "CNC vertical lathe", "position": 1})
    for machine in ("twin", "real"):
        product.post("machines", {"code": machine, "station": "lathe"})
    # Rows, and the variables they name (a few recorded variables are not in the graph).
    codes: dict[str, dict[str, int]] = {}
    steps = io.StringIO()
    steps.write("unit,station,machine,ts,variable,value\n")
    ends: dict[str, float] = {}
    recorded: set[str] = set()
    for i, run in enumerate(data["runs"]):
        start = BASE + timedelta(hours=i)
        end = 0.0
        with open(run["path"], encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                t = float(row["time_s"])
                end = max(end, t)
                node = row["node"]
                recorded.add(node)
                value = _value(row["value"], codes.setdefault(node, {}))
                steps.write(f"{run['serial']},lathe,{run['machine']},{(start + timedelta(seconds=t)).isoformat()},"
                            f"{node},{value}\n")  # fmt: skip
        ends[run["serial"]] = end
    order = graphlib.TopologicalSorter({n: parents.get(n, []) for n in labels | recorded}).static_order()
    for name in order:
        product.post(
            "variables",
            {"name": name, "station": "lathe", "causes": [p for p in parents.get(name, []) if p in labels | recorded]},
        )
    alarms = {
        group: sorted(n["label"] for n in data["nodes"] if n["path"].startswith(path) and n["type"] == "Alarm")
        for group, path in SUBSYSTEMS.items()
    }
    for group in SUBSYSTEMS:
        product.post(
            "characteristics",
            {
                "code": group,
                "station": "lathe",
                "affected_by": alarms[group],
                "defect_codes": [{"code": f"{group}-alarm", "description": f"{group} alarm raised"}],
            },
        )
    inspections = io.StringIO()
    inspections.write("unit,characteristic,ts,defect_code\n")
    for i, run in enumerate(data["runs"]):
        start = BASE + timedelta(hours=i)
        for group in SUBSYSTEMS:
            if run.get("group") == group:
                ts, defect = start + timedelta(seconds=run["detected_at"]), f"{group}-alarm"
            else:
                ts, defect = start + timedelta(seconds=ends[run["serial"]]), ""
            inspections.write(f"{run['serial']},{group},{ts.isoformat()},{defect}\n")
    content = steps.getvalue().encode()
    started = time.perf_counter()
    stored = product.upload("steps", content)
    steps_seconds = time.perf_counter() - started
    product.upload("inspections", inspections.getvalue().encode())
    return {"step_values": stored["stored"], "units": stored["units_created"], "upload_seconds": steps_seconds}


def precision_at(ranked: Sequence[str], truth: Sequence[str], k: int) -> float:
    return len(set(ranked[:k]) & set(truth)) / min(k, len(truth))


def causrca_evaluate(product: Product, data: dict, *, window_s: float) -> dict:
    out = {}
    for group, path in SUBSYSTEMS.items():
        runs = [r for r in data["runs"] if r.get("group") == group]
        candidates = sorted(n["label"] for n in data["nodes"] if n["path"].startswith(path) and n["type"] != "Alarm")
        analysis, seconds = product.analyse(
            {
                "defect_code": f"{group}-alarm",
                "method": "unit",
                "units": [r["serial"] for r in runs],
                "candidates": candidates,
                "window_seconds": window_s,
            }
        )
        by_unit = {u["unit"]: u for u in analysis["result"]["units"]}
        p1 = p3 = map3 = 0.0
        cannot = 0
        for run in runs:
            ranking = by_unit[run["serial"]]
            ranked = [c["name"] for c in ranking["causes"]] if ranking["verdict"] == "ranked" else []
            cannot += ranking["verdict"] != "ranked"
            precisions = [precision_at(ranked, run["truth"], k) for k in (1, 2, 3)]
            p1 += precisions[0]
            p3 += precisions[2]
            map3 += sum(precisions) / 3
        n = len(runs)
        out[group] = {
            "runs": n,
            "top1": p1 / n,
            "top3": p3 / n,
            "map3": map3 / n,
            "cannot_tell": cannot,
            "job_seconds": seconds,
        }
    return out


def _scores(ranked: Sequence[str], truth: Sequence[str]) -> tuple[float, float, float]:
    precisions = [precision_at(ranked, truth, k) for k in (1, 2, 3)]
    return precisions[0], precisions[2], sum(precisions) / 3


def causrca_supervised(product: Product, data: dict, *, window_s: float) -> dict:
    """The supervised protocol, leave-one-out over each subsystem's fault runs, through the product's API.

    1. History: per subsystem, the `unit` analysis of all its fault runs (the same candidates and window as the
       unsupervised protocol); then, per run, its confirmed causes (the run's manipulated variables) stored with
       ``POST analyses/{id}/label`` (``{"unit": serial, "causes": [...]}``): the labelled history a tenant would
       build. A truth the ranking did not list cannot be labelled (the API refuses names it did not rank); such
       runs are counted.
    2. Test: a new analysis of the same runs. The job trains, for each failed unit, a supervised ranking on the
       labelled cases of the characteristic and, by the product's own rule, never on a labelled ranking of that
       same unit: each run's label never reaches its own model (leave-one-out, every other run of the
       subsystem as training data). Scored is the ranking the product leads with (`result.ranking`), and the
       unsupervised one of the same analysis beside it.
    3. Stricter: leave one experiment out (the data set repeats each fault experiment in several runs): the
       labels of the held-out experiment's runs are removed, its runs analysed, the labels restored.
    """
    out = {}
    for group, path in SUBSYSTEMS.items():
        runs = [r for r in data["runs"] if r.get("group") == group]
        candidates = sorted(n["label"] for n in data["nodes"] if n["path"].startswith(path) and n["type"] != "Alarm")
        body = {"defect_code": f"{group}-alarm", "method": "unit", "units": [r["serial"] for r in runs],
                "candidates": candidates, "window_seconds": window_s}  # fmt: skip
        history, _ = product.analyse(body)
        rankings = {u["unit"]: u for u in history["result"]["units"]}
        unlabellable = 0
        for run in runs:
            ranked = {c["name"] for c in rankings[run["serial"]]["causes"]}
            causes = [c for c in run["truth"] if c in ranked]
            if not causes:
                unlabellable += 1
                continue
            product.post(f"analyses/{history['id']}/label", {"unit": run["serial"], "causes": causes}, expect=200)
        test, seconds = product.analyse(body)
        result = test["result"]
        by_unit = {u["unit"]: u for u in result["units"]}
        sums = {"sup": [0.0, 0.0, 0.0], "unsup": [0.0, 0.0, 0.0]}
        supervised_units = 0
        for run in runs:
            ranking = by_unit[run["serial"]]
            unsupervised = [c["name"] for c in ranking["causes"]] if ranking["verdict"] == "ranked" else []
            supervised = [c["name"] for c in ranking.get("supervised", [])]
            supervised_units += bool(supervised)
            for key, order in (("sup", supervised or unsupervised), ("unsup", unsupervised)):
                for i, value in enumerate(_scores(order, run["truth"])):
                    sums[key][i] += value
        n = len(runs)
        out[group] = {
            "runs": n,
            "top1": sums["sup"][0] / n,
            "top3": sums["sup"][1] / n,
            "map3": sums["sup"][2] / n,
            "unsupervised_top1": sums["unsup"][0] / n,
            "unsupervised_top3": sums["unsup"][1] / n,
            "unsupervised_map3": sums["unsup"][2] / n,
            "ranking_used": result["ranking"],
            "units_ranked_supervised": supervised_units,
            "trained_on": (result.get("supervised") or {}).get("trained_on"),
            "supervised_note": result.get("supervised_note", ""),
            "candidates_per_run": [
                min(len(u["causes"]) for u in result["units"]),
                max(len(u["causes"]) for u in result["units"]),
            ],
            "unlabellable_runs": unlabellable,
            "job_seconds": seconds,
        }
        out[group]["leave_one_experiment_out"] = _leave_one_experiment_out(product, body, runs, rankings, history)
        print(f"supervised {group}: {json.dumps(out[group])}", flush=True)
    return out


def _leave_one_experiment_out(product: Product, body: dict, runs: list, rankings: dict, history: dict) -> dict:
    """The stricter split: per experiment, the labels of its own runs are removed from the history and its runs
    are analysed, so no run of the same experiment (the same fault, repeated) is in the training data."""
    sums = [0.0, 0.0, 0.0]
    experiments = sorted({r["experiment"] for r in runs})

    def label(run: dict, causes: list[str]) -> None:
        product.post(f"analyses/{history['id']}/label", {"unit": run["serial"], "causes": causes}, expect=200)

    for experiment in experiments:
        held = [r for r in runs if r["experiment"] == experiment]
        for run in held:
            label(run, [])
        result, _ = product.analyse({**body, "units": [r["serial"] for r in held]})
        by_unit = {u["unit"]: u for u in result["result"]["units"]}
        for run in held:
            ranking = by_unit[run["serial"]]
            order = [c["name"] for c in ranking.get("supervised", [])] or [c["name"] for c in ranking["causes"]]
            for i, value in enumerate(_scores(order, run["truth"])):
                sums[i] += value
        for run in held:
            causes = [c for c in run["truth"] if c in {x["name"] for x in rankings[run["serial"]]["causes"]}]
            if causes:
                label(run, causes)
    n = len(runs)
    return {"experiments": len(experiments), "top1": sums[0] / n, "top3": sums[1] / n, "map3": sums[2] / n}


def published(root: Path) -> dict:
    figures: dict[str, dict] = {}
    for name in ("unsupervised_results.csv", "supervised_results.csv"):
        with open(root / "eval" / "rca" / "results" / name, encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                figures[row["model"]] = {
                    group: {
                        "top1": float(row[f"exp_{group}-sub_Prec@1"]),
                        "top3": float(row[f"exp_{group}-sub_Prec@3"]) if f"exp_{group}-sub_Prec@3" in row else None,
                        "map3": float(row[f"exp_{group}-sub_MAP@3"]) if f"exp_{group}-sub_MAP@3" in row else None,
                    }
                    for group in SUBSYSTEMS
                }
    return figures


# --- scale --------------------------------------------------------------------------------------------------------


def scale_run(product: Product, *, units: int, seed: int) -> dict:
    stations = [f"S{i}" for i in range(1, 6)]
    for position, station in enumerate(stations, start=1):
        product.post("stations", {"code": station, "position": position})
        for m in ("A", "B"):
            product.post("machines", {"code": f"{station}{m}", "station": station})
        for v in range(10):
            product.post("variables", {"name": f"{station}_v{v}", "station": station})
    product.post("stations", {"code": "QC", "position": 6})
    product.post("characteristics", {"code": "final", "station": "QC", "defect_codes": [{"code": "REJECT"}]})
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, size=(units, 50))
    machines = rng.integers(0, 2, size=(units, 5))
    late = np.arange(units) >= units // 2
    drift = late & (machines[:, 2] == 1)  # S3B drifts in the second half ...
    values[drift, 23] += 1.5  # ... in S3_v3
    p_fail = np.where(values[:, 23] > 2.0, 0.6, 0.01)
    defective = rng.random(units) < p_fail
    steps, inspections, lots = io.StringIO(), io.StringIO(), io.StringIO()
    steps.write("unit,station,machine,ts,variable,value\n")
    inspections.write("unit,characteristic,ts,defect_code\n")
    lots.write("unit,lots\n")
    for u in range(units):
        serial = f"P{u:06d}"
        t0 = BASE + timedelta(seconds=30 * u)
        lots.write(f"{serial},LOT{u // 500:03d}\n")
        for s, station in enumerate(stations):
            machine = f"{station}{'AB'[machines[u, s]]}"
            ts = (t0 + timedelta(seconds=5 * s)).isoformat()
            for v in range(10):
                steps.write(f"{serial},{station},{machine},{ts},{station}_v{v},{values[u, s * 10 + v]:.5f}\n")
        inspections.write(
            f"{serial},final,{(t0 + timedelta(seconds=40)).isoformat()},{'REJECT' if defective[u] else ''}\n"
        )
    product.upload("units", lots.getvalue().encode())
    content = steps.getvalue().encode()
    started = time.perf_counter()
    stored = product.upload("steps", content)
    upload_seconds = time.perf_counter() - started
    product.upload("inspections", inspections.getvalue().encode())
    analysis, seconds = product.analyse({"defect_code": "REJECT", "method": "line"})
    top = analysis["result"]["causes"][:3]
    return {
        "step_values": stored["stored"],
        "csv_megabytes": round(len(content) / 2**20, 1),
        "upload_seconds": round(upload_seconds, 1),
        "analysis_job_seconds": round(seconds, 1),
        "defects": int(defective.sum()),
        "verdict": analysis["verdict"],
        "top3": [(c["level"], c["name"]) for c in top],
    }


def _under_embedded(argv: list[str]) -> int:
    command = [sys.executable, "-m", "controlplane.embedded", "--dir", EMBEDDED_DIR, sys.executable,
               str(Path(__file__).resolve()), *argv]  # fmt: skip
    return subprocess.run(command, cwd=REPO_ROOT).returncode


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--window", type=float, action="append", help="seconds before the failure (default 30)")
    parser.add_argument("--scale-units", type=int, default=20_000, help="units x 50 step values; 0 skips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-causrca", action="store_true", help="only the 1M-value scale run")
    parser.add_argument(
        "--supervised", action="store_true", help="also the supervised protocol (leave-one-out labelled history)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    if not args.path.exists():
        parser.error(f"{args.path} not found")
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        return _under_embedded(argv)
    report: dict = {"published": published(args.path)}
    if not args.skip_causrca:
        product = Product()
        product.start(ORG_SLUG)
        data = causrca_load(args.path)
        report["import"] = causrca_import(product, data)
        print(f"imported {report['import']}", flush=True)
        report["causrca"] = {}
        for window in args.window or [30.0]:
            report["causrca"][str(window)] = causrca_evaluate(product, data, window_s=window)
            print(f"window {window:g} s: {json.dumps(report['causrca'][str(window)])}", flush=True)
        if args.supervised:
            report["supervised"] = causrca_supervised(product, data, window_s=30.0)
    if args.scale_units:
        scale = Product()
        scale.start(SCALE_SLUG)
        report["scale"] = scale_run(scale, units=args.scale_units, seed=args.seed)
        print(f"scale: {report['scale']}", flush=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
