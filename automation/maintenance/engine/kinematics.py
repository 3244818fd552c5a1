"""Machine kinematics: what rotates in an asset and at which frequencies its parts announce their faults.

Pure Python, no Django. An asset is a set of shafts (speeds as ratios of the reference shaft, whose speed each
capture carries), rolling bearings (by catalogue model or by typed geometry), gear pairs and sensor locations.
`characteristic_frequencies` turns that and a shaft speed into the frequencies a reliability engineer looks for:
shaft orders, BPFO/BPFI/BSF/FTF per bearing, gear mesh.

Bearing defect frequencies (rolling elements n, ball diameter d, pitch diameter D, contact angle a, shaft f_r,
stationary outer ring):

    FTF  = f_r/2 (1 - d/D cos a)            cage
    BPFO = n f_r/2 (1 - d/D cos a)          outer race
    BPFI = n f_r/2 (1 + d/D cos a)          inner race
    BSF  = D f_r/(2d) (1 - (d/D cos a)^2)   ball spin (a ball defect strikes both races: 2 x BSF)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "BEARING_CATALOGUE",
    "ISO_ZONE_LIMITS",
    "Bearing",
    "BearingGeometry",
    "FaultFrequency",
    "Gear",
    "Kinematics",
    "KinematicsError",
    "Sensor",
    "Shaft",
    "bearing_geometry",
    "characteristic_frequencies",
    "kinematics_from_dict",
]

INCH_MM = 25.4


class KinematicsError(ValueError):
    """A description of a machine that cannot be used, with the place of each problem."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


@dataclass(frozen=True)
class BearingGeometry:
    """Rolling-bearing geometry: number of rolling elements, ball and pitch diameters (mm), contact angle (deg)."""

    model: str
    elements: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0

    @property
    def _ratio(self) -> float:
        return self.ball_diameter_mm / self.pitch_diameter_mm * math.cos(math.radians(self.contact_angle_deg))

    @property
    def ftf(self) -> float:
        """Cage frequency as a multiple of shaft speed."""
        return 0.5 * (1.0 - self._ratio)

    @property
    def bpfo(self) -> float:
        return 0.5 * self.elements * (1.0 - self._ratio)

    @property
    def bpfi(self) -> float:
        return 0.5 * self.elements * (1.0 + self._ratio)

    @property
    def bsf(self) -> float:
        return self.pitch_diameter_mm / (2.0 * self.ball_diameter_mm) * (1.0 - self._ratio**2)


def _inch(model: str, n: int, d_in: float, pd_in: float, angle: float = 0.0) -> BearingGeometry:
    return BearingGeometry(model, n, round(d_in * INCH_MM, 4), round(pd_in * INCH_MM, 4), angle)


# Geometry of common bearings. The CWRU test rig's two (SKF 6205-2RS JEM at the drive end, SKF 6203-2RS JEM at
# the fan end) are as CWRU documents them; the IMS rig's Rexnord ZA-2115 as published with that data; the others
# are nominal deep-groove-ball geometries (ball count and ball diameter as commonly listed for the series, pitch
# diameter the mean of bore and outside diameter). Manufacturers differ slightly: type the geometry in when the
# exact figures are known.
BEARING_CATALOGUE: dict[str, BearingGeometry] = {
    g.model: g
    for g in [
        _inch("6205", 9, 0.3126, 1.537),
        _inch("6203", 8, 0.2656, 1.122),
        _inch("ZA-2115", 16, 0.331, 2.815, 15.17),
        BearingGeometry("6200", 7, 4.762, 20.0),
        BearingGeometry("6201", 7, 5.953, 22.0),
        BearingGeometry("6202", 8, 5.953, 25.5),
        BearingGeometry("6204", 8, 7.938, 33.5),
        BearingGeometry("6206", 9, 9.525, 46.5),
        BearingGeometry("6207", 9, 11.112, 53.5),
        BearingGeometry("6208", 9, 12.7, 60.0),
        BearingGeometry("6209", 10, 12.7, 65.0),
        BearingGeometry("6210", 10, 12.7, 70.0),
        BearingGeometry("6302", 7, 7.144, 28.5),
        BearingGeometry("6303", 7, 7.938, 31.0),
        BearingGeometry("6304", 7, 9.525, 36.0),
        BearingGeometry("6305", 8, 10.319, 44.5),
        BearingGeometry("6306", 8, 11.906, 52.5),
        BearingGeometry("6307", 8, 13.494, 57.5),
        BearingGeometry("6308", 8, 15.081, 65.0),
        BearingGeometry("6309", 8, 17.462, 72.5),
        BearingGeometry("6310", 8, 19.05, 80.0),
    ]
}
for _alias, _model in (("SKF 6205", "6205"), ("6205-2RS", "6205"), ("SKF 6203", "6203"), ("6203-2RS", "6203")):
    BEARING_CATALOGUE[_alias] = BEARING_CATALOGUE[_model]


