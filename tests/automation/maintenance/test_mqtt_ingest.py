"""MQTT telemetry through a real broker (MQTT_URL: the embedded amqtt under `controlplane.embedded`, Mosquitto
elsewhere): signed messages are stored; anything another tenant could forge is rejected and stored nowhere."""

import json
import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest

from automation.maintenance import services
from automation.maintenance.models import Telemetry
from automation.maintenance.mqtt import STATS_KEY, TelemetrySubscriber, asset_topic, device_message, ingest_stats
from automation.maintenance.signing import message_signature
from foundation.redis import get_redis
from tests.automation.maintenance.maintenance_api import aligned_start, make_asset_type, ts_of
from tests.workers import ROOT, wait_until, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_url():
    url = os.environ.get("MQTT_URL")
    if not url:
        pytest.skip("MQTT_URL is not set: run under `python -m controlplane.embedded`")
    return url


@pytest.fixture
def subscriber(broker_url):
    get_redis().delete(STATS_KEY)
    running = TelemetrySubscriber(url=broker_url, client_id=f"test-ingest-{uuid.uuid4().hex[:8]}").start()
    yield running
    running.stop()


@pytest.fixture
def publisher(broker_url):
    parts = urlsplit(broker_url)
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-device-{uuid.uuid4().hex[:8]}"
    )
    client.connect(parts.hostname, parts.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def tenants(org, other_org):
    start = aligned_start(100)
    made = {}
    for name, organization in (("a", org), ("b", other_org)):
        asset = services.asset_create(organization=organization, code="P-1", asset_type=make_asset_type(organization))
        key, secret = services.ingestion_key_create(organization=organization, name="plc")
        made[name] = {"org": organization, "asset": asset, "key": key, "secret": secret}
    made["start"] = start
    return made


def make_asset_type_of(organization):
    from automation.maintenance.models import AssetType

    return AssetType.objects.get(organization=organization, code="pump")


def _publish(publisher, topic: str, payload: bytes) -> None:
    publisher.publish(topic, payload, qos=1).wait_for_publish(timeout=10)


def _readings(start, rows=range(3)):
    return [{"ts": ts_of(start, i), "values": {"vibration": 1.0 + i / 10, "temperature": 70.0}} for i in rows]


def _settled(subscriber, count: int) -> None:
    wait_until(lambda: subscriber.processed >= count, timeout=30, what=f"{count} MQTT messages processed")


def test_a_signed_message_is_stored(tenants, subscriber, publisher):
    """Catches a broken path from a device's publish to stored readings (topic parsing, signature, ingestion)."""
    a = tenants["a"]
    topic = asset_topic(org_slug=a["org"].slug, asset_code="P-1")
    _publish(
        publisher,
        topic,
        device_message(key_id=a["key"].key_id, secret=a["secret"], topic=topic, readings=_readings(tenants["start"])),
    )
    wait_until(lambda: Telemetry.objects.filter(asset=a["asset"]).count() == 6, timeout=30, what="6 readings")
    assert ingest_stats() == {"accepted": 1}
    # A re-delivery stores nothing twice.
    _publish(
        publisher,
        topic,
        device_message(key_id=a["key"].key_id, secret=a["secret"], topic=topic, readings=_readings(tenants["start"])),
    )
    _settled(subscriber, 2)
    assert Telemetry.objects.filter(asset=a["asset"]).count() == 6


def test_forged_and_cross_tenant_messages_are_rejected_and_stored_nowhere(tenants, subscriber, publisher):
    """Catches a subscriber that trusts the topic: tenant B's valid key publishing into A's topic, a signature
    copied onto another topic, a wrong secret, an unknown or revoked key, a key bound to another asset, and bad
    readings must all store nothing anywhere, and be counted by reason."""
    a, b, start = tenants["a"], tenants["b"], tenants["start"]
    topic_a = asset_topic(org_slug=a["org"].slug, asset_code="P-1")
    topic_b = asset_topic(org_slug=b["org"].slug, asset_code="P-1")
    readings = _readings(start)

    # B signs correctly with its own key, but publishes into A's topic.
    _publish(
        publisher, topic_a, device_message(key_id=b["key"].key_id, secret=b["secret"], topic=topic_a, readings=readings)
    )
    # A's genuine message for A's topic, replayed onto B's topic: the signature covers the topic.
    genuine = json.loads(device_message(key_id=a["key"].key_id, secret=a["secret"], topic=topic_a, readings=readings))
    _publish(publisher, topic_b, json.dumps(genuine).encode())
    # A's key id with a guessed secret.
    _publish(
        publisher,
        topic_a,
        device_message(key_id=a["key"].key_id, secret="lo_ingsec_guess", topic=topic_a, readings=readings),
    )
    # No key at all / an unknown key / not even JSON.
    data = json.dumps({"readings": readings})
    _publish(
        publisher,
        topic_a,
        json.dumps(
            {
                "key_id": "lo_ing_nope",
                "data": data,
                "signature": message_signature(secret="x", topic=topic_a, data=data),
            }
        ).encode(),
    )
    _publish(publisher, topic_a, json.dumps({"readings": readings}).encode())
    _publish(publisher, topic_a, b"\x00garbage")
    # A key bound to another asset of A.
    other_asset = services.asset_create(organization=a["org"], code="P-2", asset_type=make_asset_type_of(a["org"]))
    bound, bound_secret = services.ingestion_key_create(organization=a["org"], name="p2 only", asset=other_asset)
    _publish(
        publisher, topic_a, device_message(key_id=bound.key_id, secret=bound_secret, topic=topic_a, readings=readings)
    )
    # A revoked key.
    revoked, revoked_secret = services.ingestion_key_create(organization=a["org"], name="old")
    services.ingestion_key_revoke(key=revoked)
    _publish(
        publisher,
        topic_a,
        device_message(key_id=revoked.key_id, secret=revoked_secret, topic=topic_a, readings=readings),
    )
    # A valid message whose readings are partly bad (out of range): all or nothing.
    bad = [*readings, {"ts": ts_of(start, 9), "values": {"vibration": 99.0}}]
    _publish(
        publisher, topic_a, device_message(key_id=a["key"].key_id, secret=a["secret"], topic=topic_a, readings=bad)
    )
    # An asset A does not have.
    topic_ghost = asset_topic(org_slug=a["org"].slug, asset_code="GHOST")
    _publish(
        publisher,
        topic_ghost,
        device_message(key_id=a["key"].key_id, secret=a["secret"], topic=topic_ghost, readings=readings),
    )

    _settled(subscriber, 10)
    assert Telemetry.objects.count() == 0
    assert ingest_stats() == {
        "rejected:wrong_organization": 1,
        "rejected:bad_signature": 2,
        "rejected:unknown_key": 2,
        "rejected:malformed": 2,
        "rejected:wrong_asset": 1,
        "rejected:invalid_readings": 1,
        "rejected:unknown_asset": 1,
    }


def test_the_management_command_ingests_as_a_long_running_process(tenants, broker_url, publisher, tmp_path):
    """Catches a `manage.py mqtt_ingest` that does not start, subscribe or store (what `make run` launches)."""
    a = tenants["a"]
    log = tmp_path / "mqtt_ingest.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "mqtt_ingest", "--client-id", f"test-cmd-{uuid.uuid4().hex[:8]}"],
            cwd=ROOT,
            env={**worker_env(), "MQTT_URL": broker_url},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: b"Subscribed to" in log.read_bytes(), timeout=60, what="the subscriber to subscribe")
        topic = asset_topic(org_slug=a["org"].slug, asset_code="P-1")
        _publish(
            publisher,
            topic,
            device_message(
                key_id=a["key"].key_id, secret=a["secret"], topic=topic, readings=_readings(tenants["start"], range(5))
            ),
        )
        wait_until(
            lambda: Telemetry.objects.filter(asset=a["asset"]).count() == 10,
            timeout=30,
            what="10 readings from the command",
        )
    finally:
        from tests.workers import stop_worker

        stop_worker(process)
