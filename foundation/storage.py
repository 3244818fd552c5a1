"""The artifact store: adapters, training files, checkpoints and exports through Django's storage API.

`storages["artifacts"]` is the source of truth every process shares: an S3-compatible bucket in production
(django-storages, see controlplane.settings.production) or a directory (the embedded default, or a volume the
manifests share). Processes that need bytes on their own disk (vLLM loads an adapter from a path, peft trains from
a file) keep a local copy under their cache directories and fill it from the store with `fetch_*`: a web pod's
disk is never what another process reads.

Keys are POSIX paths (`adapters/<org>/<lora_name>/adapter_config.json`). Writes of a directory are file by file;
readers fetch into a scratch directory and rename it into place, so a half-fetched directory is never seen.

A full disk (or a quota) while storing leaves nothing half-stored: the local stores are `AtomicFileSystemStorage`
(written beside the target, renamed into place, the partial file removed on any error; Django's own leaves the
partial file under the final name), an S3 PUT is all or nothing, and `storage_full` tells the API's error handlers
to answer `507 insufficient_storage` instead of a 500.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

ARTIFACTS = "artifacts"

# Out of space, over a disk quota, or over the process's file-size limit (RLIMIT_FSIZE).
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def storage_full(exc: BaseException) -> bool:
    """Whether `exc` says the storage (a disk, a quota, or PostgreSQL's disk) has no room for what was written."""
    from psycopg.errors import DiskFull

    if isinstance(exc, OSError) and exc.errno in _FULL:
        return True
    return isinstance(exc, DiskFull) or isinstance(exc.__cause__, DiskFull)


class _Staged(File):
    """A file already on disk beside its destination, which FileSystemStorage then renames into place."""

    def __init__(self, path: Path):
        super().__init__(None, name=path.name)
        self._path = path

    def temporary_file_path(self) -> str:
        return str(self._path)


class AtomicFileSystemStorage(FileSystemStorage):
    """FileSystemStorage that never leaves a partial file: the bytes go to a hidden name in the target directory,
    which is renamed to the final name only when complete, and removed on any error (a full disk)."""

    def _save(self, name, content):
        directory = Path(self.path(name)).parent
        directory.mkdir(parents=True, exist_ok=True)
        staged = directory / f".partial-{uuid.uuid4().hex}"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in content.chunks():
                    out.write(chunk if isinstance(chunk, bytes) else chunk.encode())
            return super()._save(name, _Staged(staged))  # a rename in the same directory
        finally:
            staged.unlink(missing_ok=True)


def artifact_storage() -> Storage:
    return storages[ARTIFACTS]


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def store_file(*, local_path: Path, key: str, storage: Storage | None = None) -> str:
    """Upload one file under exactly `key` (an existing object there is replaced)."""
    storage = storage or artifact_storage()
    if storage.exists(key):
        storage.delete(key)
    with local_path.open("rb") as handle:
        saved = storage.save(key, File(handle, name=local_path.name))
    if saved != key:  # a backend that renamed instead of overwriting would break every reader
        raise RuntimeError(f"The artifact store saved {key} as {saved}.")
    return saved


def store_directory(*, local_dir: Path, prefix: str, storage: Storage | None = None) -> list[str]:
    """Upload every file under `local_dir` to `prefix/<relative path>`; returns the keys written."""
    storage = storage or artifact_storage()
    keys = []
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        keys.append(
            store_file(local_path=path, key=_join(prefix, path.relative_to(local_dir).as_posix()), storage=storage)
        )
    if not keys:
        raise ValueError(f"{local_dir} holds no files to store.")
    return keys


def list_keys(*, prefix: str, storage: Storage | None = None) -> list[str]:
    """Every key under `prefix` (recursively), sorted."""
    storage = storage or artifact_storage()
    prefix = prefix.strip("/")
    keys: list[str] = []
    pending = [prefix]
    while pending:
        current = pending.pop()
        try:
            directories, files = storage.listdir(current)
        except FileNotFoundError:
            continue
        keys.extend(_join(current, name) for name in files)
        pending.extend(_join(current, name) for name in directories)
    return sorted(keys)


def fetch_file(*, key: str, local_path: Path, storage: Storage | None = None) -> Path:
    """Download one object to `local_path` (written beside it, then renamed into place)."""
    storage = storage or artifact_storage()
    local_path.parent.mkdir(parents=True, exist_ok=True)
    with storage.open(key, "rb") as source, tempfile.NamedTemporaryFile(dir=local_path.parent, delete=False) as out:
        shutil.copyfileobj(source, out)
    Path(out.name).replace(local_path)
    return local_path


def fetch_directory(*, prefix: str, local_dir: Path, storage: Storage | None = None) -> Path:
    """Download everything under `prefix` into `local_dir`, unless it is already there. The directory appears
    whole or not at all (fetched into a sibling scratch directory, then renamed)."""
    if local_dir.is_dir():
        return local_dir
    storage = storage or artifact_storage()
    keys = list_keys(prefix=prefix, storage=storage)
    if not keys:
        raise FileNotFoundError(f"Nothing is stored under {prefix}.")
    local_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=local_dir.parent, prefix=f".{local_dir.name}-"))
    try:
        for key in keys:
            fetch_file(key=key, local_path=scratch / key[len(prefix.strip("/")) + 1 :], storage=storage)
        try:
            scratch.rename(local_dir)
        except OSError:
            if not local_dir.is_dir():  # another process won the race: its copy is as good as ours
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return local_dir


def delete_prefix(*, prefix: str, storage: Storage | None = None) -> int:
    """Delete every object under `prefix`; returns how many."""
    storage = storage or artifact_storage()
    keys = list_keys(prefix=prefix, storage=storage)
    for key in keys:
        storage.delete(key)
    return len(keys)