def bearing_geometry(model: str) -> BearingGeometry:
    """The catalogue geometry of a bearing model ('6205', 'SKF 6205', '6205-2RS JEM' all find the 6205)."""
    key = model.strip().upper().replace("SKF ", "").replace("NSK ", "").replace("FAG ", "")
    for suffix in (" JEM", "-2RS", "-2Z", "-ZZ", "-RS", "-Z", " C3"):
        key = key.replace(suffix, "")
    key = key.strip()
    for name, geometry in BEARING_CATALOGUE.items():
        if name.upper() == key:
            return geometry
    raise KeyError(model)


# ISO 20816-3 (and the ISO 10816-1 classes still widely quoted) zone boundaries of broadband velocity RMS, mm/s:
# (A/B, B/C, C/D). Zone A: newly commissioned; B: unrestricted long-term operation; C: restricted, plan
# maintenance; D: damage likely.
ISO_ZONE_LIMITS: dict[str, tuple[float, float, float]] = {
    "I": (0.71, 1.8, 4.5),  # ISO 10816-1 class I: small machines up to 15 kW
    "II": (1.12, 2.8, 7.1),  # class II: medium machines 15-75 kW
    "III": (1.8, 4.5, 11.2),  # class III: large machines, rigid foundations
    "IV": (2.8, 7.1, 18.0),  # class IV: large machines, soft foundations
    "group1_rigid": (2.3, 4.5, 7.1),  # ISO 20816-3 group 1 (300 kW - 50 MW)
    "group1_flexible": (3.5, 7.1, 11.0),
    "group2_rigid": (1.4, 2.8, 4.5),  # ISO 20816-3 group 2 (15 - 300 kW)
    "group2_flexible": (2.3, 4.5, 7.1),
}


@dataclass(frozen=True)
class Shaft:
    """A shaft; `ratio` is its speed over the reference shaft's (the speed each capture carries)."""

    name: str
    ratio: float = 1.0
    nominal_rpm: float | None = None


@dataclass(frozen=True)
class Bearing:
    name: str
    shaft: str
    geometry: BearingGeometry


@dataclass(frozen=True)
class Gear:
    """A gear with `teeth` on `shaft`; the mesh frequency is teeth x that shaft's speed."""

    name: str
    shaft: str
    teeth: int


@dataclass(frozen=True)
class Sensor:
    """An accelerometer: on which bearing's housing (or shaft), which axes."""

    name: str
    bearing: str | None = None
    axes: tuple[str, ...] = ("radial",)


@dataclass(frozen=True)
class Kinematics:
    shafts: tuple[Shaft, ...]
    bearings: tuple[Bearing, ...] = ()
    gears: tuple[Gear, ...] = ()
    sensors: tuple[Sensor, ...] = ()
    machine_class: str = "II"

    def shaft(self, name: str) -> Shaft:
        for shaft in self.shafts:
            if shaft.name == name:
                return shaft
        raise KeyError(name)

    def sensor(self, name: str) -> Sensor:
        for sensor in self.sensors:
            if sensor.name == name:
                return sensor
        raise KeyError(name)

    @property
    def nominal_rpm(self) -> float | None:
        return self.shafts[0].nominal_rpm if self.shafts else None


@dataclass(frozen=True)
class FaultFrequency:
    """A characteristic frequency of one component: `kind` is one of shaft, bpfo, bpfi, bsf, ftf, mesh."""

    component: str
    kind: str
    hz: float
    shaft_hz: float
    label: str = field(default="")


def characteristic_frequencies(kinematics: Kinematics, shaft_hz: float) -> list[FaultFrequency]:
    """Every component's characteristic frequencies at the reference shaft speed `shaft_hz` (Hz)."""
    out: list[FaultFrequency] = []
    speeds = {shaft.name: shaft.ratio * shaft_hz for shaft in kinematics.shafts}
    for shaft in kinematics.shafts:
        out.append(FaultFrequency(shaft.name, "shaft", speeds[shaft.name], speeds[shaft.name], f"{shaft.name} 1x"))
    for bearing in kinematics.bearings:
        fr = speeds[bearing.shaft]
        g = bearing.geometry
        for kind, factor in (("bpfo", g.bpfo), ("bpfi", g.bpfi), ("bsf", g.bsf), ("ftf", g.ftf)):
            out.append(FaultFrequency(bearing.name, kind, factor * fr, fr, f"{bearing.name} {kind.upper()}"))
    for gear in kinematics.gears:
        fr = speeds[gear.shaft]
        out.append(FaultFrequency(gear.name, "mesh", gear.teeth * fr, fr, f"{gear.name} mesh"))
    return out


