"""Synthesised vibration with known faults, for the vibration tests (acceleration in g)."""

import numpy as np

from automation.maintenance.engine.kinematics import Kinematics, kinematics_from_dict

FS = 12_000.0
SHAFT_HZ = 29.95
KINEMATICS_DICT = {
    "machine_class": "I",
    "shafts": [{"name": "motor shaft", "nominal_rpm": SHAFT_HZ * 60}],
    "bearings": [
        {"name": "drive-end bearing", "shaft": "motor shaft", "model": "6205"},
        {"name": "fan-end bearing", "shaft": "motor shaft", "model": "6203"},
    ],
    "sensors": [{"name": "DE", "bearing": "drive-end bearing", "axes": ["radial"]}],
}


def kinematics() -> Kinematics:
    return kinematics_from_dict(KINEMATICS_DICT)


def bearing_fault(
    fault: str | None,
    *,
    amplitude: float = 1.0,
    seconds: float = 1.0,
    fs: float = FS,
    shaft_hz: float = SHAFT_HZ,
    noise: float = 0.1,
    unbalance_g: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Impulses at the 6205's defect rate, each ringing a 3.2 kHz resonance, with slip jitter and white noise.
    Inner race: impulse heights modulated at shaft speed; rolling element: at 2 x BSF, modulated at the cage
    speed. `unbalance_g`: a 1x sine of that amplitude."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    x = rng.normal(0.0, noise, n)
    g = kinematics().bearings[0].geometry
    if fault is not None:
        rate, modulation = {
            "outer_race": (g.bpfo * shaft_hz, None),
            "inner_race": (g.bpfi * shaft_hz, shaft_hz),
            "rolling_element": (2 * g.bsf * shaft_hz, g.ftf * shaft_hz),
        }[fault]
        ring_t = np.arange(int(0.004 * fs)) / fs
        ring = np.exp(-900.0 * ring_t) * np.sin(2 * np.pi * 3200.0 * ring_t)
        impulses = np.zeros(n)
        moment = 0.0
        while moment < seconds:
            height = amplitude
            if modulation is not None:
                height *= 0.5 * (1 + np.cos(2 * np.pi * modulation * moment))
            index = int(moment * fs)
            if index < n:
                impulses[index] += height
            moment += (1.0 + rng.normal(0.0, 0.01)) / rate
        x += np.convolve(impulses, ring)[:n]
    if unbalance_g:
        x += unbalance_g * np.sin(2 * np.pi * shaft_hz * t)
    return x
