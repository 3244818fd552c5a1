"""Shared helpers of the quality API tests: a line through the real services, simulated units as CSV."""

import io
from datetime import UTC, datetime, timedelta

from django.test import override_settings

from automation.quality import services
from automation.quality.engine import UnitRecord
from tests import builders
from tests.automation.quality.simulated import STATIONS, VARIABLES

MACHINES = {"turn": ("T1", "T2"), "mill": ("M1", "M2"), "inspect": ("Q1",)}
SPEC = {"spindle_speed": ("rpm", 1100.0, 1300.0), "diameter": ("mm", 49.9, 50.1), "feed": ("mm/rev", 0.1, 0.3)}


def url(org, path: str) -> str:
    return f"/api/v1/orgs/{org.slug}/quality/{path}"


def client_for(org):
    _, plaintext = builders.make_key(org)
    return builders.key_client(plaintext)


def make_line(org) -> dict:
    """turn (T1, T2) -> mill (M1, M2) -> inspect (Q1); characteristic `fit` with defect code `FIT-FAIL`."""
    stations = {
        code: services.station_create(organization=org, code=code, position=i + 1) for i, code in enumerate(STATIONS)
    }
    for station, machines in MACHINES.items():
        for machine in machines:
            services.machine_create(organization=org, station=stations[station], code=machine)
    variables = {}
    for name, station in VARIABLES.items():
        unit, lsl, usl = SPEC.get(name, ("mm", None, None))
        variables[name] = services.variable_create(
            organization=org, station=stations[station], name=name, unit=unit, lsl=lsl, usl=usl
        )
    characteristic = services.characteristic_create(
        organization=org,
        station=stations["inspect"],
        code="fit",
        affected_by=list(variables.values()),
        defect_codes=[{"code": "FIT-FAIL", "description": "Does not fit the gauge"}],
    )
    return {"stations": stations, "variables": variables, "characteristic": characteristic}


BASE = datetime(2026, 1, 5, tzinfo=UTC)


def line_csvs(units: list[UnitRecord], *, prefix: str, start: datetime = BASE) -> dict[str, bytes]:
    """units.csv, steps.csv and inspections.csv for simulated units (serials get `prefix`)."""
    u, s, i = io.StringIO(), io.StringIO(), io.StringIO()
    u.write("unit,lots\n")
    s.write("unit,station,machine,ts,variable,value\n")
    i.write("unit,characteristic,ts,value,defect_code\n")
    for record in units:
        serial = f"{prefix}{record.unit}"
        t = start + timedelta(seconds=record.time)
        u.write(f"{serial},{';'.join(record.lots)}\n")
        for name, value in record.values.items():
            station = VARIABLES[name]
            s.write(f"{serial},{station},{record.machines[station]},{t.isoformat()},{name},{value!r}\n")
        i.write(f"{serial},fit,{(t + timedelta(seconds=30)).isoformat()},,{'FIT-FAIL' if record.defective else ''}\n")
    return {k: v.getvalue().encode() for k, v in (("units", u), ("steps", s), ("inspections", i))}


def quality_objects(org) -> list:
    """One object of every quality model that has a route (for the isolation sweep)."""
    from automation.quality import ingest
    from automation.quality.models import Alarm, Analysis, Lot, Machine, Unit, WebhookDelivery

    line = make_line(org)
    for kind, content in line_csvs(
        [
            UnitRecord(
                unit="S1",
                time=0.0,
                defective=True,
                machines={"turn": "T1", "mill": "M1"},
                lots=("L1",),
                values={"diameter": 50.0, "flatness": 0.02},
            )
        ],
        prefix="sweep-",
    ).items():
        ingest.ingest(organization=org, kind=kind, rows=ingest.rows_from_csv(kind=kind, content=content))
    defect_code = line["characteristic"].defect_codes.get()
    analysis = Analysis.objects.create(organization=org, defect_code=defect_code)
    investigation = services.investigation_open(organization=org, actor=None, defect_code=defect_code)
    machine = Machine.objects.filter(organization=org).order_by("code")[0]
    alarm = Alarm.objects.create(
        organization=org,
        series=f"variable:{line['variables']['diameter'].pk}/machine:{machine.pk}",
        variable=line["variables"]["diameter"],
        machine=machine,
        rule=1,
        description="one point beyond 3 sigma",
        center=50.0,
        lcl=49.9,
        ucl=50.1,
        first_seen_at=BASE,
        last_seen_at=BASE,
    )
    with override_settings(QUALITY_WEBHOOK_ALLOW_PRIVATE_HOSTS=True):
        endpoint, _ = services.webhook_endpoint_create(organization=org, url="http://127.0.0.1:9/quality-hooks")
    return [
        alarm,
        investigation,
        services.containment_add(investigation=investigation, description="Quarantine"),
        services.corrective_add(investigation=investigation, description="Fix the fixture"),
        services.ingestion_key_create(organization=org, name="plc")[0],
        endpoint,
        WebhookDelivery.objects.create(organization=org, endpoint=endpoint, event="quality.alarm", payload={}),
        *line["stations"].values(),
        *Machine.objects.filter(organization=org),
        *line["variables"].values(),
        line["characteristic"],
        *Lot.objects.filter(organization=org),
        *Unit.objects.filter(organization=org),
        analysis,
    ]
