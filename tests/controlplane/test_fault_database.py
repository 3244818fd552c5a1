"""The database going away under a request: a clean 503 in the API's error shape, nothing half-written, and the
next request served without restarting anything. The fault is real: the server process of this connection is
terminated by PostgreSQL (`pg_terminate_backend`), as a restart or fail-over does to every open connection."""

import psycopg
import pytest
from django.db import close_old_connections, connection

from automation.scheduling.models import Machine
from tests.builders import key_client, make_key, make_org

pytestmark = pytest.mark.django_db(transaction=True)


def _kill_this_connection() -> None:
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.parametrize("path", ["/api/v1/orgs/{slug}/scheduling/machines", "/v1/files"])
def test_a_dropped_database_connection_answers_503_then_recovers(path):
    """Catches: a 500 (or a hang) when PostgreSQL restarts, a half-written row, or a process that stays broken."""
    org = make_org()
    _, plaintext = make_key(org)
    client = key_client(plaintext)
    url = path.format(slug=org.slug)
    body = {"code": "M1", "name": "Mill"} if "machines" in path else None

    _kill_this_connection()
    failed = client.post(url, body, format="json") if body else client.get(url)
    assert failed.status_code == 503, failed.content
    assert failed["Retry-After"] == "5"
    error = failed.json()["error"]
    assert error["code"] == "database_unavailable" and error["message"]

    # What Django runs when every request ends (the test client disconnects it, so it is called here): the broken
    # connection is found unusable and closed, and the next request connects afresh.
    close_old_connections()
    again = client.post(url, body, format="json") if body else client.get(url)
    assert again.status_code in (200, 201), again.content
    if body:
        assert Machine.objects.filter(organization=org, code="M1").count() == 1
