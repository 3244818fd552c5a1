"""Vibration diagnostics: from a raw acceleration waveform to the failing part. Pure numpy/scipy, no Django.

`analyse_capture` runs, per axis of one capture: the amplitude spectrum; the envelope spectrum of the band chosen
by spectral kurtosis (a kurtogram over STFT window lengths 2^4..2^8, band-pass by FFT masking, squared-envelope
demodulation); the order spectrum (angular resampling against the shaft speed); condition indicators (ISO 20816
velocity RMS with its zone, peak, crest factor, kurtosis, 1x/2x/3x, each bearing defect frequency's harmonics
with their sidebands, gear mesh with its sidebands); and a physics-first diagnosis: each component whose
characteristic frequencies stand out of the local noise floor, named on the asset, with confidence, severity and
the peaks that matched. `VibrationClassifier` (scikit-learn) learns from a tenant's labelled captures on top.

Inputs are acceleration in g (a capture in m/s^2 is divided by 9.80665 first).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

from automation.maintenance.engine.kinematics import (
    ISO_ZONE_LIMITS,
    Bearing,
    FaultFrequency,
    Kinematics,
    characteristic_frequencies,
)

__all__ = [
    "BEARING_FAULTS",
    "FAULT_LABELS",
    "Analysis",
    "Diagnosis",
    "Evidence",
    "Indicators",
    "LineAmplitude",
    "Spectrum",
    "analyse_capture",
    "envelope_spectrum",
    "estimate_shaft_speed",
    "iso_zone",
    "kurtogram_band",
    "order_spectrum",
    "spectrum",
]

Array = npt.NDArray[np.float64]
G = 9.80665

BEARING_FAULTS = {"bpfo": "outer_race", "bpfi": "inner_race", "bsf": "rolling_element", "ftf": "cage"}
FAULT_LABELS = {
    "outer_race": "outer race",
    "inner_race": "inner race",
    "rolling_element": "rolling element",
    "cage": "cage",
    "unbalance": "unbalance",
    "misalignment": "misalignment",
    "looseness": "mechanical looseness",
    "gear_wear": "gear wear",
}
# A peak counts as matched when it stands this far (amplitude ratio) above the local median floor.
MATCH_SNR = 3.0
# A bearing fault needs this much evidence (sum over matched lines of dB above MATCH_SNR, see _score).
BEARING_SCORE_MIN = 12.0
# Running-speed estimate from the capture (estimate_shaft_speed): how far from the given speed to look, how far
# above its neighbourhood's median a 1x-3x line must stand, how close two orders' estimates must agree.
SPEED_SEARCH = 0.02
SPEED_PROMINENCE = 8.0
SPEED_AGREE = 0.003


@dataclass(frozen=True)
class Spectrum:
    """Amplitude spectrum: `x` in Hz (or orders), `y` peak amplitude in the input's unit."""

    x: Array
    y: Array
    resolution: float

    def downsampled(self, points: int, x_max: float | None = None) -> tuple[list[float], list[float]]:
        """At most `points` (x, max y) pairs up to x_max: for plots, peaks kept."""
        keep = self.x <= (x_max if x_max is not None else float(self.x[-1]))
        x, y = self.x[keep], self.y[keep]
        if len(x) <= points:
            return [float(v) for v in x], [float(v) for v in y]
        step = math.ceil(len(x) / points)
        n = len(x) // step * step
        ys = y[:n].reshape(-1, step)
        idx = np.argmax(ys, axis=1) + np.arange(0, n, step)
        return [float(v) for v in x[idx]], [float(v) for v in y[idx]]


@dataclass(frozen=True)
class LineAmplitude:
    """The amplitude at one expected line (a defect frequency's harmonic, an order, a mesh), found within tolerance."""

    component: str
    kind: str
    harmonic: int
    expected_hz: float
    hz: float
    amplitude: float
    snr: float
    sidebands: tuple[float, ...] = ()


@dataclass(frozen=True)
class Evidence:
    label: str
    hz: float
    amplitude: float
    snr_db: float
    spectrum: str  # envelope | velocity | acceleration


@dataclass(frozen=True)
class Diagnosis:
    component: str
    fault: str
    label: str
    confidence: float
    severity: float  # 0..1
    severity_level: str  # low | moderate | high | critical
    evidence: tuple[Evidence, ...]
    score: float


