"""Which vLLM servers hold which tenant adapters.

A deployed adapter is loaded through vLLM's runtime LoRA API on healthy servers of its base model in its
organisation's region. A server holds at most `max_cpu_loras` adapters (our policy, to bound reload churn; vLLM
itself swaps adapters between its GPU slots): past that, the least recently used one is unloaded. When a server
goes down its adapters are placed elsewhere. Rows are changed under a lock on the server row, so two processes
never overfill a server.
"""

import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from foundation.invalidation import publish_invalidation
from foundation.metrics import ADAPTER_EVICTIONS, ADAPTER_LOADS
from foundation.redis import get_redis

from .engine.vllm_server import VllmAdminClient, VllmApiError, VllmError
from .models import AdapterVersion, Placement, VllmServer

logger = logging.getLogger(__name__)


class NoCapacity(Exception):
    """No healthy server of the adapter's base model in its region can take it."""


def lru_key(server_id: int) -> str:
    return f"lo:lru:{server_id}"


def placement_touch(*, server_id: int, lora_name: str) -> None:
    """Mark an adapter used on a server (the gateway does this per request, in Redis, never in the database)."""
    get_redis().zadd(lru_key(server_id), {lora_name: time.time()})


def _least_recently_used(server: VllmServer) -> Placement | None:
    placements = {p.adapter.lora_name: p for p in server.placements.select_related("adapter")}
    if not placements:
        return None
    scores = dict(zip(placements, get_redis().zmscore(lru_key(server.pk), list(placements)), strict=True))
    # Never used through the gateway counts as oldest; ties go to the earliest loaded.
    return min(placements.values(), key=lambda p: (scores[p.adapter.lora_name] or 0.0, p.created_at))


def _unload(server: VllmServer, placement: Placement) -> None:
    try:
        with VllmAdminClient(server.url, timeout_s=30) as client:
            client.unload_lora(placement.adapter.lora_name)
    except VllmApiError as exc:
        if exc.status_code != 404:  # already gone is fine
            raise
    get_redis().zrem(lru_key(server.pk), placement.adapter.lora_name)
    placement.delete()
    ADAPTER_EVICTIONS.labels(server=server.url).inc()


def _load_lora(server: VllmServer, adapter: AdapterVersion) -> None:
    """Ask vLLM to load the adapter from its path. In a cluster the server's adapter-sync sidecar copies new
    versions from the artifact store into that path (`manage.py adapter_sync`): until it has, vLLM answers 404, so
    that answer is retried for ADAPTER_SYNC_WAIT_SECONDS."""
    deadline = time.monotonic() + settings.ADAPTER_SYNC_WAIT_SECONDS
    while True:
        try:
            with VllmAdminClient(server.url, timeout_s=120) as client:
                client.load_lora(adapter.lora_name, adapter.path)
        except VllmApiError as exc:
            if "already" in exc.message.lower():
                return
            if exc.status_code == 404 and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise
        ADAPTER_LOADS.labels(server=server.url).inc()
        return


def _load_on(server: VllmServer, adapter: AdapterVersion) -> Placement:
    with transaction.atomic():
        server = VllmServer.objects.select_for_update().get(pk=server.pk)
        existing = server.placements.filter(adapter=adapter).first()
        if existing and existing.state == Placement.State.LOADED:
            return existing
        while server.placements.exclude(adapter=adapter).count() >= server.max_cpu_loras:
            victim = _least_recently_used(server)
            if victim is None:  # max_cpu_loras of 0: nothing to evict, and nothing may load
                raise NoCapacity(f"{server.url} may hold no adapters (max_cpu_loras={server.max_cpu_loras})")
            logger.info("Evicting %s from %s (least recently used)", victim.adapter.lora_name, server.url)
            _unload(server, victim)
        placement = existing or Placement.objects.create(
            organization_id=adapter.organization_id, adapter=adapter, server=server
        )
        _load_lora(server, adapter)
        placement.state = Placement.State.LOADED
        placement.loaded_at = timezone.now()
        placement.save(update_fields=["state", "loaded_at"])
    placement_touch(server_id=server.pk, lora_name=adapter.lora_name)
    publish_invalidation(kind="route", organization_id=adapter.organization_id)
    return placement


