"""Extracting untrusted tar.gz / zip uploads without letting them write outside the target directory.

Python's `tarfile.extractall` and `zipfile.extractall` follow whatever names and links an archive carries (the
"tar slip" family). Here every member is checked before anything is written: only regular files and directories,
relative names without `..`, no links or device files, bounded member count and size; and only the files the
caller asks for are written, each streamed with a byte cap that holds even if the archive lies about sizes.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO


class UnsafeArchiveError(ValueError):
    """The archive is unreadable, unsafe or too large; `code` names the reason for API clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ArchiveMember:
    name: str  # normalised relative POSIX path
    is_dir: bool
    size: int


def _check_name(raw_name: str) -> str:
    if not raw_name or "\x00" in raw_name:
        raise UnsafeArchiveError("unsafe_path", "archive member with an empty or invalid name")
    if "\\" in raw_name:
        # Harmless on Linux, a path separator on Windows: a tenant's archive has no reason to contain one.
        raise UnsafeArchiveError("unsafe_path", f"archive member {raw_name!r} contains a backslash")
    path = PurePosixPath(raw_name)
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise UnsafeArchiveError("unsafe_path", f"archive member {raw_name!r} has an absolute path")
    if ".." in path.parts:
        raise UnsafeArchiveError("unsafe_path", f"archive member {raw_name!r} points outside the archive (..)")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        return ""
    return "/".join(parts)


def _archive_kind(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise UnsafeArchiveError("unsupported_format", "the upload is neither a tar(.gz) nor a zip archive")


class SafeArchive:
    """An opened archive whose member list has passed the safety checks."""

    def __init__(self, path: Path, *, max_members: int, max_total_bytes: int) -> None:
        self.path = Path(path)
        self.kind = _archive_kind(self.path)
        self._tar: tarfile.TarFile | None = None
        self._zip: zipfile.ZipFile | None = None
        self._sources: dict[str, object] = {}
        self.members: list[ArchiveMember] = []
        raw_members: list[tarfile.TarInfo] | list[zipfile.ZipInfo]
        try:
            if self.kind == "tar":
                self._tar = tarfile.open(self.path, mode="r:*")  # noqa: SIM115 - closed by close()
                raw_members = self._tar.getmembers()
            else:
                self._zip = zipfile.ZipFile(self.path)
                raw_members = self._zip.infolist()
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            self.close()
            raise UnsafeArchiveError("corrupt_archive", f"the archive cannot be read: {exc}") from None
        try:
            self._check_members(raw_members, max_members=max_members, max_total_bytes=max_total_bytes)
        except BaseException:
            self.close()
            raise

    def _check_members(
        self, raw_members: Sequence[tarfile.TarInfo | zipfile.ZipInfo], *, max_members: int, max_total_bytes: int
    ) -> None:
        if len(raw_members) > max_members:
            raise UnsafeArchiveError(
                "too_many_files", f"the archive has {len(raw_members)} entries; at most {max_members} are accepted"
            )
        total = 0
        for raw in raw_members:
            if isinstance(raw, tarfile.TarInfo):
                raw_name = raw.name
                if raw.issym() or raw.islnk():
                    raise UnsafeArchiveError("link_not_allowed", f"archive member {raw_name!r} is a link")
                if not (raw.isreg() or raw.isdir()):
                    raise UnsafeArchiveError("special_file", f"archive member {raw_name!r} is not a regular file")
                is_dir, size = raw.isdir(), raw.size
            else:
                raw_name = raw.filename
                mode = raw.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise UnsafeArchiveError("link_not_allowed", f"archive member {raw_name!r} is a link")
                # Many zip writers store permission bits without a file type; no type means a plain file.
                if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise UnsafeArchiveError("special_file", f"archive member {raw_name!r} is not a regular file")
                is_dir, size = raw.is_dir(), raw.file_size
            name = _check_name(raw_name)
            if not name:
                continue
            total += size
            if total > max_total_bytes:
                raise UnsafeArchiveError(
                    "too_large", f"the archive expands to more than {max_total_bytes} bytes, the accepted maximum"
                )
            if name in self._sources and not is_dir:
                raise UnsafeArchiveError("duplicate_file", f"archive member {name!r} appears twice")
            self._sources[name] = raw
            self.members.append(ArchiveMember(name=name, is_dir=is_dir, size=size))

    def files(self) -> list[ArchiveMember]:
        return [member for member in self.members if not member.is_dir]

    @contextmanager
    def _open_member(self, name: str) -> Iterator[IO[bytes]]:
        raw = self._sources[name]
        if self._tar is not None:
            assert isinstance(raw, tarfile.TarInfo)
            handle = self._tar.extractfile(raw)
            if handle is None:
                raise UnsafeArchiveError("special_file", f"archive member {name!r} has no content")
            with handle:
                yield handle
        else:
            assert self._zip is not None and isinstance(raw, zipfile.ZipInfo)
            with self._zip.open(raw) as handle:
                yield handle

    def extract_file(self, name: str, *, destination: Path, max_bytes: int) -> int:
        """Stream one member to `destination` (which must not exist); returns the bytes written."""
        written = 0
        try:
            with self._open_member(name) as source, open(destination, "xb") as target:
                while block := source.read(1 << 20):
                    written += len(block)
                    if written > max_bytes:
                        raise UnsafeArchiveError("too_large", f"{name!r} is larger than the accepted {max_bytes} bytes")
                    target.write(block)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            destination.unlink(missing_ok=True)
            raise UnsafeArchiveError("corrupt_archive", f"{name!r} cannot be read from the archive: {exc}") from None
        except BaseException:
            destination.unlink(missing_ok=True)
            raise
        return written

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> SafeArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
