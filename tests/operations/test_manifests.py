"""The Kubernetes manifests: every overlay rendered with `kubectl kustomize` and validated offline against the
Kubernetes schemas (`kubernetes-validate --strict`), then checked for what an operator relies on."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from jobs import registry
from jobs.queues import Queue

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p.name for p in (ROOT / "infra" / "k8s" / "overlays").iterdir() if p.is_dir())
KUBERNETES_VERSION = "1.32.0"
CRD_GROUPS = ("keda.sh/",)  # custom resources: no schema ships with kubernetes-validate; checked below instead
# Queues other apps add (automation.quality) get a worker even before their jobs are registered here.
QUEUES = sorted({q.value for q in Queue} | {"quality"})

if not shutil.which("kubectl"):
    pytest.skip("kubectl (with its built-in kustomize) is not installed", allow_module_level=True)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request, tmp_path_factory):
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "infra" / "k8s" / "overlays" / request.param)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    path.write_text(out)
    docs = [d for d in yaml.safe_load_all(out) if d]
    return request.param, path, docs


def _one(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod(doc):
    return doc["spec"]["template"]["spec"]


def test_every_overlay_is_valid_kubernetes(rendered):
    _, path, docs = rendered
    validator = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run(
        [str(validator), "--strict", "-k", KUBERNETES_VERSION, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if not line.startswith("INFO") and not any(g in line for g in CRD_GROUPS)
    ]
    assert problems == [], problems
    assert len(docs) > 30
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"lightsout"}


def test_workers_one_per_queue_with_grace_longer_than_the_longest_task(rendered):
    _, _, docs = rendered
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("tasks")  # every app's job kinds, with their time limits

    longest = dict.fromkeys(QUEUES, settings.CELERY_TASK_TIME_LIMIT)
    for kind in registry._KINDS.values():
        longest[kind.queue] = max(longest[kind.queue], kind.time_limit_s + 30)  # job_task's hard limit
    for queue in QUEUES:
        worker = _one(docs, "Deployment", f"lightsout-worker-{queue}")
        pod = _pod(worker)
        command = pod["containers"][0]["command"]
        assert command[command.index("-Q") + 1] == queue
        assert pod["terminationGracePeriodSeconds"] > longest[queue], queue
        assert pod["containers"][0]["resources"]["requests"]["cpu"]
        assert _one(docs, "PodDisruptionBudget", f"lightsout-worker-{queue}")
        scaled = _one(docs, "ScaledObject", f"lightsout-worker-{queue}")
        assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
        assert scaled["spec"]["triggers"][0]["metadata"]["listName"] == queue


def test_singletons_jobs_probes_and_services(rendered):
    overlay, _, docs = rendered
    beat = _one(docs, "Deployment", "lightsout-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"

    migrate = _one(docs, "Job", "lightsout-migrate")
    assert _pod(migrate)["containers"][0]["command"][-2:] == ["migrate", "--noinput"]
    assert migrate["spec"]["ttlSecondsAfterFinished"] > 0  # re-created by the next apply

    ingest = _one(docs, "Deployment", "lightsout-mqtt-ingest")
    assert "mqtt_ingest" in _pod(ingest)["containers"][0]["command"]
    quality_ingest = _one(docs, "Deployment", "lightsout-quality-mqtt-ingest")
    assert "quality_mqtt_ingest" in _pod(quality_ingest)["containers"][0]["command"]
    # Each ingest Deployment selects only its own pods (a shared label would make them fight over replicas).
    assert ingest["spec"]["selector"] != quality_ingest["spec"]["selector"]

    web = _pod(_one(docs, "Deployment", "lightsout-web"))["containers"][0]
    assert web["command"][:2] == ["uvicorn", "controlplane.asgi:application"]
    assert web["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    hpa = _one(docs, "HorizontalPodAutoscaler", "lightsout-web")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert _one(docs, "PodDisruptionBudget", "lightsout-web")

    vllm = _one(docs, "StatefulSet", "vllm")
    service = _one(docs, "Service", vllm["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= vllm["spec"]["template"]["metadata"]["labels"].items()
    sidecar = next(c for c in _pod(vllm)["initContainers"] if c["name"] == "adapter-sync")
    assert sidecar["restartPolicy"] == "Always" and "adapter_sync" in sidecar["command"][-1]
    adapters = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}["adapters"]
    vllm_mounts = {m["name"]: m["mountPath"] for m in _pod(vllm)["containers"][0]["volumeMounts"]}
    config = _one(
        docs,
        "ConfigMap",
        next(d["metadata"]["name"] for d in docs if d["metadata"]["name"].startswith("lightsout-config")),
    )
    assert vllm_mounts["adapters"] == adapters == config["data"]["ADAPTER_STORE"]
    assert _one(docs, "PodDisruptionBudget", "vllm")
    if overlay == "gpu":
        training = _pod(_one(docs, "Deployment", "lightsout-worker-training"))
        assert "controlplane-cuda" in training["containers"][0]["image"]
        assert training["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert _pod(vllm)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_pods_run_as_non_root_and_secrets_are_listed_completely(rendered):
    _, _, docs = rendered
    secret = _one(docs, "Secret", "lightsout-env")
    listed = set(secret["stringData"])
    required = set(secret["metadata"]["annotations"]["lightsout.io/required"].split())
    # The settings production refuses to start without, and every secret key another object points at.
    assert {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"} <= required <= listed
    referenced = {
        ref["key"] for d in docs if d["kind"] == "TriggerAuthentication" for ref in d["spec"]["secretTargetRef"]
    }
    assert referenced <= listed
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            pod = _pod(doc)
            assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
            for container in pod["containers"] + pod.get("initContainers", []):
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
                assert container["resources"]["requests"], container["name"]


def test_network_policies_deny_by_default_and_let_prometheus_scrape(rendered):
    _, _, docs = rendered
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}

    def admits_monitoring(policy, port):
        return any(
            any(
                peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                == "monitoring"
                for peer in rule["from"]
            )
            and any(p["port"] == port for p in rule["ports"])
            for rule in policy["spec"]["ingress"]
        )

    assert admits_monitoring(policies["lightsout-web-ingress"], 8000)
    assert admits_monitoring(policies["lightsout-worker-metrics"], 9100)
    assert admits_monitoring(policies["vllm-ingress"], 8000)
    for d in docs:
        if d["kind"] == "Deployment" and d["metadata"]["labels"].get("role") == "worker":
            annotations = d["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == "9100"
