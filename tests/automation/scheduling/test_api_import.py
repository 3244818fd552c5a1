"""Bulk import of master data as CSV files or JSON: all or nothing, errors by file and line."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from automation.scheduling.models import Downtime, Machine, Material, Operation, Order, Product, SetupTime, Shift
from tests.automation.scheduling.scheduling_api import client_for, url

pytestmark = pytest.mark.django_db

FILES = {
    "machines": "code,name,timezone\nCUT,Laser cutter,Europe/Berlin\nPAINT,Paint line,\nPACK,,\n",
    "shifts": "machine,days,start,end\nCUT,mon-fri,06:00,14:00\nCUT,mon-fri,14:30,22:00\n",
    "materials": "code,name,arrives_at\npaint,Blue paint,2025-03-03T07:30:00Z\nscrews,,\n",
    "products": "code,name,family\nbracket,Bracket,steel\npanel,Panel,alu\n",
    "operations": (
        "product,step,name,machine,minutes_per_unit,materials\n"
        "bracket,1,cut,CUT,2,\n"
        "bracket,2,paint,PAINT,1,paint;screws\n"
        "bracket,3,pack,PACK,0.5,\n"
        "panel,1,cut,CUT,3,\n"
        "panel,2,finish,PACK,1,\n"
        "panel,2,finish,PAINT,1.5,\n"
    ),
    "setup_times": "machine,from_family,to_family,minutes\nCUT,steel,alu,30\nCUT,alu,steel,45\n",
    "downtimes": (
        'machine,starts_at,ends_at,reason\nPAINT,2025-03-03T06:40:00Z,2025-03-03T08:20:00Z,"nozzle\nservice"\n'
    ),
    "orders": (
        "code,product,quantity,release_at,due_at,weight\n"
        "B1,bracket,40,2025-03-03T05:05:00Z,2025-03-03T10:00:00Z,1\n"
        "P1,panel,50,2025-03-03T06:00:00Z,2025-03-03T12:00:00Z,3\n"
        "P2,panel,30,,,\n"
    ),
}


def _upload(client, org, files: dict[str, str]):
    data = {
        name: SimpleUploadedFile(f"{name}.csv", text.encode(), content_type="text/csv") for name, text in files.items()
    }
    return client.post(url(org, "import"), data, format="multipart")


def _nothing_written(org) -> bool:
    return not any(
        model.objects.filter(organization=org).exists()
        for model in (Machine, Shift, Material, Product, Operation, SetupTime, Downtime, Order)
    )


def test_csv_files_import_every_entity_in_dependency_order(org):
    """Catches an entity applied before what it refers to, routing lines not merged into steps, or blank cells
    read as values (P2 has no dates and the default weight)."""
    client = client_for(org)
    response = _upload(client, org, FILES)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "created": {
            "machines": 3,
            "shifts": 2,
            "materials": 2,
            "products": 2,
            "operations": 6,
            "setup_times": 2,
            "downtimes": 1,
            "orders": 3,
        },
        "updated": {},
    }
    bracket = Product.objects.get(organization=org, code="bracket")
    steps = list(bracket.operations.order_by("position"))
    assert [s.name for s in steps] == ["cut", "paint", "pack"]
    assert sorted(m.code for m in steps[1].materials.all()) == ["paint", "screws"]
    finish = Product.objects.get(organization=org, code="panel").operations.get(position=1)
    assert sorted(o.machine.code for o in finish.options.all()) == ["PACK", "PAINT"]
    assert Machine.objects.get(organization=org, code="CUT").shifts.count() == 2
    p2 = Order.objects.get(organization=org, code="P2")
    assert (p2.release_at, p2.due_at, p2.weight) == (None, None, 1)
    assert Downtime.objects.get(organization=org).reason == "nozzle\nservice"


def test_csv_errors_name_file_and_line_and_nothing_is_written(org):
    """Catches a half-written import (valid machines kept although orders failed), or errors without a line.
    Line numbers are the file's: the header is line 1, a blank line and a two-line quoted cell count."""
    client = client_for(org)
    files = dict(
        FILES,
        orders=(
            "code,product,quantity,release_at,due_at,weight\n"
            "B1,bracket,40,2025-03-03T05:05:00Z,not a date,1\n"
            "\n"
            "P1,sprocket,50,,,\n"
            "P2,panel,-3,,,\n"
        ),
        downtimes=(
            "machine,starts_at,ends_at,reason\n"
            'PAINT,2025-03-03T06:40:00Z,2025-03-03T08:20:00Z,"two\nlines"\n'
            "LATHE,2025-03-03T06:40:00Z,2025-03-03T08:20:00Z,\n"
        ),
    )
    response = _upload(client, org, files)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"] == {
        "downtimes line 4": {"machine": ["No machine with the code LATHE."]},
        "orders line 2": {"due_at": [error["fields"]["orders line 2"]["due_at"][0]]},
        "orders line 4": {"product": ["No product with the code sprocket."]},
        "orders line 5": {"quantity": [error["fields"]["orders line 5"]["quantity"][0]]},
    }
    assert "date" in error["fields"]["orders line 2"]["due_at"][0].lower()
    assert (
        error["message"].startswith("downtimes line 4: machine: No machine")
        and "Nothing was imported" in error["message"]
    )
    assert _nothing_written(org)


