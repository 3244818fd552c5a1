"""The copilot page through Django's test client and the real services: asking without JavaScript (the answer
comes back whole, facts and sources shown), the streamed form, a proposal confirmed by a member and refused to a
viewer, in Korean and German too."""

import pytest
from django.urls import reverse

from assistant.demo import demo_factory_seed
from assistant.models import Conversation, Proposal
from automation.maintenance.models import WorkOrder
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_model(settings):
    settings.ASSISTANT_GATEWAY_BASE_URL = "http://127.0.0.1:9"


@pytest.fixture
def factory(org):
    return demo_factory_seed(organization=org, actor=builders.owner_actor(org), with_documents=False)


def _url(name: str, org, **kwargs) -> str:
    return reverse(f"portal:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _client(org, role: str):
    return builders.session_client(builders.add_member(org, role))


def test_ask_without_javascript_shows_facts_and_sources(org, factory):
    client = _client(org, Role.MEMBER)
    assert client.get(_url("copilot", org)).status_code == 200
    response = client.post(_url("copilot", org), {"question": "What is the health of PRESS-4?"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "maintenance_asset_health" in page and "38.5" in page
    assert f"/api/v1/orgs/{org.slug}/maintenance/health/" in page  # the source as a link


def test_streamed_answer_and_confirmed_proposal(org, factory):
    client = _client(org, Role.MEMBER)
    response = client.post(
        _url("copilot-stream", org), {"question": "Open a work order to inspect the main bearing of PRESS-4."}
    )
    assert response["Content-Type"].startswith("text/event-stream")
    body = b"".join(response.streaming_content).decode()
    assert "event: conversation" in body and "event: proposal" in body and "event: done" in body
    proposal = Proposal.objects.get(organization=org)
    assert proposal.arguments["asset"] == "PRESS-4" and proposal.arguments["component"] == "main bearing"
    before = WorkOrder.objects.filter(organization=org).count()
    page = client.get(f"{_url('copilot', org)}?c={proposal.conversation_id}").content.decode()
    assert _url("copilot-confirm", org, pk=proposal.pk) in page
    client.post(_url("copilot-confirm", org, pk=proposal.pk))
    assert WorkOrder.objects.filter(organization=org).count() == before + 1
    proposal.refresh_from_db()
    assert proposal.status == "confirmed"


def test_viewer_gets_no_proposal_and_pages_are_translated(org, factory):
    viewer = _client(org, Role.VIEWER)
    viewer.post(_url("copilot", org), {"question": "Re-plan with CNC-2 broken down for 2 hours."})
    assert not Proposal.objects.filter(organization=org).exists()
    conversation = Conversation.objects.get(organization=org)
    viewer.post("/language", {"language": "ko"})
    page = viewer.get(f"{_url('copilot', org)}?c={conversation.pk}").content.decode()
    assert "코파일럿" in page and "permission" in page
