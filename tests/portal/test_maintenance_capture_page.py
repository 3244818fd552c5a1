"""The vibration capture page through Django's test client and the real services: an analysed outer-race capture
shows its spectra with the fault frequencies marked, the diagnosis with its evidence peaks and the velocity trend
over the ISO zones; in every language; another organisation's capture does not exist."""

import re

import pytest
from django.urls import reverse

from automation.maintenance import services
from tenants.roles import Role
from tests import builders
from tests.automation.maintenance.maintenance_api import make_asset_type, vibration_objects

pytestmark = pytest.mark.django_db


def _capture(org):
    asset = services.asset_create(organization=org, code="M-1", asset_type=make_asset_type(org))
    _, capture, *diagnoses = vibration_objects(org, asset)
    return asset, capture, diagnoses


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"portal:{name}", kwargs={"org_slug": org.slug, **kwargs})


def test_an_analysed_capture_shows_its_spectra_marks_diagnosis_and_trend(org):
    asset, capture, diagnoses = _capture(org)
    assert diagnoses and diagnoses[0].fault == "outer_race"
    viewer = builders.session_client(builders.add_member(org, Role.VIEWER))
    page = viewer.get(_url("maintenance-capture", org, pk=capture.pk))
    assert page.status_code == 200
    html = page.content.decode()
    # Both spectra, with the drive-end bearing's defect lines and the shaft orders marked as dashed lines.
    assert html.count("<svg") >= 3  # spectrum, envelope spectrum, one trend
    assert "Envelope spectrum (band" in html
    marks = re.findall(r'stroke-dasharray="3 3"><title>([^<]+)</title>', html)
    assert any("BPFO 1x" in m for m in marks) and any("BPFI 2x" in m for m in marks)
    assert any(m.endswith("shaft 1x") for m in marks) and any(m.endswith("shaft 3x") for m in marks)
    # The diagnosis with its evidence peaks (the BPFO harmonics that matched).
    assert diagnoses[0].label in html
    assert diagnoses[0].evidence[0]["label"] in html
    # The trend over the shaded ISO zones A to D.
    for zone in ("A", "B", "C", "D"):
        assert f"<title>{zone}</title>" in html
    assert "velocity RMS, mm/s" in html
    # The asset page lists the capture and links to it.
    asset_page = viewer.get(_url("maintenance-asset", org, pk=asset.pk)).content.decode()
    assert _url("maintenance-capture", org, pk=capture.pk) in asset_page


@pytest.mark.parametrize(("language", "heading"), [("ko", "주파수"), ("de", "Spektren")])
def test_the_capture_page_is_translated(org, language, heading):
    _, capture, _ = _capture(org)
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    client.post("/language", {"language": language, "next": "/account"})
    page = client.get(_url("maintenance-capture", org, pk=capture.pk))
    assert page.status_code == 200
    assert heading in page.content.decode()


def test_another_organisations_capture_does_not_exist(org, other_org):
    _, capture, _ = _capture(org)
    stranger = builders.session_client(other_org.memberships.get(role=Role.OWNER).user)
    assert stranger.get(_url("maintenance-capture", other_org, pk=capture.pk)).status_code == 404
    assert stranger.get(_url("maintenance-capture", org, pk=capture.pk)).status_code == 404
