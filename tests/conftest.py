import pytest

# Session-wide servers, started lazily by the first test that asks: one vLLM, one localstripe.
from tests.model_fixtures import *  # noqa: F403
from tests.stripe_server import localstripe  # noqa: F401


@pytest.fixture(autouse=True)
def clean_redis(request):
    """Rate-limit and quota counters start empty in every database test (the test Redis belongs to the tests).

    Pure tests (solvers, models) need no Redis and may run without Django configured.
    """
    if request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames):
        from foundation.redis import get_redis

        get_redis().flushdb()


@pytest.fixture
def org(db):
    from tests.builders import make_org

    return make_org()


@pytest.fixture
def other_org(db):
    from tests.builders import make_org

    return make_org()


@pytest.fixture(scope="session")
def web_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """One uvicorn serving controlplane.asgi (gateway + Django) on the test database for the whole session.

    Tests that use it must be `transaction=True` so the server sees their rows.
    """
    from controlplane.embedded import free_port
    from tests.workers import start_web_server, stop_worker, wait_for_http

    port = free_port()
    process = start_web_server(port=port, log_path=tmp_path_factory.mktemp("web") / "uvicorn.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_worker(process)