def test_csv_header_problems_are_reported_on_line_one(org):
    """Catches a file with a misspelt or missing column being imported with silently empty values."""
    client = client_for(org)
    response = _upload(client, org, {"orders": "code,prodcut,quantity\nO1,x,1\n"})
    assert response.status_code == 400
    message = response.json()["error"]["fields"]["orders line 1"]["non_field_errors"][0]
    assert "missing column 'product'" in message and "unknown column 'prodcut'" in message
    response = _upload(client, org, {"widgets": "code\nW1\n"})
    assert response.status_code == 400 and "widgets" in response.json()["error"]["fields"]
    assert _nothing_written(org)


def test_json_import_reports_nested_errors_by_index_and_rolls_back(org):
    """Catches a JSON import that keeps the rows before the bad one, or hides which nested field was wrong."""
    client = client_for(org)
    body = {
        "machines": [{"code": "CUT", "shifts": [{"days": "mon-fri", "start": "06:00", "end": "14:00"}]}],
        "products": [
            {"code": "bracket", "operations": [{"machines": [{"machine": "CUT", "minutes_per_unit": 2}]}]},
            {"code": "panel", "operations": [{"machines": [{"machine": "MILL", "minutes_per_unit": 2}]}]},
        ],
        "orders": [
            {"code": "B1", "product": "bracket", "quantity": 1},
            {"code": "B1", "product": "bracket", "quantity": 2},
        ],
    }
    response = client.post(url(org, "import"), body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "products[1]": {"operations[0].machines[0].machine": ["No machine with the code MILL."]},
        "orders[1]": {"code": ["Also on orders[0]: each code once per import."]},
    }
    assert _nothing_written(org)


def test_importing_existing_codes_updates_them(org):
    """Catches an import that duplicates or refuses objects it already has, instead of updating them."""
    client = client_for(org)
    assert _upload(client, org, FILES).status_code == 200
    response = client.post(
        url(org, "import"),
        {
            "orders": [{"code": "P2", "quantity": 35, "due_at": "2025-03-04T12:00:00Z"}],
            "operations": [{"product": "panel", "step": 1, "machine": "PACK", "minutes_per_unit": 4}],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"created": {"operations": 1}, "updated": {"orders": 1}}
    p2 = Order.objects.get(organization=org, code="P2")
    assert (float(p2.quantity), p2.product.code) == (35.0, "panel")
    panel = Product.objects.get(organization=org, code="panel")
    assert [[o.machine.code for o in step.options.all()] for step in panel.operations.order_by("position")] == [
        ["PACK"]
    ]
    assert Order.objects.filter(organization=org).count() == 3


def test_an_empty_or_unknown_body_is_refused(org):
    """Catches a silent 200 for a request that imported nothing."""
    client = client_for(org)
    assert client.post(url(org, "import"), {}, format="json").status_code == 400
    response = client.post(url(org, "import"), {"gadgets": []}, format="json")
    assert response.status_code == 400 and "gadgets" in response.json()["error"]["message"]
