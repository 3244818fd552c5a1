"""The vibration engine on synthesised signals whose faults are known: the right part is named, severity grows
with the fault's amplitude, a healthy signal gets no diagnosis, and the arithmetic matches CWRU's figures."""

import numpy as np
import pytest

from automation.maintenance.engine.kinematics import (
    KinematicsError,
    bearing_geometry,
    characteristic_frequencies,
    kinematics_from_dict,
)
from automation.maintenance.engine.vibration import (
    analyse_capture,
    envelope_spectrum,
    estimate_shaft_speed,
    iso_zone,
    kurtogram_band,
    order_spectrum,
    spectrum,
)
from tests.automation.maintenance.vibration_signals import FS, SHAFT_HZ, bearing_fault, kinematics


def test_defect_frequencies_of_the_6205_match_cwru():
    g = bearing_geometry("SKF 6205-2RS JEM")
    assert g.bpfi == pytest.approx(5.4152, abs=2e-3)
    assert g.bpfo == pytest.approx(3.5848, abs=2e-3)
    assert g.ftf == pytest.approx(0.39828, abs=1e-3)
    assert g.bsf == pytest.approx(2.3571, abs=2e-3)
    freqs = {(f.component, f.kind): f.hz for f in characteristic_frequencies(kinematics(), 30.0)}
    assert freqs[("drive-end bearing", "bpfo")] == pytest.approx(3.5848 * 30, rel=1e-3)
    assert freqs[("motor shaft", "shaft")] == 30.0


def test_kinematics_errors_name_each_place():
    with pytest.raises(KinematicsError) as caught:
        kinematics_from_dict(
            {
                "machine_class": "V",
                "shafts": [{"name": "s"}],
                "bearings": [{"name": "b", "shaft": "t", "model": "9999"}],
                "sensors": [{"name": "x", "bearing": "nope"}],
            }
        )
    assert set(caught.value.errors) == {"machine_class", "bearings[0].shaft", "bearings[0].model", "sensors[0].bearing"}


@pytest.mark.parametrize("fault", ["outer_race", "inner_race", "rolling_element"])
def test_the_failing_part_is_named(fault):
    x = bearing_fault(fault, amplitude=1.5, seed=3)
    analysis = analyse_capture(x, FS, SHAFT_HZ, kinematics(), sensor="DE")
    bearing = [d for d in analysis.diagnoses if d.component.endswith("bearing")]
    assert bearing, analysis.indicators
    assert (bearing[0].component, bearing[0].fault) == ("drive-end bearing", fault)
    assert bearing[0].label == f"drive-end bearing 6205, {fault.replace('_', ' ')}"
    assert bearing[0].evidence and bearing[0].evidence[0].snr_db > 9
    assert 0 < bearing[0].confidence <= 1


def test_severity_grows_with_amplitude():
    severities = []
    for amplitude in (0.5, 1.0, 2.0, 4.0):
        analysis = analyse_capture(bearing_fault("outer_race", amplitude=amplitude, seed=1), FS, SHAFT_HZ, kinematics())
        [diagnosis] = [d for d in analysis.diagnoses if d.fault == "outer_race"]
        severities.append(diagnosis.severity)
    assert severities == sorted(severities) and severities[-1] > severities[0]


@pytest.mark.parametrize("seed", range(5))
def test_a_healthy_machine_gets_no_diagnosis(seed):
    x = bearing_fault(None, seed=seed, unbalance_g=0.005)
    analysis = analyse_capture(x, FS, SHAFT_HZ, kinematics(), sensor="DE")
    assert analysis.diagnoses == ()
    assert analysis.indicators.iso_zone == "A"


def test_unbalance_is_a_strong_1x():
    x = bearing_fault(None, unbalance_g=0.2, seed=2)  # 0.2 g at 30 Hz is about 7 mm/s RMS
    analysis = analyse_capture(x, FS, SHAFT_HZ, kinematics(), sensor="DE")
    assert [(d.component, d.fault) for d in analysis.diagnoses] == [("motor shaft", "unbalance")]
    assert analysis.indicators.iso_zone in ("C", "D")
    assert analysis.indicators.order_1x_mm_s == pytest.approx(
        0.2 * 9806.65 / (2 * np.pi * SHAFT_HZ) / np.sqrt(2), rel=0.05
    )
    assert analysis.indicators.velocity_rms_mm_s == pytest.approx(analysis.indicators.order_1x_mm_s, rel=0.1)


def test_spectra_put_lines_where_they_belong():
    t = np.arange(int(FS)) / FS
    x = np.sin(2 * np.pi * 100 * t) * (1 + 0.5 * np.sin(2 * np.pi * 7 * t)) + 0.3 * np.sin(2 * np.pi * 60 * t)
    s = spectrum(x, FS)
    assert s.x[np.argmax(s.y)] == pytest.approx(100, abs=1)
    assert s.y[np.argmax(s.y)] == pytest.approx(1.0, rel=0.05)
    env = envelope_spectrum(x, FS, (80, 120), f_max=50)
    assert env.x[np.argmax(env.y)] == pytest.approx(7, abs=0.5)
    orders = order_spectrum(0.3 * np.sin(2 * np.pi * 60 * t), FS, 20.0)
    assert orders.x[np.argmax(orders.y)] == pytest.approx(3.0, abs=0.05)
    assert iso_zone(1.0, "I") == "B" and iso_zone(5.0, "I") == "D" and iso_zone(0.5, "II") == "A"


