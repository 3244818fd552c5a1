"""`make run`: migrate, seed the demo organisation, then run the web server, a Celery worker and beat.

Runs under `controlplane.embedded`, which provides PostgreSQL, Redis and MQTT when no URL is configured. Every
process started here is a child in its own process group; Ctrl-C (or SIGTERM) stops them all.
"""

import os
import signal
import subprocess
import sys
import time

from jobs.queues import Queue

HOST = os.environ.get("LIGHTSOUT_HOST", "127.0.0.1")
PORT = int(os.environ.get("LIGHTSOUT_PORT", "8000"))


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], check=True)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings.local")
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{HOST}:{PORT}")
    manage("migrate", "--noinput")
    manage("seed_demo")

    celery = [sys.executable, "-m", "celery", "-A", "controlplane"]
    commands = {
        "web": [sys.executable, "-m", "uvicorn", "controlplane.asgi:application", "--host", HOST, "--port",
                str(PORT), "--no-access-log"],
        "worker": [*celery, "worker", "-Q", ",".join(q.value for q in Queue), "--concurrency", "2",
                   "--loglevel", "INFO"],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
    }
    children = {name: subprocess.Popen(cmd, start_new_session=True) for name, cmd in commands.items()}

    def stop(*_):
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
        f"  API docs  {base}/api/docs\n"
        f"  Admin     {base}/admin/\n"
        f"  API       {base}/api/v1/\n"
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