def _number(value: object, place: str, errors: dict[str, str], *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        errors[place] = "must be a number"
        return 0.0
    if positive and float(value) <= 0:
        errors[place] = "must be positive"
    return float(value)


def kinematics_from_dict(data: Mapping[str, object]) -> Kinematics:
    """Parse and check a machine description (the API's JSON), raising KinematicsError with every problem.

    {"machine_class": "II", "shafts": [{"name": "motor", "ratio": 1, "nominal_rpm": 1797}],
     "bearings": [{"name": "drive-end bearing", "shaft": "motor", "model": "6205"} | {..., "elements": 9,
     "ball_diameter_mm": 7.94, "pitch_diameter_mm": 39.04, "contact_angle_deg": 0}],
     "gears": [{"name": "pinion", "shaft": "motor", "teeth": 23}],
     "sensors": [{"name": "DE", "bearing": "drive-end bearing", "axes": ["radial"]}]}
    """
    errors: dict[str, str] = {}
    machine_class = str(data.get("machine_class", "II"))
    if machine_class not in ISO_ZONE_LIMITS:
        errors["machine_class"] = f"unknown; one of {', '.join(ISO_ZONE_LIMITS)}"

    def items(key: str) -> Sequence[Mapping[str, object]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            errors[key] = "must be a list of objects"
            return []
        return value

    def name_of(item: Mapping[str, object], place: str, seen: set[str]) -> str:
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            errors[f"{place}.name"] = "required"
            return ""
        if name in seen:
            errors[f"{place}.name"] = f"{name!r} is used twice"
        seen.add(name)
        return name

    shafts: list[Shaft] = []
    names: set[str] = set()
    for i, item in enumerate(items("shafts")):
        name = name_of(item, f"shafts[{i}]", names)
        ratio = _number(item.get("ratio", 1.0), f"shafts[{i}].ratio", errors)
        rpm_value = item.get("nominal_rpm")
        rpm = None if rpm_value is None else _number(rpm_value, f"shafts[{i}].nominal_rpm", errors)
        shafts.append(Shaft(name, ratio, rpm))
    if not shafts and "shafts" not in errors:
        errors["shafts"] = "at least one shaft"
    shaft_names = {s.name for s in shafts}

    bearings: list[Bearing] = []
    bearing_names: set[str] = set()
    for i, item in enumerate(items("bearings")):
        place = f"bearings[{i}]"
        name = name_of(item, place, bearing_names)
        shaft = str(item.get("shaft", shafts[0].name if shafts else ""))
        if shaft not in shaft_names:
            errors[f"{place}.shaft"] = f"no shaft {shaft!r}"
        model = item.get("model")
        if "elements" in item:
            n = item.get("elements")
            if not isinstance(n, int) or isinstance(n, bool) or n < 3:
                errors[f"{place}.elements"] = "an integer of at least 3"
                n = 3
            d = _number(item.get("ball_diameter_mm"), f"{place}.ball_diameter_mm", errors)
            pd = _number(item.get("pitch_diameter_mm"), f"{place}.pitch_diameter_mm", errors)
            angle = _number(item.get("contact_angle_deg", 0.0), f"{place}.contact_angle_deg", errors, positive=False)
            if d and pd and d >= pd:
                errors[f"{place}.ball_diameter_mm"] = "must be smaller than the pitch diameter"
            if not 0 <= angle < 90:
                errors[f"{place}.contact_angle_deg"] = "between 0 and 90"
            geometry = BearingGeometry(str(model or "custom"), n, d or 1.0, pd or 2.0, angle)
        elif isinstance(model, str) and model:
            try:
                geometry = bearing_geometry(model)
            except KeyError:
                errors[f"{place}.model"] = f"{model!r} is not in the catalogue; type its geometry in"
                continue
        else:
            errors[f"{place}.model"] = "a catalogue model or the geometry (elements, ball/pitch diameters)"
            continue
        bearings.append(Bearing(name, shaft, geometry))

    gears: list[Gear] = []
    for i, item in enumerate(items("gears")):
        place = f"gears[{i}]"
        name = name_of(item, place, names)
        shaft = str(item.get("shaft", ""))
        if shaft not in shaft_names:
            errors[f"{place}.shaft"] = f"no shaft {shaft!r}"
        teeth = item.get("teeth")
        if not isinstance(teeth, int) or isinstance(teeth, bool) or teeth < 3:
            errors[f"{place}.teeth"] = "an integer of at least 3"
            teeth = 3
        gears.append(Gear(name, shaft, teeth))

    sensors: list[Sensor] = []
    sensor_names: set[str] = set()
    for i, item in enumerate(items("sensors")):
        place = f"sensors[{i}]"
        name = name_of(item, place, sensor_names)
        bearing = item.get("bearing")
        if bearing is not None and bearing not in bearing_names:
            errors[f"{place}.bearing"] = f"no bearing {bearing!r}"
        axes = item.get("axes", ["radial"])
        if not isinstance(axes, list) or not axes or not all(isinstance(a, str) and a for a in axes):
            errors[f"{place}.axes"] = "a non-empty list of axis names"
            axes = ["radial"]
        sensors.append(Sensor(name, None if bearing is None else str(bearing), tuple(str(a) for a in axes)))
    if errors:
        raise KinematicsError(errors)
    return Kinematics(tuple(shafts), tuple(bearings), tuple(gears), tuple(sensors), machine_class)
