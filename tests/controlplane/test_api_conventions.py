"""Platform-wide API conventions: error shape, rate limits, docs without a CDN, production settings."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_unknown_api_path_answers_json_404():
    response = APIClient().get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_anonymous_caller_gets_401_in_the_error_shape(org):
    response = APIClient().get(f"/api/v1/orgs/{org.slug}/jobs")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_method_not_allowed_is_405_in_the_error_shape(org):
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    response = client.delete(f"/api/v1/orgs/{org.slug}")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_rate_limit_per_key_answers_429_with_retry_after(org, settings):
    """Catches a limiter that is not shared through Redis or forgets Retry-After."""
    settings.API_RATE_LIMIT_PER_MINUTE = 5
    _, first = builders.make_key(org)
    _, second = builders.make_key(org)
    client = builders.key_client(first)
    codes = [client.get(f"/api/v1/orgs/{org.slug}/jobs").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    limited = client.get(f"/api/v1/orgs/{org.slug}/jobs")
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["error"]["code"] == "throttled"
    # Limits are per caller: another key of the same organisation is unaffected.
    assert builders.key_client(second).get(f"/api/v1/orgs/{org.slug}/jobs").status_code == 200


def test_rate_limit_per_user(org, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    assert [client.get("/api/v1/me").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_api_docs_and_schema_are_served_without_any_cdn(client):
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    external = [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if u.startswith(("http:", "https:", "//"))]
    assert external == [] and "/static/drf_spectacular_sidecar/" in html
    asset = re.search(r'src="(/static/[^"]+\.js)"', html).group(1)
    assert b"".join(client.get(asset).streaming_content)  # the bundle itself is served by the app
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/orgs/{org_slug}/api-keys" in paths and "/api/v1/orgs/{org_slug}/jobs/{id}/cancel" in paths


def test_openapi_schema_generates_without_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", os.devnull],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_production_settings_pass_check_deploy_without_warnings():
    """Catches a security setting dropped from production.py."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings.production",
        "DJANGO_SECRET_KEY": "k" * 20 + "-9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a",
        "DJANGO_ALLOWED_HOSTS": "lightsout.example,api.lightsout.example",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env |= {"DJANGO_SETTINGS_MODULE": "controlplane.settings.production", "DJANGO_ALLOWED_HOSTS": "x.example"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_models_and_migrations_agree():
    """Catches a model change committed without its migration."""
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_suite_runs_on_the_test_settings(settings):
    """Catches a settings default leaking in from an import (the suite once ran on local settings)."""
    assert settings.SETTINGS_MODULE == "controlplane.settings.test"


@pytest.mark.parametrize("module", ["local", "test", "production"])
def test_every_settings_module_keeps_every_store(module):
    """Catches a settings module that redefines STORAGES and drops a store: `make run` once lost `artifacts`, so
    every upload and fine-tune of a local run answered 500 while the suite (test settings) passed."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": f"controlplane.settings.{module}",
        "DJANGO_SECRET_KEY": "k" * 20 + "-9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a",
        "DJANGO_ALLOWED_HOSTS": "lightsout.example",
    }
    code = "import django; from django.conf import settings; django.setup(); print(' '.join(sorted(settings.STORAGES)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["artifacts", "default", "staticfiles"]
