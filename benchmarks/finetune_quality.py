"""Fine-tuning quality: does a tenant's model learn facts with the server's default hyperparameters?

Protocol (fixed before any number was taken; nothing here is tuned on the asked phrasings). For each dataset size
(5, 20 and 100 invented plant facts, benchmarks/_facts.py: values the base model cannot know), a training file holds
every fact in phrasings 0-3 ("What is the ...?", "Tell me the ...", ...); phrasings 4 and 5 are never trained. The
whole product runs as deployed on the embedded default: PostgreSQL and Redis (embedded), uvicorn serving
controlplane.asgi, a Celery worker on the `training` queue, and vLLM's CPU server with the bundled SmolLM2-135M.
Through the official `openai` SDK: upload the file, create a job with no hyperparameters at all (the server chooses
them, and holds back its own validation split), wait for it; then ask the fine-tuned model (served by vLLM through
the gateway, temperature 0) every fact in one trained phrasing (0) and in both unseen phrasings (4, 5), and ask the
base model the same. Recall = exact match after normalising case, spacing and a final full stop. Training wall time
is the job's `started` to `finished`; tokens per second is the training loop's, from the job's result.
Floors (issue #21): at 20 facts, >= 90% of trained phrasings and >= 50% of unseen ones, within 10 minutes of training.
One run per size (2 shared cores).

    .venv/bin/python -m benchmarks finetune_quality -- --facts 5 20 100
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks._facts import plant_facts, recalled  # noqa: E402

EMBEDDED_DIR = ".cache/embedded-bench-finetune-quality"
MODEL = "smollm2-135m-instruct"
TRAINED, UNSEEN = (0, 1, 2, 3), (4, 5)


def _env() -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "controlplane.settings.local", "PYTHONUNBUFFERED": "1",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": str(10**9), "OMP_WAIT_POLICY": "PASSIVE"}  # fmt: skip


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:
        return subprocess.Popen(argv, cwd=REPO_ROOT, env=_env(), stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait(predicate: Any, *, timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def _prepare(vllm_url: str, weights: Path) -> str:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=_env(),
                   check=True)  # fmt: skip
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings.local"
    import django

    django.setup()
    from django.db import connections

    from inference import services as inference_services
    from inference.models import VllmServer
    from tenants import services as tenant_services
    from tenants.actor import Actor
    from tenants.models import Organization, Region, User
    from tenants.roles import Role

    email = "bench-finetune@lightsout.example"
    owner = User.objects.filter(email=email).first() or tenant_services.user_sign_up(
        email=email, password=os.urandom(16).hex()
    )
    org = Organization.objects.filter(slug="finetune-bench").first() or tenant_services.organization_create(
        name="Fine-tuning benchmark", slug="finetune-bench", country="DE", region=Region.EU_CENTRAL, created_by=owner
    )
    actor = Actor.for_member(organization=org, user=owner, role=Role.OWNER)
    scopes = ["inference", "jobs", "org:read", "org:write"]
    _, key = tenant_services.api_key_create(
        organization=org, name=f"bench {time.time():.0f}", scopes=scopes, actor=actor
    )
    base = inference_services.base_model_register(name=MODEL, weights_path=weights, license="apache-2.0")
    VllmServer.objects.filter(base_model=base).exclude(url=vllm_url).update(state=VllmServer.State.DOWN)
    inference_services.server_register(url=vllm_url, base_model=base, cluster_name="bench", region=org.region)
    connections.close_all()
    return key


def run_size(client: Any, n_facts: int, scratch: Path) -> dict[str, Any]:
    from inference.models import FineTuningJob

    facts = plant_facts(n_facts)
    records = [f.example(t) for f in facts for t in TRAINED]
    path = scratch / f"facts-{n_facts}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    upload = client.files.create(file=(path.name, path.read_bytes()), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload.id)
    job = _wait(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed") and j,
                timeout=3600, what=f"the {n_facts}-fact job", interval=2)  # fmt: skip
    if job.status != "succeeded":
        raise RuntimeError(f"job {job.id} {job.status}: {job.error}")
    stored = FineTuningJob.objects.select_related("job").get(pk=job.id).job
    result = stored.result
    assert result is not None and stored.started_at and stored.finished_at, "the job finished with a result"

    def ask(model: str, fact: Any, template: int) -> bool:
        reply = client.chat.completions.create(
            model=model, temperature=0, max_tokens=16, messages=fact.prompt(template)
        )
        return recalled(reply.choices[0].message.content or "", fact)

    row: dict[str, Any] = {"facts": n_facts, "examples": len(records), "job": job.id}
    for label, model in (("tuned", job.fine_tuned_model), ("base", MODEL)):
        row[f"{label}_trained"] = sum(ask(model, f, 0) for f in facts) / n_facts
        row[f"{label}_unseen"] = sum(ask(model, f, t) for f in facts for t in UNSEEN) / (2 * n_facts)
    metrics = result["metrics"]
    row.update(
        hyperparameters=result.get("hyperparameters"),
        train_wall_s=round((stored.finished_at - stored.started_at).total_seconds(), 1),
        loop_s=metrics.get("train_loop_seconds"),
        tokens_per_s=metrics.get("train_tokens_per_second"),
        trained_tokens=result["trained_tokens"],
        valid_loss=(metrics.get("valid_loss_before"), metrics.get("valid_loss_after")),
        held_back_exact=(metrics.get("exact_match_base"), metrics.get("exact_match_fine_tuned")),
        converged=result.get("converged"),
    )
    return row


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".cache" / "bench-finetune-quality.jsonl")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        command = [sys.executable, "-m", "controlplane.embedded", "--dir", EMBEDDED_DIR, sys.executable,
                   str(Path(__file__).resolve()), *argv]  # fmt: skip
        return subprocess.run(command, cwd=REPO_ROOT).returncode

    import openai

    from controlplane.embedded import free_port
    from inference.engine.base_model import convert_smollm2
    from inference.engine.vllm_server import VllmServer

    weights = convert_smollm2(target_dir=REPO_ROOT / ".cache" / "models" / MODEL)
    logs = Path(tempfile.mkdtemp(prefix="bench-finetune-quality-"))
    print(f"logs in {logs}", flush=True)
    vllm = VllmServer(model_dir=weights, served_name=MODEL, max_loras=2, max_cpu_loras=4, max_lora_rank=8,
                      kv_cache_gib=1, max_model_len=2048, log_path=logs / "vllm.log")  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    try:
        vllm.start()
        vllm.wait_ready(timeout_s=600)
        key = _prepare(vllm.base_url, weights)
        port = free_port()
        procs.append(_start([sys.executable, "-m", "uvicorn", "controlplane.asgi:application", "--port", str(port),
                             "--log-level", "warning"], logs / "web.log"))  # fmt: skip
        procs.append(_start([sys.executable, "-m", "celery", "-A", "controlplane", "worker", "-Q", "training",
                             "--pool", "solo", "-n", "bench-trainer@%h", "--without-gossip", "--without-mingle"],
                            logs / "worker.log"))  # fmt: skip
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=2, timeout=300)
        _wait(lambda: _answers(client), timeout=120, what="the web server")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for n in args.facts:
            row = run_size(client, n, logs)
            print(json.dumps(row), flush=True)
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
    finally:
        for proc in reversed(procs):
            _stop(proc)
        vllm.stop()
    return 0


def _answers(client: Any) -> bool:
    import openai

    try:
        client.files.list(limit=1)
        return True
    except openai.APIError:  # not up yet
        return False


if __name__ == "__main__":
    sys.exit(main())
