"""Optimisation runs through the API, executed by a real Celery worker on the optimisation queue."""

import csv
import io
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from automation.scheduling.engine import Assignment, check_schedule, problem_from_jobshop
from automation.scheduling.models import Downtime, Run
from automation.scheduling.snapshot import frozen_from_json, problem_from_json, schedule_from_json
from billing.periods import period_containing
from billing.usage import usage_observed
from jobs.models import Job
from tests.automation.scheduling.scheduling_api import (
    FT06,
    MONDAY,
    at,
    build_factory,
    client_for,
    post,
    url,
    wait_for_run,
)
from tests.workers import running_optimization_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_optimization_worker(name="scheduling", log_dir=tmp_path_factory.mktemp("worker")) as process:
        yield process


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _run_problem(run_id: str):
    run = Run.objects.get(pk=run_id)
    return run, problem_from_json(run.problem), schedule_from_json(run.schedule or [])


def test_ft06_through_the_api_is_solved_to_proven_optimality(worker, org):
    """Catches a broken path from POST /runs to the worker and back: dispatch, solving, metrics events, results,
    downloads and metering. ft06's optimum is 55."""
    client = client_for(org)
    run = post(client, org, "runs", {"jobshop": {"jobs": FT06}, "objective": "makespan", "time_limit_s": 30})
    assert run["status"] == "queued" and run["kind"] == "jobshop"

    done = wait_for_run(client, org, run["id"])
    assert (done["status"], done["solver_status"], done["objective_value"], done["gap"]) == (
        "succeeded",
        "optimal",
        55,
        0.0,
    )
    assert done["kpis"]["makespan_minutes"] == 55 and done["progress"] == 100
    job = Job.objects.get(pk=done["job"])
    assert job.result["objective"] == 55 and job.result["gap"] == 0.0 and job.result["operations"] == 36

    metrics = list(job.events.filter(level="metrics").values_list("data", flat=True))
    assert metrics, "no better-schedule events were recorded"
    assert all(set(m) == {"objective", "bound", "gap", "wall_time"} for m in metrics)
    assert metrics[-1]["objective"] == 55
    assert [m["objective"] for m in metrics] == sorted((m["objective"] for m in metrics), reverse=True)

    response = client.get(url(org, f"runs/{run['id']}/schedule.csv"), HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 36
    schedule = [
        Assignment(
            r["order"],
            int(r["operation"]),
            r["machine"],
            int(r["start_minute"]),
            int(r["end_minute"]),
            int(r["setup_minutes"]),
        )
        for r in rows
    ]
    assert check_schedule(problem_from_jobshop(FT06), schedule) == []
    assert all(
        _dt(r["end"]) - _dt(r["start"]) == timedelta(minutes=int(r["end_minute"]) - int(r["start_minute"]))
        for r in rows
    )

    png = client.get(url(org, f"runs/{run['id']}/gantt.png"), HTTP_ACCEPT="image/png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")

    by_machine = client.get(url(org, f"runs/{run['id']}/schedule")).json()
    assert sorted(m["machine"] for m in by_machine) == [f"M{i}" for i in range(6)]
    assert sum(len(m["operations"]) for m in by_machine) == 36

    used = usage_observed(organization_id=org.id, period=period_containing(timezone.now()))
    assert used.get("optimization.solver_seconds", 0) >= 1


def test_factory_built_through_the_api_gets_a_schedule_that_respects_every_rule(worker, org):
    """Builds shifts in Berlin time, downtime, changeovers, a material delivery and releases through the API,
    then checks the schedule both with the engine's checker (minutes) and in real datetimes, so a conversion
    mistake in either direction shows up."""
    client = client_for(org)
    build_factory(client, org)
    run = post(
        client,
        org,
        "runs",
        {"objective": "weighted_tardiness", "time_limit_s": 10, "horizon_start": MONDAY.isoformat(), "horizon_days": 7},
    )
    done = wait_for_run(client, org, run["id"])
    assert done["status"] == "succeeded" and done["solver_status"] in ("optimal", "feasible"), done
    _, problem, schedule = _run_problem(run["id"])
    assert check_schedule(problem, schedule) == []
    assert len(schedule) == 3 * 3 + 2 * 2

    operations = [
        dict(op, machine=m["machine"])
        for m in client.get(url(org, f"runs/{run['id']}/schedule")).json()
        for op in m["operations"]
    ]
    berlin = ZoneInfo("Europe/Berlin")
    releases = {"B1": "05:05", "P1": "06:00", "B2": "05:10", "P2": "06:40", "B3": "08:20"}
    for op in operations:
        start, end = _dt(op["start"]), _dt(op["end"])
        assert start >= _dt(at(releases[op["order"]])), op
        if op["machine"] == "CUT":
            local_from = (start - timedelta(minutes=op["setup_minutes"])).astimezone(berlin)
            local_to = end.astimezone(berlin)
            assert local_from.weekday() < 5 and local_from.date() == local_to.date(), op
            shift = ("06:00", "14:00") if local_from.strftime("%H:%M") < "14:00" else ("14:30", "22:00")
            assert shift[0] <= local_from.strftime("%H:%M") and local_to.strftime("%H:%M") <= shift[1], op
        if op["machine"] == "PAINT":
            assert end <= _dt(at("06:40")) or start >= _dt(at("08:20")), op  # the downtime
        if op["operation_name"] == "paint":
            assert start >= _dt(at("07:30")), op  # the paint delivery
    assert sorted(done["kpis"]["tardiness_minutes"]) == ["B1", "B2", "B3", "P1"]
    assert set(done["kpis"]["utilisation"]) == {"CUT", "PAINT", "PACK"}


def test_infeasible_orders_fail_with_a_diagnosis_naming_order_and_operation(worker, org):
    """Catches a bare "infeasible": the job fails with code infeasible and the findings name the order, the
    operation and the reason, both in the job's result and on the run."""
    client = client_for(org)
    post(client, org, "machines", {"code": "OVEN", "shifts": [{"days": "mon-sun", "start": "08:00", "end": "10:00"}]})
    post(client, org, "machines", {"code": "BENCH"})
    post(client, org, "materials", {"code": "glaze"})  # no delivery date
    post(
        client,
        org,
        "products",
        {
            "code": "pot",
            "operations": [
                {"name": "shape", "machines": [{"machine": "BENCH", "minutes_per_unit": 5}]},
                {"name": "glaze", "machines": [{"machine": "BENCH", "minutes_per_unit": 1}], "materials": ["glaze"]},
            ],
        },
    )
    post(
        client,
        org,
        "products",
        {
            "code": "kiln-batch",
            "operations": [
                {"name": "fire", "machines": [{"machine": "OVEN", "minutes_per_unit": 180}]},  # longer than any shift
            ],
        },
    )
    post(client, org, "orders", {"code": "POT-1", "product": "pot", "quantity": 2})
    post(client, org, "orders", {"code": "FIRE-1", "product": "kiln-batch", "quantity": 1})

    run = post(client, org, "runs", {"time_limit_s": 10, "horizon_start": MONDAY.isoformat(), "horizon_days": 3})
    done = wait_for_run(client, org, run["id"])
    assert (done["status"], done["error"]["code"], done["solver_status"]) == ("failed", "infeasible", "infeasible")
    found = {(f["order"], f["operation"], f["operation_name"], f["reason"]) for f in done["findings"]}
    assert found == {("POT-1", 1, "glaze", "material_never_arrives"), ("FIRE-1", 0, "fire", "no_capable_machine")}
    assert all(f["message"] for f in done["findings"])
    assert Job.objects.get(pk=done["job"]).result["findings"] == done["findings"]
    assert client.get(url(org, f"runs/{run['id']}/schedule.csv")).status_code == 409


def test_rescheduling_after_a_breakdown_keeps_started_operations_and_avoids_the_repair(worker, org):
    """Catches a re-plan that moves work already under way, uses the broken machine during its repair,
    starts anything in the past, or does not start from the plan it replaces."""
    client = client_for(org)
    first = post(client, org, "runs", {"jobshop": {"jobs": FT06}, "time_limit_s": 20})
    wait_for_run(client, org, first["id"])
    _, _, plan = _run_problem(first["id"])
    now = 20
    running = next(a for a in sorted(plan, key=lambda a: a.start) if a.start < now < a.end)
    start = datetime.fromisoformat(first["horizon_start"].replace("Z", "+00:00"))
    replan = post(
        client,
        org,
        f"runs/{first['id']}/reschedule",
        {
            "now": (start + timedelta(minutes=now)).isoformat(),
            "breakdown": {
                "machine": running.machine,
                "from": (start + timedelta(minutes=now)).isoformat(),
                "duration_minutes": 15,
            },
        },
    )
    assert replan["parent"] == first["id"] and replan["changes"]["breakdown"]["machine"] == running.machine

    done = wait_for_run(client, org, replan["id"])
    assert done["status"] == "succeeded", done
    run, problem, schedule = _run_problem(replan["id"])
    frozen = frozen_from_json(run.frozen)
    assert {(f.order, f.op_index) for f in frozen} == {a.key for a in plan if a.start < now} - {running.key}
    assert check_schedule(problem, schedule, frozen=frozen, now=now) == []
    by_key = {a.key: a for a in schedule}
    for f in frozen:
        assert (by_key[f.order, f.op_index].machine, by_key[f.order, f.op_index].start) == (f.machine, f.start)
    assert all(
        a.end <= now or a.start >= now + 15
        for a in schedule
        if a.machine == running.machine and a.key not in {(f.order, f.op_index) for f in frozen}
    )
    assert by_key[running.key].start >= now


def test_rescheduling_factory_orders_adds_rush_orders_and_records_the_breakdown(worker, org):
    """Catches rush orders left out of the re-plan, or a breakdown that later runs would not know of."""
    client = client_for(org)
    build_factory(client, org)
    post(
        client, org, "orders", {"code": "RUSH", "product": "panel", "quantity": 10, "due_at": at("09:00"), "weight": 10}
    )
    first = post(
        client,
        org,
        "runs",
        {"orders": ["B1", "P1", "B2"], "time_limit_s": 5, "horizon_start": MONDAY.isoformat(), "horizon_days": 7},
    )
    wait_for_run(client, org, first["id"])
    replan = post(
        client,
        org,
        f"runs/{first['id']}/reschedule",
        {
            "now": at("06:00"),
            "rush_orders": ["RUSH"],
            "objective": "weighted_tardiness",
            "time_limit_s": 5,
            "breakdown": {"machine": "PACK", "from": at("06:00"), "duration_minutes": 60},
        },
    )
    done = wait_for_run(client, org, replan["id"])
    assert done["status"] == "succeeded", done
    run, problem, schedule = _run_problem(replan["id"])
    assert {a.order for a in schedule} == {"B1", "P1", "B2", "RUSH"}
    assert check_schedule(problem, schedule, frozen=frozen_from_json(run.frozen), now=run.now_minute) == []
    assert run.now_minute == 60
    breakdown = Downtime.objects.get(organization=org, kind="breakdown")
    assert (breakdown.machine.code, breakdown.starts_at, breakdown.ends_at) == (
        "PACK",
        _dt(at("06:00")),
        _dt(at("07:00")),
    )


def test_cancelling_a_run_keeps_the_best_schedule_found_so_far(worker, org):
    """Catches a cancel that never reaches the solver, or one that throws away the schedule already found."""
    rng = random.Random(21)
    hard = [[[m, rng.randint(5, 99)] for m in rng.sample(range(10), 10)] for _ in range(15)]
    client = client_for(org)
    run = post(client, org, "runs", {"jobshop": {"jobs": hard}, "time_limit_s": 300})
    job = Job.objects.get(pk=run["job"])
    wait_until(lambda: job.events.filter(level="metrics").exists(), timeout=60, what="a first schedule")
    response = client.post(f"/api/v1/orgs/{org.slug}/jobs/{job.id}/cancel")
    assert response.status_code == 200, response.content
    cancelled_at = timezone.now()

    done = wait_for_run(client, org, run["id"], timeout=30)
    assert (done["status"], done["solver_status"]) == ("cancelled", "cancelled")
    job.refresh_from_db()
    assert job.finished_at - cancelled_at < timedelta(seconds=15)
    assert job.result["objective"] == done["objective_value"] > 0 and job.result["operations"] == 150
    _, problem, schedule = _run_problem(run["id"])
    assert check_schedule(problem, schedule) == []
    assert client.get(url(org, f"runs/{run['id']}/schedule.csv")).status_code == 200
