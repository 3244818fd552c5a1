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
from tests.workers import running_optimization_worker

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


@pytest.mark.django_db
def test_a_supplier_with_only_price_history_is_forecast_and_the_run_keeps_the_forecast(org):
    """Catches history read as today's price (the last point carried flat into a rising market), a forecast the
    plan does not use, or one that the run does not show with its interval."""
    client = client_for(org)
    # bolt's prices stop on the Sunday before the horizon: 20 daily points rising by 0.5 a day, to 19.5
    history = "".join(f"bolt,2025-02-{day:02d},{10 + 0.5 * (day - 10)}\n" for day in range(10, 29))
    history += "bolt,2025-03-01,19.5\nbolt,2025-03-02,20.0\n"
    files = dict(FILES, supplier_prices="supplier,day,price\nacme,2025-03-01,10\nacme,2025-03-05,12\n" + history)
    assert _upload(client, org, files).status_code == 200
    run = post(client, org, "runs", {"objective": "cost", "horizon_start": MONDAY.isoformat(), "horizon_days": 7})
    [forecast] = run["forecasts"]  # acme has prices inside the horizon: no forecast
    assert (forecast["supplier"], forecast["material"], forecast["history_days"]) == ("bolt", "steel", 21)
    assert forecast["method"].startswith("ETS(A,A,N)") and forecast["level"] == 0.9
    days = forecast["days"]
    assert [d["day"] for d in days] == list(range(7)) and days[0]["date"] == "2025-03-03T05:00:00Z"
    for day in days:
        assert day["lower"] <= day["price"] <= day["upper"]
        assert day["price"] == pytest.approx(20.5 + 0.5 * day["day"], abs=0.3)  # the trend goes on
    problem = problem_from_json(Run.objects.get(pk=run["id"]).problem)
    assert problem.cost is not None
    bolt = next(s for s in problem.cost.suppliers if s.id == "bolt")
    assert [p.price for p in bolt.prices] == [d["price"] for d in days]  # the plan's price is the expectation
    assert client.get(url(org, f"runs/{run['id']}")).json()["forecasts"] == run["forecasts"]
    # a robust run samples its price scenarios from that forecast's interval
    robust = post(
        client,
        org,
        "runs",
        {"objective": "cost", "horizon_start": MONDAY.isoformat(), "horizon_days": 7, "robust": {"samples": 5}},
    )
    assert robust["robust"] == {"asked": {"samples": 5}, "outcome": None}
    scenarios = Run.objects.get(pk=robust["id"]).robust["scenarios"]
    assert len(scenarios) == 5 and all([c["type"] for c in s] == ["SupplierPrices"] for s in scenarios)
    # within about three half-widths of the 90% interval (this history is an exact line: its interval is narrow)
    for path in (s[0]["prices"] for s in scenarios):
        for day, price in enumerate(path):
            assert abs(price - days[day]["price"]) <= 3 * (days[day]["upper"] - days[day]["lower"]) + 1e-3


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    with running_optimization_worker(name="scheduling-cost", log_dir=tmp_path_factory.mktemp("worker")) as process:
        yield process


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


