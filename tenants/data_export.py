"""Writing an organisation's data to one archive: what an owner downloads before leaving (or at any time).

The archive is a zip file:

    manifest.json                     organisation, when, and per entry its row count or size and SHA-256
    <section>/<app>.<model>.jsonl     one JSON object per row, every column but secrets (key hashes, signing salts)
    <section>/files/...               the files that go with the rows (training files, adapters, checkpoints)

Every registered section (`tenants.data_protection.register_section`) is written, the retained billing records
included. The file is written beside its destination and renamed into place when complete, so a reader never sees
a half-written archive, and a failure (a full disk) leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from django.core.files import File
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from .data_protection import DataSection, sections
from .models import Organization

FORMAT_VERSION = 1
_CHUNK = 1 << 20


def _row(instance: models.Model, section: DataSection) -> dict:
    row = {}
    for f in instance._meta.concrete_fields:
        if f.name in section.exclude_fields or isinstance(f, models.BinaryField):
            continue
        row[f.attname] = getattr(instance, f.attname)
    if section.extra_columns is not None:
        row.update(section.extra_columns(instance))
    return row


class _Hashing:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, target):
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)


def _write_rows(archive: zipfile.ZipFile, name: str, queryset, section: DataSection) -> dict:
    count = 0
    with archive.open(name, "w", force_zip64=True) as raw:
        out = _Hashing(raw)
        for instance in queryset.iterator(chunk_size=2000):
            out.write(json.dumps(_row(instance, section), cls=DjangoJSONEncoder, ensure_ascii=False).encode() + b"\n")
            count += 1
    return {"rows": count, "bytes": out.size, "sha256": out.sha256.hexdigest()}


def _write_file(archive: zipfile.ZipFile, name: str, path: Path | File) -> dict:
    with path.open("rb") as source, archive.open(name, "w", force_zip64=True) as raw:
        out = _Hashing(raw)
        while chunk := source.read(_CHUNK):
            out.write(chunk)
    return {"bytes": out.size, "sha256": out.sha256.hexdigest()}


def _files(section: DataSection, organization: Organization):
    if section.files is None:
        return
    for arcname, source in section.files(organization):
        if isinstance(source, File):  # in Django's storage
            yield arcname, source
            continue
        path = Path(source)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield f"{arcname.rstrip('/')}/{child.relative_to(path).as_posix()}", child
        elif path.is_file():
            yield arcname, path


def organization_export_write(
    *, organization: Organization, destination: Path, progress: Callable[[float, str], None] | None = None
) -> dict:
    """Write the archive to `destination` (atomically) and return its manifest."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    entries: dict[str, dict] = {}
    all_sections = sections()
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for index, section in enumerate(all_sections):
                for model in section.models:
                    queryset = model._default_manager.filter(**{section.organization_field: organization.pk}).order_by(
                        "pk"
                    )
                    name = f"{section.name}/{model._meta.label_lower}.jsonl"
                    entries[name] = _write_rows(archive, name, queryset, section)
                for arcname, path in _files(section, organization):
                    name = f"{section.name}/files/{arcname}"
                    entries[name] = _write_file(archive, name, path)
                if progress is not None:
                    progress(100 * (index + 1) / len(all_sections), section.name)
            manifest = {
                "format": "lightsout-organization-export",
                "version": FORMAT_VERSION,
                "organization": {"id": str(organization.pk), "slug": organization.slug, "name": organization.name},
                "created_at": timezone.now().isoformat(),
                "sections": {s.name: {"app": s.app_label, "retained_after_deletion": s.retained} for s in all_sections},
                "entries": entries,
            }
            archive.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return manifest
