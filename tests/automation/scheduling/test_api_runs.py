"""Starting runs through the API (no worker): what the run will solve, in minutes, and what is refused."""

from datetime import UTC, datetime

import pytest

from automation.scheduling.models import Run
from automation.scheduling.snapshot import problem_from_json
from jobs.models import Job
from tests.automation.scheduling.scheduling_api import FT06, MONDAY, build_factory, client_for, post, url

pytestmark = pytest.mark.django_db


def _machines(run_id: str) -> dict[str, dict]:
    return {m["id"]: m for m in Run.objects.get(pk=run_id).problem["machines"]}


def test_factory_data_becomes_minutes_from_the_horizon_start(org):
    """Catches datetime-to-minute mistakes: shifts in the machine's zone (Berlin 06:00 = 05:00 UTC, minute 0),
    downtime, deliveries, releases, due dates; and a run that is not queued as a job on the right queue."""
    client = client_for(org)
    build_factory(client, org)
    run = post(
        client,
        org,
        "runs",
        {
            "objective": "weighted_mix",
            "weights": {"makespan": 2, "tardiness": 5},
            "horizon_start": MONDAY.isoformat(),
            "horizon_days": 7,
        },
    )
    problem = problem_from_json(Run.objects.get(pk=run["id"]).problem)
    machines = {m.id: m for m in problem.machines}
    cut, paint, pack = machines["CUT"], machines["PAINT"], machines["PACK"]
    assert cut.calendar[:4] == ((0, 480), (510, 960), (1440, 1920), (1950, 2400))
    assert len(cut.calendar) == 10  # two shifts a day, Monday to Friday; the weekend is closed
    assert (paint.id, paint.calendar, paint.downtime) == ("PAINT", None, ((100, 200),))
    assert (pack.id, pack.calendar, pack.downtime) == ("PACK", None, ())
    assert problem.material_arrivals == {"paint": 150}
    orders = {o.id: o for o in problem.orders}
    assert (orders["B1"].release, orders["B1"].due, orders["P1"].weight) == (5, 300, 3)
    assert orders["P2"].due is None and orders["B2"].quantity == 90
    assert problem.horizon == 7 * 24 * 60
    assert {(s.machine, s.from_family, s.to_family, s.minutes) for s in problem.setups} == {
        ("CUT", "steel", "alu", 30),
        ("CUT", "alu", "steel", 45),
    }
    assert run["weights"] == {"makespan": 2, "tardiness": 5} and run["horizon_start"] == "2025-03-03T05:00:00Z"
    job = Job.objects.get(pk=run["job"])
    assert (job.kind, job.queue, job.status, job.params["run_id"]) == (
        "scheduling.optimize",
        "optimization",
        "queued",
        run["id"],
    )


def test_shift_windows_follow_the_machine_time_zone_across_a_dst_change(org):
    """Catches shifts converted with a fixed offset: on 30 March 2025 Berlin moves to UTC+2, so the Monday
    06:00 shift starts at 04:00 UTC, an hour earlier than on Friday; a night shift runs past midnight."""
    client = client_for(org)
    post(
        client,
        org,
        "machines",
        {
            "code": "M",
            "timezone": "Europe/Berlin",
            "shifts": [
                {"days": "fri,mon", "start": "06:00", "end": "14:00"},
                {"days": "sat", "start": "22:00", "end": "06:00"},
            ],
        },
    )
    post(
        client, org, "products", {"code": "p", "operations": [{"machines": [{"machine": "M", "minutes_per_unit": 1}]}]}
    )
    post(client, org, "orders", {"code": "o", "product": "p", "quantity": 1})
    friday = datetime(2025, 3, 28, 5, 0, tzinfo=UTC)  # 06:00 in Berlin (UTC+1)
    run = post(client, org, "runs", {"horizon_start": friday.isoformat(), "horizon_days": 4})
    # Sat 22:00 CET = 21:00 UTC to Sun 06:00 CEST = 04:00 UTC: seven hours, the clocks jump in between.
    saturday_night = (1440 + 16 * 60, 2 * 1440 - 60)
    monday = (3 * 1440 - 60, 3 * 1440 - 60 + 480)  # Mon 06:00 CEST = 04:00 UTC
    assert _machines(run["id"])["M"]["calendar"] == [[0, 480], list(saturday_night), list(monday)]


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"jobshop": {"jobs": [[[0, 3]], [[1, 2], [0, "x"]]]}}, "jobshop", "jobs[1][1]"),
        ({"jobshop": {"jobs": [[[0, 0]]]}}, "jobshop", "duration >= 1"),
        ({"jobshop": {"jobs": []}}, "jobshop", "non-empty"),
        ({"jobshop": {"jobs": FT06, "due_dates": [1, 2]}}, "jobshop", "one value per job"),
        ({"jobshop": {"jobs": FT06}, "objective": "weighted_tardiness"}, "objective", "due dates"),
        ({"jobshop": {"jobs": FT06}, "orders": ["B1"]}, "jobshop", "without orders"),
        ({"jobshop": {"jobs": FT06}, "time_limit_s": 100_000}, "time_limit_s", "3600"),
        ({"orders": ["B1", "NOPE"]}, "orders", "NOPE"),
        ({"objective": "cheapest"}, "objective", "cheapest"),
    ],
)
def test_bad_run_requests_are_refused_with_the_field_at_fault(org, body, field, needle):
    """Catches malformed problems reaching the worker (to fail there, or crash it) instead of a clear 400."""
    client = client_for(org)
    build_factory(client, org)
    response = client.post(url(org, "runs"), body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"] and needle in str(error["fields"][field]), error
    assert not Run.objects.filter(organization=org).exists()


def test_a_run_without_orders_is_refused(org):
    """Catches a job started for nothing to plan."""
    response = client_for(org).post(url(org, "runs"), {}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"]["orders"] == [
        "There are no orders to schedule."
    ]


def test_results_and_replans_of_an_unfinished_run_are_refused(org):
    """Catches a 500 (or an empty file) for the schedule of a run still queued, and a re-plan without a plan."""
    client = client_for(org)
    run = post(client, org, "runs", {"jobshop": {"jobs": FT06}})
    for path, accept in (("schedule", "application/json"), ("schedule.csv", "text/csv"), ("gantt.png", "image/png")):
        response = client.get(url(org, f"runs/{run['id']}/{path}"), HTTP_ACCEPT=accept)
        assert response.status_code == 409, path
        assert response.json()["error"]["code"] == "no_schedule"
    response = client.post(url(org, f"runs/{run['id']}/reschedule"), {}, format="json")
    assert response.status_code == 400 and "no schedule to re-plan" in response.json()["error"]["message"]


def test_runs_list_newest_first_without_the_problem_body(org):
    """Catches the list answering the (possibly huge) problem or schedule, or in an unstable order."""
    client = client_for(org)
    ids = [post(client, org, "runs", {"jobshop": {"jobs": FT06}})["id"] for _ in range(3)]
    listed = client.get(url(org, "runs")).json()["results"]
    assert [r["id"] for r in listed] == ids[::-1]
    assert not {"problem", "schedule", "frozen"} & set(listed[0])
