"""Reader for NASA C-MAPSS turbofan files (train_FD00x.txt / test_FD00x.txt).

Each non-blank line is whitespace separated: unit number, cycle, three
operating settings and 21 sensor readings. We return one DataFrame per engine
indexed by cycle, which is the shape every other module of the engine expects.
Malformed input raises ``CmapssFormatError`` naming the 1-based line number,
because these files are hand-copied around and a silent misparse would poison
a benchmark.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

SETTING_COLUMNS: tuple[str, ...] = tuple(f"setting_{i}" for i in range(1, 4))
SENSOR_COLUMNS: tuple[str, ...] = tuple(f"sensor_{i}" for i in range(1, 22))
_FIELDS_PER_LINE = 2 + len(SETTING_COLUMNS) + len(SENSOR_COLUMNS)


class CmapssFormatError(ValueError):
    """A C-MAPSS line could not be parsed; ``line_number`` is 1-based."""

    def __init__(self, *, line_number: int, message: str) -> None:
        super().__init__(f"line {line_number}: {message}")
        self.line_number = line_number


def _parse_integer(*, token: str, name: str, line_number: int) -> int:
    try:
        value = float(token)
    except ValueError:
        raise CmapssFormatError(line_number=line_number, message=f"{name} {token!r} is not a number") from None
    # Some copies of the files write "1.0" for unit/cycle; accept integral floats.
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise CmapssFormatError(
            line_number=line_number,
            message=f"{name} {token!r} is not a positive integer",
        )
    return int(value)


def parse_cmapss(*, text: str) -> list[tuple[int, pd.DataFrame]]:
    """Parse C-MAPSS text into ``[(unit, frame)]`` in order of first appearance.

    Each frame is indexed by ``cycle`` with columns ``setting_1..3`` and
    ``sensor_1..21`` (float64). Cycles must increase strictly within a unit.
    """
    rows_by_unit: dict[int, list[list[float]]] = {}
    cycles_by_unit: dict[int, list[int]] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue  # the official files end with blank/trailing-space lines
        if len(tokens) != _FIELDS_PER_LINE:
            raise CmapssFormatError(
                line_number=line_number,
                message=f"expected {_FIELDS_PER_LINE} fields, found {len(tokens)}",
            )
        unit = _parse_integer(token=tokens[0], name="unit", line_number=line_number)
        cycle = _parse_integer(token=tokens[1], name="cycle", line_number=line_number)
        values: list[float] = []
        for position, token in enumerate(tokens[2:], start=3):
            try:
                value = float(token)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise CmapssFormatError(
                    line_number=line_number,
                    message=f"field {position} {token!r} is not a finite number",
                )
            values.append(value)
        previous = cycles_by_unit.get(unit)
        if previous and cycle <= previous[-1]:
            raise CmapssFormatError(
                line_number=line_number,
                message=f"unit {unit} cycle {cycle} does not follow cycle {previous[-1]}",
            )
        rows_by_unit.setdefault(unit, []).append(values)
        cycles_by_unit.setdefault(unit, []).append(cycle)

    engines: list[tuple[int, pd.DataFrame]] = []
    for unit, rows in rows_by_unit.items():
        frame = pd.DataFrame(
            np.asarray(rows, dtype=np.float64),
            index=pd.Index(cycles_by_unit[unit], name="cycle", dtype=np.int64),
            columns=list(SETTING_COLUMNS + SENSOR_COLUMNS),
        )
        engines.append((unit, frame))
    return engines


def read_cmapss(*, path: str | Path) -> list[tuple[int, pd.DataFrame]]:
    """Read a C-MAPSS file from disk; see ``parse_cmapss``."""
    return parse_cmapss(text=Path(path).read_text(encoding="ascii"))
