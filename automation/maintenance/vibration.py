"""Vibration captures: machine kinematics, waveform upload (float32, .npy, WAV, CSV), storage and analysis jobs.

A capture is whole or refused: every check (format, rate, length, finite samples, sensor, axes, shaft speed) runs
before anything is written; the waveform goes to Django's storage (`default_storage` through the FileField) as
one compressed float32 .npz, and the row is written in the same transaction, the stored file removed again if
that fails. Analysis runs as a `maintenance.vibration_analyse` job on the `maintenance` queue (`diagnostics.py`).
"""

import csv
import io
import math
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from billing.quotas import quota_check
from jobs.services import job_create
from tenants.actor import Actor
from tenants.models import Organization

from .conf import CAPTURES_METER, METER, VIBRATION_ANALYSE_JOB_KIND, VIBRATION_TRAIN_JOB_KIND
from .engine.kinematics import Kinematics, KinematicsError, kinematics_from_dict
from .models import Asset, AssetType, Channel, MachineKinematics, VibrationCapture

MIN_RATE, MAX_RATE = 1_000.0, 100_000.0
MIN_SECONDS, MAX_SECONDS = 0.5, 60.0
FORMATS = ("float32", "npy", "wav", "csv")
UNITS = ("g", "m/s2")
LABELS = (
    "normal",
    "outer_race",
    "inner_race",
    "rolling_element",
    "cage",
    "unbalance",
    "misalignment",
    "looseness",
    "gear_wear",
)
INDICATOR_CHANNELS = {
    # name: (unit, component key: "bearing" = the sensor's bearing, "shaft" = the first shaft)
    "velocity_rms": ("mm/s", "bearing"),
    "accel_rms": ("g", "bearing"),
    "peak": ("g", "bearing"),
    "crest_factor": ("", "bearing"),
    "kurtosis": ("", "bearing"),
    "order_1x": ("mm/s", "shaft"),
    "order_2x": ("mm/s", "shaft"),
    "order_3x": ("mm/s", "shaft"),
    "bpfo_snr": ("", "bearing"),
    "bpfi_snr": ("", "bearing"),
    "bsf_snr": ("", "bearing"),
    "ftf_snr": ("", "bearing"),
}


class CaptureRejected(ValidationError):
    """Nothing was stored; `message_dict` says what was wrong, by field or line."""


