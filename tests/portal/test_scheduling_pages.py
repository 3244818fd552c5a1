"""The production-scheduling pages through Django's test client and the real services: import (line-numbered
errors, all or nothing), starting runs, roles, isolation, and one tiny optimisation through a real Celery worker
whose results (Gantt chart, KPIs, schedule, CSV) the run page then shows."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from automation.scheduling import runs
from automation.scheduling.models import Downtime, Machine, Order, Product, Run
from jobs.models import Job
from tenants.roles import Role
from tests import builders
from tests.workers import running_optimization_worker, wait_until

DATA = Path(__file__).resolve().parent / "data" / "scheduling"
FACTORY_FILES = ("machines", "products", "operations", "setup_times", "orders")


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"portal:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _files(*names: str, **replaced: str) -> dict:
    """The sample CSV files as uploads, each under its entity's field (`replaced` swaps in another file)."""
    return {
        name: SimpleUploadedFile(
            f"{name}.csv", (DATA / replaced.get(name, f"{name}.csv")).read_bytes(), content_type="text/csv"
        )
        for name in names
    }


def _member(org, role: str):
    return builders.session_client(
        org.memberships.get(role=Role.OWNER).user if role == Role.OWNER else builders.add_member(org, role)
    )


def _import_sample_factory(client, org) -> None:
    response = client.post(_url("scheduling-import", org), _files(*FACTORY_FILES))
    assert response.status_code == 302, response.content.decode()[:2000]


def _run(org, **kwargs) -> Run:
    return runs.run_create(
        organization=org, actor=builders.owner_actor(org), objective="makespan", time_limit_s=5, **kwargs
    )