@dataclass(frozen=True)
class Indicators:
    velocity_rms_mm_s: float
    iso_zone: str
    iso_band_hz: tuple[float, float]
    accel_rms_g: float
    peak_g: float
    crest_factor: float
    kurtosis: float
    order_1x_mm_s: float
    order_2x_mm_s: float
    order_3x_mm_s: float
    envelope_band_hz: tuple[float, float]
    band_kurtosis: float
    lines: tuple[LineAmplitude, ...]
    shaft_hz: float = 0.0  # the running speed the analysis used (estimate_shaft_speed)
    given_shaft_hz: float = 0.0  # the speed sent with the capture

    def channels(self) -> dict[str, float]:
        """Scalar indicators by channel name, for trending as telemetry."""
        out = {
            "velocity_rms": self.velocity_rms_mm_s,
            "accel_rms": self.accel_rms_g,
            "peak": self.peak_g,
            "crest_factor": self.crest_factor,
            "kurtosis": self.kurtosis,
            "order_1x": self.order_1x_mm_s,
            "order_2x": self.order_2x_mm_s,
            "order_3x": self.order_3x_mm_s,
        }
        for line in self.lines:
            if line.harmonic == 1 and line.kind in ("bpfo", "bpfi", "bsf", "ftf", "mesh"):
                out[f"{line.kind}_snr"] = max(out.get(f"{line.kind}_snr", 0.0), line.snr)
        return out


@dataclass(frozen=True)
class Analysis:
    indicators: Indicators
    diagnoses: tuple[Diagnosis, ...]
    spectrum: Spectrum
    envelope: Spectrum
    order_spectrum: Spectrum
    frequencies: tuple[FaultFrequency, ...]
    features: tuple[float, ...] = field(default=())


# --- spectra -------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _hann(n: int) -> tuple[Array, float]:
    window = np.hanning(n).astype(np.float64)
    window.setflags(write=False)
    return window, float(window.sum())


def spectrum(x: Array, fs: float) -> Spectrum:
    """Hann-windowed single-sided amplitude spectrum (peak amplitude of a sine reads as its amplitude)."""
    n = len(x)
    window, total = _hann(n)
    y = np.abs(np.fft.rfft((x - x.mean()) * window)) * 2.0 / total
    return Spectrum(np.fft.rfftfreq(n, 1.0 / fs).astype(np.float64), y.astype(np.float64), fs / n)


@functools.lru_cache(maxsize=32)
def _periodic_hann(n: int) -> Array:
    window = np.asarray(sps.get_window("hann", n), dtype=np.float64)
    window.setflags(write=False)
    return window


def _stft_power(x: Array, fs: float, nper: int) -> tuple[Array, Array]:
    """|STFT|^2 (frequency x frame) with a periodic Hann window of `nper` and 3/4 overlap, frames as scipy's
    `stft(boundary=None)` makes them (zero padded to a whole frame) and scaled as it does; computed as one rfft of
    a strided frame view instead of scipy's general path (a tenth of the time on short windows)."""
    hop = nper - nper * 3 // 4
    extra = (-(len(x) - nper) % hop) % nper
    if extra:
        x = np.concatenate([x, np.zeros(extra)])
    window = _periodic_hann(nper)
    frames = np.lib.stride_tricks.sliding_window_view(x, nper)[::hop]
    z = np.fft.rfft(frames * (window / window.sum()), axis=1)
    return np.fft.rfftfreq(nper, 1.0 / fs).astype(np.float64), (z.real**2 + z.imag**2).T


def kurtogram_band(
    x: Array,
    fs: float,
    *,
    f_min: float = 0.0,
    min_bandwidth: float = 0.0,
    windows: tuple[int, ...] = (12, 16, 24, 32, 48, 64, 96, 128, 192, 256),
) -> list[tuple[float, float, float]]:
    """Candidate demodulation bands (low Hz, high Hz, spectral kurtosis), best first, one per window length.

    Spectral kurtosis from the STFT (Antoni 2006): SK(f) = <|X|^4> / <|X|^2>^2 - 2 for each window length;
    the band of a bin is its centre +- 0.75 x the window's resolution. Bands reaching below `f_min` are left
    out, so shaft harmonics do not pass as impulses, and so are bands narrower than `min_bandwidth`: the
    envelope of a band holds frequencies up to its width only, and the defect harmonics must fit.
    """
    out: list[tuple[float, float, float]] = []
    for nper in windows:
        if nper * 4 > len(x) or 1.5 * fs / nper < min_bandwidth:
            continue
        freqs, power = _stft_power(x, fs, nper)
        m2 = power.mean(axis=1)
        sk = (power**2).mean(axis=1) / np.maximum(m2**2, 1e-30) - 2.0
        bw = 1.5 * fs / nper
        ok = (freqs - bw / 2 >= max(f_min, 0.0)) & (freqs + bw / 2 <= fs / 2)
        if not ok.any():
            continue
        i = int(np.argmax(np.where(ok, sk, -np.inf)))
        out.append((float(freqs[i] - bw / 2), float(freqs[i] + bw / 2), float(sk[i])))
    out.sort(key=lambda band: -band[2])
    return out


