"""Investigations: suspects from the genealogy (in the plant or shipped), containment and corrective actions, the
effectiveness check on evidence, and the 8D report (drafts, edits, Markdown and PDF)."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from automation.quality import ingest, services
from automation.quality.engine.effectiveness import effectiveness
from automation.quality.models import CorrectiveAction, Report8D
from automation.quality.report8d import parse_sections, report_draft, report_markdown, report_pdf
from controlplane.embedded import free_port
from tests import builders
from tests.automation.quality.quality_api import client_for, line_csvs, make_line, url
from tests.automation.quality.simulated import simulate

pytestmark = pytest.mark.django_db


def _load(org, kind: str, content: bytes) -> None:
    ingest.ingest(organization=org, kind=kind, rows=ingest.rows_from_csv(kind=kind, content=content))


def _lot_line(org) -> None:
    """120 simulated units; lot L042 (units 25..49 and 75..99) is the bad one. Units 25..39 were shipped."""
    make_line(org)
    for kind, content in line_csvs(simulate(scenario="lot", n=120), prefix="A-").items():
        _load(org, kind, content)
    shipped = "\n".join(f"A-U{i:05d},,shipped" for i in range(25, 40))
    _load(org, "units", f"unit,lots,status\n{shipped}\n".encode())


def test_an_investigation_lists_the_suspects_of_a_bad_lot_in_the_plant_and_shipped(org, other_org):
    """Catches: suspects that are not the lot's units, shipped units counted as in the plant, actions not tracked,
    assignees from outside the organisation, and another tenant reading the investigation."""
    _lot_line(org)
    client = client_for(org)
    created = client.post(
        url(org, "investigations"),
        {"defect_code": "FIT-FAIL", "cause_level": "lot", "cause_name": "L042", "title": "Gauge failures"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    investigation = created.json()["id"]
    suspects = client.get(url(org, f"investigations/{investigation}/suspects")).json()
    assert suspects["counts"]["units"] == 50 and suspects["lots"] == ["L042"]
    assert suspects["counts"]["shipped"] == 15 and suspects["counts"]["in_plant"] == 35
    assert {u["serial"] for u in suspects["shipped"]} == {f"A-U{i:05d}" for i in range(25, 40)}
    assert suspects["counts"]["failed"] >= 5

    bad = client.post(url(org, "investigations"), {"defect_code": "FIT-FAIL", "cause_level": "lot", "cause_name": "L9"})
    assert bad.status_code == 400 and "cause_name" in bad.json()["error"]["fields"]

    containment = client.post(
        url(org, f"investigations/{investigation}/containment-actions"),
        {"description": "Quarantine L042 stock; recall the 15 shipped units"},
        format="json",
    )
    assert containment.status_code == 201
    done = client.patch(url(org, f"containment-actions/{containment.json()['id']}"), {"status": "done"}, format="json")
    assert done.status_code == 200 and done.json()["done_at"]

    member = builders.add_member(org, "member")
    outsider = builders.make_user()
    refused = client.post(
        url(org, f"investigations/{investigation}/corrective-actions"),
        {"description": "Incoming inspection of bar stock", "assignee": outsider.email},
        format="json",
    )
    assert refused.status_code == 400 and "assignee" in refused.json()["error"]["fields"]
    action = client.post(
        url(org, f"investigations/{investigation}/corrective-actions"),
        {"description": "Incoming inspection of bar stock", "assignee": member.email, "due_date": "2026-02-01"},
        format="json",
    )
    assert action.status_code == 201 and action.json()["assignee"] == member.email
    detail = client.get(url(org, f"investigations/{investigation}")).json()
    assert [a["status"] for a in detail["containment_actions"]] == ["done"]
    assert [a["assignee"] for a in detail["corrective_actions"]] == [member.email]
    # Not implemented yet: nothing to check.
    check = client.post(url(org, f"corrective-actions/{action.json()['id']}/check"))
    assert check.status_code == 400

    other = client_for(other_org)
    assert other.get(url(other_org, f"investigations/{investigation}")).status_code == 404
    assert other.get(url(other_org, f"investigations/{investigation}/suspects")).status_code == 404


def _inspections(org, *, start, count: int, defects: int, prefix: str) -> None:
    out = io.StringIO()
    out.write("unit,characteristic,ts,value,defect_code\n")
    for i in range(count):
        ts = (start + timedelta(minutes=i)).isoformat()
        out.write(f"{prefix}{i:04d},fit,{ts},,{'FIT-FAIL' if i < defects else ''}\n")
    _load(org, "inspections", out.getvalue().encode())


def test_the_effectiveness_check_closes_on_evidence_and_waits_without_it(org):
    """Catches: an action called effective on too few units, or kept open although the rate fell significantly,
    or left closed although the rate did not fall."""
    make_line(org)
    implemented = timezone.now() - timedelta(days=2)
    _inspections(org, start=implemented - timedelta(days=1), count=80, defects=20, prefix="B-")  # 25 % before
    _inspections(org, start=implemented + timedelta(minutes=1), count=80, defects=1, prefix="F-")  # 1.25 % after
    investigation = services.investigation_open(organization=org, actor=None, defect_code=_defect(org))
    action = services.corrective_add(investigation=investigation, description="New gauge fixture")
    action = services.corrective_update(action=action, data={"implemented_at": implemented})
    early = services.corrective_check(action=action, now=implemented + timedelta(minutes=10))
    assert early.status == "implemented" and early.effectiveness["verdict"] == "not_enough_data"
    assert early.effectiveness["units_after"] == 10  # minutes 1..10 after

    client = client_for(org)
    checked = client.post(url(org, f"corrective-actions/{action.pk}/check")).json()
    assert checked["status"] == "effective", checked["effectiveness"]
    assert checked["effectiveness"]["units_before"] == 80 and checked["effectiveness"]["defects_after"] == 1
    assert checked["effectiveness"]["p_value"] < 0.05


def _defect(org):
    from automation.quality.models import DefectCode

    return DefectCode.objects.get(organization=org, code="FIT-FAIL")


def test_effectiveness_verdicts():
    """Catches: the three verdicts on tables whose answer is known."""
    assert effectiveness(units_before=100, defects_before=20, units_after=100, defects_after=2).verdict == "effective"
    assert effectiveness(units_before=100, defects_before=20, units_after=100, defects_after=25).verdict == (
        "not_effective"
    )
    assert effectiveness(units_before=100, defects_before=20, units_after=10, defects_after=0).verdict == (
        "not_enough_data"
    )
    assert effectiveness(units_before=100, defects_before=20, units_after=40, defects_after=6).verdict == (
        "not_enough_data"  # fell from 20 % to 15 %: not yet significant
    )
    assert effectiveness(units_before=100, defects_before=0, units_after=100, defects_after=0).verdict == (
        "not_enough_data"  # nothing to improve on
    )


def test_a_reopened_action_when_the_rate_did_not_fall(org):
    """Catches: an action left as implemented although the defects kept coming at the same rate."""
    make_line(org)
    implemented = timezone.now() - timedelta(days=2)
    _inspections(org, start=implemented - timedelta(days=1), count=60, defects=15, prefix="B-")
    _inspections(org, start=implemented + timedelta(minutes=1), count=60, defects=16, prefix="F-")
    investigation = services.investigation_open(organization=org, actor=None, defect_code=_defect(org))
    action = services.corrective_add(investigation=investigation, description="Operator briefing")
    action = services.corrective_update(action=action, data={"status": "implemented", "implemented_at": implemented})
    assert services.corrective_check(action=action).status == CorrectiveAction.Status.REOPENED


SAMPLE = """**D1: Team** Quality engineer, turning supervisor.
D2: Parts fail the fit gauge.
D3 - Quarantined lot L042.
D4: Lot L042.
D5: Incoming inspection.
D6: Implemented 2 Feb.
D7: Supplier audit.
D8: Closed."""


def test_the_report_sections_are_read_from_the_models_answer():
    """Catches: labels in bold or with dashes lost, text of one discipline running into the next."""
    sections = parse_sections(SAMPLE)
    assert sections["D1"].startswith("Team") or "Quality engineer" in sections["D1"]
    assert sections["D3"] == "Quarantined lot L042." and sections["D8"] == "Closed."
    assert list(sections) == [f"D{i}" for i in range(1, 9)]


def test_the_8d_report_says_when_no_model_answered_and_exports_edited_text(org, settings):
    """Catches: made-up report text when no model answers, lost retries, edits overwritten by a draft, and PDFs
    that cannot print Korean."""
    _lot_line(org)
    client = client_for(org)
    investigation = client.post(
        url(org, "investigations"),
        {"defect_code": "FIT-FAIL", "cause_level": "lot", "cause_name": "L042"},
        format="json",
    ).json()["id"]
    assert client.get(url(org, f"investigations/{investigation}/report")).status_code == 404
    queued = client.post(url(org, f"investigations/{investigation}/report/draft"))
    assert queued.status_code == 202 and queued.json()["status"] == "pending"

    settings.QUALITY_REPORT_BASE_URL = f"http://127.0.0.1:{free_port()}"  # no gateway listens there
    report = report_draft(report_id=queued.json()["id"], organization_id=str(org.pk))
    assert report.status == "pending" and report.attempts == 1 and report.retry_at > timezone.now()
    assert "did not answer" in report.error and not any(report.sections.values())
    markdown = client.get(url(org, f"investigations/{investigation}/report/markdown"))
    assert markdown.status_code == 200
    assert "No model answered" in markdown.content.decode() and "## D4 Root cause" in markdown.content.decode()

    edited = client.patch(
        url(org, f"investigations/{investigation}/report"),
        {"sections": {"D4": "원인: 로트 L042의 소재 불량", "D2": "Gauge failures"}},
        format="json",
    )
    assert edited.status_code == 200 and edited.json()["status"] == "edited"
    report = Report8D.objects.get(pk=report.pk)
    assert report_draft(report_id=str(report.pk), organization_id=str(org.pk)).sections["D4"].startswith("원인")
    assert "원인: 로트 L042" in report_markdown(report)
    pdf = client.get(url(org, f"investigations/{investigation}/report/pdf"))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(report_pdf(report)) > 1000
    bad = client.patch(url(org, f"investigations/{investigation}/report"), {"sections": {"D9": "x"}}, format="json")
    assert bad.status_code == 400


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_8d_report_is_drafted_by_the_tenants_model_through_the_gateway(org, web_server, settings):
    """Catches: a report not drafted through the real gateway with the organisation's system key, or the model's
    eight disciplines not landing in D1..D8."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from inference.models import BaseModel
    from inference.services import server_register
    from tenants.models import ApiKey

    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            answer = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": SAMPLE}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 60, "total_tokens": 110},
            }
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        _lot_line(org)
        base = BaseModel.objects.create(
            name="smollm2-135m-instruct",
            weights_path="/stand-in",
            license="apache-2.0",
            architecture="LlamaForCausalLM",
            context_length=2048,
        )
        upstream_url = f"http://127.0.0.1:{upstream.server_address[1]}"
        server_register(url=upstream_url, base_model=base, cluster_name="eu-test", region=org.region)
        settings.QUALITY_REPORT_BASE_URL = web_server
        investigation = services.investigation_open(
            organization=org, actor=None, defect_code=_defect(org), cause_level="lot", cause_name="L042"
        )
        from automation.quality.report8d import report_request

        report = report_request(investigation=investigation)
        report = report_draft(report_id=str(report.pk), organization_id=str(org.pk))
        assert report.status == "ready", report.error
        assert report.sections["D3"] == "Quarantined lot L042." and report.model == "smollm2-135m-instruct"
        [request] = requests
        assert "Suspected cause: lot L042." in request["messages"][-1]["content"]
        assert ApiKey.objects.get(organization=org, name="quality 8D report (system)").scopes == ["inference"]
    finally:
        upstream.shutdown()
