"""The quality API: the process model, ingestion (all or nothing, errors by file and line), genealogy, SPC,
and that one tenant never sees another's units, lots or analyses."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from automation.quality.models import InspectionResult, Lot, StepRecord, Unit
from tests import builders
from tests.automation.quality.quality_api import client_for, line_csvs, make_line, url
from tests.automation.quality.simulated import simulate

pytestmark = pytest.mark.django_db


def _upload(client, org, kind: str, content: bytes, name: str | None = None):
    return client.post(
        url(org, f"ingest/{kind}"),
        {"file": SimpleUploadedFile(name or f"{kind}.csv", content, content_type="text/csv")},
        format="multipart",
    )


def test_process_model_through_the_api(org):
    """Catches: stations, machines, variables with causes, characteristics with defect codes not round-tripping."""
    client = client_for(org)
    assert client.post(url(org, "stations"), {"code": "press", "position": 1}, format="json").status_code == 201
    assert client.post(url(org, "stations"), {"code": "weld", "position": 2}, format="json").status_code == 201
    assert client.post(url(org, "machines"), {"code": "P1", "station": "press"}, format="json").status_code == 201
    response = client.post(
        url(org, "variables"), {"name": "force", "station": "press", "unit": "kN", "lsl": 10, "usl": 20}, format="json"
    )
    assert response.status_code == 201, response.json()
    response = client.post(
        url(org, "variables"), {"name": "current", "station": "weld", "causes": ["force"]}, format="json"
    )
    assert response.status_code == 201 and response.json()["causes"] == ["force"]
    response = client.post(
        url(org, "characteristics"),
        {"code": "seam", "station": "weld", "affected_by": ["current"], "defect_codes": [{"code": "POROSITY"}]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["defect_codes"] == [{"code": "POROSITY", "description": ""}]
    # Bad input is refused in the one error shape.
    response = client.post(url(org, "variables"), {"name": "x", "station": "nowhere"}, format="json")
    assert response.status_code == 400 and "station" in response.json()["error"]["fields"]
    response = client.post(url(org, "variables"), {"name": "y", "station": "press", "lsl": 5, "usl": 1}, format="json")
    assert response.status_code == 400 and "usl" in response.json()["error"]["fields"]
    stations = client.get(url(org, "stations")).json()["results"]
    assert [s["code"] for s in stations] == ["press", "weld"]


def test_csv_ingestion_genealogy_and_chart(org):
    """Catches: units, lots, steps and inspections not stored, or trace back / forward / SPC reading them wrong."""
    make_line(org)
    client = client_for(org)
    files = line_csvs(simulate(scenario="lot", n=120), prefix="A-")
    for kind in ("units", "steps", "inspections"):
        response = _upload(client, org, kind, files[kind])
        assert response.status_code == 201, response.json()
    assert Unit.objects.filter(organization=org).count() == 120
    assert StepRecord.objects.filter(organization=org).count() == 120 * 4
    assert InspectionResult.objects.filter(organization=org).count() == 120
    assert set(Lot.objects.filter(organization=org).values_list("code", flat=True)) == {"L041", "L042"}

    unit = client.get(url(org, "units"), {"serial": "A-U00030"}).json()["results"][0]
    back = client.get(url(org, f"units/{unit['id']}/trace")).json()
    assert back["lots"] == [{"code": "L042", "material": ""}]  # units 25..49 used L042
    assert [(s["station"], s["machine"]) for s in back["steps"]] == [("turn", "T1"), ("mill", "M1")]
    assert len(back["inspections"]) == 1

    lot = client.get(url(org, "lots"), {"code": "L042"}).json()["results"][0]
    forward = client.get(url(org, f"lots/{lot['id']}/trace")).json()
    assert len(forward["units"]) == 50  # units 25..49 and 75..99
    assert "A-U00030" in {u["serial"] for u in forward["units"]}

    variable = next(v for v in client.get(url(org, "variables")).json()["results"] if v["name"] == "diameter")
    chart = client.get(url(org, f"variables/{variable['id']}/chart")).json()
    assert chart["chart"]["kind"] == "imr" and len(chart["chart"]["points"]) == 120
    assert chart["chart"]["lcl"] < 50.0 < chart["chart"]["ucl"]
    assert chart["capability"]["cp"] > 1.0  # spec 49.9..50.1 against sigma 0.01
    xbar = client.get(url(org, f"variables/{variable['id']}/chart"), {"subgroup": 5}).json()
    assert xbar["chart"]["kind"] == "xbar_r" and len(xbar["chart"]["points"]) == 24


def test_bad_files_are_refused_with_line_numbers_and_nothing_is_stored(org):
    """Catches: half-stored batches, and errors that do not say which file and line."""
    make_line(org)
    client = client_for(org)
    bad = (
        b"unit,station,machine,ts,variable,value\n"
        b"U1,turn,T1,2026-01-05T00:00:00Z,diameter,50.0\n"
        b"U1,turn,T9,2026-01-05T00:00:00Z,diameter,50.0\n"
        b"U2,turn,T1,2026-01-05T00:00:00,diameter,50.0\n"
        b"U3,turn,T1,2026-01-05T00:00:00Z,flatness,0.1\n"
        b"U4,turn,T1,2026-01-05T00:00:00Z,diameter,wide\n"
        b"U5,turn,T1\n"
    )
    response = _upload(client, org, "steps", bad, name="shift3.csv")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {f"shift3.csv line {n}" for n in (3, 4, 5, 6, 7)}
    assert "no machine with the code 'T9'" in fields["shift3.csv line 3"][0]
    assert "no time zone" in fields["shift3.csv line 4"][0]
    assert "recorded at station mill" in fields["shift3.csv line 5"][0]
    assert "not a number" in fields["shift3.csv line 6"][0]
    assert "3 fields" in fields["shift3.csv line 7"][0]
    assert "Nothing was stored" in response.json()["error"]["message"]
    assert not StepRecord.objects.filter(organization=org).exists()
    assert not Unit.objects.filter(organization=org).exists()  # the good line's unit was not created either

    response = _upload(client, org, "steps", b"unit,machine,ts\nU1,T1,0\n")
    assert response.status_code == 400 and "steps.csv line 1" in response.json()["error"]["fields"]
    response = _upload(client, org, "inspections", b"unit,characteristic,ts,defect_code\nU1,fit,0,NOPE\n")
    assert response.status_code == 400
    assert "no defect code 'NOPE'" in response.json()["error"]["fields"]["inspections.csv line 2"][0]
    # JSON batches name items by index.
    response = client.post(
        url(org, "ingest/steps"),
        {
            "steps": [
                {
                    "unit": "U1",
                    "station": "turn",
                    "machine": "T1",
                    "ts": "2026-01-05T00:00:00Z",
                    "variable": "diameter",
                    "value": 50.0,
                },
                {"unit": "U1", "machine": "T1"},
            ]
        },
        format="json",
    )
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["steps[1]"]
    assert not StepRecord.objects.filter(organization=org).exists()


def test_one_tenant_never_sees_another_tenants_units_lots_or_analyses(org, other_org):
    """Catches: units, lots, traces or analyses of one organisation visible or startable from another."""
    make_line(org)
    make_line(other_org)
    client, stranger = client_for(org), client_for(other_org)
    files = line_csvs(simulate(scenario="lot", n=40), prefix="A-")
    for kind in ("units", "steps", "inspections"):
        assert _upload(client, org, kind, files[kind]).status_code == 201
    unit = client.get(url(org, "units")).json()["results"][0]
    lot = client.get(url(org, "lots")).json()["results"][0]
    assert stranger.get(url(other_org, "units")).json()["results"] == []
    assert stranger.get(url(other_org, "lots")).json()["results"] == []
    assert stranger.get(url(other_org, f"units/{unit['id']}/trace")).status_code == 404
    assert stranger.get(url(other_org, f"lots/{lot['id']}/trace")).status_code == 404
    assert stranger.get(url(org, "units")).status_code == 404
    # Steps naming the other tenant's units create the stranger's own units, never touch the first tenant's.
    response = stranger.post(
        url(other_org, "ingest/inspections"),
        b"unit,characteristic,ts\nA-U00001,fit,2026-01-05T00:00:00Z\n",
        content_type="text/csv",
    )
    assert response.status_code == 201
    assert Unit.objects.filter(serial="A-U00001").count() == 2
    assert InspectionResult.objects.filter(organization=org).count() == 40
    # An analysis of another tenant's defect code does not exist for the caller.
    response = stranger.post(url(other_org, "analyses"), {"defect_code": "NOPE"}, format="json")
    assert response.status_code == 400


def test_reader_key_cannot_ingest(org):
    """Catches: a read-only key writing step records."""
    make_line(org)
    _, plaintext = builders.make_key(org, scopes=["org:read"])
    reader = builders.key_client(plaintext)
    response = reader.post(url(org, "ingest/units"), b"unit\nU1\n", content_type="text/csv")
    assert response.status_code == 403
    assert not Unit.objects.filter(organization=org).exists()