def envelope_spectrum(
    x: Array,
    fs: float,
    band: tuple[float, float],
    *,
    f_max: float,
    pad: int = 4,
    half_spectrum: npt.NDArray[np.complex128] | None = None,
) -> Spectrum:
    """Spectrum of the squared envelope of `x` band-passed to `band` (FFT mask, analytic signal). Pass the
    `half_spectrum` (rfft of x) when several bands of one signal are demodulated."""
    n = len(x)
    half = np.fft.rfft(x - x.mean()) if half_spectrum is None else half_spectrum
    f = np.fft.rfftfreq(n, 1.0 / fs)
    lo, hi = np.searchsorted(f, [band[0], band[1]], side="left")
    hi = min(int(hi), n // 2)  # positive frequencies only (never the Nyquist bin of an even length)
    full = np.zeros(n, dtype=np.complex128)
    full[lo:hi] = 2.0 * half[lo:hi]
    analytic = np.fft.ifft(full)
    env = analytic.real**2 + analytic.imag**2
    env = env - env.mean()
    m = n * pad
    window, total = _hann(n)
    freqs = np.fft.rfftfreq(m, 1.0 / fs).astype(np.float64)
    keep = int(np.searchsorted(freqs, f_max, side="right"))  # the magnitudes of the bins kept only
    y = np.abs(np.fft.rfft(env * window, m)[:keep]) * 2.0 / total
    return Spectrum(freqs[:keep], y.astype(np.float64), fs / m)


def order_spectrum(
    x: Array, fs: float, shaft_hz: float, *, end_shaft_hz: float | None = None, max_order: float = 50.0
) -> Spectrum:
    """Amplitude against shaft orders after angular resampling (speed ramping linearly to `end_shaft_hz` if given)."""
    n = len(x)
    t = np.arange(n) / fs
    f1 = end_shaft_hz if end_shaft_hz is not None else shaft_hz
    revs = shaft_hz * t + 0.5 * (f1 - shaft_hz) / (n / fs) * t**2  # cumulative revolutions
    per_rev = int(2 ** math.ceil(math.log2(max(4.0, 2.2 * max_order))))
    grid = np.arange(0.0, float(revs[-1]), 1.0 / per_rev)
    resampled = np.interp(grid, revs, x)
    s = spectrum(resampled, float(per_rev))
    keep = s.x <= max_order
    return Spectrum(s.x[keep], s.y[keep], s.resolution)


# --- lines and floors ----------------------------------------------------------------------------------------


def _windows(s: Spectrum, lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp], pad: float) -> Array:
    """Each line's bins lo..hi-1 as a row of one matrix, the rows padded to the widest with `pad`: every line of a
    series measured in one numpy pass instead of a Python loop per line."""
    idx = lo[:, None] + np.arange(int((hi - lo).max()))
    return np.where(idx < hi[:, None], s.y[np.minimum(idx, len(s.y) - 1)], pad)


def _peaks(s: Spectrum, hz: Array, tol_hz: Array) -> tuple[Array, Array]:
    """Per expected line: the frequency and amplitude of the highest bin within +- tol_hz (hz, 0 where none), for
    all lines at once: the first highest bin of each line's window (padded with -inf)."""
    lo = np.searchsorted(s.x, hz - tol_hz)
    hi = np.searchsorted(s.x, hz + tol_hz + 1e-9)
    at = np.array(hz, dtype=np.float64, copy=True)
    amp = np.zeros(len(hz))
    has = hi > lo
    if not has.any():
        return at, amp
    j = (lo + np.argmax(_windows(s, lo, hi, -np.inf), axis=1))[has]
    at[has], amp[has] = s.x[j], s.y[j]
    return at, amp


