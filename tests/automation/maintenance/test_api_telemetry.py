"""Assets and telemetry through the API: batch ingestion (JSON, CSV), validation all or nothing, range queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automation.maintenance.models import Asset, AssetEvent, Telemetry
from tests.automation.maintenance.maintenance_api import (
    CHANNEL_NAMES,
    CYCLE_SECONDS,
    aligned_start,
    client_for,
    make_asset_type,
    readings,
    run_to_failure_csv,
    small_fleet,
    ts_of,
    url,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(org):
    asset_type = make_asset_type(org)
    client = client_for(org)
    for code in ("P-1", "P-2"):
        response = client.post(
            url(org, "assets"), {"code": code, "asset_type": "pump", "site": "Hall 1"}, format="json"
        )
        assert response.status_code == 201, response.json()
    return {"org": org, "client": client, "asset_type": asset_type, "start": aligned_start(500)}


def _post(client, org, body, **kwargs):
    return client.post(url(org, "telemetry"), body, format="json", **kwargs)


def test_asset_type_with_channels_round_trips(org):
    """Catches channels (unit, range, component mapping) not being stored or shown as given."""
    client = client_for(org)
    body = {
        "code": "press",
        "cycle_seconds": 60,
        "channels": [
            {"name": "vibration", "unit": "mm/s", "min_value": 0, "max_value": 50, "component": "ram bearing"},
            {"name": "load", "unit": "kN", "is_setting": True},
        ],
    }
    created = client.post(url(org, "asset-types"), body, format="json")
    assert created.status_code == 201, created.json()
    shown = client.get(url(org, f"asset-types/{created.json()['id']}")).json()
    assert [c["name"] for c in shown["channels"]] == ["vibration", "load"]
    assert shown["channels"][0]["component"] == "ram bearing" and shown["channels"][1]["is_setting"] is True
    bad = client.post(
        url(org, "asset-types"),
        {**body, "code": "press2", "channels": [{"name": "x", "min_value": 5, "max_value": 1}]},
        format="json",
    )
    assert bad.status_code == 400 and "channels[0]" in bad.json()["error"]["fields"]


def test_thousands_of_json_readings_are_stored_and_queried_raw_and_downsampled(plant):
    """Catches a slow or lossy batch path and a wrong time-range or bucket query."""
    org, client, start = plant["org"], plant["client"], plant["start"]
    frame = small_fleet(n_assets=1, min_life=400, max_life=400, max_degradation=30).histories[0][1]
    body = {"readings": readings(frame, asset="P-1", start=start, rows=range(400))}
    assert len(body["readings"]) == 2400
    response = _post(client, org, body)
    assert response.status_code == 201, response.json()
    assert response.json() == {"received": 2400, "stored": 2400, "duplicates": 0, "assets": 1}

    again = _post(client, org, {"readings": body["readings"][:600]})
    assert again.json() == {"received": 600, "stored": 0, "duplicates": 600, "assets": 1}, "re-sent readings"
    assert Telemetry.objects.filter(organization=org).count() == 2400

    asset = Asset.objects.get(organization=org, code="P-1")
    window = {"start": ts_of(start, 10), "end": ts_of(start, 20), "channels": "vibration,flow"}
    raw = client.get(url(org, f"assets/{asset.pk}/telemetry"), window).json()
    assert [s["channel"] for s in raw["channels"]] == ["vibration", "flow"]
    vibration = raw["channels"][0]["points"]
    assert len(vibration) == 10
    assert vibration[0]["value"] == pytest.approx(frame["vibration"].iloc[10], abs=1e-6)

    daily = client.get(
        url(org, f"assets/{asset.pk}/telemetry"),
        {"start": ts_of(start, 0), "end": ts_of(start, 400), "bucket_seconds": 24 * CYCLE_SECONDS},
    )
    buckets = daily.json()["channels"][CHANNEL_NAMES.index("temperature")]["points"]
    assert sum(b["count"] for b in buckets) == 400 and len(buckets) in (17, 18)
    first_day = frame["temperature"].iloc[: buckets[0]["count"]]
    assert buckets[0]["mean"] == pytest.approx(first_day.mean(), abs=1e-6)
    assert buckets[0]["max"] == pytest.approx(first_day.max(), abs=1e-6)

    unknown = client.get(url(org, f"assets/{asset.pk}/telemetry"), {**window, "channels": "noise"})
    assert unknown.status_code == 400


def test_bad_telemetry_is_rejected_with_every_problem_named_and_nothing_stored(plant):
    """Catches partial stores and vague errors: unknown asset or channel, out of range, bad timestamps,
    duplicates in one batch, each named by index; the good readings of the batch are not stored either."""
    org, client, start = plant["org"], plant["client"], plant["start"]
    good = {"asset": "P-1", "channel": "vibration", "ts": ts_of(start, 1), "value": 1.0}
    body = {
        "readings": [
            good,
            {**good, "asset": "NOPE"},
            {**good, "channel": "noise"},
            {**good, "ts": ts_of(start, 2), "value": 11.5},
            {**good, "ts": "2024-05-01T12:00:00"},
            {**good, "ts": "yesterday"},
            {**good, "ts": (timezone.now() + timedelta(days=2)).isoformat()},
            {**good, "ts": ts_of(start, 3), "value": "NaN"},
            {**good, "value": 2.0},
            {"asset": "P-2", "ts": ts_of(start, 4), "values": {"temperature": 70.0, "pressure": -1}},
        ]
    }
    response = _post(client, org, body)
    assert response.status_code == 400
    error = response.json()["error"]
    fields = error["fields"]
    assert error["message"].endswith("Nothing was stored.") and "9 problems" in error["message"]
    assert "no asset with the code 'NOPE'" in fields["readings[1]"][0]
    assert "has no channel 'noise'" in fields["readings[2]"][0] and "vibration" in fields["readings[2]"][0]
    assert "above vibration's expected maximum 10 mm/s" in fields["readings[3]"][0]
    assert "no time zone" in fields["readings[4]"][0]
    assert "not ISO 8601" in fields["readings[5]"][0]
    assert "in the future" in fields["readings[6]"][0]
    assert "not a finite number" in fields["readings[7]"][0]
    assert "also on readings[0]" in fields["readings[8]"][0]
    assert "below pressure's expected minimum 0 bar" in fields["readings[9].values.pressure"][0]
    assert "readings[9].values.temperature" not in fields
    assert Telemetry.objects.filter(organization=org).count() == 0


def test_csv_long_and_wide_are_accepted_and_errors_name_the_line(plant):
    """Catches CSV parsing that loses line numbers or stores part of a file with a bad line."""
    org, client, start = plant["org"], plant["client"], plant["start"]
    long = "asset,channel,ts,value\n" + "".join(f"P-1,flow,{ts_of(start, i)},{30 + i * 0.01}\n" for i in range(300))
    response = client.post(url(org, "telemetry"), long, content_type="text/csv")
    assert response.status_code == 201 and response.json()["stored"] == 300

    wide = "asset,ts,vibration,temperature\n" + "".join(
        f"P-2,{ts_of(start, i)},1.0,{'' if i == 5 else 70}\n" for i in range(50)
    )
    upload = client.post(url(org, "telemetry"), {"file": _file("wide.csv", wide)}, format="multipart")
    assert upload.status_code == 201 and upload.json()["stored"] == 99  # one empty cell: no reading

    bad = "asset,ts,vibration\n" + "".join(f"P-2,{ts_of(start, 100 + i)},1.0\n" for i in range(10))
    bad += f"P-2,{ts_of(start, 200)},99\nP-2,not-a-time,1.0\nP-2,{ts_of(start, 201)}\n"
    before = Telemetry.objects.filter(organization=org).count()
    rejected = client.post(url(org, "telemetry"), bad, content_type="text/csv")
    assert rejected.status_code == 400
    fields = rejected.json()["error"]["fields"]
    assert "above vibration's expected maximum" in fields["line 12, column vibration"][0]
    assert "not ISO 8601" in fields["line 13, column vibration"][0]
    assert "2 fields, the header has 3" in fields["line 14"][0]
    assert Telemetry.objects.filter(organization=org).count() == before

    header = client.post(url(org, "telemetry"), "when,what\n1,2\n", content_type="text/csv")
    assert header.status_code == 400 and "line 1" in header.json()["error"]["fields"]


def test_run_to_failure_import_creates_assets_telemetry_and_failures_or_nothing(org):
    """Catches an import that stores some assets of a file with a bad line, or loses the failure at the end."""
    make_asset_type(org)
    client = client_for(org)
    fleet = small_fleet(n_assets=3)
    histories = [(f"H-{i}", frame) for i, (_, frame) in enumerate(fleet.histories, start=1)]
    content = run_to_failure_csv(histories)
    start = aligned_start(100)
    response = client.post(
        url(org, "imports/run-to-failure"),
        {
            "file": _file("history.csv", content.decode()),
            "asset_type": "pump",
            "format": "csv",
            "start": start.isoformat(),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    total_rows = sum(len(frame) for _, frame in histories)
    assert (body["assets_created"], body["readings_stored"], body["failures_recorded"]) == (3, total_rows * 6, 3)
    failure = AssetEvent.objects.get(asset__code="H-2", kind="failure")
    assert failure.occurred_at == start + timedelta(seconds=CYCLE_SECONDS * (len(histories[1][1]) - 1))

    repeated = client.post(
        url(org, "imports/run-to-failure"),
        {
            "file": _file("history.csv", content.decode()),
            "asset_type": "pump",
            "format": "csv",
            "start": start.isoformat(),
        },
        format="multipart",
    )
    assert repeated.json()["readings_stored"] == 0 and repeated.json()["failures_recorded"] == 0

    lines = content.decode().splitlines()
    lines[7] = lines[7].rsplit(",", 1)[0] + ",150"  # humidity 150 %
    bad = [(f"N-{i}", frame) for i, (_, frame) in enumerate(fleet.histories, start=1)]
    bad_content = (
        "\n".join([lines[0], *run_to_failure_csv(bad).decode().splitlines()[1:7], lines[7].replace("H-1", "N-1")])
        + "\n"
    )
    rejected = client.post(
        url(org, "imports/run-to-failure"),
        {"file": _file("bad.csv", bad_content), "asset_type": "pump", "format": "csv"},
        format="multipart",
    )
    assert rejected.status_code == 400
    assert "humidity value 150 is above the expected maximum 100 %" in rejected.json()["error"]["fields"]["line 8"][0]
    assert not Asset.objects.filter(organization=org, code__startswith="N-").exists()


def test_another_tenant_cannot_read_or_write_this_tenants_telemetry(plant, other_org):
    """Catches cross-tenant reads of telemetry and writes into another tenant's asset by its code."""
    org, client, start = plant["org"], plant["client"], plant["start"]
    _post(client, org, {"readings": [{"asset": "P-1", "channel": "vibration", "ts": ts_of(start, 0), "value": 1}]})
    asset = Asset.objects.get(organization=org, code="P-1")
    make_asset_type(other_org)
    stranger = client_for(other_org)
    window = {"start": ts_of(start, 0), "end": ts_of(start, 10)}
    assert stranger.get(url(org, f"assets/{asset.pk}/telemetry"), window).status_code == 404
    assert stranger.get(url(other_org, f"assets/{asset.pk}/telemetry"), window).status_code == 404
    write = _post(
        stranger, other_org, {"readings": [{"asset": "P-1", "channel": "vibration", "ts": ts_of(start, 1), "value": 1}]}
    )
    assert write.status_code == 400 and "no asset with the code 'P-1'" in write.json()["error"]["message"]
    assert _post(stranger, org, {"readings": []}).status_code == 404
    assert Telemetry.objects.filter(asset=asset).count() == 1
    assert Telemetry.objects.filter(organization=other_org).count() == 0


def _file(name: str, text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")