def candidate_servers(adapter: AdapterVersion):
    region = adapter.tenant_model.organization.region
    return VllmServer.objects.filter(
        state=VllmServer.State.HEALTHY, base_model_id=adapter.tenant_model.base_model_id, cluster__region=region
    ).order_by("pk")


def placement_ensure(*, adapter: AdapterVersion, replicas: int = 1) -> list[Placement]:
    """Load the adapter on `replicas` healthy servers (fewest adapters first); return where it is loaded."""
    adapter = AdapterVersion.objects.select_related("tenant_model__organization").get(pk=adapter.pk)
    servers = list(candidate_servers(adapter))
    if not servers:
        raise NoCapacity(
            f"No healthy server of {adapter.tenant_model.base_model.name} in region "
            f"{adapter.tenant_model.organization.region}."
        )
    loaded = [
        p
        for p in adapter.placements.select_related("server")
        if p.state == Placement.State.LOADED and p.server.state == VllmServer.State.HEALTHY
    ]
    taken = {p.server_id for p in loaded}
    free = sorted((s for s in servers if s.pk not in taken), key=lambda s: s.placements.count())
    for server in free[: max(0, min(replicas, len(servers)) - len(loaded))]:
        try:
            loaded.append(_load_on(server, adapter))
        except VllmError as exc:
            logger.warning("Could not load %s on %s: %s", adapter.lora_name, server.url, exc)
            server_mark_down(server=server, error=str(exc))
    if not loaded:
        raise NoCapacity(f"No server could load {adapter.name}.")
    return loaded


def server_mark_down(*, server: VllmServer, error: str) -> list[AdapterVersion]:
    """Take a server out of rotation; its adapters that are current versions are placed elsewhere."""
    with transaction.atomic():
        updated = (
            VllmServer.objects.filter(pk=server.pk)
            .exclude(state=VllmServer.State.DOWN)
            .update(state=VllmServer.State.DOWN, last_error=error[:2000], last_health_at=timezone.now())
        )
        orphans = list(AdapterVersion.objects.filter(placements__server=server).distinct())
        Placement.objects.filter(server=server).delete()
        for organization_id in {a.organization_id for a in orphans}:
            publish_invalidation(kind="route", organization_id=organization_id)
    get_redis().delete(lru_key(server.pk))
    if not updated:
        return []
    moved = []
    for adapter in orphans:
        if adapter.tenant_model.current_version_id == adapter.pk:
            try:
                placement_ensure(adapter=adapter)
                moved.append(adapter)
            except NoCapacity as exc:
                logger.error("Adapter %s lost its server and cannot be placed: %s", adapter.name, exc)
    return moved


def server_check_health(*, server: VllmServer) -> bool:
    """Ask vLLM itself; a healthy server's registered adapters are reconciled with our placement rows."""
    try:
        with VllmAdminClient(server.url, timeout_s=5) as client:
            healthy = client.health()
            registered = set(client.model_ids()) if healthy else set()
    except VllmError as exc:
        healthy, registered, error = False, set(), str(exc)
    else:
        error = "" if healthy else "/health did not answer 200"
    if not healthy:
        server_mark_down(server=server, error=error)
        return False
    with transaction.atomic():
        VllmServer.objects.filter(pk=server.pk).update(
            state=VllmServer.State.HEALTHY, last_error="", last_health_at=timezone.now()
        )
        # A restarted server forgot its adapters: drop rows it no longer has, so they get loaded again on demand.
        lost = server.placements.exclude(adapter__lora_name__in=registered)
        if lost.exists():
            lost.delete()
            publish_invalidation(kind="route", organization_id="*")
    return True