def test_the_kurtogram_prefers_impulsive_bands_wide_enough_for_the_harmonics():
    x = bearing_fault("outer_race", amplitude=2.0, seed=4)
    bands = kurtogram_band(x, FS, f_min=500, min_bandwidth=400)
    assert bands and all(lo >= 500 and hi - lo >= 400 for lo, hi, _ in bands)
    assert bands[0][2] > 1.0  # impulsive
    healthy = kurtogram_band(bearing_fault(None, seed=4), FS, f_min=500, min_bandwidth=400)
    assert healthy[0][2] < 0.5 * bands[0][2]


def test_the_flat_forest_gives_scikit_learns_probabilities():
    """The classifier walks its trees as flat arrays (speed); the probabilities must be scikit-learn's own, also
    after a round trip through the stored artefact."""
    from automation.maintenance.engine.vibration_learning import VibrationClassifier, train_vibration_classifier

    rng = np.random.default_rng(3)
    labels = [
        str(v) for v in np.array(["normal", "inner_race", "outer_race", "rolling_element"])[rng.integers(0, 4, 200)]
    ]
    centres = {"normal": 0.0, "inner_race": 1.0, "outer_race": 2.0, "rolling_element": 3.0}
    features = [list(rng.normal(centres[label], 1.0, size=12)) for label in labels]
    classifier = VibrationClassifier.from_bytes(train_vibration_classifier(features, labels).to_bytes())
    probe = rng.normal(1.5, 1.5, size=(50, 12))
    expected = classifier.model.predict_proba(probe)
    for row, want in zip(probe, expected, strict=True):
        got = classifier.predict(list(row))
        assert got.label == classifier.classes[int(np.argmax(want))]
        assert got.probability == round(float(np.max(want)), 4)
    assert "_flat_forest" in classifier.__dict__
    assert "_flat_forest" not in VibrationClassifier.from_bytes(classifier.to_bytes()).__dict__


def _with_shaft_lines(x: np.ndarray, shaft_hz: float, amplitude: float = 0.03) -> np.ndarray:
    """The 1x, 2x and 3x lines every rotating machine shows (residual unbalance, misalignment)."""
    t = np.arange(len(x)) / FS
    return x + sum(amplitude * np.sin(2 * np.pi * k * shaft_hz * t + k) for k in (1, 2, 3))


@pytest.mark.parametrize("fault", ["outer_race", "inner_race", "rolling_element"])
def test_a_speed_off_by_one_and_a_half_percent_still_names_the_part(fault):
    """The capture says 29.95 Hz, the shaft turns 1.5 % faster: in a 2 s capture (0.5 Hz lines) every harmonic of
    every defect frequency then misses its line (read at the given speed, none of the three faults is named).
    The engine reads the speed from the capture's own 1x-3x lines first."""
    true_hz = SHAFT_HZ * 1.015
    x = _with_shaft_lines(bearing_fault(fault, amplitude=1.5, seed=3, shaft_hz=true_hz, seconds=2.0), true_hz)
    analysis = analyse_capture(x, FS, SHAFT_HZ, kinematics(), sensor="DE")
    assert analysis.indicators.given_shaft_hz == pytest.approx(SHAFT_HZ)
    assert analysis.indicators.shaft_hz == pytest.approx(true_hz, rel=1e-3)
    bearing = [d for d in analysis.diagnoses if d.component.endswith("bearing")]
    assert bearing and (bearing[0].component, bearing[0].fault) == ("drive-end bearing", fault)
    freqs = {(f.component, f.kind): f.hz for f in analysis.frequencies}
    assert freqs[("motor shaft", "shaft")] == pytest.approx(true_hz, rel=1e-3)


def test_the_given_speed_stands_without_agreeing_shaft_lines():
    """No line to read (a quiet machine), or a single line that is not at a multiple of the others (a mains line
    near 2x): the speed sent with the capture is kept."""
    quiet = spectrum(bearing_fault(None, seed=5), FS)
    assert estimate_shaft_speed(quiet, SHAFT_HZ) == SHAFT_HZ
    t = np.arange(int(FS)) / FS
    mains = bearing_fault(None, seed=5) + 0.05 * np.sin(2 * np.pi * 60.0 * t)  # 2x of 29.95 Hz would be 59.9 Hz
    assert estimate_shaft_speed(spectrum(mains, FS), SHAFT_HZ) == SHAFT_HZ
    lines = _with_shaft_lines(bearing_fault(None, seed=5), SHAFT_HZ * 0.992)
    assert estimate_shaft_speed(spectrum(lines, FS), SHAFT_HZ) == pytest.approx(SHAFT_HZ * 0.992, rel=1e-3)


@pytest.mark.parametrize("seed", range(3))
def test_strong_shaft_lines_and_a_speed_error_raise_no_bearing_fault(seed):
    """Bearings in good order on a machine with strong 1x-3x lines (here 2x as high as 1x: misalignment, which
    may be named) and a 1 % speed error: the speed is read from those lines, and no bearing is named."""
    true_hz = SHAFT_HZ * 0.99
    x = _with_shaft_lines(bearing_fault(None, seed=seed, shaft_hz=true_hz), true_hz)
    analysis = analyse_capture(x, FS, SHAFT_HZ, kinematics(), sensor="DE")
    assert analysis.indicators.shaft_hz == pytest.approx(true_hz, rel=2e-3)
    assert [d for d in analysis.diagnoses if d.component.endswith("bearing")] == []