@pytest.mark.django_db
def test_what_if_and_robust_requests_are_refused_with_their_reasons(org):
    """Catches a what-if queued on a run with no plan, scenario changes missing what they need, robust plans
    over lead times (which an expectation cannot weigh), and samples without any forecast."""
    client = client_for(org)
    assert _upload(client, org, FILES).status_code == 200
    body = {"objective": "cost", "horizon_start": MONDAY.isoformat(), "horizon_days": 7}
    run = post(client, org, "runs", body)
    response = client.post(
        url(org, f"runs/{run['id']}/what-if"),
        {"changes": [{"kind": "material_price", "material": "steel", "percent": 8}]},
        format="json",
    )
    assert response.status_code == 400 and "finished cost run" in str(response.json())
    response = client.post(
        url(org, f"runs/{run['id']}/what-if"), {"changes": [{"kind": "lead_time", "days": 5}]}, format="json"
    )
    assert response.status_code == 400 and "supplier" in response.json()["error"]["fields"]["changes"][0]
    robust = {"scenarios": [[{"kind": "lead_time", "supplier": "acme", "days": 2}], [{"kind": "tariff", "factor": 2}]]}
    response = client.post(url(org, "runs"), {**body, "robust": robust}, format="json")
    assert response.status_code == 400 and "only material_price and tariff" in str(response.json())
    response = client.post(url(org, "runs"), {**body, "robust": {"samples": 5}}, format="json")
    assert response.status_code == 400 and "forecast" in str(response.json())
    unknown = {
        "scenarios": [[{"kind": "material_price", "material": "tin", "percent": 5}], [{"kind": "tariff", "factor": 2}]]
    }
    response = client.post(url(org, "runs"), {**body, "robust": unknown}, format="json")
    assert response.status_code == 400 and "tin" in str(response.json())
    response = client.get(url(org, f"runs/{run['id']}/comparison"))
    assert response.status_code == 409


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_what_if_re_plans_and_compares_and_a_robust_run_reports_its_scenarios(worker, org):
    """Catches a what-if that loses its scenario on the way to the worker, a comparison that does not match the
    two stored plans, and a robust run whose expected cost is not reported per scenario."""
    client = client_for(org)
    assert _upload(client, org, FILES).status_code == 200
    body = {"objective": "cost", "horizon_start": MONDAY.isoformat(), "horizon_days": 7, "time_limit_s": 10}
    base = post(client, org, "runs", body)
    assert wait_for_run(client, org, base["id"], timeout=240)["status"] == "succeeded"
    scenario = post(
        client,
        org,
        f"runs/{base['id']}/what-if",
        {
            "changes": [
                {"kind": "material_price", "material": "steel", "percent": 50, "from": "2025-03-04T00:00:00Z"},
                {"kind": "tariff", "factor": 3, "hours": list(range(8, 20))},
                {"kind": "lead_time", "supplier": "acme", "days": 1},
            ]
        },
    )
    assert scenario["parent"] == base["id"] and scenario["changes"]["what_if"][0]["percent"] == 50
    finished = wait_for_run(client, org, scenario["id"], timeout=240)
    assert finished["status"] == "succeeded", finished
    stored = Run.objects.get(pk=scenario["id"])
    problem = problem_from_json(stored.problem)
    assert problem.cost is not None
    assert next(s for s in problem.cost.suppliers if s.id == "acme").lead_days == 2
    plan = tuple(Purchase(**p) for p in stored.purchases)
    assert check_plan(problem, schedule_from_json(stored.schedule), plan) == []
    compared = client.get(url(org, f"runs/{scenario['id']}/comparison")).json()
    assert compared["base_run"] == base["id"]
    base_total = client.get(url(org, f"runs/{base['id']}")).json()["costs"]["by_kind"]["total"]
    assert compared["cost"]["total"]["base"] == pytest.approx(base_total, abs=0.01)
    assert compared["cost"]["total"]["scenario"] == pytest.approx(finished["costs"]["by_kind"]["total"], abs=0.01)
    assert compared["cost"]["total"]["delta"] > 0  # dearer steel and power cost more, whatever the plan
    kept = compared["base_plan_kept"]
    assert kept["feasible"] is False or kept["saved_by_replanning"] >= -0.01 * kept["total"]
    for row in compared["orders"]:
        assert row["change"] in {"moved", "newly_late", "now_on_time", "declined", "accepted", "added"}
    robust = post(
        client,
        org,
        "runs",
        {
            **body,
            "robust": {
                "scenarios": [
                    [{"kind": "material_price", "material": "steel", "percent": 0}],
                    [{"kind": "material_price", "material": "steel", "percent": 40, "from": "2025-03-05T00:00:00Z"}],
                ]
            },
        },
    )
    finished = wait_for_run(client, org, robust["id"], timeout=240)
    assert finished["status"] == "succeeded", finished
    outcome = finished["robust"]["outcome"]
    assert outcome["scenarios"] == 2 and len(outcome["per_scenario"]) == 2
    by_plan = {c["plan"]: c for c in outcome["candidates"]}
    assert outcome["expected_cost"] == min(c["expected_cost"] for c in by_plan.values())
    assert outcome["expected_cost"] <= by_plan["mean_prices"]["expected_cost"]
