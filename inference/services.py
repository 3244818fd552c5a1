"""Writes for base models, clusters, vLLM servers, tenant models and adapter versions."""

import hashlib
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max

from billing.meters import size_class_for
from foundation.invalidation import publish_invalidation
from foundation.storage import delete_prefix, fetch_directory, store_directory
from tenants.models import Organization

from .engine.adapter_bundle import AdapterArchiveError, validate_adapter_archive
from .engine.base_model import describe_model_dir
from .models import AdapterVersion, BaseModel, InferenceCluster, TenantModel, VllmServer, validate_tool_call_parser


def base_model_register(
    *,
    name: str,
    weights_path: Path,
    license: str,  # noqa: A002
    max_lora_rank: int = 8,
    lora_target_modules: list[str] | None = None,
    tool_call_parser: str = "",
) -> BaseModel:
    """Register (or update) a base model from a local weights directory, reading its config.

    `tool_call_parser` is vLLM's parser for the model's tool calls (blank: it cannot choose tools itself)."""
    validate_tool_call_parser(tool_call_parser)
    described = describe_model_dir(Path(weights_path))
    # Weights are stored in 16-bit floats, two bytes a parameter: enough to place the model in a size class.
    parameters = described["weights_bytes"] // 2
    fields = {
        "weights_path": str(Path(weights_path).absolute()),
        "architecture": described["architecture"],
        "context_length": described["context_length"],
        "parameter_count": parameters,
        "size_class": size_class_for(parameters=parameters),
        "max_lora_rank": max_lora_rank,
        "lora_target_modules": lora_target_modules
        or ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "license": license,
        "tool_call_parser": tool_call_parser,
    }
    model, _ = BaseModel.objects.update_or_create(name=name, defaults=fields)
    publish_invalidation(kind="route", organization_id="*")  # routes carry whether the model chooses tools
    return model


def server_register(
    *, url: str, base_model: BaseModel, cluster_name: str, region: str, max_loras: int = 4, max_cpu_loras: int = 8
) -> VllmServer:
    cluster, _ = InferenceCluster.objects.get_or_create(name=cluster_name, defaults={"region": region})
    if cluster.region != region:
        raise ValidationError({"region": [f"Cluster {cluster_name} is in {cluster.region}, not {region}."]})
    server, _ = VllmServer.objects.update_or_create(
        url=url.rstrip("/"),
        defaults={
            "cluster": cluster,
            "base_model": base_model,
            "max_loras": max_loras,
            "max_cpu_loras": max_cpu_loras,
            "state": VllmServer.State.HEALTHY,
        },
    )
    return server


# An alias is a public model name: lower case, optionally namespaced once, e.g. acme/maintenance-assistant.
ALIAS_PATTERN = r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$"


def tenant_model_create(
    *, organization: Organization, alias: str, base_model: BaseModel, description: str = ""
) -> TenantModel:
    """A new tenant model (an alias with no version yet); refused when the organisation already has the alias."""
    if len(alias) > 128 or not re.fullmatch(ALIAS_PATTERN, alias):
        raise ValidationError(
            {
                "alias": [
                    "Use lower-case letters, digits, '.', '_' and '-', optionally with one "
                    "'/', for example acme/maintenance-assistant (at most 128 characters)."
                ]
            }
        )
    if TenantModel.objects.filter(organization=organization, alias=alias).exists():
        raise ValidationError({"alias": ["This organisation already has a model with this alias."]})
    return tenant_model_get_or_create(
        organization=organization, alias=alias, base_model=base_model, description=description
    )


def tenant_model_get_or_create(
    *, organization: Organization, alias: str, base_model: BaseModel, description: str = ""
) -> TenantModel:
    model, created = TenantModel.objects.get_or_create(
        organization=organization, alias=alias, defaults={"base_model": base_model, "description": description}
    )
    if not created and model.base_model_id != base_model.pk:
        raise ValidationError(
            {
                "alias": [
                    f"{alias} is a model on {model.base_model.name}; "
                    f"a new version cannot change its base model to {base_model.name}."
                ]
            }
        )
    return model


