"""The data-protection registry: which rows and files each app holds for an organisation, and what becomes of them.

`tenants` sits below every other app and may import none of them, yet an organisation's export and erasure must
reach all of their data. So each app registers its own data here from its `AppConfig.ready()`:

- `register_section(...)`: a named part of the export (`members`, `models`, `telemetry`, ...) with the models whose
  rows belong to it (filtered by their `organization` field), the files that go with them, and whether the rows
  are erased with the organisation or retained (billing law: invoices and the usage ledger);
- `register_retention(...)`: a data kind (`telemetry`, `captures`, `conversation_history`) whose rows older than
  the organisation's retention period a periodic job purges;
- `register_expiry(...)`: something the platform keeps for a fixed time whatever the organisation (export
  archives), removed by the same periodic job.

Registration order is `INSTALLED_APPS` order, bottom layer first; erasure runs in the reverse order, so an app's
rows go before the rows of the apps below it that they point at.

`tests/tenants/test_data_protection.py` checks that every model with a foreign key to `tenants.Organization` is
named by some section, so a new app's data cannot be forgotten by the export or the erasure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from django.core.files import File
    from django.db.models import Model
    from django.db.models.fields.files import FieldFile
    from django_stubs_ext import StrOrPromise

    from .models import Organization

# (name inside the archive, path on disk). A directory is added with everything under it.
# A file that goes with a section's rows: a local path (a directory is taken whole) or a file in Django's storage
# (a FileField's file, so S3 when that is configured).
FileEntry = tuple[str, "Path | File"]


@dataclass(frozen=True)
class DataSection:
    name: str
    app_label: str
    models: tuple[type[Model], ...]
    # Fields never exported: secrets and their hashes, and binary blobs that are not the tenant's to read.
    exclude_fields: frozenset[str] = frozenset()
    files: Callable[[Organization], Iterable[FileEntry]] | None = None
    # Retained rows survive the erasure (billing law); `detach` then strips what ties them to people.
    retained: bool = False
    detach: Callable[[Organization], int] | None = None
    # Called before the rows are deleted, for anything a plain queryset delete does not cover (files on disk).
    before_erase: Callable[[Organization], None] | None = None
    organization_field: str = "organization"
    # Extra columns for an exported row (a member's e-mail address and name beside the user id).
    extra_columns: Callable[[Model], dict] | None = None


@dataclass(frozen=True)
class RetentionPolicy:
    kind: str
    label: StrOrPromise
    default_days: int
    # Deletes the organisation's rows of this kind older than the cutoff; returns how many went.
    purge: Callable[[Organization, datetime], int]
    app_label: str = ""


@dataclass(frozen=True)
class Expiry:
    name: str
    # Removes, for every organisation, what has expired by `now`; returns how many things went.
    remove: Callable[[datetime], int]
    app_label: str = ""


@dataclass
class _Registry:
    sections: dict[str, DataSection] = field(default_factory=dict)
    retention: dict[str, RetentionPolicy] = field(default_factory=dict)
    expiries: dict[str, Expiry] = field(default_factory=dict)


_registry = _Registry()


def register_section(
    name: str,
    *,
    app_label: str,
    models: Sequence[type[Model]],
    exclude_fields: Iterable[str] = (),
    files: Callable[[Organization], Iterable[FileEntry]] | None = None,
    retained: bool = False,
    detach: Callable[[Organization], int] | None = None,
    before_erase: Callable[[Organization], None] | None = None,
    organization_field: str = "organization",
    extra_columns: Callable[[Model], dict] | None = None,
) -> DataSection:
    """Declare a part of an organisation's data. `models` are in erasure order: rows that others protect come last."""
    section = DataSection(
        name=name,
        app_label=app_label,
        models=tuple(models),
        exclude_fields=frozenset(exclude_fields),
        files=files,
        retained=retained,
        detach=detach,
        before_erase=before_erase,
        organization_field=organization_field,
        extra_columns=extra_columns,
    )
    existing = _registry.sections.get(name)
    if existing is not None and existing.app_label != app_label:
        raise ValueError(f"Data section {name!r} is registered by {existing.app_label} and {app_label}.")
    _registry.sections[name] = section
    return section


def register_retention(
    kind: str,
    *,
    label: StrOrPromise,
    default_days: int,
    purge: Callable[[Organization, datetime], int],
    app_label: str = "",
) -> RetentionPolicy:
    """Declare a data kind with a retention period. The default comes from settings.DATA_RETENTION_DAYS when set."""
    from django.conf import settings

    days = int(getattr(settings, "DATA_RETENTION_DAYS", {}).get(kind, default_days))
    policy = RetentionPolicy(kind=kind, label=label, default_days=days, purge=purge, app_label=app_label)
    _registry.retention[kind] = policy
    return policy


def register_expiry(name: str, *, remove: Callable[[datetime], int], app_label: str = "") -> Expiry:
    """Declare something kept for a fixed, platform-wide time (not an owner's choice), removed by the retention job."""
    expiry = Expiry(name=name, remove=remove, app_label=app_label)
    _registry.expiries[name] = expiry
    return expiry


def expiries() -> list[Expiry]:
    return sorted(_registry.expiries.values(), key=lambda e: e.name)


def sections() -> list[DataSection]:
    """In registration order (bottom layer first)."""
    return list(_registry.sections.values())


def retention_policies() -> list[RetentionPolicy]:
    return sorted(_registry.retention.values(), key=lambda p: p.kind)


def retention_policy(kind: str) -> RetentionPolicy:
    try:
        return _registry.retention[kind]
    except KeyError:
        raise LookupError(kind) from None


def stored_files_remove_on_commit(files: Iterable[FieldFile]) -> None:
    """Delete files from Django's storage once the erasure has committed: a rolled-back erasure keeps its files
    with its rows. For a section's `before_erase`."""
    stored = [(file.storage, file.name) for file in files if file and file.name]

    def remove() -> None:
        for storage, name in stored:
            storage.delete(name)

    transaction.on_commit(remove)