def _floors(s: Spectrum, hz: Array, half_width_hz: float) -> Array:
    """Per expected line: the median of the spectrum within +- half_width_hz (the local noise floor), for all
    lines at once: each line's window sorted (padded with +inf), its median read at its own width."""
    lo = np.maximum(np.searchsorted(s.x, hz - half_width_hz), 1)
    hi = np.searchsorted(s.x, hz + half_width_hz)
    width = np.maximum(hi - lo, 0)
    out = np.zeros(len(hz))
    if not (width > 0).any():
        return out
    rows = _windows(s, lo, hi, np.inf)
    rows.sort(axis=1)
    has = np.nonzero(width > 0)[0]
    w = width[has]
    out[has] = (rows[has, (w - 1) // 2] + rows[has, w // 2]) / 2.0
    return out


def _peak(s: Spectrum, hz: float, tol_hz: float) -> tuple[float, float]:
    at, amp = _peaks(s, np.array([hz]), np.array([tol_hz]))
    return float(at[0]), float(amp[0])


def _lines(
    s: Spectrum,
    component: str,
    kind: str,
    lines: list[tuple[int, float]],
    *,
    tol: float,
    floor_hz: float,
    sideband_hz: float | None = None,
) -> list[LineAmplitude]:
    """The amplitude, local floor and SNR at each expected (harmonic, hz) line, with the peaks at +- sideband_hz
    (as SNRs against the line's floor) when given. One vectorised pass per series."""
    return _series(s, [(component, kind, h, hz, sideband_hz) for h, hz in lines], tol=tol, floor_hz=floor_hz)


def _series(
    s: Spectrum, lines: list[tuple[str, str, int, float, float | None]], *, tol: float, floor_hz: float
) -> list[LineAmplitude]:
    """`_lines` for several series at once: (component, kind, harmonic, hz, sideband hz or None) per line."""
    hz = np.array([ln[3] for ln in lines], dtype=np.float64)
    tol_hz = np.maximum(tol * hz, 1.5 * s.resolution)
    inside = hz + floor_hz <= float(s.x[-1])  # beyond: what this spectrum holds (an envelope: the band's width)
    at, amp = _peaks(s, hz, tol_hz)
    floor = _floors(s, hz, floor_hz)
    safe = np.where(floor > 0, floor, 1.0)
    snr = np.where(floor > 0, amp / safe, 0.0)
    side_hz = np.array([ln[4] or 0.0 for ln in lines], dtype=np.float64)
    has_side = side_hz != 0
    side: list[Array] = []
    if has_side.any():
        for sign in (-1, 1):
            sb = _peaks(s, hz + sign * side_hz, tol_hz)[1]
            side.append(np.where(floor > 0, sb / safe, 0.0))
    out = []
    for i, (component, kind, harmonic, expected, _) in enumerate(lines):
        if not inside[i]:
            out.append(LineAmplitude(component, kind, harmonic, expected, expected, 0.0, 0.0))
            continue
        sidebands = tuple(float(v[i]) for v in side) if has_side[i] else ()
        out.append(
            LineAmplitude(component, kind, harmonic, expected, float(at[i]), float(amp[i]), float(snr[i]), sidebands)
        )
    return out


def _line(
    s: Spectrum,
    component: str,
    kind: str,
    harmonic: int,
    hz: float,
    *,
    tol: float,
    floor_hz: float,
    sideband_hz: float | None = None,
) -> LineAmplitude:
    return _lines(s, component, kind, [(harmonic, hz)], tol=tol, floor_hz=floor_hz, sideband_hz=sideband_hz)[0]


def iso_zone(velocity_rms_mm_s: float, machine_class: str) -> str:
    ab, bc, cd = ISO_ZONE_LIMITS.get(machine_class, ISO_ZONE_LIMITS["II"])
    if velocity_rms_mm_s < ab:
        return "A"
    if velocity_rms_mm_s < bc:
        return "B"
    if velocity_rms_mm_s < cd:
        return "C"
    return "D"


def _velocity(
    acc_g: Spectrum, half_g: npt.NDArray[np.complex128], n: int, fs: float, band: tuple[float, float]
) -> tuple[float, Spectrum]:
    """Velocity RMS (mm/s) over `band` and the velocity amplitude spectrum (mm/s peak), by integrating in
    frequency: from the signal's Hann amplitude spectrum and its plain rfft (both in g)."""
    scale = G * 1000.0  # g -> mm/s^2
    vel = np.where(acc_g.x > 0, acc_g.y * scale / (2 * np.pi * np.maximum(acc_g.x, 1e-12)), 0.0)
    f = acc_g.x
    inb = (f >= band[0]) & (f <= band[1])
    v = np.abs(half_g[inb]) * scale / (2 * np.pi * f[inb])
    rms = float(np.sqrt(2.0 * np.sum(v**2)) / n)
    return rms, Spectrum(acc_g.x, vel.astype(np.float64), acc_g.resolution)


def _kurtosis(x: Array) -> float:
    d2 = (x - x.mean()) ** 2
    var = float(np.mean(d2))
    return float(np.mean(d2 * d2) / var**2) if var > 0 else 0.0


def estimate_shaft_speed(acc: Spectrum, shaft_hz: float, *, search: float = SPEED_SEARCH) -> float:
    """The running speed read from the capture's own 1x-3x lines near the given speed, or the given speed.

    A speed typed in or sent with a capture (nominal, or a tachometer's mean) is often off by a percent (motor
    slip under load, a stale rpm), and the high harmonics of the defect frequencies then miss their lines. Each
    of 1x, 2x, 3x that stands out of its neighbourhood gives an estimate (the peak interpolated between bins on a
    log scale: Hann lobes are close to Gaussian); estimates that agree (within SPEED_AGREE) from at least two
    orders are averaged, the higher order weighted more (it resolves the speed finer). Otherwise, and where they
    disagree (a mains line near 2x, say), the given speed stands."""
    res = acc.resolution
    estimates: list[tuple[int, float, float]] = []
    for k in (1, 2, 3):
        centre = k * shaft_hz
        half = max(search * centre, 1.5 * res)
        lo, hi = np.searchsorted(acc.x, [centre - half, centre + half + 1e-9])
        if hi - lo < 1 or lo < 1 or hi >= len(acc.y) - 1:
            continue
        j = int(lo + np.argmax(acc.y[lo:hi]))
        around = acc.y[
            np.searchsorted(acc.x, centre - 0.5 * shaft_hz) : np.searchsorted(acc.x, centre + 0.5 * shaft_hz)
        ]
        prominence = acc.y[j] / max(float(np.median(around)), 1e-30) if len(around) else 0.0
        if prominence < SPEED_PROMINENCE:
            continue
        a, b, c = (math.log(max(float(v), 1e-30)) for v in acc.y[j - 1 : j + 2])
        denom = a - 2 * b + c
        delta = 0.5 * (a - c) / denom if denom < 0 else 0.0
        estimates.append((k, (float(acc.x[j]) + max(-0.5, min(0.5, delta)) * res) / k, prominence))
    best: list[tuple[int, float, float]] = []
    for _, centre, _ in estimates:
        group = [e for e in estimates if abs(e[1] / centre - 1.0) <= SPEED_AGREE]
        if len(group) > len(best) or (len(group) == len(best) and sum(e[2] for e in group) > sum(e[2] for e in best)):
            best = group
    if len(best) < 2:
        return shaft_hz
    speed = sum(k * hz for k, hz, _ in best) / sum(k for k, _, _ in best)
    return speed if abs(speed / shaft_hz - 1.0) <= search else shaft_hz


# --- diagnosis -----------------------------------------------------------------------------------------------


def _db(snr: float) -> float:
    return 20.0 * math.log10(max(snr, 1e-6))


def _severity_level(severity: float) -> str:
    return "critical" if severity >= 0.75 else "high" if severity >= 0.5 else "moderate" if severity >= 0.25 else "low"


def _confidence(score: float, runner_up: float, threshold: float) -> float:
    margin = (score - max(runner_up, threshold)) / max(threshold, 1.0)
    return round(float(1.0 / (1.0 + math.exp(-3.0 * margin - 0.5))), 3)


def _bearing_lines(
    env: Spectrum, bearing: Bearing, fr: float, *, tol: float, harmonics: int = 4
) -> dict[str, list[LineAmplitude]]:
    g = bearing.geometry
    floor_hz = max(8.0 * env.resolution, 0.6 * fr)
    series = (
        ("bpfo", g.bpfo, None),
        ("bpfi", g.bpfi, fr),
        ("bsf", 2.0 * g.bsf, g.ftf * fr),  # a rolling-element defect strikes both races: 2 x BSF
        ("ftf", g.ftf, None),
    )
    measured = _series(
        env,
        [
            (bearing.name, kind, h, h * factor * fr, side)
            for kind, factor, side in series
            for h in range(1, harmonics + 1)
        ],
        tol=tol,
        floor_hz=floor_hz,
    )
    return {kind: measured[i * harmonics : (i + 1) * harmonics] for i, (kind, _, _) in enumerate(series)}


def _score(kind: str, lines: list[LineAmplitude], fr: float, clash: Array, tol: float) -> float:
    """Evidence of one defect: dB above the match threshold of each matched harmonic (first weighted double),
    plus matched sidebands for an inner race (shaft) and a rolling element (cage). Harmonics landing on a shaft
    harmonic or another defect's line count for nothing."""
    expected = np.array([line.expected_hz for line in lines])
    distance = np.abs(expected[:, None] - clash[None, :])
    clashes = [bool(v) for v in np.less_equal(distance, 3 * tol * expected[:, None]).any(axis=1)]
    score = 0.0
    matched = 0
    for line, clashing in zip(lines, clashes, strict=True):
        if clashing:
            continue
        if line.snr >= MATCH_SNR:
            matched += 1
            weight = 2.0 if line.harmonic == 1 else 1.0
            score += weight * (_db(line.snr) - _db(MATCH_SNR))
            if line.sidebands:
                score += 0.5 * sum(max(0.0, _db(sb) - _db(MATCH_SNR)) for sb in line.sidebands)
    if kind == "ftf" and matched < 3:  # a cage line is low and easily faked by anything: need a series
        return 0.0
    if matched < 2:
        score *= 0.5
    return score


def _bearing_diagnoses(
    env: Spectrum, kin: Kinematics, shaft_hz: float, sensor_bearing: str | None, tol: float, peak_g: float
) -> tuple[list[Diagnosis], list[LineAmplitude]]:
    speeds = {shaft.name: shaft.ratio * shaft_hz for shaft in kin.shafts}
    shaft_harmonics = np.array(sorted({k * f for f in speeds.values() for k in range(1, 40)}))
    all_lines: list[LineAmplitude] = []
    candidates: list[tuple[float, Bearing, str, list[LineAmplitude]]] = []
    for bearing in kin.bearings:
        fr = speeds[bearing.shaft]
        lines = _bearing_lines(env, bearing, fr, tol=tol)
        for kind, ls in lines.items():
            all_lines.extend(ls)
            others = [ln.expected_hz for k2, l2 in lines.items() if k2 != kind for ln in l2]
            score = _score(kind, ls, fr, np.concatenate([shaft_harmonics, others]), tol)
            # The sensor sits on this bearing's housing: its faults travel less far.
            if sensor_bearing is not None and bearing.name != sensor_bearing:
                score *= 0.5
            candidates.append((score, bearing, kind, ls))
    # The cage's frequency shows as the modulation of the other defects' impacts (rolling-element sidebands, an
    # outer race's load-zone passes): a cage is named only when no other defect of its bearing is.
    named = {b.name for score, b, kind, _ in candidates if kind != "ftf" and score >= BEARING_SCORE_MIN}
    candidates = [(0.0 if kind == "ftf" and b.name in named else sc, b, kind, ls) for sc, b, kind, ls in candidates]
    candidates.sort(key=lambda c: -c[0])
    found: list[Diagnosis] = []
    for i, (score, bearing, kind, ls) in enumerate(candidates):
        if score < BEARING_SCORE_MIN:
            break
        if any(d.component == bearing.name for d in found):
            continue  # one fault per bearing: the strongest
        runner_up = candidates[i + 1][0] if i + 1 < len(candidates) else 0.0
        fault = BEARING_FAULTS[kind]
        best = max(ls, key=lambda ln: ln.snr)
        # Severity: mostly how hard the impacts are (the waveform's peak: 0.5 g scores 0, 20 g scores 1), a
        # quarter how far the defect line stands out of the envelope's floor.
        strength = math.log10(max(peak_g, 1e-9) / 0.5) / math.log10(40.0)
        clarity = (_db(best.snr) - _db(MATCH_SNR)) / 30.0
        severity = min(1.0, max(0.0, 0.75 * min(1.0, max(0.0, strength)) + 0.25 * min(1.0, max(0.0, clarity))))
        evidence = tuple(
            Evidence(
                f"{bearing.name} {kind.upper()} x{ln.harmonic}", ln.hz, ln.amplitude, round(_db(ln.snr), 2), "envelope"
            )
            for ln in ls
            if ln.snr >= MATCH_SNR
        )
        found.append(
            Diagnosis(
                component=bearing.name,
                fault=fault,
                label=f"{bearing.name} {bearing.geometry.model}, {FAULT_LABELS[fault]}",
                confidence=_confidence(score, runner_up, BEARING_SCORE_MIN),
                severity=round(severity, 3),
                severity_level=_severity_level(severity),
                evidence=evidence,
                score=round(score, 2),
            )
        )
    return found, all_lines


def _shaft_diagnoses(
    vel: Spectrum, kin: Kinematics, shaft_hz: float, velocity_rms: float, tol: float
) -> tuple[list[Diagnosis], list[LineAmplitude]]:
    """Unbalance (1x dominant), misalignment (2x strong against 1x), looseness (a series of harmonics and
    half-orders) from the velocity spectrum, gated by the ISO zone: a machine in zone A has none of them."""
    ab, _bc, cd = ISO_ZONE_LIMITS.get(kin.machine_class, ISO_ZONE_LIMITS["II"])
    found: list[Diagnosis] = []
    lines: list[LineAmplitude] = []
    shaft = kin.shafts[0]
    fr = shaft.ratio * shaft_hz
    floor_hz = max(3.0 * fr, 10 * vel.resolution)
    ks = (1, 2, 3, 4, 5, 6, 7, 8)
    orders = dict(
        zip(ks, _lines(vel, shaft.name, "shaft", [(k, k * fr) for k in ks], tol=tol, floor_hz=floor_hz), strict=True)
    )
    halves = _lines(vel, shaft.name, "half_order", [(0, k * fr) for k in (0.5, 1.5, 2.5)], tol=tol, floor_hz=floor_hz)
    lines.extend(orders.values())
    rms_1x = orders[1].amplitude / math.sqrt(2)
    rms_2x = orders[2].amplitude / math.sqrt(2)
    severity = min(1.0, velocity_rms / cd)
    if velocity_rms < ab:
        return found, lines

    def diag(fault: str, score: float, ev: list[LineAmplitude]) -> Diagnosis:
        return Diagnosis(
            component=shaft.name,
            fault=fault,
            label=f"{shaft.name}, {FAULT_LABELS[fault]}",
            confidence=_confidence(score, 0.0, 1.0),
            severity=round(severity, 3),
            severity_level=_severity_level(severity),
            evidence=tuple(
                Evidence(
                    f"{shaft.name} {ln.harmonic or ln.expected_hz / fr:g}x",
                    ln.hz,
                    ln.amplitude,
                    round(_db(ln.snr), 2),
                    "velocity",
                )
                for ln in ev
            ),
            score=round(score, 2),
        )

    # 1x alone must take the machine out of zone A: an inner-race impulse train modulated at 1x has a 1x line too.
    if rms_1x >= max(ab, 0.6 * velocity_rms) and rms_2x < 0.5 * rms_1x and orders[1].snr >= MATCH_SNR:
        found.append(diag("unbalance", rms_1x / velocity_rms * 2.0, [orders[1]]))
    if rms_2x >= 0.5 * rms_1x and rms_2x >= 0.35 * velocity_rms and orders[2].snr >= MATCH_SNR:
        found.append(diag("misalignment", rms_2x / max(rms_1x, 1e-9), [orders[1], orders[2]]))
    series = [o for k, o in orders.items() if k >= 2 and o.snr >= MATCH_SNR]
    subs = [h for h in halves if h.snr >= MATCH_SNR]
    if len(series) >= 4 and (len(subs) >= 1 or len(series) >= 6):
        found.append(diag("looseness", (len(series) + len(subs)) / 4.0, series + subs))
    return found, lines


def _gear_diagnoses(
    acc: Spectrum, kin: Kinematics, shaft_hz: float, tol: float
) -> tuple[list[Diagnosis], list[LineAmplitude]]:
    found: list[Diagnosis] = []
    lines: list[LineAmplitude] = []
    speeds = {shaft.name: shaft.ratio * shaft_hz for shaft in kin.shafts}
    for gear in kin.gears:
        fr = speeds[gear.shaft]
        mesh = gear.teeth * fr
        if mesh * 2 >= acc.x[-1]:
            continue
        ls = _lines(
            acc,
            gear.name,
            "mesh",
            [(h, h * mesh) for h in (1, 2)],
            tol=tol / 2,
            floor_hz=max(4 * fr, 10 * acc.resolution),
            sideband_hz=fr,
        )
        lines.extend(ls)
        # Wear: the mesh line and its second harmonic flanked by running-speed sidebands.
        sides = [sb for ln in ls for sb in ln.sidebands if sb >= MATCH_SNR]
        if ls[0].snr >= MATCH_SNR and len(sides) >= 2:
            score = sum(_db(sb) for sb in sides) / 10.0
            severity = min(1.0, max(_db(sb) for sb in sides) / 40.0)
            found.append(
                Diagnosis(
                    component=gear.name,
                    fault="gear_wear",
                    label=f"{gear.name} ({gear.teeth} teeth), gear wear",
                    confidence=_confidence(score, 0.0, 2.0),
                    severity=round(severity, 3),
                    severity_level=_severity_level(severity),
                    evidence=tuple(
                        Evidence(
                            f"{gear.name} mesh x{ln.harmonic}",
                            ln.hz,
                            ln.amplitude,
                            round(_db(ln.snr), 2),
                            "acceleration",
                        )
                        for ln in ls
                    ),
                    score=round(score, 2),
                )
            )
    return found, lines


def _features(
    half: npt.NDArray[np.complex128],
    f: Array,
    env_lines: list[LineAmplitude],
    kurt: float,
    crest: float,
    rms: float,
    band_sk: float,
) -> tuple[float, ...]:
    """Rate-independent features for the learned classifier: time statistics, energy shares in fixed bands up to
    5 kHz, and the envelope evidence at each defect frequency (log SNR of harmonics 1-3)."""
    spec = half.real**2 + half.imag**2
    edges = [0.0, 250.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0, 3500.0, 4000.0, 5000.0]
    total = float(spec[f <= edges[-1]].sum()) or 1.0
    shares = [float(spec[(f >= lo) & (f < hi)].sum()) / total for lo, hi in itertools.pairwise(edges)]
    ev: list[float] = []
    for kind in ("bpfo", "bpfi", "bsf", "ftf"):
        by_h = {ln.harmonic: ln.snr for ln in env_lines if ln.kind == kind}
        ev.extend(math.log(max(by_h.get(h, 1.0), 1e-3)) for h in (1, 2, 3))
    return (math.log(max(rms, 1e-9)), math.log(max(kurt, 1e-3)), crest, math.log1p(max(band_sk, 0.0)), *shares, *ev)


def analyse_capture(
    samples: Array,
    sample_rate: float,
    shaft_hz: float,
    kinematics: Kinematics,
    *,
    sensor: str | None = None,
    unit: str = "g",
    end_shaft_hz: float | None = None,
) -> Analysis:
    """Spectra, indicators and physics diagnoses of one axis of one capture (acceleration in `unit`: g or m/s2)."""
    x = np.asarray(samples, dtype=np.float64)
    if unit in ("m/s2", "m/s^2"):
        x = x / G
    x = x - x.mean()
    fs = float(sample_rate)
    tol = 0.005 + (abs(end_shaft_hz - shaft_hz) / shaft_hz if end_shaft_hz else 0.0)
    sensor_bearing = None
    if sensor is not None:
        try:
            sensor_bearing = kinematics.sensor(sensor).bearing
        except KeyError:
            sensor_bearing = None

    rms = float(np.sqrt(np.mean(x**2)))
    peak = float(np.max(np.abs(x)))
    crest = peak / rms if rms > 0 else 0.0
    kurt = _kurtosis(x)
    iso_band = (2.0 if shaft_hz < 10 else 10.0, min(1000.0, fs / 2.5))
    acc = spectrum(x, fs)
    half = np.fft.rfft(x)  # x has zero mean
    v_rms, vel = _velocity(acc, half, len(x), fs, iso_band)
    given_hz = shaft_hz
    if end_shaft_hz is None:  # a ramp's speeds are measured ones
        shaft_hz = estimate_shaft_speed(acc, shaft_hz)
    freqs = characteristic_frequencies(kinematics, shaft_hz)

    defect_max = max([f.hz for f in freqs if f.kind in ("bpfo", "bpfi", "bsf")] or [10 * shaft_hz])
    bands = kurtogram_band(x, fs, f_min=max(3.0 * defect_max, 500.0), min_bandwidth=2.0 * defect_max)
    if not bands:
        bands = [(fs / 8, fs / 2.5, 0.0)]
    # Evaluate the top kurtogram bands and keep the one whose envelope shows the strongest defect evidence; a
    # healthy machine shows none in any.
    f_max = min(fs / 2, max(10.0 * defect_max, 50 * shaft_hz))
    best: tuple[float, Spectrum, tuple[float, float, float], list[Diagnosis], list[LineAmplitude]] | None = None
    # Candidates: the top kurtogram bands of the signal as it is, and the cepstrum pre-whitened signal (every
    # spectral line's magnitude set to 1, which removes discrete components such as shaft and mesh harmonics and
    # equalises the resonances; Sawalhi & Randall 2007, Borghesani et al. 2013) demodulated over the whole band
    # above the shaft harmonics: the benchmark method of Smith & Randall's 2015 study of these CWRU records.
    candidates = [(band, half) for band in bands[:3]]
    white = half / np.maximum(np.abs(half), 1e-300)
    white[0] = 0.0
    candidates.append(((max(3.0 * defect_max, 500.0), 0.98 * fs / 2, 0.0), white))
    for band, spec in candidates:
        env = envelope_spectrum(x, fs, (band[0], band[1]), f_max=min(f_max, band[1] - band[0]), half_spectrum=spec)
        found, env_lines = _bearing_diagnoses(env, kinematics, shaft_hz, sensor_bearing, tol, peak)
        top = found[0].score if found else 0.0
        if best is None or top > best[0]:
            best = (top, env, band, found, env_lines)
    assert best is not None
    _, env, band, bearing_found, env_lines = best
    shaft_found, shaft_lines = _shaft_diagnoses(vel, kinematics, shaft_hz, v_rms, tol)
    gear_found, gear_lines = _gear_diagnoses(acc, kinematics, shaft_hz, tol)

    def rms_order(k: int) -> float:
        return _peak(vel, k * shaft_hz, max(tol * k * shaft_hz, 1.5 * vel.resolution))[1] / math.sqrt(2)

    indicators = Indicators(
        velocity_rms_mm_s=round(v_rms, 4),
        iso_zone=iso_zone(v_rms, kinematics.machine_class),
        iso_band_hz=iso_band,
        accel_rms_g=round(rms, 6),
        peak_g=round(peak, 6),
        crest_factor=round(crest, 4),
        kurtosis=round(kurt, 4),
        order_1x_mm_s=round(rms_order(1), 4),
        order_2x_mm_s=round(rms_order(2), 4),
        order_3x_mm_s=round(rms_order(3), 4),
        envelope_band_hz=(round(band[0], 1), round(band[1], 1)),
        band_kurtosis=round(band[2], 4),
        lines=tuple(env_lines + shaft_lines + gear_lines),
        shaft_hz=round(shaft_hz, 4),
        given_shaft_hz=round(given_hz, 4),
    )
    diagnoses = sorted(bearing_found + shaft_found + gear_found, key=lambda d: -d.confidence)
    return Analysis(
        indicators=indicators,
        diagnoses=tuple(diagnoses),
        spectrum=acc,
        envelope=env,
        order_spectrum=order_spectrum(x, fs, shaft_hz, end_shaft_hz=end_shaft_hz),
        frequencies=tuple(freqs),
        features=_features(half, acc.x, env_lines, kurt, crest, rms, band[2]),
    )
