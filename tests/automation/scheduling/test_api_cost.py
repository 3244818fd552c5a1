"""The cost objective through the API: purchasing and energy master data by CSV, a cost run, its purchase
orders and cost breakdown (executed by a real Celery worker on the optimisation queue)."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from automation.scheduling.engine import check_plan
from automation.scheduling.engine.costs import Purchase
from automation.scheduling.models import BomLine, Material, Run, Supplier, SupplierPrice, TariffRate
from automation.scheduling.snapshot import problem_from_json, schedule_from_json
from tests.automation.scheduling.scheduling_api import MONDAY, client_for, post, url, wait_for_run
from tests.workers import running_worker

# MONDAY is 05:00 UTC; the horizon starts there. Steel costs 10 from the start, 12 from Wednesday on.
FILES = {
    "machines": "code,running_kw,idle_kw\nPRESS,100,5\n",
    "shifts": (
        "machine,days,start,end,overtime_cost_per_hour\nPRESS,mon-sun,06:00,22:00,\nPRESS,mon-sun,22:00,06:00,80\n"
    ),
    "materials": "code,stock,holding_cost_per_day,storage_limit\nsteel,5,0.1,500\n",
    "suppliers": "code,material,lead_days,moq,price_breaks\nacme,steel,1,10,100:0.9\nbolt,steel,0,1,\n",
    "supplier_prices": (
        "supplier,day,price\nacme,2025-03-01,10\nacme,2025-03-05,12\nbolt,2025-03-01,11\nbolt,2025-03-05,13\n"
    ),
    "products": "code\nbracket\n",
    "operations": "product,step,machine,minutes_per_unit\nbracket,1,PRESS,60\nbracket,2,PRESS,30\n",
    "bom": "product,step,material,quantity_per_unit\nbracket,1,steel,4\n",
    "orders": (
        "code,product,quantity,release_at,due_at,late_penalty_per_day,optional,margin\n"
        "A,bracket,3,2025-03-07T05:00:00Z,2025-03-08T05:00:00Z,50,,\n"
        "B,bracket,2,2025-03-03T05:00:00Z,2025-03-04T05:00:00Z,50,true,500\n"
    ),
    "tariff": "weekday,hour,price_per_kwh\n"
    + "".join(f"{d},{h},{0.4 if 8 <= h < 20 else 0.1}\n" for d in range(7) for h in range(24)),
}


def _upload(client, org, files: dict[str, str]):
    data = {
        name: SimpleUploadedFile(f"{name}.csv", text.encode(), content_type="text/csv") for name, text in files.items()
    }
    return client.post(url(org, "import"), data, format="multipart")


@pytest.mark.django_db
def test_purchasing_and_energy_data_import_from_csv_and_reach_the_run(org):
    """Catches cost master data lost between CSV, models and the engine problem a cost run solves."""
    client = client_for(org)
    response = _upload(client, org, FILES)
    assert response.status_code == 200, response.content
    created = response.json()["created"]
    assert (created["suppliers"], created["supplier_prices"], created["bom"], created["tariff"]) == (2, 4, 1, 168)
    assert Supplier.objects.get(organization=org, code="acme").price_breaks == [[100, 0.9]]
    run = post(client, org, "runs", {"objective": "cost", "horizon_start": MONDAY.isoformat(), "horizon_days": 7})
    problem = problem_from_json(Run.objects.get(pk=run["id"]).problem)
    cost = problem.cost
    assert cost is not None
    assert [(m.id, m.stock, m.holding_per_day, m.storage_limit) for m in cost.materials] == [("steel", 5, 0.1, 500)]
    acme = next(s for s in cost.suppliers if s.id == "acme")
    # dated before the horizon: day 0; 2025-03-05 00:00 UTC is 43 hours in, so it applies from day 2
    assert [(p.day, p.price) for p in acme.prices] == [(0, 10.0), (2, 12.0)]
    assert (acme.lead_days, acme.moq, [(b.min_quantity, b.factor) for b in acme.breaks]) == (1, 10, [(100, 0.9)])
    assert [(b.product, b.op_index, b.material, b.per_unit) for b in cost.bom] == [("bracket", 0, "steel", 4.0)]
    assert [(p.machine, p.running_kw, p.idle_kw) for p in cost.power] == [("PRESS", 100.0, 5.0)]
    assert len(cost.tariff) == 7 * 24 and cost.tariff[0] == 0.1 and cost.tariff[3] == 0.4  # 05:00, 08:00 UTC
    assert cost.overtime and all(o.cost_per_hour == 80 for o in cost.overtime)
    assert {t.order: (t.late_penalty_per_day, t.optional, t.margin) for t in cost.orders} == {
        "A": (50.0, False, 0.0),
        "B": (50.0, True, 500.0),
    }


@pytest.mark.django_db
def test_bad_cost_data_is_refused_by_file_and_line_and_nothing_is_written(org):
    """Catches a half-written import of prices or bills of materials, or errors without their line."""
    client = client_for(org)
    files = dict(
        FILES,
        supplier_prices="supplier,day,price\nacme,2025-03-01,10\nnobody,2025-03-01,1\nacme,someday,-2\n",
        bom="product,step,material,quantity_per_unit\nbracket,1,steel,4\nbracket,7,steel,1\nbracket,1,tin,1\n",
        tariff="weekday,hour,price_per_kwh\n0,24,0.1\n",
        suppliers="code,material,lead_days,moq,price_breaks\nacme,steel,1,10,lots\nbolt,steel,0,1,\n",
    )
    response = _upload(client, org, files)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) >= {
        "suppliers line 2",
        "supplier_prices line 3",
        "supplier_prices line 4",
        "bom line 3",
        "bom line 4",
        "tariff line 2",
    }
    assert fields["supplier_prices line 3"] == {"supplier": ["No supplier with the code nobody."]}
    assert "no step 7" in fields["bom line 3"]["step"][0]
    assert {"day", "price"} <= set(fields["supplier_prices line 4"])  # and acme itself was refused
    for model in (Material, Supplier, SupplierPrice, BomLine, TariffRate):
        assert not model.objects.filter(organization=org).exists()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("SCHEDULING_SOLVER_WORKERS", "2")
    try:
        with running_worker(
            queues="optimization", name="scheduling-cost", log_path=tmp_path_factory.mktemp("worker") / "worker.log"
        ) as process:
            yield process
    finally:
        patch.undo()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_cost_run_plans_purchases_and_breaks_its_cost_down(worker, org):
    """Catches a cost run that loses its purchase orders or breakdown on the way back, or whose plan breaks a
    stock rule: checked again here by the engine's independent checker on the stored plan."""
    client = client_for(org)
    assert _upload(client, org, FILES).status_code == 200
    run = post(
        client,
        org,
        "runs",
        {"objective": "cost", "horizon_start": MONDAY.isoformat(), "horizon_days": 7, "time_limit_s": 20},
    )
    body = wait_for_run(client, org, run["id"], timeout=240)
    assert body["status"] == "succeeded", body
    costs = body["costs"]
    assert costs["by_kind"]["total"] == pytest.approx(sum(v for k, v in costs["by_kind"].items() if k != "total"))
    assert costs["by_kind"]["material"] > 0 and costs["by_kind"]["energy"] > 0
    assert "steel" in costs["by_material"] and "A" in costs["by_order"]
    purchases = client.get(url(org, f"runs/{run['id']}/purchases")).json()
    assert purchases and all(p["material"] == "steel" for p in purchases)
    assert sum(p["quantity"] for p in purchases) >= 3 * 4 - 5  # order A needs 12, 5 are in stock
    response = client.get(url(org, f"runs/{run['id']}/purchases.csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["supplier"], int(r["quantity"])) for r in rows] == [(p["supplier"], p["quantity"]) for p in purchases]
    stored = Run.objects.get(pk=run["id"])
    problem = problem_from_json(stored.problem)
    plan = tuple(Purchase(**p) for p in stored.purchases)
    assert check_plan(problem, schedule_from_json(stored.schedule), plan) == []
