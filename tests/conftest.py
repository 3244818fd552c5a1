import pytest

from controlplane.redis import get_redis


@pytest.fixture(autouse=True)
def clean_redis():
    """Rate-limit and quota counters start empty in every test (the test Redis belongs to the tests)."""
    get_redis().flushdb()
    yield


@pytest.fixture
def org(db):
    from tests.builders import make_org

    return make_org()


@pytest.fixture
def other_org(db):
    from tests.builders import make_org

    return make_org()
