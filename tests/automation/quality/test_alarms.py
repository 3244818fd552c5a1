"""SPC alarms on ingestion, their webhooks, and the step-record rule for re-uploads."""

import json
from datetime import timedelta

import pytest

from automation.quality import ingest
from automation.quality.models import Alarm, StepRecord, WebhookDelivery
from automation.quality.webhooks import webhook_deliver
from foundation.signing import webhook_signature_verify
from tests.automation.quality.quality_api import BASE, client_for, make_line, url

pytestmark = pytest.mark.django_db


def _steps(indexes, *, shift_t2_from: int | None = None) -> bytes:
    """Diameter on turn: T1 and T2 each make one unit a minute, values alternating 50.000 +/- 0.003 (in control);
    from `shift_t2_from` on, T2's diameter is 0.05 mm higher (about nine sigma): a drift the test knows."""
    lines = ["unit,station,machine,ts,variable,value"]
    for i in indexes:
        t = (BASE + timedelta(minutes=i)).isoformat()
        wobble = 0.003 if i % 2 else -0.003
        lines.append(f"A{i:04d},turn,T1,{t},diameter,{50.0 + wobble!r}")
        shift = 0.05 if shift_t2_from is not None and i >= shift_t2_from else 0.0
        lines.append(f"B{i:04d},turn,T2,{t},diameter,{50.0 + wobble + shift!r}")
    return ("\n".join(lines) + "\n").encode()


def _post_steps(client, org, content: bytes):
    return client.post(url(org, "ingest/steps"), content, content_type="text/csv")


def test_a_drift_on_one_machine_raises_one_alarm_per_rule_until_acknowledged(org, receiver, settings):
    """Catches: no alarm on a known drift, an alarm on the machine that did not drift, a new alarm for every
    batch while one is open, no new alarm after acknowledging, and webhooks a receiver cannot verify."""
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True
    make_line(org)
    client = client_for(org)
    hook_url, received = receiver
    created = client.post(url(org, "webhooks"), {"url": hook_url, "events": ["quality.alarm"]}, format="json")
    assert created.status_code == 201, created.json()
    secret = created.json()["secret"]

    first = _post_steps(client, org, _steps(range(0, 30)))
    assert first.status_code == 201 and first.json()["alarms"] == 0  # in control: the baseline
    assert not Alarm.objects.filter(organization=org).exists()

    second = _post_steps(client, org, _steps(range(30, 40), shift_t2_from=30))
    assert second.status_code == 201 and second.json()["alarms"] >= 1
    alarms = client.get(url(org, "alarms"), {"status": "open"}).json()["results"]
    assert alarms and {(a["variable"], a["machine"]) for a in alarms} == {("diameter", "T2")}
    beyond = next(a for a in alarms if a["rule"] == 1)
    assert beyond["first_seen_at"] == (BASE + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    assert beyond["occurrences"] == 10 and beyond["points"][0]["unit"] == "B0030"
    assert beyond["lcl"] < 50.0 < beyond["ucl"] < 50.05

    # Still drifting: the open alarms are updated, not repeated.
    third = _post_steps(client, org, _steps(range(40, 45), shift_t2_from=30))
    assert third.status_code == 201 and third.json()["alarms"] == 0
    assert Alarm.objects.filter(organization=org, rule=1).count() == 1
    assert Alarm.objects.get(organization=org, rule=1).occurrences == 15

    # Acknowledged: the next violation is a new alarm.
    ack = client.post(url(org, f"alarms/{beyond['id']}/acknowledge"), {"note": "checking T2"}, format="json")
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    _post_steps(client, org, _steps(range(45, 47), shift_t2_from=30))
    assert Alarm.objects.filter(organization=org, rule=1).count() == 2
    closed = client.post(url(org, f"alarms/{beyond['id']}/close"), {}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"

    # One signed webhook per new alarm; the receiver verifies it.
    deliveries = WebhookDelivery.objects.filter(organization=org, event="quality.alarm")
    assert deliveries.count() == Alarm.objects.filter(organization=org).count()
    for delivery in deliveries:
        assert webhook_deliver(delivery_id=str(delivery.pk)).status == "delivered"
    assert len(received) == deliveries.count()
    for hit in received:
        assert hit["headers"]["Lightsout-Event"] == "quality.alarm"
        assert webhook_signature_verify(secret=secret, header=hit["headers"]["Lightsout-Signature"], body=hit["body"])
        data = json.loads(hit["body"])["data"]
        assert (data["variable"], data["machine"]) == ("diameter", "T2")


def test_inspection_values_raise_characteristic_alarms(org):
    """Catches: characteristics left out of SPC (inspection values are a series of their own)."""
    make_line(org)
    rows = ["unit,characteristic,ts,value,defect_code"]
    for i in range(40):
        value = 10.0 + (0.01 if i % 2 else -0.01) + (1.0 if i >= 35 else 0.0)
        rows.append(f"C{i:03d},fit,{(BASE + timedelta(minutes=i)).isoformat()},{value},")
    result = ingest.ingest(
        organization=org,
        kind="inspections",
        rows=ingest.rows_from_csv(kind="inspections", content="\n".join(rows).encode()),
    )
    assert result.alarms >= 1
    alarm = Alarm.objects.get(organization=org, rule=1)
    assert alarm.characteristic.code == "fit" and alarm.machine is None and alarm.points[0]["unit"] == "C035"


def test_re_uploading_step_records_is_idempotent_and_a_changed_value_is_refused_by_line(org):
    """Catches: doubled rows on a re-upload, and a re-upload silently overwriting (or duplicating) a recorded
    value. The rule: the key is (unit, machine, variable, ts); the same value again is stored once, another value
    refuses the batch, naming the line."""
    make_line(org)
    client = client_for(org)
    content = _steps(range(0, 5))
    assert _post_steps(client, org, content).json()["stored"] == 10
    again = _post_steps(client, org, content)
    assert again.status_code == 201 and again.json() | {"received": 10, "stored": 0} == again.json()
    assert StepRecord.objects.filter(organization=org).count() == 10

    changed = content.replace(b"A0002,turn,T1", b"A0002,turn,T1", 1).splitlines()
    changed[5] = changed[5].rsplit(b",", 1)[0] + b",49.5"  # line 6 of the file: A0002 on T1
    refused = _post_steps(client, org, b"\n".join(changed) + b"\n")
    assert refused.status_code == 400
    assert "line 6" in json.dumps(refused.json()) and "not overwritten" in json.dumps(refused.json())
    assert StepRecord.objects.filter(organization=org).count() == 10

    t = (BASE + timedelta(hours=1)).isoformat()
    twice = f"unit,station,machine,ts,variable,value\nN1,turn,T1,{t},diameter,50.0\nN1,turn,T1,{t},diameter,50.0\n"
    assert _post_steps(client, org, twice.encode()).json()["stored"] == 1
    clash = f"unit,station,machine,ts,variable,value\nN2,turn,T1,{t},diameter,50.0\nN2,turn,T1,{t},diameter,50.1\n"
    refused = _post_steps(client, org, clash.encode())
    assert refused.status_code == 400 and "line 3" in json.dumps(refused.json())
    assert not StepRecord.objects.filter(organization=org, unit__serial="N2").exists()
