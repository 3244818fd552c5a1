"""Explanations of recommendations through the real gateway (uvicorn serving controlplane.asgi), to an upstream that
speaks vLLM's OpenAI protocol: a small local stand-in here, as localstripe stands in for Stripe, because a real
vLLM CPU server takes most of a minute to start (the inference tests run the real one)."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from automation.maintenance.explainer import KEY_NAME, pending_explanations, recommendation_explain
from automation.maintenance.models import Recommendation
from controlplane.embedded import free_port
from inference.models import BaseModel
from inference.services import server_register
from tenants.models import ApiKey
from tests.automation.maintenance.maintenance_api import trained_world

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def upstream():
    """An OpenAI-compatible chat endpoint that answers from the facts it was given, and records the requests."""
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, "body": body})
            facts = body["messages"][-1]["content"].splitlines()
            answer = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"In short: {facts[1]}"},
                    }
                ],
                "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62},
            }
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


def test_an_explanation_waits_while_no_model_answers_then_is_written_by_the_tenants_model(
    org, web_server, upstream, settings
):
    """Catches made-up explanations and lost retries: with the gateway unreachable the recommendation stays
    pending with the reason and a retry time; once the organisation's model serves, the retry stores the model's
    own words, through the gateway with the organisation's system key."""
    world = trained_world(org)
    recommendation = Recommendation.objects.get(asset=world["live"])
    ids = {"recommendation_id": str(recommendation.pk), "organization_id": str(org.pk)}

    settings.MAINTENANCE_EXPLAINER_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    waiting = recommendation_explain(**ids)
    assert (waiting.explanation_status, waiting.explanation, waiting.explanation_attempts) == ("pending", "", 1)
    assert "did not answer" in waiting.explanation_error
    assert waiting.explanation_retry_at > timezone.now()
    assert pending_explanations() == []  # not due yet

    base = BaseModel.objects.create(
        name="smollm2-135m-instruct",
        weights_path="/stand-in",
        license="apache-2.0",
        architecture="LlamaForCausalLM",
        context_length=2048,
    )
    upstream_url, requests = upstream
    server_register(url=upstream_url, base_model=base, cluster_name="eu-test", region=org.region)
    settings.MAINTENANCE_EXPLAINER_BASE_URL = web_server
    Recommendation.objects.filter(pk=recommendation.pk).update(explanation_retry_at=timezone.now() - timedelta(1))
    assert pending_explanations() == [(ids["recommendation_id"], ids["organization_id"])]

    explained = recommendation_explain(**ids)
    assert explained.explanation_status == "ready", explained.explanation_error
    assert explained.explanation.startswith("In short: Recommendation: ")
    assert f"the {recommendation.component}" in explained.explanation
    assert explained.explanation_model == "smollm2-135m-instruct" and explained.explanation_error == ""
    [request] = requests
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "smollm2-135m-instruct"
    assert "live-1" in request["body"]["messages"][-1]["content"]
    key = ApiKey.objects.get(organization=org, name=KEY_NAME)
    assert key.scopes == ["inference"] and key.revoked_at is None
    assert pending_explanations() == []
    assert recommendation_explain(**ids).explanation == explained.explanation  # done once, not again


def test_a_vibration_diagnosis_is_explained_by_the_tenants_model_once_one_answers(org, web_server, upstream, settings):
    """Catches a diagnosis shown without its explanation or with a made-up one: it waits, pending with the reason
    and a retry time, while no model answers; the retry stores the model's own words about the diagnosis's facts
    (component, fault, matched peaks), and the API returns them."""
    from automation.maintenance import services
    from automation.maintenance.explainer import diagnosis_explain
    from automation.maintenance.models import VibrationDiagnosis
    from automation.maintenance.tasks import explain_diagnoses
    from tests.automation.maintenance.maintenance_api import client_for, make_asset_type, url, vibration_objects

    asset = services.asset_create(organization=org, code="M-1", asset_type=make_asset_type(org))
    _, _capture, *diagnoses = vibration_objects(org, asset)
    diagnosis = next(d for d in diagnoses if d.fault == "outer_race")
    assert diagnosis.explanation_status == "pending" and diagnosis.explanation == ""
    ids = {"diagnosis_id": str(diagnosis.pk), "organization_id": str(org.pk)}

    settings.MAINTENANCE_EXPLAINER_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    waiting = diagnosis_explain(**ids)
    assert (waiting.explanation_status, waiting.explanation, waiting.explanation_attempts) == ("pending", "", 1)
    assert "did not answer" in waiting.explanation_error and waiting.explanation_retry_at > timezone.now()
    assert pending_explanations(of=VibrationDiagnosis) == []  # not due yet

    base = BaseModel.objects.create(
        name="smollm2-135m-instruct",
        weights_path="/stand-in",
        license="apache-2.0",
        architecture="LlamaForCausalLM",
        context_length=2048,
    )
    upstream_url, requests = upstream
    server_register(url=upstream_url, base_model=base, cluster_name="eu-test", region=org.region)
    settings.MAINTENANCE_EXPLAINER_BASE_URL = web_server
    VibrationDiagnosis.objects.filter(pk=diagnosis.pk).update(explanation_retry_at=timezone.now() - timedelta(1))
    assert pending_explanations(of=VibrationDiagnosis) == [(ids["diagnosis_id"], ids["organization_id"])]

    assert explain_diagnoses(diagnosis_ids=[ids["diagnosis_id"]], organization_id=ids["organization_id"]) == ["ready"]
    explained = VibrationDiagnosis.objects.get(pk=diagnosis.pk)
    assert explained.explanation.startswith("In short: Diagnosis: ")
    assert diagnosis.label in explained.explanation
    assert explained.explanation_model == "smollm2-135m-instruct" and explained.explanation_error == ""
    [request] = requests
    facts = request["body"]["messages"][-1]["content"]
    assert "M-1" in facts and "BPFO" in facts and "ISO 20816 zone" in facts
    assert "vibration diagnosis" in request["body"]["messages"][0]["content"]
    assert pending_explanations(of=VibrationDiagnosis) == []
    body = client_for(org).get(url(org, f"diagnoses/{diagnosis.pk}")).json()
    assert body["explanation"] == explained.explanation and body["explanation_status"] == "ready"
