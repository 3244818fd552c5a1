"""The outside world of the automation apps: the MQTT broker `controlplane.embedded` started and a client that
publishes as a device would (maintenance telemetry, quality steps), and an integrator's webhook receiver."""

import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest


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

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received
    server.shutdown()