def _directory_sha256(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def adapter_version_create(
    *,
    tenant_model: TenantModel,
    adapter_dir: Path,
    rank: int,
    target_modules: list[str],
    source: str,
    name: str | None = None,
    metadata: dict | None = None,
    make_current: bool = True,
) -> AdapterVersion:
    """Store an adapter directory as the next version of a tenant model (copied into the adapter store)."""
    base = tenant_model.base_model
    if rank > base.max_lora_rank:
        raise ValidationError({"rank": [f"Rank {rank} exceeds {base.name}'s largest LoRA rank {base.max_lora_rank}."]})
    unsupported = sorted(set(target_modules) - set(base.lora_target_modules))
    if unsupported:
        raise ValidationError({"target_modules": [f"{base.name} does not accept adapters on {unsupported}."]})
    lora_name = f"a-{uuid.uuid4().hex}"
    store = Path(settings.ADAPTER_STORE) / str(tenant_model.organization_id) / lora_name
    store.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(adapter_dir, store)
    prefix = adapter_store_prefix(organization_id=tenant_model.organization_id, lora_name=lora_name)
    try:
        # The shared store first: vLLM servers' adapter-sync sidecars and other pods fetch it from there.
        store_directory(local_dir=store, prefix=prefix)
        with transaction.atomic():
            TenantModel.objects.select_for_update().get(pk=tenant_model.pk)  # serialise version numbers
            number = (tenant_model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
            version = AdapterVersion.objects.create(
                organization_id=tenant_model.organization_id,
                tenant_model=tenant_model,
                version=number,
                name=name or f"{tenant_model.alias}:v{number}",
                lora_name=lora_name,
                path=str(store),
                rank=rank,
                target_modules=sorted(target_modules),
                source=source,
                sha256=_directory_sha256(store),
                metadata=metadata or {},
            )
            if make_current:
                tenant_model.current_version = version
                tenant_model.save(update_fields=["current_version"])
                publish_invalidation(kind="route", organization_id=tenant_model.organization_id)
    except BaseException:
        shutil.rmtree(store, ignore_errors=True)  # no orphan directory for a version that was not written
        delete_prefix(prefix=prefix)
        raise
    return version


def adapter_store_prefix(*, organization_id: uuid.UUID | int, lora_name: str) -> str:
    """Where an adapter version's files live in the artifact store."""
    return f"adapters/{organization_id}/{lora_name}"


def adapter_local_dir(*, version: AdapterVersion) -> Path:
    """The adapter's directory on this machine, fetched from the artifact store when this pod has no copy yet."""
    return fetch_directory(
        prefix=adapter_store_prefix(organization_id=version.organization_id, lora_name=version.lora_name),
        local_dir=Path(version.path),
    )


def adapter_version_upload(
    *, tenant_model: TenantModel, archive: UploadedFile, make_current: bool = True
) -> AdapterVersion:
    """An uploaded PEFT adapter archive (.tar.gz or .zip) as the model's next version. The archive is validated
    against the model's base model (format, rank, target modules, tensor shapes) before anything is stored."""
    base = tenant_model.base_model
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / (Path(archive.name or "adapter.tar.gz").name or "adapter.tar.gz")
        with path.open("wb") as out:
            for chunk in archive.chunks():
                out.write(chunk)
        try:
            adapter = validate_adapter_archive(
                archive_path=path,
                extract_to=Path(work) / "adapter",
                base_model_name=base.name,
                max_rank=base.max_lora_rank,
                allowed_target_modules=base.lora_target_modules,
                base_model_dir=Path(base.weights_path),
            )
        except AdapterArchiveError as exc:
            raise ValidationError({"archive": [str(exc)]}) from exc
        return adapter_version_create(
            tenant_model=tenant_model,
            adapter_dir=adapter.directory,
            rank=adapter.rank,
            target_modules=adapter.target_modules,
            source=AdapterVersion.Source.UPLOAD,
            make_current=make_current,
        )


def tenant_model_set_current(*, tenant_model: TenantModel, version: AdapterVersion) -> TenantModel:
    """Point the alias at another of its versions (a roll-back or a promotion); the gateway re-routes at once."""
    if version.tenant_model_id != tenant_model.pk:
        raise ValidationError({"version": [f"{version.name} is not a version of {tenant_model.alias}."]})
    with transaction.atomic():
        TenantModel.objects.filter(pk=tenant_model.pk).update(current_version=version)
        publish_invalidation(kind="route", organization_id=tenant_model.organization_id)
    tenant_model.current_version = version
    return tenant_model
