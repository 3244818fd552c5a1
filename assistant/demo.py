"""A small demo factory for the copilot: presses with health scores and a work order, machines with a solved
production plan, a forming line with a traced defect and its root-cause analysis, and a maintenance manual.

Used by `manage.py seed_demo_factory`, by the copilot's tests and by `benchmarks/assistant_eval.py`. Everything is
written through the apps' own services where they exist; the outcome rows that jobs would write (health scores,
an anomaly, a finished analysis) are written directly with fixed figures, so the evaluation set can name them. The
production plan is solved here, in-process, by the scheduling engine (a few seconds at most), and the manual's
passages are embedded in-process, so no worker is needed.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from automation.maintenance import models as maintenance
from automation.maintenance import services as maintenance_services
from automation.quality import models as quality
from automation.quality import services as quality_services
from automation.scheduling import runs as scheduling_runs
from automation.scheduling import services as scheduling_services
from automation.scheduling.engine import MixWeights, solve
from automation.scheduling.snapshot import problem_from_json
from jobs.models import Job
from tenants.actor import Actor
from tenants.models import Organization

from . import engine
from .models import Passage
from .services import Upload, document_upload

MANUAL = """# Press 4 maintenance manual

## Hydraulic pump

The hydraulic pump P-220 of the press must be inspected every 500 operating hours. Replace the pump seals when the
system pressure drops below 180 bar at full stroke. Use hydraulic oil HLP 46 only.

## Main bearing

Lubricate the main bearing every 200 hours with grease EP-2. A bearing temperature above 85 °C means the bearing
must be inspected before the next shift.

## Filter change procedure

Stop the press and lock it out. Release the accumulator pressure, then remove the filter housing. Tighten the new
filter element to 35 Nm. Vent the circuit and run the pump for 5 minutes without load.

## 유압 펌프 점검 (한국어)

유압 펌프 P-220은 500 운전 시간마다 점검합니다. 전체 행정에서 압력이 180 bar 아래로 떨어지면 펌프 씰을 교체합니다.

## Hauptlager (Deutsch)

