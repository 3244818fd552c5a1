"""The outside world of the automation apps: the MQTT broker `controlplane.embedded` started and a client that
publishes as a device would (maintenance telemetry, quality steps), and an integrator's webhook receiver."""

import os
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest

from tests.loopback import QuietHandler, serving


@pytest.fixture
def broker_url():
    url = os.environ.get("MQTT_URL")
    if not url:
        pytest.skip("MQTT_URL is not set: run under `python -m controlplane.embedded`")
    return url


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
def receiver():
    """An integrator's webhook endpoint on loopback: (its URL, what it received, each {"headers", "body"})."""
    received: list[dict] = []

    class Handler(QuietHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

    with serving(Handler) as port:
        yield f"http://127.0.0.1:{port}/hooks", received
