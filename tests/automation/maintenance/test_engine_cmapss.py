"""C-MAPSS reader: shape of the parsed engines and line-numbered errors."""

from __future__ import annotations

import pytest

from automation.maintenance.engine.cmapss import (
    SENSOR_COLUMNS,
    SETTING_COLUMNS,
    CmapssFormatError,
    parse_cmapss,
    read_cmapss,
)


def _line(unit: int, cycle: int, base: float = 1.0) -> str:
    values = [f"{base + i / 100:.4f}" for i in range(24)]
    return " ".join([str(unit), str(cycle), *values])


def test_parses_units_in_order_indexed_by_cycle() -> None:
    text = "\n".join([_line(1, 1), _line(1, 2, 2.0), _line(2, 1, 3.0), "", "  "]) + "\n"

    engines = parse_cmapss(text=text)

    assert [unit for unit, _ in engines] == [1, 2]
    first = engines[0][1]
    assert list(first.index) == [1, 2]
    assert first.index.name == "cycle"
    assert list(first.columns) == list(SETTING_COLUMNS + SENSOR_COLUMNS)
    assert first.loc[2, "setting_1"] == pytest.approx(2.0)
    assert first.loc[2, "sensor_21"] == pytest.approx(2.23)


def test_reads_tab_separated_file(tmp_path) -> None:
    path = tmp_path / "train_FD001.txt"
    path.write_text("\t".join(_line(7, 3).split()) + "\n")

    ((unit, frame),) = read_cmapss(path=path)

    assert unit == 7
    assert list(frame.index) == [3]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("1 3 0.1 0.2", "expected 26 fields, found 4"),
        (_line(1, 3).replace("1.0500", "abc"), "is not a finite number"),
        (_line(1, 3).replace("1.0500", "nan"), "is not a finite number"),
        ("x " + _line(1, 3).split(" ", 1)[1], "unit 'x' is not a number"),
        (_line(1, 2), "does not follow cycle 2"),
        (_line(1, 0), "is not a positive integer"),
    ],
)
def test_malformed_line_is_reported_with_its_line_number(bad_line: str, message: str) -> None:
    # Line 3 is the bad one; a blank line 2 must still be counted.
    text = "\n".join([_line(1, 1), "", bad_line, _line(1, 4)])
    # For the cycle-order case the previous cycle must be 2: shift line 1.
    if "does not follow" in message:
        text = "\n".join([_line(1, 2), "", bad_line])

    with pytest.raises(CmapssFormatError) as caught:
        parse_cmapss(text=text)

    assert caught.value.line_number == 3
    assert str(caught.value).startswith("line 3: ")
    assert message in str(caught.value)
