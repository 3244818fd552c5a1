"""`make run`: migrate, seed the demo organisation, provision the bundled base model, then run the web server,
a Celery worker, beat, the MQTT telemetry subscriber and a vLLM CPU server (registered with the control plane
once it is ready).

Runs under `controlplane.embedded`, which provides PostgreSQL, Redis and MQTT when no URL is configured. Every
process started here is a child in its own process group; Ctrl-C (or SIGTERM) stops them all.
LIGHTSOUT_VLLM=0 skips the vLLM server (for machines without the memory for it). With no STRIPE_API_KEY set,
a localstripe server stands in for Stripe and delivers its signed webhooks to this run.
"""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from controlplane.embedded import free_port
from inference.engine.vllm_server import VllmServer, VllmServerError
from jobs.queues import Queue

HOST = os.environ.get("LIGHTSOUT_HOST", "127.0.0.1")
PORT = int(os.environ.get("LIGHTSOUT_PORT", "8000"))


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], check=True)


def _start_localstripe() -> subprocess.Popen:
    """Stripe's stand-in for a machine without the internet; the SDK is pointed at it through the environment."""
    port = free_port()
    os.environ.update(
        {
            "STRIPE_API_BASE": f"http://127.0.0.1:{port}",
            "STRIPE_API_KEY": "sk_test_local",
            "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
            # The portal's card form loads localstripe's stand-in for Stripe.js.
            "STRIPE_JS_URL": f"http://127.0.0.1:{port}/js.stripe.com/v3/",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_local",
        }
    )
    Path(".cache/logs").mkdir(parents=True, exist_ok=True)
    log = open(".cache/logs/localstripe.log", "ab")  # noqa: SIM115  (owned by the child)
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "localstripe"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _register_stripe_webhook(base: str) -> None:
    import httpx

    for _ in range(50):
        try:
            httpx.post(
                f"{os.environ['STRIPE_API_BASE']}/_config/webhooks/lightsout",
                timeout=5,
                data={"url": f"{base}/api/v1/billing/stripe/webhook", "secret": os.environ["STRIPE_WEBHOOK_SECRET"]},
            ).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    print("localstripe did not answer; invoices cannot be sent in this run.", flush=True)


def _register_when_ready(vllm: VllmServer) -> None:
    try:
        vllm.wait_ready(timeout_s=600)
    except VllmServerError as exc:
        print(f"vLLM did not start: {exc}", flush=True)
        return
    manage(
        "vllm_server_register",
        "--url",
        vllm.base_url,
        "--base-model",
        "smollm2-135m-instruct",
        "--cluster",
        "local-cpu",
        "--region",
        "local",
        "--max-loras",
        "2",
        "--max-cpu-loras",
        "4",
    )
    print(f"vLLM ready at {vllm.base_url}; the gateway now serves smollm2-135m-instruct.", flush=True)


def _tool_call_parser(base_model: str) -> str:
    """The registry's tool-call parser for the base model (blank: the server runs without automatic tool choice)."""
    import django
    from django.db import connections

    django.setup()
    from inference.models import BaseModel

    try:
        return BaseModel.objects.get(name=base_model).tool_call_parser
    finally:
        connections.close_all()


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings.local")
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{HOST}:{PORT}")
    manage("migrate", "--noinput")
    manage("seed_demo")
    stripe = None if os.environ.get("STRIPE_API_KEY") else _start_localstripe()
    vllm = None
    if os.environ.get("LIGHTSOUT_VLLM", "1") != "0":
        manage("provision_base_model", "--smollm2")
        vllm = VllmServer(
            model_dir=Path(".cache/models/smollm2-135m-instruct"),
            served_name="smollm2-135m-instruct",
            max_loras=2,
            max_cpu_loras=4,
            log_path=Path(".cache/logs/vllm.log"),
            tool_call_parser=_tool_call_parser("smollm2-135m-instruct"),
        )
        vllm.start()
        threading.Thread(target=_register_when_ready, args=(vllm,), daemon=True).start()

    celery = [sys.executable, "-m", "celery", "-A", "controlplane"]
    commands = {
        "web": [
            sys.executable,
            "-m",
            "uvicorn",
            "controlplane.asgi:application",
            "--host",
            HOST,
            "--port",
            str(PORT),
            "--no-access-log",
        ],
        "worker": [
            *celery,
            "worker",
            "-Q",
            ",".join(q.value for q in Queue),
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
        ],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
        "mqtt": [sys.executable, "manage.py", "mqtt_ingest"],
    }
    children = {name: subprocess.Popen(cmd, start_new_session=True) for name, cmd in commands.items()}
    if stripe is not None:
        children["localstripe"] = stripe
        threading.Thread(target=_register_stripe_webhook, args=(f"http://{HOST}:{PORT}",), daemon=True).start()

    def stop(*_):
        if vllm is not None:
            vllm.stop()
        for child in children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGINT, lambda *_: (stop(), sys.exit(0)))
    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    base = f"http://{HOST}:{PORT}"
    print(
        "\nLightsout is starting. Open:\n"
        f"  Portal    {base}/  (sign up, or sign in as the demo user printed by seed_demo above)\n"
        f"  API docs  {base}/api/docs\n"
        f"  Admin     {base}/admin/\n"
        f"  API       {base}/api/v1/\n"
        "  Gateway   " + base + "/v1 (OpenAI-compatible; vLLM is ready about a minute after start)\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    while True:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping.", flush=True)
                stop()
                return child.returncode or 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