Das Hauptlager alle 200 Stunden mit Fett EP-2 schmieren. Über 85 °C Lagertemperatur muss das Lager vor der nächsten
Schicht geprüft werden.
"""

# The fixed figures the evaluation set checks answers against.
HEALTH = {
    "PRESS-4": (38.5, 120.0, 80.0, 160.0, "pressure"),
    "PRESS-7": (91.0, 900.0, 760.0, 1000.0, "temperature"),
    "PUMP-12": (64.2, 410.0, 330.0, 480.0, "pressure"),
}


def _epoch() -> datetime:
    return timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def demo_factory_seed(*, organization: Organization, actor: Actor, with_documents: bool = True) -> dict:
    """Seed the organisation (once: it must not have the demo codes yet). Returns the codes and ids it made."""
    now = _epoch()
    seeded: dict = {}
    with transaction.atomic():
        seeded["maintenance"] = _maintenance(organization, actor, now)
        seeded["quality"] = _quality(organization, now)
    seeded["scheduling"] = _scheduling(organization, actor, now)
    if with_documents:
        seeded["documents"] = _documents(organization, actor)
    return seeded


def _maintenance(organization: Organization, actor: Actor, now: datetime) -> dict:
    press = maintenance_services.asset_type_create(
        organization=organization,
        code="PRESS",
        name="Hydraulic press",
        channels=[
            {"name": "pressure", "unit": "bar", "component": "hydraulic pump"},
            {"name": "temperature", "unit": "C", "component": "main bearing"},
        ],
    )
    assets = {}
    for code, name in (("PRESS-4", "Press 4"), ("PRESS-7", "Press 7"), ("PUMP-12", "Coolant pump 12")):
        assets[code] = maintenance_services.asset_create(
            organization=organization, code=code, name=name, asset_type=press, site="Plant 1"
        )
    for code, (score, rul, low, high, driver) in HEALTH.items():
        maintenance.AssetHealth.objects.create(
            organization=organization,
            asset=assets[code],
            as_of=now,
            health_score=score,
            rul_cycles=rul,
            rul_low=low,
            rul_high=high,
            predicted_failure_at=now + timedelta(hours=rul),
            drivers=[{"channel": driver, "effect_cycles": -12.5}],
        )
    maintenance.Anomaly.objects.create(
        organization=organization,
        asset=assets["PRESS-4"],
        channel="pressure",
        starts_at=now - timedelta(hours=6),
        ends_at=now - timedelta(hours=2),
        score=6.3,
    )
    order = maintenance_services.work_order_open(
        asset=assets["PRESS-4"],
        component="hydraulic pump",
        actor=actor,
        action="replace",
        priority="high",
        due_by=now + timedelta(days=2),
        reason="Pressure falls under load; health 38.5 of 100.",
    )
    return {"assets": sorted(assets), "work_order": str(order.pk)}


def _scheduling(organization: Organization, actor: Actor, now: datetime) -> dict:
    machines = {
        code: scheduling_services.machine_create(organization=organization, code=code, name=name)
        for code, name in (("CNC-1", "CNC mill 1"), ("CNC-2", "CNC mill 2"), ("LATHE-3", "Lathe 3"))
    }
    bracket = scheduling_services.product_create(
        organization=organization,
        code="BRKT-A",
        name="Bracket A",
        family="brackets",
        operations=[
            {
                "name": "mill",
                "options": [
                    {"machine": machines["CNC-1"], "minutes_per_unit": Decimal(3)},
                    {"machine": machines["CNC-2"], "minutes_per_unit": Decimal(3)},
                ],
            },
            {"name": "turn", "options": [{"machine": machines["LATHE-3"], "minutes_per_unit": Decimal(2)}]},
        ],
    )
    shaft = scheduling_services.product_create(
        organization=organization,
        code="SHAFT-B",
        name="Shaft B",
        family="shafts",
        operations=[
            {"name": "turn", "options": [{"machine": machines["LATHE-3"], "minutes_per_unit": Decimal(4)}]},
            {"name": "mill", "options": [{"machine": machines["CNC-2"], "minutes_per_unit": Decimal(2)}]},
        ],
    )
    orders = []
    for i, (product, quantity, due_hours) in enumerate(
        [(bracket, 40, 4), (shaft, 30, 3), (bracket, 60, 12), (shaft, 50, 6), (bracket, 20, 24), (shaft, 25, 2)]
    ):
        code = f"ORD-{1001 + i}"
        scheduling_services.order_create(
            organization=organization,
            code=code,
            product=product,
            quantity=Decimal(quantity),
            release_at=now,
            due_at=now + timedelta(hours=due_hours),
        )
        orders.append(code)
    scheduling_services.order_create(
        organization=organization,
        code="ORD-1042",
        product=shaft,
        quantity=Decimal(10),
        release_at=now,
        due_at=now + timedelta(hours=5),
        weight=3,
    )
    run = scheduling_runs.run_create(
        organization=organization,
        actor=actor,
        objective="weighted_tardiness",
        time_limit_s=5,
        order_codes=orders,
        horizon_start=now,
    )
    problem = problem_from_json(run.problem)
    result = solve(
        problem, objective="weighted_tardiness", weights=MixWeights(**run.weights), time_limit_s=5, workers=1
    )
    outcome = scheduling_runs.run_record_outcome(run=run, problem=problem, result=result)
    Job.objects.filter(pk=run.job_id).update(
        status=Job.Status.SUCCEEDED, progress=100, result=outcome, finished_at=timezone.now()
    )
    return {"machines": sorted(machines), "orders": orders, "rush_order": "ORD-1042", "run": str(run.pk)}


def _quality(organization: Organization, now: datetime) -> dict:
    forming = quality_services.station_create(organization=organization, code="ST-10", position=1, name="Forming")
    heat = quality_services.station_create(organization=organization, code="ST-20", position=2, name="Heat treat")
    press = quality_services.machine_create(organization=organization, station=forming, code="FRM-1")
    furnace = quality_services.machine_create(organization=organization, station=heat, code="OVEN-2")
    force = quality_services.variable_create(organization=organization, station=forming, name="press_force", unit="kN")
    temp = quality_services.variable_create(
        organization=organization, station=heat, name="furnace_temp", unit="C", causes=[force]
    )
    hardness = quality_services.characteristic_create(
        organization=organization,
        station=heat,
        code="HARDNESS",
        unit="HRC",
        lsl=40,
        usl=50,
        affected_by=[temp],
        defect_codes=[{"code": "CRACK", "description": "Surface crack"}, {"code": "SCRATCH"}],
    )
    crack = quality.DefectCode.objects.get(organization=organization, code="CRACK")
    lot = quality.Lot.objects.create(organization=organization, code="LOT-7", material="steel coil S355")
    units = []
    for i in range(5):
        unit = quality.Unit.objects.create(
            organization=organization, serial=f"SN-{1001 + i}", status=quality.Unit.Status.FINISHED
        )
        unit.lots.add(lot)
        quality.StepRecord.objects.create(
            organization=organization,
            unit=unit,
            machine=press,
            variable=force,
            ts=now - timedelta(hours=5 - i),
            value=410 + i,
        )
        quality.StepRecord.objects.create(
            organization=organization,
            unit=unit,
            machine=furnace,
            variable=temp,
            ts=now - timedelta(hours=4 - i),
            value=860 + 3 * i,
        )
        quality.InspectionResult.objects.create(
            organization=organization,
            unit=unit,
            characteristic=hardness,
            ts=now - timedelta(hours=3 - i),
            value=44.0 if i != 2 else 38.0,
            defect_code=crack if i == 2 else None,
        )
        units.append(unit.serial)
    analysis = quality.Analysis.objects.create(
        organization=organization,
        defect_code=crack,
        status="succeeded",
        verdict="cause_found",
        message="furnace_temp ranks first for 1 of 1 failed unit(s).",
        result={
            "verdict": "cause_found",
            "causes": [
                {"rank": 1, "name": "furnace_temp", "station": "ST-20", "p_adjusted": 0.003},
                {"rank": 2, "name": "press_force", "station": "ST-10", "p_adjusted": 0.21},
            ],
        },
        finished_at=now,
    )
    return {"units": units, "lot": "LOT-7", "defects": ["CRACK", "SCRATCH"], "analysis": str(analysis.pk)}


def _documents(organization: Organization, actor: Actor) -> dict:
    document = document_upload(
        organization=organization,
        upload=Upload(filename="press4-manual.md", content=MANUAL.encode(), content_type="text/markdown"),
        title="Press 4 maintenance manual",
        actor=actor,
    )
    passages = list(Passage.objects.filter(document=document).order_by("ordinal"))
    vectors = engine.embed_texts([f"{document.title} / {p.section}\n{p.text}" for p in passages])
    for passage, vector in zip(passages, vectors, strict=True):
        Passage.objects.filter(pk=passage.pk).update(embedding=vector.tolist())
    type(document).objects.filter(pk=document.pk).update(status="ready", embedded_count=len(passages))
    return {"document": str(document.pk)}
