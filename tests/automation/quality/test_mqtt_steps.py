"""MQTT step records through the embedded amqtt broker: signed messages stored all or nothing, forged and
cross-tenant ones stored nowhere."""

import json
import uuid
from datetime import timedelta

import pytest

from automation.quality import services
from automation.quality.models import Machine, StepRecord
from automation.quality.mqtt import STATS_KEY, device_message, ingest_stats, machine_topic, subscriber
from foundation.redis import get_redis
from tests.automation.quality.quality_api import BASE, make_line
from tests.workers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def running(broker_url):
    get_redis().delete(STATS_KEY)
    started = subscriber(url=broker_url, client_id=f"test-quality-{uuid.uuid4().hex[:8]}").start()
    yield started
    started.stop()


def _publish(client, topic: str, payload: bytes) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)


def _steps(first: int, count: int = 3, value: float = 50.0) -> list[dict]:
    return [
        {"unit": f"M{i:04d}", "variable": "diameter", "ts": (BASE + timedelta(minutes=i)).isoformat(), "value": value}
        for i in range(first, first + count)
    ]


def test_signed_step_messages_are_stored_all_or_nothing_and_forgeries_nowhere(org, other_org, running, publisher):
    """Catches: a broken path from a controller's publish to stored step records; a message half stored when one
    step is bad; a re-sent message doubling rows; another tenant's key, a guessed secret, a key bound to another
    machine, or a signature moved to another topic storing anything."""
    make_line(org)
    make_line(other_org)
    key, secret = services.ingestion_key_create(organization=org, name="lathe plc")
    bound, bound_secret = services.ingestion_key_create(
        organization=org, name="T2 only", machine=Machine.objects.get(organization=org, code="T2")
    )
    other_key, other_secret = services.ingestion_key_create(organization=other_org, name="theirs")
    topic = machine_topic(org_slug=org.slug, machine_code="T1")

    good = device_message(key_id=key.key_id, secret=secret, topic=topic, steps=_steps(0))
    _publish(publisher, topic, good)
    wait_until(lambda: StepRecord.objects.filter(organization=org).count() == 3, timeout=30, what="3 step records")
    _publish(publisher, topic, good)  # re-sent: idempotent
    wait_until(lambda: running.processed >= 2, timeout=30, what="2 messages")
    assert StepRecord.objects.filter(organization=org).count() == 3

    bad_step = [*_steps(10), {"unit": "M9999", "variable": "feed", "ts": BASE.isoformat(), "value": 1.0}]
    _publish(publisher, topic, device_message(key_id=key.key_id, secret=secret, topic=topic, steps=bad_step))
    _publish(
        publisher, topic, device_message(key_id=other_key.key_id, secret=other_secret, topic=topic, steps=_steps(20))
    )
    _publish(
        publisher, topic, device_message(key_id=key.key_id, secret="lo_qingsec_guess", topic=topic, steps=_steps(30))
    )
    _publish(publisher, topic, device_message(key_id=bound.key_id, secret=bound_secret, topic=topic, steps=_steps(40)))
    other_topic = machine_topic(org_slug=other_org.slug, machine_code="T1")
    moved = json.loads(device_message(key_id=key.key_id, secret=secret, topic=topic, steps=_steps(50)))
    _publish(publisher, other_topic, json.dumps(moved).encode())
    wait_until(lambda: running.processed >= 7, timeout=30, what="7 messages")

    assert StepRecord.objects.filter(organization=org).count() == 3
    assert not StepRecord.objects.filter(organization=other_org).exists()
    stats = ingest_stats()
    assert stats["accepted"] == 2
    assert stats["rejected:invalid_steps"] == 1  # feed is recorded at mill, not by T1: nothing of it stored
    assert stats["rejected:wrong_organization"] == 1
    assert stats["rejected:bad_signature"] == 2  # guessed secret; signature moved to another topic
    assert stats["rejected:wrong_machine"] == 1
