"""The quality pages through Django's test client and the real services: the process in routing order, control
charts with rule violations and capability, starting an analysis (its job run by its own handler in this
process) up to its ranked causes with evidence charts, labelling the confirmed cause, the genealogy trace, roles
and isolation."""

import pytest
from django.urls import reverse

from automation.quality import ingest
from automation.quality.analysis import analysis_execute
from automation.quality.models import Analysis, Lot, ProcessVariable, Unit
from automation.quality.services import investigation_open
from tenants.roles import Role
from tests import builders
from tests.automation.maintenance.maintenance_api import run_job_here
from tests.automation.quality.quality_api import line_csvs, make_line
from tests.automation.quality.simulated import simulate

pytestmark = pytest.mark.django_db


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"portal:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _client(org, role: str):
    user = org.memberships.get(role=Role.OWNER).user if role == Role.OWNER else builders.add_member(org, role)
    return builders.session_client(user)


def _line_with_units(org, scenario: str = "lot", n: int = 200) -> dict:
    line = make_line(org)
    for kind, content in line_csvs(simulate(scenario=scenario, n=n), prefix="").items():
        ingest.ingest(organization=org, kind=kind, rows=ingest.rows_from_csv(kind=kind, content=content))
    return line


def _analyse(client, org, **fields) -> Analysis:
    response = client.post(
        _url("quality-analysis-create", org),
        {"analysis-defect_code": "FIT-FAIL", "analysis-method": "line", "analysis-window_seconds": 30, **fields},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    analysis = Analysis.objects.get(organization=org)
    assert response["Location"] == _url("quality-analysis", org, pk=analysis.pk)
    return analysis


def test_the_process_page_lists_the_line_in_routing_order_and_the_nav_links_it(org):
    """Catches a missing section link, stations out of routing order, or variables without their spec limits."""
    _line_with_units(org, n=40)
    html = _client(org, Role.VIEWER).get(_url("quality", org)).content.decode()
    assert f'href="{_url("quality", org)}" aria-current="page">Quality</a>' in html
    assert (
        html.index("<strong>turn</strong>")
        < html.index("<strong>mill</strong>")
        < html.index("<strong>inspect</strong>")
    )
    assert "T1, T2" in html and "[49.9 … 50.1]" in html and "<code>FIT-FAIL</code>" in html
    assert "40 units and 2 material lots recorded." in html
    # A viewer sees the analyses but no form to start one.
    assert 'id="analysis-form"' not in html and "Your role can look at analyses but not start them." in html


def test_a_control_chart_marks_rule_violations_and_shows_capability(org):
    """Catches a chart page without its SPC chart, violations or Cp/Cpk, or a subgroup choice that is ignored."""
    _line_with_units(org, scenario="drift", n=200)
    client = _client(org, Role.VIEWER)
    diameter = ProcessVariable.objects.get(organization=org, name="diameter")
    html = client.get(_url("quality-variable", org, pk=diameter.pk)).content.decode()
    assert html.count('<figure class="chart">') == 2
    assert "diameter (mm): individuals chart" in html and "diameter (mm): moving range chart" in html
    assert 'class="violation"' in html and 'id="violations"' in html
    assert '<th scope="row">Cpk</th>' in html
    html = client.get(_url("quality-variable", org, pk=diameter.pk), {"subgroup": 5, "machine": "T2"}).content.decode()
    assert "diameter (mm): X-bar chart" in html and "diameter (mm): range chart" in html
    fit = diameter.characteristics.get()
    html = client.get(_url("quality-characteristic", org, pk=fit.pk)).content.decode()
    assert 'id="no-chart"' in html  # the simulated inspections carry no measured value


def test_an_analysis_from_the_form_to_its_ranked_causes_evidence_and_label(org):
    """Catches a form that does not reach the service, a page that does not poll while queued, ranked causes
    without their evidence, or a label that is not stored."""
    _line_with_units(org, scenario="lot", n=400)
    client = _client(org, Role.MEMBER)
    analysis = _analyse(client, org)
    queued = client.get(_url("quality-analysis", org, pk=analysis.pk)).content.decode()
    assert "data-poll=" in queued and 'id="analysis-progress"' in queued

    job = run_job_here(analysis.job, analysis_execute)
    assert job.status == "succeeded"
    fragment = client.get(_url("quality-analysis", org, pk=analysis.pk), HTTP_X_FRAGMENT="1")
    html = fragment.content.decode()
    assert "data-poll=" not in html and "<html" not in html
    assert 'data-verdict="cause_found"' in html and 'id="causes"' in html
    assert "<strong>L042</strong>" in html and "Material lot" in html
    assert "L042: defect rate with and without it (%)" in html
    assert "Unsupervised ranking (no labelled history used)" in html

    # The investigation opened from it shows the same ranked causes and evidence charts, and links the analysis.
    investigation = investigation_open(organization=org, actor=None, analysis=analysis)
    page = client.get(_url("quality-investigation", org, pk=investigation.pk)).content.decode()
    assert 'id="causes"' in page and "<strong>L042</strong>" in page
    assert "L042: defect rate with and without it (%)" in page and 'id="investigation-analysis"' in page

    refused = client.post(_url("quality-analysis-label", org, pk=analysis.pk), {"label-causes": ["nonsense"]})
    assert refused.status_code == 400
    done = client.post(_url("quality-analysis-label", org, pk=analysis.pk), {"label-causes": ["L042"]})
    assert done.status_code == 302
    analysis.refresh_from_db()
    assert analysis.confirmed_causes == ["L042"] and analysis.labelled_at is not None
    assert 'id="confirmed">L042' in client.get(_url("quality-analysis", org, pk=analysis.pk)).content.decode()


def test_a_bad_analysis_form_is_refused_with_the_reason_and_starts_nothing(org):
    _line_with_units(org, n=40)
    client = _client(org, Role.OWNER)
    response = client.post(
        _url("quality-analysis-create", org),
        {
            "analysis-defect_code": "FIT-FAIL",
            "analysis-method": "unit",
            "analysis-units": "00001, GHOST",
            "analysis-window_seconds": 30,
        },
    )
    assert response.status_code == 400
    assert "No unit with the serial &#x27;GHOST&#x27;." in response.content.decode()
    assert not Analysis.objects.filter(organization=org).exists()


def test_the_genealogy_search_traces_a_unit_back_and_a_lot_forward(org):
    """Catches a search that does not find units or lots, or traces without lots, machines or units."""
    _line_with_units(org, n=60)
    client = _client(org, Role.VIEWER)
    unit = Unit.objects.get(organization=org, serial="U00003")
    response = client.get(_url("quality-trace", org), {"q": "U00003"})
    assert response["Location"] == _url("quality-unit", org, pk=unit.pk)
    html = client.get(response["Location"]).content.decode()
    assert "L041" in html and "<td>turn</td><td>T2</td>" in html and "<td>fit</td>" in html

    lot = Lot.objects.get(organization=org, code="L042")
    response = client.get(_url("quality-trace", org), {"q": "L042"})
    assert response["Location"] == _url("quality-lot", org, pk=lot.pk)
    html = client.get(response["Location"]).content.decode()
    assert "25 units used this lot" in html or "units used this lot" in html
    assert html.count(f'href="{_url("quality-unit", org, pk=0)[:-1]}') == lot.units.count()

    missing = client.get(_url("quality-trace", org), {"q": "NOPE"})
    assert missing.status_code == 200 and "No unit and no lot is called NOPE." in missing.content.decode()


def test_roles_and_isolation(org):
    """A viewer cannot start an analysis or label one; another organisation's objects are 404."""
    line = _line_with_units(org, n=40)
    viewer = _client(org, Role.VIEWER)
    refused = viewer.post(_url("quality-analysis-create", org), {"analysis-defect_code": "FIT-FAIL"})
    assert refused.status_code == 403 and not Analysis.objects.exists()

    other = builders.make_org(slug="other-plant")
    stranger = builders.session_client(other.memberships.get(role=Role.OWNER).user)
    variable = line["variables"]["diameter"]
    assert stranger.get(_url("quality-variable", other, pk=variable.pk)).status_code == 404
    unit = Unit.objects.filter(organization=org).first()
    assert stranger.get(_url("quality-unit", other, pk=unit.pk)).status_code == 404
    assert stranger.get(_url("quality-trace", other), {"q": unit.serial}).status_code == 200
    assert "No unit and no lot" in stranger.get(_url("quality-trace", other), {"q": unit.serial}).content.decode()
