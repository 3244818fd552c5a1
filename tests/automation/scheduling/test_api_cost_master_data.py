"""CRUD of the cost master data: suppliers, supplier prices, bill-of-materials lines and the tariff, by code
within the organisation, validated like the import, and invisible to another organisation."""

import pytest

from automation.scheduling.models import BomLine, Supplier, SupplierPrice, TariffRate
from tests.automation.scheduling.scheduling_api import client_for, post, url


def _factory(client, org) -> None:
    post(client, org, "machines", {"code": "PRESS"})
    post(client, org, "materials", {"code": "steel"})
    post(client, org, "materials", {"code": "tin"})
    post(
        client,
        org,
        "products",
        {"code": "bracket", "operations": [{"machines": [{"machine": "PRESS", "minutes_per_unit": 5}]}]},
    )


@pytest.mark.django_db
def test_suppliers_prices_bom_lines_and_tariff_round_trip_update_and_delete(org):
    """Catches a cost master-data route that does not reach its service, shows a step from 0, or loses a field."""
    client = client_for(org)
    _factory(client, org)
    supplier = post(
        client,
        org,
        "suppliers",
        {"code": "acme", "material": "steel", "lead_days": 2, "moq": 10, "price_breaks": "100:0.9"},
    )
    assert (supplier["material"], supplier["price_breaks"], supplier["moq"]) == ("steel", [[100, 0.9]], 10)
    response = client.patch(url(org, f"suppliers/{supplier['id']}"), {"lead_days": 5}, format="json")
    assert response.status_code == 200 and response.json()["lead_days"] == 5
    assert client.get(url(org, "suppliers?material=steel")).json()["results"][0]["code"] == "acme"
    assert client.get(url(org, "suppliers?material=tin")).json()["results"] == []

    price = post(client, org, "supplier-prices", {"supplier": "acme", "day": "2025-03-01", "price": 10.5})
    assert (price["supplier"], price["day"], price["price"]) == ("acme", "2025-03-01", 10.5)
    again = post(client, org, "supplier-prices", {"supplier": "acme", "day": "2025-03-01", "price": 11})
    assert again["id"] == price["id"] and again["price"] == 11  # one price per day: replaced
    later = post(client, org, "supplier-prices", {"supplier": "acme", "day": "2025-03-08", "price": 12})
    clash = client.patch(url(org, f"supplier-prices/{later['id']}"), {"day": "2025-03-01"}, format="json")
    assert clash.status_code == 400 and "day" in clash.json()["error"]["fields"]

    line = post(client, org, "bom", {"product": "bracket", "step": 1, "material": "steel", "quantity_per_unit": 4})
    assert (line["step"], line["material"], line["quantity_per_unit"]) == (1, "steel", 4)
    assert BomLine.objects.get(pk=line["id"]).position == 0
    response = client.patch(url(org, f"bom/{line['id']}"), {"material": "tin", "quantity_per_unit": 2}, format="json")
    assert response.status_code == 200 and response.json()["material"] == "tin"
    missing_step = client.patch(url(org, f"bom/{line['id']}"), {"step": 3}, format="json")
    assert missing_step.status_code == 400 and "no step 3" in missing_step.json()["error"]["fields"]["step"][0]

    rate = post(client, org, "tariff", {"weekday": 0, "hour": 8, "price_per_kwh": 0.35})
    response = client.put(url(org, f"tariff/{rate['id']}"), {"weekday": 0, "hour": 9, "price_per_kwh": 0.3})
    assert response.status_code == 200 and response.json()["hour"] == 9
    assert client.post(url(org, "tariff"), {"weekday": 7, "hour": 8, "price_per_kwh": 1}).status_code == 400

    for path in (f"tariff/{rate['id']}", f"bom/{line['id']}", f"supplier-prices/{later['id']}"):
        assert client.delete(url(org, path)).status_code == 204, path
    assert client.delete(url(org, f"suppliers/{supplier['id']}")).status_code == 204
    for model in (Supplier, SupplierPrice, BomLine, TariffRate):
        assert not model.objects.filter(organization=org).exists(), model


@pytest.mark.django_db
def test_another_organisations_cost_rows_answer_404_and_cannot_be_named(org, other_org):
    """Catches a cost route that finds another tenant's row, or a code that resolves across tenants."""
    owner = client_for(org)
    _factory(owner, org)
    supplier = post(owner, org, "suppliers", {"code": "acme", "material": "steel"})
    price = post(owner, org, "supplier-prices", {"supplier": "acme", "day": "2025-03-01", "price": 10})
    line = post(owner, org, "bom", {"product": "bracket", "step": 1, "material": "steel", "quantity_per_unit": 1})
    rate = post(owner, org, "tariff", {"weekday": 1, "hour": 1, "price_per_kwh": 0.1})
    stranger = client_for(other_org)
    for path in (
        f"suppliers/{supplier['id']}",
        f"supplier-prices/{price['id']}",
        f"bom/{line['id']}",
        f"tariff/{rate['id']}",
    ):
        assert stranger.get(url(other_org, path)).status_code == 404, path
        assert stranger.delete(url(other_org, path)).status_code == 404, path
    assert stranger.get(url(other_org, "tariff")).json()["results"] == []
    refused = stranger.post(
        url(other_org, "supplier-prices"), {"supplier": "acme", "day": "2025-03-01", "price": 1}, format="json"
    )
    assert refused.status_code == 400 and "supplier" in refused.json()["error"]["fields"]
    assert SupplierPrice.objects.get(pk=price["id"]).price == 10
