"""Helpers for the scheduling API tests: a small factory built through the API, and waiting for runs."""

from datetime import UTC, datetime

from jobs.models import Job
from tests import builders
from tests.workers import wait_until

# A Monday in winter time: Berlin is UTC+1, so the 06:00 shift starts at 05:00 UTC.
MONDAY = datetime(2025, 3, 3, 5, 0, tzinfo=UTC)

FT06 = [
    [[2, 1], [0, 3], [1, 6], [3, 7], [5, 3], [4, 6]],
    [[1, 8], [2, 5], [4, 10], [5, 10], [0, 10], [3, 4]],
    [[2, 5], [3, 4], [5, 8], [0, 9], [1, 1], [4, 7]],
    [[1, 5], [0, 5], [2, 5], [3, 3], [4, 8], [5, 9]],
    [[2, 9], [1, 3], [4, 5], [5, 4], [0, 3], [3, 1]],
    [[1, 3], [3, 3], [5, 9], [0, 10], [4, 4], [2, 1]],
]


def at(hh_mm: str, day: int = 0) -> str:
    """An ISO datetime on MONDAY + day at hh:mm UTC."""
    hours, minutes = map(int, hh_mm.split(":"))
    return MONDAY.replace(day=MONDAY.day + day, hour=hours, minute=minutes).isoformat()


def client_for(org, scopes=None):
    _, plaintext = builders.make_key(org, **({"scopes": scopes} if scopes is not None else {}))
    return builders.key_client(plaintext)


def url(org, path: str) -> str:
    return f"/api/v1/orgs/{org.slug}/scheduling/{path}"


def post(client, org, path: str, body: dict, status: int = 201) -> dict:
    response = client.post(url(org, path), body, format="json")
    assert response.status_code == status, response.content
    return response.json()


def build_factory(client, org) -> None:
    """Cutting in two shifts (Berlin time) with changeovers between families, a paint line down for a while,
    paint delivered mid-morning, a packing bench; two products, five orders."""
    post(
        client,
        org,
        "machines",
        {
            "code": "CUT",
            "name": "Laser cutter",
            "timezone": "Europe/Berlin",
            "shifts": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "06:00", "end": "14:00"},
                {"days": "mon-fri", "start": "14:30", "end": "22:00"},
            ],
        },
    )
    post(client, org, "machines", {"code": "PAINT", "name": "Paint line"})
    post(client, org, "machines", {"code": "PACK"})
    post(
        client,
        org,
        "downtimes",
        {"machine": "PAINT", "starts_at": at("06:40"), "ends_at": at("08:20"), "reason": "nozzle service"},
    )
    post(client, org, "materials", {"code": "paint", "arrives_at": at("07:30")})
    post(
        client,
        org,
        "products",
        {
            "code": "bracket",
            "family": "steel",
            "operations": [
                {"name": "cut", "machines": [{"machine": "CUT", "minutes_per_unit": 2}]},
                {"name": "paint", "machines": [{"machine": "PAINT", "minutes_per_unit": 1}], "materials": ["paint"]},
                {"name": "pack", "machines": [{"machine": "PACK", "minutes_per_unit": 0.5}]},
            ],
        },
    )
    post(
        client,
        org,
        "products",
        {
            "code": "panel",
            "family": "alu",
            "operations": [
                {"name": "cut", "machines": [{"machine": "CUT", "minutes_per_unit": 3}]},
                {
                    "name": "finish",
                    "machines": [
                        {"machine": "PACK", "minutes_per_unit": 1},
                        {"machine": "PAINT", "minutes_per_unit": 1.5},
                    ],
                },
            ],
        },
    )
    post(client, org, "setup-times", {"machine": "CUT", "from_family": "steel", "to_family": "alu", "minutes": 30})
    post(client, org, "setup-times", {"machine": "CUT", "from_family": "alu", "to_family": "steel", "minutes": 45})
    for code, product, quantity, release, due, weight in [
        ("B1", "bracket", 40, "05:05", "10:00", 1),
        ("P1", "panel", 50, "06:00", "12:00", 3),
        ("B2", "bracket", 90, "05:10", "14:00", 1),
        ("P2", "panel", 30, "06:40", None, 1),
        ("B3", "bracket", 25, "08:20", "17:00", 2),
    ]:
        post(
            client,
            org,
            "orders",
            {
                "code": code,
                "product": product,
                "quantity": quantity,
                "release_at": at(release),
                "due_at": due and at(due),
                "weight": weight,
            },
        )


def wait_for_run(client, org, run_id: str, *, timeout: float = 90) -> dict:
    def finished():
        body = client.get(url(org, f"runs/{run_id}")).json()
        return body if body["status"] in Job.FINISHED else None

    return wait_until(finished, timeout=timeout, interval=0.3, what=f"run {run_id} to finish")
