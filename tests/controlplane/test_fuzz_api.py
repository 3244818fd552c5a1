"""A bounded schemathesis run over the served OpenAPI of /api/v1 and of /v1, as every role.

Catches: any input that makes an endpoint answer 5xx, and any documented answer that does not match the schema.
The long run with its figures is benchmarks/fuzz_api.py.
"""

import pytest

from tests.fuzzing import fuzz, fuzz_world, load


@pytest.mark.django_db(transaction=True)
def test_control_plane_api_survives_fuzzing_as_every_role(web_server):
    world = fuzz_world()
    schema = load(f"{web_server}/api/schema")
    report = fuzz(schema, world, max_examples=1, seed=1)  # a case each, as every role: the long run is the benchmark
    print(f"{report.operations} operations, {report.cases} cases, {report.requests} requests, {dict(report.statuses)}")
    assert report.operations > 50
    assert report.unique_failures == []


@pytest.mark.django_db(transaction=True)
def test_openai_compatible_api_survives_fuzzing(web_server):
    """Catches: a 5xx or an undocumented answer shape on /v1 (gateway and Django routes), for an API key and for
    the members' user tokens (which the data plane must refuse cleanly)."""
    world = fuzz_world()
    schema = load(f"{web_server}/v1/openapi.json")
    report = fuzz(schema, world, max_examples=4, seed=2)
    print(f"{report.operations} operations, {report.cases} cases, {report.requests} requests, {dict(report.statuses)}")
    assert report.operations >= 13
    assert report.unique_failures == []


@pytest.mark.django_db
def test_a_nul_character_in_a_looked_up_code_is_a_400_not_a_500():
    """Catches the server error the fuzzing found: PUT .../maintenance/assets/{id} with a NUL in `asset_type`
    (a code looked up in PostgreSQL, which refuses NUL in text) answered 500."""
    from automation.maintenance import services as maintenance
    from tests.builders import key_client, make_key, make_org

    org = make_org()
    _, plaintext = make_key(org)
    asset_type = maintenance.asset_type_create(organization=org, code="pump", channels=[{"name": "v", "unit": "mm/s"}])
    asset = maintenance.asset_create(organization=org, code="P-1", asset_type=asset_type)
    response = key_client(plaintext).put(
        f"/api/v1/orgs/{org.slug}/maintenance/assets/{asset.pk}",
        {"code": "P-1", "asset_type": "\x00pump", "name": "x", "site": ""},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
