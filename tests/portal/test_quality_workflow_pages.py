"""The quality workflow pages through Django's test client and the real services: SPC alarms (acknowledge,
close), an investigation with its suspects, containment and corrective actions, and the 8D report (edit, export),
in Korean too; viewers read but do not act; another organisation's investigation does not exist."""

from datetime import timedelta

import pytest
from django.urls import reverse

from automation.quality import ingest
from automation.quality.models import Alarm, ContainmentAction, CorrectiveAction, Investigation, Report8D
from tenants.roles import Role
from tests import builders
from tests.automation.quality.quality_api import BASE, line_csvs, make_line
from tests.automation.quality.simulated import simulate

pytestmark = pytest.mark.django_db


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"portal:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _world(org) -> None:
    make_line(org)
    for kind, content in line_csvs(simulate(scenario="lot", n=60), prefix="P-").items():
        ingest.ingest(organization=org, kind=kind, rows=ingest.rows_from_csv(kind=kind, content=content))
    rows = ["unit,station,machine,ts,variable,value"]
    for i in range(40):
        value = 50.0 + (0.003 if i % 2 else -0.003) + (0.05 if i >= 30 else 0.0)
        rows.append(f"S{i:03d},turn,T2,{(BASE + timedelta(days=1, minutes=i)).isoformat()},diameter,{value!r}")
    content = ("\n".join(rows) + "\n").encode()
    ingest.ingest(organization=org, kind="steps", rows=ingest.rows_from_csv(kind="steps", content=content))


def test_alarms_and_an_investigation_through_the_pages(org, other_org):
    """Catches: alarms not listed or not acknowledged from the page, an investigation not opened from its form,
    actions not recorded, the 8D report not saved or exported, and pages that fail in Korean."""
    _world(org)
    owner = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    page = owner.get(_url("quality-alarms", org))
    assert page.status_code == 200 and b"diameter" in page.content
    alarm = Alarm.objects.filter(organization=org, status="open").first()
    assert alarm is not None
    owner.post(_url("quality-alarm", org, pk=alarm.pk), {"action": "acknowledge"})
    assert Alarm.objects.get(pk=alarm.pk).status == "acknowledged"

    opened = owner.post(
        _url("quality-investigations", org),
        {"defect_code": "FIT-FAIL", "title": "Gauge failures", "cause_level": "lot", "cause_name": "L042"},
    )
    assert opened.status_code == 302
    investigation = Investigation.objects.get(organization=org)
    detail_url = _url("quality-investigation", org, pk=investigation.pk)
    page = owner.get(detail_url)
    assert page.status_code == 200 and b"L042" in page.content

    owner.post(detail_url, {"action": "containment", "description": "Quarantine L042"})
    containment = ContainmentAction.objects.get(investigation=investigation)
    owner.post(detail_url, {"action": "containment-done", "id": str(containment.pk)})
    assert ContainmentAction.objects.get(pk=containment.pk).status == "done"
    owner.post(detail_url, {"action": "corrective", "description": "Incoming inspection", "due_date": "2026-03-01"})
    corrective = CorrectiveAction.objects.get(investigation=investigation)
    owner.post(detail_url, {"action": "implemented", "id": str(corrective.pk)})
    assert CorrectiveAction.objects.get(pk=corrective.pk).status == "implemented"
    owner.post(detail_url, {"action": "report", **{f"D{i}": f"section {i}" for i in range(1, 9)}, "D4": "로트 L042"})
    report = Report8D.objects.get(investigation=investigation)
    assert report.status == "edited" and report.sections["D4"] == "로트 L042"
    markdown = owner.get(_url("quality-report-md", org, pk=investigation.pk))
    assert markdown.status_code == 200 and "로트 L042" in markdown.content.decode()
    assert owner.get(_url("quality-report-pdf", org, pk=investigation.pk)).content.startswith(b"%PDF")

    owner.post(reverse("portal:language"), {"language": "ko", "next": detail_url})
    korean = owner.get(detail_url)
    assert korean.status_code == 200 and "시정 조치" in korean.content.decode()

    viewer = builders.session_client(builders.add_member(org, Role.VIEWER))
    assert viewer.get(detail_url).status_code == 200
    assert viewer.post(detail_url, {"action": "containment", "description": "x"}).status_code == 403
    stranger = builders.session_client(other_org.memberships.get(role=Role.OWNER).user)
    assert stranger.get(_url("quality-investigation", other_org, pk=investigation.pk)).status_code == 404