@pytest.mark.django_db
def test_the_page_lists_the_factory_after_a_csv_import(org):
    """Catches an import form that does not reach the importer, or a page that does not show what was stored."""
    client = _member(org, Role.OWNER)
    page = client.get(_url("scheduling", org))
    assert page.status_code == 200
    html = page.content.decode()
    for label in ("Machines", "Products", "Operations", "Orders", "JSON document"):
        assert re.search(rf'<label for="import-[a-z_]+">{label}</label>', html), label
    assert "Run optimisation" in html

    response = client.post(_url("scheduling-import", org), _files(*FACTORY_FILES), follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Imported" in html
    assert (
        Machine.objects.filter(organization=org).count(),
        Product.objects.filter(organization=org).count(),
        Order.objects.filter(organization=org).count(),
    ) == (3, 2, 4)
    assert 'data-count="orders">4<' in html and 'data-count="machines">3<' in html
    for code in ("CUT", "PAINT", "bracket", "panel", "B1", "P2"):
        assert f"<td>{code}</td>" in html


@pytest.mark.django_db
def test_a_json_document_imports_too(org):
    client = _member(org, Role.OWNER)
    document = SimpleUploadedFile("factory.json", (DATA / "factory.json").read_bytes(), content_type="application/json")
    response = client.post(_url("scheduling-import", org), {"document": document})
    assert response.status_code == 302
    assert Order.objects.filter(organization=org).count() == 2


@pytest.mark.django_db
def test_a_bad_csv_line_is_named_by_file_and_line_and_nothing_is_stored(org):
    """Catches an import that stores the good rows of a rejected upload, or errors without their line."""
    client = _member(org, Role.OWNER)
    response = client.post(_url("scheduling-import", org), _files(*FACTORY_FILES, orders="bad_orders.csv"))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="import-errors"' in html
    assert "<strong>orders line 3</strong>: product: No product with the code no-such-product." in html
    assert "<strong>orders line 4</strong>: quantity:" in html
    assert "Nothing was imported." in html
    assert not Machine.objects.filter(organization=org).exists()
    assert not Order.objects.filter(organization=org).exists()


@pytest.mark.django_db
def test_a_file_with_a_wrong_header_is_refused_with_its_first_line(org):
    client = _member(org, Role.OWNER)
    upload = SimpleUploadedFile("machines.csv", b"code,colour\nCUT,red\n", content_type="text/csv")
    response = client.post(_url("scheduling-import", org), {"machines": upload})
    assert response.status_code == 400
    assert "<strong>machines line 1</strong>: unknown column &#x27;colour&#x27;" in response.content.decode()
    assert not Machine.objects.filter(organization=org).exists()


@pytest.mark.django_db
def test_starting_a_run_queues_an_optimisation_job_and_shows_its_live_status(org):
    """Catches a run form that does not reach run_create, or a run page that would poll forever or never."""
    client = _member(org, Role.MEMBER)
    _import_sample_factory(_member(org, Role.OWNER), org)
    response = client.post(
        _url("scheduling-run-create", org),
        {
            "objective": "weighted_mix",
            "time_limit_s": 7,
            "horizon_days": 14,
            "weight_makespan": 2,
            "weight_tardiness": 5,
        },
    )
    run = Run.objects.get(organization=org)
    assert response.status_code == 302 and response["Location"] == _url("scheduling-run", org, pk=run.pk)
    assert (run.objective, run.time_limit_s, run.weights, run.job.status, run.job.queue) == (
        "weighted_mix",
        7,
        {"makespan": 2, "tardiness": 5},
        "queued",
        "optimization",
    )
    assert len(run.problem["orders"]) == 4

    page = client.get(response["Location"]).content.decode()
    assert 'id="run-status"' in page and 'data-status="queued"' in page
    assert "data-poll=" in page and "Cancel the run" in page
    fragment = client.get(response["Location"], HTTP_X_FRAGMENT="1").content.decode()
    assert fragment.lstrip().startswith('<div id="run-live" data-poll=')
    assert "<html" not in fragment


@pytest.mark.django_db
def test_run_form_errors_come_back_on_the_form(org):
    client = _member(org, Role.OWNER)
    response = client.post(
        _url("scheduling-run-create", org), {"objective": "makespan", "time_limit_s": 5, "horizon_days": 28}
    )
    assert response.status_code == 400
    assert "There are no orders to schedule." in response.content.decode()
    _import_sample_factory(client, org)
    response = client.post(
        _url("scheduling-run-create", org),
        {"objective": "makespan", "time_limit_s": 5, "horizon_days": 28, "orders": "B1, NOPE"},
    )
    assert response.status_code == 400
    assert "No order with the code &#x27;NOPE&#x27;." in response.content.decode()
    assert not Run.objects.filter(organization=org).exists()


@pytest.mark.django_db
def test_cancelling_a_queued_run_uses_the_jobs_service(org):
    client = _member(org, Role.MEMBER)
    _import_sample_factory(_member(org, Role.OWNER), org)
    run = _run(org)
    response = client.post(_url("scheduling-run-cancel", org, pk=run.pk), follow=True)
    assert response.status_code == 200
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.CANCELLED
    html = response.content.decode()
    assert 'data-status="cancelled"' in html and "data-poll=" not in html
    assert run.job.events.filter(message__startswith="Cancelled by").exists()


@pytest.mark.django_db
def test_a_viewer_reads_but_cannot_import_or_start_cancel_or_replan_runs(org):
    """Catches a portal action that forgets the scope its API counterpart needs."""
    _import_sample_factory(_member(org, Role.OWNER), org)
    run = _run(org)
    viewer = _member(org, Role.VIEWER)
    assert viewer.get(_url("scheduling", org)).status_code == 200
    page = viewer.get(_url("scheduling-run", org, pk=run.pk)).content.decode()
    assert "Cancel the run" not in page
    for name, kwargs, data in [
        ("scheduling-import", {}, _files("machines")),
        ("scheduling-run-create", {}, {"objective": "makespan", "time_limit_s": 5, "horizon_days": 28}),
        ("scheduling-run-cancel", {"pk": run.pk}, {}),
        ("scheduling-run-reschedule", {"pk": run.pk}, {"rush_orders": "B1"}),
        ("scheduling-run-what-if", {"pk": run.pk}, {"tariff_factor": 2}),
    ]:
        response = viewer.post(_url(name, org, **kwargs), data)
        assert response.status_code == 403, name
        assert "Not allowed" in response.content.decode()
    assert Run.objects.filter(organization=org).count() == 1
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.QUEUED


@pytest.mark.django_db
def test_another_organisations_run_does_not_exist(org, other_org):
    """Catches a run page, image, download or action that looks a run up without the organisation."""
    _import_sample_factory(_member(org, Role.OWNER), org)
    run = _run(org)
    stranger = _member(other_org, Role.OWNER)
    for name in ("scheduling-run", "scheduling-run-gantt", "scheduling-run-csv"):
        assert stranger.get(_url(name, other_org, pk=run.pk)).status_code == 404, name
        assert stranger.get(_url(name, org, pk=run.pk)).status_code == 404, name
    for name in ("scheduling-run-cancel", "scheduling-run-reschedule", "scheduling-run-what-if"):
        assert stranger.post(_url(name, other_org, pk=run.pk), {"rush_orders": "B1"}).status_code == 404, name
    run.job.refresh_from_db()
    assert run.job.status == Job.Status.QUEUED


@pytest.mark.django_db
def test_a_run_without_a_schedule_has_no_gantt_chart_or_csv(org):
    _import_sample_factory(_member(org, Role.OWNER), org)
    run = _run(org)
    client = _member(org, Role.VIEWER)
    assert client.get(_url("scheduling-run-gantt", org, pk=run.pk)).status_code == 404
    assert client.get(_url("scheduling-run-csv", org, pk=run.pk)).status_code == 404


@pytest.fixture(scope="module")
def optimization_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_optimization_worker(name="portal-scheduling", log_dir=tmp_path_factory.mktemp("worker")) as worker:
        yield worker


def _finished(run_pk) -> Run:
    def done():
        run = Run.objects.select_related("job").get(pk=run_pk)
        return run if run.job.is_finished else None

    return wait_until(done, timeout=120, interval=0.3, what=f"run {run_pk} to finish")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_tiny_optimisation_through_a_worker_shows_gantt_kpis_schedule_and_replans(optimization_worker):
    """Catches a broken path from the portal's forms to the worker and back to the page: the live part stops
    polling when the job ends, the Gantt image is the API's PNG, the KPIs and schedule are the run's, the CSV
    downloads, and a breakdown re-plan starts a child run that records the downtime."""
    org = builders.make_org()
    client = _member(org, Role.MEMBER)
    _import_sample_factory(_member(org, Role.OWNER), org)
    response = client.post(
        _url("scheduling-run-create", org), {"objective": "makespan", "time_limit_s": 5, "horizon_days": 7}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    run = _finished(Run.objects.get(organization=org).pk)
    assert run.job.status == Job.Status.SUCCEEDED, (run.job.error_code, run.job.error_message)

    fragment = client.get(response["Location"], HTTP_X_FRAGMENT="1").content.decode()
    assert "data-poll=" not in fragment and 'data-status="succeeded"' in fragment
    page = client.get(response["Location"])
    html = page.content.decode()
    gantt = _url("scheduling-run-gantt", org, pk=run.pk)
    assert f'<img id="gantt" class="gantt" src="{gantt}"' in html
    assert 'id="kpis"' in html and f'data-kpi="makespan">{run.kpis["makespan"]} min<' in html
    assert 'data-kpi="on_time_rate">100.0 %<' in html  # B1 and P1 are due in 2035
    assert f'id="run-objective">{run.objective_value}<' in html
    assert "Machine utilisation (%)" in html and "<svg" in html
    operations = len(run.schedule)
    assert operations == 2 * 3 + 2 * 2 and html.count("<td>CUT</td>") == 4
    assert 'id="reschedule-form"' in html

    png = client.get(gantt)
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    download = client.get(_url("scheduling-run-csv", org, pk=run.pk))
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert len(rows) == operations and {r["machine"] for r in rows} == {"CUT", "PAINT", "PACK"}

    # A breakdown of the cutter for an hour from now: a re-plan that knows of it, and a downtime later runs see.
    stopped = run.horizon_start.strftime("%Y-%m-%dT%H:%M")
    replan = client.post(
        _url("scheduling-run-reschedule", org, pk=run.pk),
        {"machine": "CUT", "breakdown_from": stopped, "duration_minutes": 60, "time_limit_s": 3},
    )
    assert replan.status_code == 302, replan.content.decode()[:3000]
    child = Run.objects.get(organization=org, parent=run)
    assert replan["Location"] == _url("scheduling-run", org, pk=child.pk)
    assert child.changes["breakdown"]["machine"] == "CUT"
    assert Downtime.objects.filter(organization=org, machine__code="CUT", kind="breakdown").exists()
    child = _finished(child.pk)
    assert child.job.status == Job.Status.SUCCEEDED, (child.job.error_code, child.job.error_message)
    html = client.get(replan["Location"]).content.decode()
    assert 'id="replan-of"' in html and "Machine CUT broke down for 60 minutes." in html
    assert 'id="gantt"' in html


INFEASIBLE = {
    "machines": [
        {"code": "OVEN", "shifts": [{"days": "mon-sun", "start": "08:00", "end": "10:00"}]},
        {"code": "BENCH"},
    ],
    "materials": [{"code": "glaze"}],
    "products": [
        {
            "code": "pot",
            "operations": [
                {"name": "shape", "machines": [{"machine": "BENCH", "minutes_per_unit": 5}]},
                {"name": "glaze", "machines": [{"machine": "BENCH", "minutes_per_unit": 1}], "materials": ["glaze"]},
            ],
        },
        {
            "code": "kiln-batch",
            "operations": [{"name": "fire", "machines": [{"machine": "OVEN", "minutes_per_unit": 180}]}],
        },
    ],
    "orders": [
        {"code": "POT-1", "product": "pot", "quantity": 2},
        {"code": "FIRE-1", "product": "kiln-batch", "quantity": 1},
    ],
}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_infeasible_plan_shows_the_diagnosis_per_order_and_step(optimization_worker):
    """Catches a failed run page that shows a bare "infeasible" instead of what to fix."""
    org = builders.make_org()
    client = _member(org, Role.OWNER)
    document = SimpleUploadedFile("kiln.json", json.dumps(INFEASIBLE).encode(), content_type="application/json")
    assert client.post(_url("scheduling-import", org), {"document": document}).status_code == 302
    response = client.post(
        _url("scheduling-run-create", org), {"objective": "makespan", "time_limit_s": 5, "horizon_days": 3}
    )
    run = _finished(Run.objects.get(organization=org).pk)
    assert (run.job.status, run.job.error_code) == (Job.Status.FAILED, "infeasible")
    html = client.get(response["Location"]).content.decode()
    assert 'id="run-error"' in html and "No schedule exists" in html
    diagnosis = html.split('id="diagnosis"', 1)[1].split("</table>", 1)[0]
    assert (
        "<td>FIRE-1</td><td>1 (fire)</td><td>No machine can do this step within one of its working windows</td>"
        in diagnosis
    )
    assert "<td>POT-1</td><td>2 (glaze)</td><td>A material this step needs has no delivery date</td>" in diagnosis
    assert 'id="gantt"' not in html and 'id="reschedule-form"' not in html


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_cost_plan_shows_its_forecasts_and_a_what_if_from_the_page_compares_with_it(optimization_worker):
    """Catches a what-if form that does not reach the service, or a scenario page without the comparison."""
    from tests.automation.scheduling.test_api_cost import FILES

    org = builders.make_org()
    client = _member(org, Role.OWNER)
    uploads = {
        name: SimpleUploadedFile(f"{name}.csv", text.encode(), content_type="text/csv") for name, text in FILES.items()
    }
    assert client.post(_url("scheduling-import", org), uploads).status_code == 302
    response = client.post(
        _url("scheduling-run-create", org),
        {"objective": "cost", "time_limit_s": 5, "horizon_days": 7, "horizon_start": "2025-03-03 05:00"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    run = _finished(Run.objects.get(organization=org).pk)
    assert run.job.status == Job.Status.SUCCEEDED, (run.job.error_code, run.job.error_message)
    html = client.get(response["Location"]).content.decode()
    assert 'id="what-if-form"' in html and 'id="costs"' in html
    refused = client.post(_url("scheduling-run-what-if", org, pk=run.pk), {"tariff_hours": "8-20"})
    assert refused.status_code == 400 and "Change at least one thing" in refused.content.decode()
    scenario = client.post(
        _url("scheduling-run-what-if", org, pk=run.pk),
        {"material": "steel", "percent": "30", "tariff_factor": "2", "tariff_hours": "8-20", "time_limit_s": 5},
    )
    assert scenario.status_code == 302, scenario.content.decode()[:3000]
    child = _finished(Run.objects.get(organization=org, parent=run).pk)
    assert child.job.status == Job.Status.SUCCEEDED, (child.job.error_code, child.job.error_message)
    assert [c["kind"] for c in child.changes["what_if"]] == ["material_price", "tariff"]
    html = client.get(scenario["Location"]).content.decode()
    assert 'id="comparison-costs"' in html and 'id="base-plan-kept"' in html
    costs = html.split('id="comparison-costs"', 1)[1].split("</table>", 1)[0]
    assert "Materials" in costs and "Energy" in costs and "Total" in costs
