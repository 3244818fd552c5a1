"""Reads for the inference plane: what the gateway needs to authenticate and route a request."""

from dataclasses import dataclass

from django.db.models import Q

from tenants.models import ApiKey, Organization

from .models import AdapterVersion, BaseModel, Placement, TenantModel, VllmServer
from .placement import placement_ensure


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    organization_id: str
    organization_slug: str
    organization_active: bool
    suspended_reason: str
    region: str
    scopes: frozenset[str]
    revoked: bool
    expires_at: float | None  # epoch seconds
    organization: Organization  # for quota reservations; its status above is what admission checks


@dataclass(frozen=True)
class Route:
    public_name: str
    upstream_model: str  # the base model's served name, or the adapter's internal LoRA name
    base_model: str
    size_class: str
    adapter_id: str | None
    targets: tuple[tuple[int, str], ...]  # (server id, url), healthy servers that hold the model
    can_choose_tools: bool = False  # the base model has a tool-call parser: `tool_choice: "auto"` works


def gateway_key_lookup(*, key_hash: str) -> KeyInfo | None:
    key = ApiKey.objects.select_related("organization").filter(key_hash=key_hash).first()
    if key is None:
        return None
    org = key.organization
    return KeyInfo(
        key_id=str(key.pk),
        organization_id=str(org.pk),
        organization_slug=org.slug,
        organization_active=org.is_active,
        suspended_reason=org.suspended_reason,
        region=org.region,
        scopes=frozenset(key.scopes),
        revoked=key.revoked_at is not None,
        expires_at=key.expires_at.timestamp() if key.expires_at else None,
        organization=org,
    )


def _base_model_targets(base: BaseModel, region: str) -> tuple[tuple[int, str], ...]:
    servers = VllmServer.objects.filter(base_model=base, state=VllmServer.State.HEALTHY, cluster__region=region)
    return tuple((s.pk, s.url) for s in servers.order_by("pk"))


def _adapter_for(*, organization_id: str, model: str) -> AdapterVersion | None:
    tenant_model = (
        TenantModel.objects.select_related("current_version")
        .filter(organization_id=organization_id, alias=model)
        .first()
    )
    if tenant_model is not None:
        return tenant_model.current_version
    return (
        AdapterVersion.objects.select_related("tenant_model__base_model")
        .filter(organization_id=organization_id, name=model)
        .first()
    )


def model_base_resolve(*, organization_id: str, model: str) -> BaseModel | None:
    """The base model under `model` (an alias, a versioned name or a base model) for this organisation; None if
    unknown. Reads only: nothing is placed or loaded."""
    adapter = _adapter_for(organization_id=organization_id, model=model)
    if adapter is not None:
        return adapter.tenant_model.base_model
    return BaseModel.objects.filter(name=model).first()


def gateway_route_resolve(*, organization_id: str, region: str, model: str) -> Route | None:
    """Where `model` (an alias, a versioned name or a base model) runs for this organisation; None if unknown.

    An adapter that no healthy server holds is loaded first (this is the slow path; the gateway caches routes).
    Raises placement.NoCapacity when nothing can serve it.
    """
    adapter = _adapter_for(organization_id=organization_id, model=model)
    base: BaseModel | None
    if adapter is not None:
        base = adapter.tenant_model.base_model
        loaded = Placement.objects.filter(
            adapter=adapter, state=Placement.State.LOADED, server__state=VllmServer.State.HEALTHY
        ).select_related("server")
        placements = list(loaded) or placement_ensure(adapter=adapter)
        return Route(
            public_name=model,
            upstream_model=adapter.lora_name,
            base_model=base.name,
            size_class=base.size_class,
            adapter_id=str(adapter.pk),
            targets=tuple((p.server_id, p.server.url) for p in placements),
            can_choose_tools=base.can_choose_tools,
        )
    base = BaseModel.objects.filter(name=model).first()
    if base is None:
        return None
    return Route(
        public_name=model,
        upstream_model=base.name,
        base_model=base.name,
        size_class=base.size_class,
        adapter_id=None,
        targets=_base_model_targets(base, region),
        can_choose_tools=base.can_choose_tools,
    )


def _capabilities(base: BaseModel) -> dict[str, object]:
    """What a model accepts beyond plain chat (a Lightsout extension of OpenAI's model object)."""
    choices = ["none", "required", "function"] + (["auto"] if base.can_choose_tools else [])
    return {"tools": True, "tool_choice": choices, "context_length": base.context_length}


def gateway_model_list(*, organization_id: str, region: str) -> list[dict]:
    """OpenAI's model objects: the organisation's models (aliases and versions) and the base models in its region."""
    rows = []
    for tenant_model in TenantModel.objects.filter(organization_id=organization_id).select_related("base_model"):
        created = int(tenant_model.created_at.timestamp())
        rows.append(
            {
                "id": tenant_model.alias,
                "object": "model",
                "created": created,
                "owned_by": "organization",
                "parent": tenant_model.base_model.name,
                "capabilities": _capabilities(tenant_model.base_model),
            }
        )
        for version in tenant_model.versions.all():
            rows.append(
                {
                    "id": version.name,
                    "object": "model",
                    "created": int(version.created_at.timestamp()),
                    "owned_by": "organization",
                    "parent": tenant_model.base_model.name,
                    "capabilities": _capabilities(tenant_model.base_model),
                }
            )
    regional = Q(servers__cluster__region=region, servers__state=VllmServer.State.HEALTHY)
    for base in BaseModel.objects.filter(regional).distinct():
        rows.append(
            {
                "id": base.name,
                "object": "model",
                "created": int(base.created_at.timestamp()),
                "owned_by": "lightsout",
                "parent": None,
                "capabilities": _capabilities(base),
            }
        )
    return rows
