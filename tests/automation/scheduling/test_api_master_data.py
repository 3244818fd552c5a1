"""CRUD of the factory's master data through the API: shapes, references by code, errors, scopes."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automation.scheduling.models import Machine, Product
from tenants.roles import Role, Scope
from tests import builders
from tests.automation.scheduling.scheduling_api import at, build_factory, client_for, post, url

pytestmark = pytest.mark.django_db


def test_machine_with_shifts_round_trips_updates_and_deletes(org):
    """Catches shifts lost or duplicated on update, or a response that does not show what was stored."""
    client = client_for(org)
    created = post(
        client,
        org,
        "machines",
        {
            "code": "CUT",
            "name": "Laser",
            "timezone": "Europe/Berlin",
            "shifts": [
                {"days": "mon-fri", "start": "06:00", "end": "14:00"},
                {"days": ["sat"], "start": "22:00", "end": "06:00"},
            ],
        },
    )
    assert created["shifts"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "06:00", "end": "14:00"},
        {"days": ["sat"], "start": "22:00", "end": "06:00"},
    ]
    detail = url(org, f"machines/{created['id']}")
    patched = client.patch(detail, {"shifts": [{"days": "sun", "start": "08:00", "end": "12:00"}]}, format="json")
    assert patched.status_code == 200 and patched.json()["shifts"] == [
        {"days": ["sun"], "start": "08:00", "end": "12:00"}
    ]
    assert client.get(detail).json()["shifts"] == patched.json()["shifts"]
    renamed = client.patch(detail, {"name": "Laser 2"}, format="json").json()
    assert renamed["name"] == "Laser 2" and renamed["shifts"] == patched.json()["shifts"]  # untouched without key
    assert client.delete(detail).status_code == 204
    assert client.get(detail).status_code == 404


def test_lists_use_cursor_pagination(org):
    """Catches a list endpoint without the cursor paginator (offset pages or unbounded lists)."""
    client = client_for(org)
    for code in ("A", "B", "C"):
        post(client, org, "machines", {"code": code})
    first = client.get(url(org, "machines"), {"page_size": 2}).json()
    assert len(first["results"]) == 2 and "cursor=" in first["next"]
    second = client.get(first["next"]).json()
    assert {m["code"] for m in first["results"] + second["results"]} == {"A", "B", "C"}


def test_product_routing_names_machines_and_materials_by_code(org):
    """Catches a routing stored out of order, with lost alternatives or materials, or answered in another shape."""
    client = client_for(org)
    build_factory(client, org)
    panel = next(p for p in client.get(url(org, "products")).json()["results"] if p["code"] == "panel")
    assert panel["operations"] == [
        {"name": "cut", "machines": [{"machine": "CUT", "minutes_per_unit": 3.0}], "materials": []},
        {
            "name": "finish",
            "machines": [{"machine": "PACK", "minutes_per_unit": 1.0}, {"machine": "PAINT", "minutes_per_unit": 1.5}],
            "materials": [],
        },
    ]
    replaced = client.patch(
        url(org, f"products/{panel['id']}"),
        {
            "operations": [
                {"name": "paint", "machines": [{"machine": "PAINT", "minutes_per_unit": 2}], "materials": ["paint"]}
            ]
        },
        format="json",
    )
    assert replaced.status_code == 200
    assert replaced.json()["operations"] == [
        {"name": "paint", "machines": [{"machine": "PAINT", "minutes_per_unit": 2.0}], "materials": ["paint"]}
    ]


def test_another_tenants_objects_cannot_be_referenced_by_code(org, other_org):
    """Catches a reference field that resolves codes across organisations: B has a machine CUT and a product
    BOX, A names them and must be told they do not exist."""
    other = client_for(other_org)
    post(other, other_org, "machines", {"code": "CUT"})
    post(
        other,
        other_org,
        "products",
        {"code": "BOX", "operations": [{"machines": [{"machine": "CUT", "minutes_per_unit": 1}]}]},
    )
    client = client_for(org)
    response = client.post(
        url(org, "products"),
        {"code": "LID", "operations": [{"machines": [{"machine": "CUT", "minutes_per_unit": 1}]}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["operations"][0]["machines"][0]["machine"] == [
        "No machine with the code CUT."
    ]
    response = client.post(url(org, "orders"), {"code": "O1", "product": "BOX", "quantity": 1}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"]["product"] == [
        "No product with the code BOX."
    ]
    assert not Product.objects.filter(organization=org).exists()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("machines", {"code": "has space"}, "code"),
        ("machines", {"code": "M", "timezone": "Mars/Olympus"}, "timezone"),
        ("machines", {"code": "M", "shifts": [{"days": "mon", "start": "06:00", "end": "06:00"}]}, "shifts"),
        ("machines", {"code": "M", "shifts": [{"days": "mon-funday", "start": "06:00", "end": "07:00"}]}, "shifts"),
        ("downtimes", {"machine": "CUT", "starts_at": at("10:00"), "ends_at": at("09:00")}, "ends_at"),
        (
            "orders",
            {"code": "O9", "product": "panel", "quantity": 1, "release_at": at("10:00"), "due_at": at("09:00")},
            "due_at",
        ),
        ("orders", {"code": "O9", "product": "panel", "quantity": 0}, "quantity"),
        ("products", {"code": "X", "operations": [{"name": "empty", "machines": []}]}, "operations"),
    ],
)
def test_invalid_master_data_is_a_400_naming_the_field(org, path, body, field):
    """Catches input the engine would choke on later (or a 500) being accepted at the API."""
    client = client_for(org)
    build_factory(client, org)
    response = client.post(url(org, path), body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"], error


def test_a_duplicate_code_is_a_400_on_the_code_field(org):
    """Catches a unique-constraint violation surfacing as a 500, or a code silently reused."""
    client = client_for(org)
    post(client, org, "machines", {"code": "CUT"})
    response = client.post(url(org, "machines"), {"code": "CUT"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"code": ["A machine with the code 'CUT' already exists."]}


def test_deleting_something_still_in_use_is_refused_with_a_reason(org):
    """Catches a ProtectedError answered as a 500, or routings left pointing at a deleted machine."""
    client = client_for(org)
    build_factory(client, org)
    cut = Machine.objects.get(organization=org, code="CUT")
    response = client.delete(url(org, f"machines/{cut.id}"))
    assert response.status_code == 400
    assert "bracket" in response.json()["error"]["message"] and "panel" in response.json()["error"]["message"]
    panel = Product.objects.get(organization=org, code="panel")
    response = client.delete(url(org, f"products/{panel.id}"))
    assert response.status_code == 400 and "P1" in response.json()["error"]["message"]
    assert Machine.objects.filter(pk=cut.pk).exists()


def test_viewers_read_members_write_and_runs_need_the_jobs_scope(org):
    """Catches the method-to-scope map being wrong for scheduling: reads org:read, writes org:write, runs jobs."""
    build_factory(client_for(org), org)
    viewer = builders.session_client(builders.add_member(org, Role.VIEWER))
    assert viewer.get(url(org, "orders")).status_code == 200
    assert viewer.post(url(org, "machines"), {"code": "X"}, format="json").status_code == 403
    writer = client_for(org, scopes=[Scope.ORG_READ, Scope.ORG_WRITE])
    assert writer.post(url(org, "machines"), {"code": "X"}, format="json").status_code == 201
    assert writer.post(url(org, "runs"), {"time_limit_s": 5}, format="json").status_code == 403
    runner = client_for(org, scopes=[Scope.ORG_READ, Scope.JOBS])
    assert runner.post(url(org, "runs"), {"time_limit_s": 5}, format="json").status_code == 201
    assert runner.post(url(org, "machines"), {"code": "Y"}, format="json").status_code == 403


def test_listing_products_costs_the_same_queries_for_one_or_many(org):
    """Catches an N+1 on routings (operations, machines, materials) in the product list."""
    client = client_for(org)
    build_factory(client, org)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url(org, "products")).status_code == 200
        return len(captured)

    few = queries()
    for n in range(5):
        post(
            client,
            org,
            "products",
            {
                "code": f"extra-{n}",
                "operations": [
                    {
                        "machines": [
                            {"machine": "CUT", "minutes_per_unit": 1},
                            {"machine": "PACK", "minutes_per_unit": 2},
                        ],
                        "materials": ["paint"],
                    }
                ]
                * 3,
            },
        )
    assert queries() == few
