"""MQTT telemetry through a real broker (MQTT_URL: the embedded amqtt under `controlplane.embedded`, Mosquitto
elsewhere): signed messages are stored; anything another tenant could forge is rejected and stored nowhere."""

import json
import subprocess
import sys
import uuid

import pytest

from automation.maintenance import services
from automation.maintenance.models import Telemetry
from automation.maintenance.mqtt import (
    STATS_KEY,
    TelemetrySubscriber,
    asset_topic,
    capture_messages,
    capture_topic,
    device_message,
    ingest_stats,
)
from automation.maintenance.signing import message_signature
from foundation.redis import get_redis
from tests.automation.maintenance.maintenance_api import aligned_start, make_asset_type, ts_of
from tests.workers import ROOT, wait_until, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def subscriber(broker_url):
    get_redis().delete(STATS_KEY)
    running = TelemetrySubscriber(url=broker_url, client_id=f"test-ingest-{uuid.uuid4().hex[:8]}").start()
    yield running
    running.stop()


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


def _capture_setup(tenants):
    import numpy as np

    from automation.maintenance.vibration import kinematics_set
    from tests.automation.maintenance.vibration_signals import FS, KINEMATICS_DICT, SHAFT_HZ, bearing_fault

    a = tenants["a"]
    kinematics_set(asset=a["asset"], data=KINEMATICS_DICT)
    content = np.asarray(bearing_fault("outer_race", amplitude=4.0), dtype="<f4").tobytes()
    meta = {"sensor": "DE", "sample_rate": FS, "shaft_rpm": SHAFT_HZ * 60, "format": "float32"}
    return a, content, meta, capture_topic(org_slug=a["org"].slug, asset_code="P-1")


def test_a_capture_in_signed_chunks_is_stored_whole_once_complete(tenants, subscriber, publisher):
    """Catches a capture stored from part of its chunks, or lost when chunks arrive out of order or twice: nothing
    is stored until the last chunk, then the joined bytes are the capture, stored once and queued for analysis."""
    from automation.maintenance.models import VibrationCapture
    from automation.maintenance.vibration import waveform_load

    a, content, meta, topic = _capture_setup(tenants)
    chunks = capture_messages(
        key_id=a["key"].key_id, secret=a["secret"], topic=topic, capture_id="cap-1", content=content,
        chunk_bytes=len(content) // 5 + 1, **meta,
    )  # fmt: skip
    assert len(chunks) == 5
    for payload in (chunks[3], chunks[0], chunks[3], chunks[1], chunks[2]):  # out of order, one twice
        _publish(publisher, topic, payload)
    _settled(subscriber, 5)
    assert not VibrationCapture.objects.exists()  # incomplete: nothing stored
    _publish(publisher, topic, chunks[4])
    capture = wait_until(lambda: VibrationCapture.objects.filter(asset=a["asset"]).first(), timeout=30, what="capture")
    assert capture.sensor == "DE" and capture.job is not None and capture.samples == len(content) // 4
    assert waveform_load(capture).tobytes() == content
    _publish(publisher, topic, chunks[2])  # a late re-delivery stores nothing again
    _settled(subscriber, 7)
    assert VibrationCapture.objects.filter(asset=a["asset"]).count() == 1


def test_bad_chunks_store_nothing_and_incomplete_captures_expire(tenants, subscriber, publisher, settings):
    """Catches a forged chunk slipping into a capture, chunks that disagree being joined, a checksum not checked, a
    capture the upload API would refuse being stored from MQTT, and incomplete captures kept forever."""
    from automation.maintenance.models import VibrationCapture

    settings.MAINTENANCE_MQTT_CAPTURE_TTL_S = 15
    a, content, meta, topic = _capture_setup(tenants)

    def chunks(capture_id, data=content, key=a, **extra):
        return capture_messages(
            key_id=key["key"].key_id, secret=key["secret"], topic=topic, capture_id=capture_id, content=data,
            chunk_bytes=len(data) // 3 + 1, **{**meta, **extra},
        )  # fmt: skip

    processed = 0

    def publish_all(payloads):
        nonlocal processed
        for payload in payloads:
            _publish(publisher, topic, payload)
        processed += len(payloads)
        _settled(subscriber, processed)

    # Signed with another organisation's key: rejected chunk by chunk.
    publish_all(chunks("forged", key=tenants["b"]))
    # Chunks that disagree (another sample rate in one of them): the capture is dropped.
    mixed = chunks("mixed")
    publish_all([mixed[0], chunks("mixed", sample_rate=meta["sample_rate"] * 2)[1], mixed[2]])
    # A checksum that does not match the joined bytes.
    wrong = [json.loads(c) for c in chunks("wrong-sum")]
    for envelope in wrong:
        data = json.loads(envelope["data"])
        data["sha256"] = "0" * 64
        envelope["data"] = json.dumps(data)
        envelope["signature"] = message_signature(secret=a["secret"], topic=topic, data=envelope["data"])
    publish_all([json.dumps(e).encode() for e in wrong])
    # Whole and intact, but a capture the API refuses too (an unknown sensor).
    publish_all(chunks("no-sensor", sensor="XX"))
    # One chunk's data altered after signing: that chunk is rejected, the capture never completes.
    tampered = json.loads(chunks("tampered")[1])
    tampered["data"] = tampered["data"].replace('"index":1', '"index":2')
    first, _, last = chunks("tampered")
    publish_all([first, json.dumps(tampered).encode(), last])
    assert not VibrationCapture.objects.exists()
    stats = ingest_stats()
    assert stats["rejected:wrong_organization"] == 3 and stats["rejected:bad_signature"] == 1
    assert stats["rejected:inconsistent_chunks"] >= 1 and stats["rejected:bad_checksum"] == 1
    assert stats["rejected:invalid_capture"] == 1
    # The incomplete "tampered" capture waits in Redis, then expires.
    redis = get_redis()
    waiting = [k for k in redis.scan_iter("maintenance:mqtt:capture:*") if not k.endswith(":done")]
    assert waiting and all(0 < redis.ttl(k) <= 15 for k in waiting)
    wait_until(
        lambda: not [k for k in redis.scan_iter("maintenance:mqtt:capture:*") if not k.endswith(":done")],
        timeout=60,
        what="incomplete captures to expire",
    )
