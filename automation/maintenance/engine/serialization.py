"""Bytes envelope for trained artefacts so the Django layer can store them.

The envelope is a short magic prefix, a format version and the artefact kind,
followed by a joblib payload (joblib because it stores the numpy arrays inside
scikit-learn models compactly). The header lets us refuse, with a clear error,
bytes of the wrong kind or of a future format instead of failing deep inside
unpickling.

Security: unpickling executes code. Only load bytes that this package wrote
and that the product stored itself.
"""

from __future__ import annotations

import io
import struct
from typing import Any, TypeVar

import joblib

_MAGIC = b"LOPM"  # Lightsout predictive maintenance
FORMAT_VERSION = 1
_HEADER = struct.Struct(">4sH16s")

T = TypeVar("T")


class ModelFormatError(ValueError):
    """The bytes are not a stored artefact of the expected kind and version."""


def dump_artifact(*, obj: Any, kind: str) -> bytes:
    encoded_kind = kind.encode("ascii")
    if len(encoded_kind) > 16:
        raise ValueError(f"artefact kind {kind!r} is longer than 16 characters")
    buffer = io.BytesIO()
    buffer.write(_HEADER.pack(_MAGIC, FORMAT_VERSION, encoded_kind.ljust(16, b"\0")))
    # compress=3: models shrink several-fold and loading stays fast.
    joblib.dump(obj, buffer, compress=3)
    return buffer.getvalue()


def load_artifact(*, data: bytes, kind: str, expected_type: type[T]) -> T:
    if len(data) < _HEADER.size:
        raise ModelFormatError("data is too short to be a stored model")
    magic, version, raw_kind = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise ModelFormatError("data is not a Lightsout maintenance artefact")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"artefact format version {version} is not supported (this code reads version {FORMAT_VERSION})"
        )
    stored_kind = raw_kind.rstrip(b"\0").decode("ascii")
    if stored_kind != kind:
        raise ModelFormatError(f"artefact is a {stored_kind!r}, expected {kind!r}")
    obj = joblib.load(io.BytesIO(data[_HEADER.size :]))
    if not isinstance(obj, expected_type):
        raise ModelFormatError(f"artefact payload is a {type(obj).__name__}, expected {expected_type.__name__}")
    return obj