def _code(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", text).strip("_.-") or "sensor"


def indicator_channel_name(sensor: str, indicator: str) -> str:
    return f"{_code(sensor)[:40]}.{indicator}"


# --- kinematics ----------------------------------------------------------------------------------------------------

_KINEMATICS_CACHE: dict[tuple[str, str], Kinematics] = {}


def kinematics_of(asset: Asset) -> Kinematics | None:
    """The asset's parsed kinematics (None if it has none), from `asset.kinematics` (select it with the asset to
    save the query). Parsed once per process per stored version: keyed by the row and its `updated_at`."""
    try:
        record = asset.kinematics
    except MachineKinematics.DoesNotExist:
        return None
    key = (str(record.pk), record.updated_at.isoformat())
    parsed = _KINEMATICS_CACHE.get(key)
    if parsed is None:
        if len(_KINEMATICS_CACHE) >= 256:
            _KINEMATICS_CACHE.pop(next(iter(_KINEMATICS_CACHE)))
        parsed = _KINEMATICS_CACHE[key] = kinematics_from_dict(record.as_dict())
    return parsed


@transaction.atomic
def kinematics_set(*, asset: Asset, data: dict) -> MachineKinematics:
    """Describe what rotates in the asset (checked by the engine) and give its asset type a channel per sensor
    and condition indicator, so the existing anomaly, RUL and recommendation models trend them."""
    try:
        parsed = kinematics_from_dict(data)
    except KinematicsError as exc:
        raise ValidationError({k: [v] for k, v in exc.errors.items()}) from exc
    record, _ = MachineKinematics.objects.select_for_update().get_or_create(
        asset=asset, defaults={"organization_id": asset.organization_id}
    )
    record.machine_class = parsed.machine_class
    for field in ("shafts", "bearings", "gears", "sensors"):
        setattr(record, field, data.get(field, []))
    record.updated_at = timezone.now()
    record.save()
    existing = set(Channel.objects.filter(asset_type_id=asset.asset_type_id).values_list("name", flat=True))
    position = Channel.objects.filter(asset_type_id=asset.asset_type_id).count()
    shaft = parsed.shafts[0].name
    for sensor in parsed.sensors:
        for indicator, (unit, key) in INDICATOR_CHANNELS.items():
            name = indicator_channel_name(sensor.name, indicator)
            if name in existing:
                continue
            component = (sensor.bearing or shaft) if key == "bearing" else shaft
            Channel.objects.create(
                organization_id=asset.organization_id,
                asset_type_id=asset.asset_type_id,
                name=name,
                unit=unit,
                component=component[:100],
                position=position,
            )
            existing.add(name)
            position += 1
    return record


# --- waveforms -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waveform:
    data: np.ndarray  # float32, shape (axes, samples)
    sample_rate: float


def _npy_numbers(content: bytes) -> np.ndarray:
    """A .npy file's array of numbers (never pickles), or the refusal an uploader can act on."""
    try:
        array = np.load(io.BytesIO(content), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CaptureRejected({"file": [f"not a readable .npy array: {exc}"]}) from exc
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise CaptureRejected({"file": ["the .npy array must hold numbers"]})
    return array


def _npy(content: bytes) -> np.ndarray:
    array = _npy_numbers(content)
    if array.ndim == 1:
        return array[None, :]
    if array.ndim == 2:
        return array.T if array.shape[0] > array.shape[1] else array  # (samples, axes) or (axes, samples)
    raise CaptureRejected({"file": [f"the .npy array has {array.ndim} dimensions; one or two (axes)"]})


def _wav(content: bytes, scale: float | None) -> tuple[np.ndarray, float]:
    """PCM WAV (8/16/24/32-bit integer; scaled by `scale`, the full-scale value in the capture's unit) or IEEE
    float32 WAV (values as they are)."""
    if content[:4] != b"RIFF" or content[8:12] != b"WAVE":
        raise CaptureRejected({"file": ["not a WAV file (no RIFF/WAVE header)"]})
    fmt_tag = None
    pos = 12
    while pos + 8 <= len(content):
        chunk, size = content[pos : pos + 4], int.from_bytes(content[pos + 4 : pos + 8], "little")
        if chunk == b"fmt ":
            fmt_tag = int.from_bytes(content[pos + 8 : pos + 10], "little")
            channels = int.from_bytes(content[pos + 10 : pos + 12], "little")
            rate = int.from_bytes(content[pos + 12 : pos + 16], "little")
            bits = int.from_bytes(content[pos + 22 : pos + 24], "little")
        if chunk == b"data" and fmt_tag is not None:
            raw = content[pos + 8 : pos + 8 + size]
            if fmt_tag == 3 and bits == 32:
                data = np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<f4").astype(np.float64)
            elif fmt_tag == 1 and bits in (16, 32):
                ints = np.frombuffer(raw[: len(raw) // (bits // 8) * (bits // 8)], dtype=f"<i{bits // 8}")
                if scale is None:
                    raise CaptureRejected({"scale": ["an integer WAV needs `scale`: the full-scale value in g"]})
                data = ints.astype(np.float64) / float(2 ** (bits - 1)) * scale
            else:
                raise CaptureRejected({"file": [f"WAV format {fmt_tag} with {bits} bits; use PCM 16/32 or float32"]})
            if len(data) % channels:
                raise CaptureRejected({"file": ["the WAV data is cut in the middle of a frame"]})
            return data.reshape(-1, channels).T, float(rate)
        pos += 8 + size + (size & 1)
    raise CaptureRejected({"file": ["the WAV file has no fmt/data chunk"]})


def _csv(content: bytes) -> np.ndarray:
    """One column per axis, an optional header line; every bad cell reported with its line."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaptureRejected({"file": ["the CSV is not UTF-8"]}) from exc
    rows: list[list[float]] = []
    errors: dict[str, list[str]] = {}
    width = None
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            values = [float(cell) for cell in row]
        except ValueError:
            if number == 1 and not rows:
                continue  # a header
            errors[f"line {number}"] = [f"not a number: {row!r}"[:200]]
            if len(errors) >= 20:
                break
            continue
        if width is None:
            width = len(values)
        elif len(values) != width:
            errors[f"line {number}"] = [f"{len(values)} columns; the first data line has {width}"]
            continue
        bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
        if bad:
            errors[f"line {number}"] = [f"column {bad[0] + 1} is not finite"]
            continue
        rows.append(values)
    if errors:
        raise CaptureRejected(errors)
    if not rows:
        raise CaptureRejected({"file": ["no samples"]})
    return np.asarray(rows, dtype=np.float64).T


def waveform_parse(
    *, content: bytes, fmt: str, sample_rate: float | None, axes: int, scale: float | None = None
) -> Waveform:
    """Decode and check a capture. Raises CaptureRejected; stores nothing."""
    if fmt not in FORMATS:
        raise CaptureRejected({"format": [f"unknown format {fmt!r}; one of {', '.join(FORMATS)}"]})
    rate = sample_rate
    if fmt == "float32":
        if len(content) % (4 * axes):
            raise CaptureRejected(
                {"file": [f"{len(content)} bytes is not a whole number of {axes}-axis float32 frames"]}
            )
        data = np.frombuffer(content, dtype="<f4").reshape(-1, axes).T
    elif fmt == "npy":
        data = _npy(content)
    elif fmt == "csv":
        data = _csv(content)
    else:
        data, wav_rate = _wav(content, scale)
        if rate is not None and abs(rate - wav_rate) > 1e-6:
            raise CaptureRejected({"sample_rate": [f"{rate:g} Hz given but the WAV says {wav_rate:g} Hz"]})
        rate = wav_rate
    return waveform_check(data=data, sample_rate=rate, axes=axes)


def waveform_check(*, data: np.ndarray, sample_rate: float | None, axes: int) -> Waveform:
    """Check decoded samples, shape (axes, samples): rate, axes, length, finite. Raises CaptureRejected."""
    rate = sample_rate
    if rate is None:
        raise CaptureRejected({"sample_rate": ["required (Hz)"]})
    if not MIN_RATE <= rate <= MAX_RATE:
        raise CaptureRejected({"sample_rate": [f"{rate:g} Hz; captures are sampled at 1 to 100 kHz"]})
    if data.shape[0] != axes:
        raise CaptureRejected({"axes": [f"the file holds {data.shape[0]} axes; the sensor has {axes}"]})
    seconds = data.shape[1] / rate
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise CaptureRejected(
            {"file": [f"{data.shape[1]} samples at {rate:g} Hz is {seconds:.3g} s; captures last 0.5 to 60 s"]}
        )
    finite = np.isfinite(data)
    if not finite.all():
        axis, index = (int(v[0]) for v in np.nonzero(~finite))
        raise CaptureRejected(
            {"file": [f"{int((~finite).sum())} samples are not finite (the first: axis {axis + 1}, sample {index})"]}
        )
    return Waveform(np.ascontiguousarray(data, dtype=np.float32), float(rate))


def waveform_load(capture: VibrationCapture) -> np.ndarray:
    """The stored samples, float32, shape (axes, samples)."""
    with capture.waveform.open("rb") as handle, np.load(io.BytesIO(handle.read()), allow_pickle=False) as npz:
        return np.stack([npz[f"axis{i}"] for i in range(len(capture.axes))])


def waveforms_unstack(*, content: bytes) -> list[np.ndarray]:
    """A batch as one .npy stack whose first dimension is the captures: (captures, samples) for a one-axis sensor,
    (captures, axes, samples) for any. Returns each capture's samples, shape (axes, samples)."""
    array = _npy_numbers(content)
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3:
        raise CaptureRejected(
            {"file": [f"a stack of captures is (captures, samples) or (captures, axes, samples), not {array.shape}"]}
        )
    return list(array)


def _npz(data: np.ndarray) -> bytes:
    """The waveform as an .npz (np.load reads it), deflated at level 1: float32 vibration compresses to the same
    size as at numpy's default level 6 (the mantissas are noise), in half the time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for i in range(data.shape[0]):
            with archive.open(f"axis{i}.npy", "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(data[i]), allow_pickle=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class CaptureInput:
    """One capture as received: the file's bytes in `fmt`, or samples already decoded from a stacked .npy
    (`samples`, shape (axes, samples)); fields left None take the sensor's or shaft's defaults."""

    sensor: str
    content: bytes = b""
    fmt: str = "float32"
    samples: np.ndarray | None = None
    sample_rate: float | None = None
    shaft_rpm: float | None = None
    captured_at: datetime | None = None
    label: str = ""


def _checked(item: CaptureInput, *, asset: Asset, parsed: Kinematics, scale: float | None):
    try:
        sensor_def = parsed.sensor(item.sensor)
    except KeyError:
        known = ", ".join(s.name for s in parsed.sensors) or "none"
        raise CaptureRejected(
            {"sensor": [f"{asset.code} has no sensor {item.sensor!r}; its sensors: {known}"]}
        ) from None
    if item.label and item.label not in LABELS:
        raise CaptureRejected({"label": [f"one of {', '.join(LABELS)}"]})
    rpm = item.shaft_rpm if item.shaft_rpm is not None else parsed.nominal_rpm
    if rpm is None or not math.isfinite(rpm) or not 1.0 <= rpm <= 200_000:
        raise CaptureRejected({"shaft_rpm": ["required (1 to 200,000 rpm) when the shaft has no nominal speed"]})
    axes = len(sensor_def.axes)
    if item.samples is not None:
        waveform = waveform_check(data=item.samples, sample_rate=item.sample_rate, axes=axes)
    else:
        waveform = waveform_parse(
            content=item.content, fmt=item.fmt, sample_rate=item.sample_rate, axes=axes, scale=scale
        )
    return sensor_def, float(rpm), waveform


def captures_create(
    *,
    organization: Organization,
    asset: Asset,
    items: list[CaptureInput],
    unit: str = "g",
    scale: float | None = None,
    actor: Actor | None = None,
    analyse: bool = True,
    batch: bool = True,
    start: datetime | None = None,
) -> list[VibrationCapture]:
    """Check, store and (by default) queue the analysis of a batch of captures of one asset: all or nothing, and
    one `maintenance.vibration_analyse` job for the batch. Raises CaptureRejected naming every bad capture by its
    index (`captures[i].file`: ...); `batch=False` (one capture) names fields without the index.

    Captures without a `captured_at` follow each other back to back in order (a data logger's consecutive
    captures), from `start` if given, else ending at the time of the request, so their indicator readings land at
    distinct times."""
    parsed = kinematics_of(asset)
    if parsed is None:
        raise CaptureRejected({"asset": [f"{asset.code} has no kinematics yet: describe what rotates in it first"]})
    if unit not in UNITS:
        raise CaptureRejected({"unit": [f"one of {', '.join(UNITS)}"]})
    if not items:
        raise CaptureRejected({"file": ["no captures"]})
    checked, errors = [], {}
    for index, item in enumerate(items):
        try:
            checked.append(_checked(item, asset=asset, parsed=parsed, scale=scale))
        except CaptureRejected as exc:
            if not batch:
                raise
            errors.update({f"captures[{index}].{field}": messages for field, messages in exc.message_dict.items()})
    if errors:
        raise CaptureRejected(errors)
    if analyse:
        quota_check(organization=organization, meter=CAPTURES_METER, quantity=len(items))
    end = start
    if end is None:
        end = timezone.now()
        for item, (_, _, waveform) in zip(items, checked, strict=True):
            if item.captured_at is None:
                end -= timedelta(seconds=waveform.data.shape[1] / waveform.sample_rate)
    captures, stored = [], []
    try:
        for item, (sensor_def, rpm, waveform) in zip(items, checked, strict=True):
            captured_at = item.captured_at
            if captured_at is None:
                captured_at, end = end, end + timedelta(seconds=waveform.data.shape[1] / waveform.sample_rate)
            blob = _npz(waveform.data)
            capture = VibrationCapture(
                organization=organization,
                asset=asset,
                sensor=item.sensor,
                axes=list(sensor_def.axes),
                sample_rate=waveform.sample_rate,
                shaft_rpm=rpm,
                samples=int(waveform.data.shape[1]),
                unit=unit,
                captured_at=captured_at,
                size_bytes=len(blob),
                label=item.label,
            )
            capture.waveform.save(f"{capture.pk}.npz", ContentFile(blob), save=False)
            stored.append(capture)
            captures.append(capture)
        with transaction.atomic():
            if analyse:  # the job first, so that the captures are one INSERT (the job is sent on commit)
                ids = [str(c.pk) for c in captures]
                params = {"capture_id": ids[0]} if len(ids) == 1 else {"capture_ids": ids}
                job = job_create(organization=organization, kind=VIBRATION_ANALYSE_JOB_KIND, params=params, actor=actor)
                for capture in captures:
                    capture.job = job
            VibrationCapture.objects.bulk_create(captures)
    except BaseException:
        for capture in stored:
            capture.waveform.delete(save=False)
        raise
    return captures


def capture_create(
    *,
    organization: Organization,
    asset: Asset,
    sensor: str,
    content: bytes,
    fmt: str,
    sample_rate: float | None,
    shaft_rpm: float | None = None,
    unit: str = "g",
    captured_at: datetime | None = None,
    label: str = "",
    scale: float | None = None,
    actor: Actor | None = None,
    analyse: bool = True,
) -> VibrationCapture:
    """Check, store and (by default) queue the analysis of one capture; all or nothing. Raises CaptureRejected."""
    item = CaptureInput(
        sensor=sensor,
        content=content,
        fmt=fmt,
        sample_rate=sample_rate,
        shaft_rpm=shaft_rpm,
        captured_at=captured_at or timezone.now(),
        label=label,
    )
    [capture] = captures_create(
        organization=organization,
        asset=asset,
        items=[item],
        unit=unit,
        scale=scale,
        actor=actor,
        analyse=analyse,
        batch=False,
    )
    return capture


def capture_delete(*, capture: VibrationCapture) -> None:
    capture.waveform.delete(save=False)
    capture.delete()


def captures_expire(*, organization: Organization, older_than: datetime) -> int:
    """Retention: delete the organisation's captures (their waveforms from storage too) captured before
    `older_than`; their diagnoses go with them."""
    removed = 0
    captures = VibrationCapture.objects.filter(organization=organization, captured_at__lt=older_than)
    for capture in captures.iterator():
        capture_delete(capture=capture)
        removed += 1
    return removed


def vibration_training_start(*, organization: Organization, asset_type: AssetType, actor: Actor | None):
    """Learn a classifier from the asset type's analysed, labelled captures (a `maintenance.vibration_train` job)."""
    labelled = VibrationCapture.objects.filter(
        asset__asset_type=asset_type, status=VibrationCapture.Status.ANALYSED
    ).exclude(label="")
    if labelled.values("label").distinct().count() < 2:
        raise ValidationError({"asset_type": [f"{asset_type.code} needs analysed captures of at least two labels."]})
    quota_check(organization=organization, meter=METER, quantity=1)
    return job_create(
        organization=organization,
        kind=VIBRATION_TRAIN_JOB_KIND,
        params={"asset_type_id": str(asset_type.pk)},
        actor=actor,
    )
