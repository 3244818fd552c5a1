"""SPC (limits, run rules, capability) and the per-unit trace ranking, on data with known answers (no Django)."""

import numpy as np
import pytest

from automation.quality.engine import UnitTrace, capability, imr_chart, rank_trace_causes, run_rules, xbar_r_chart


def test_imr_limits_and_rules_flag_a_shift_and_nothing_on_noise():
    """Catches: wrong I-MR constants, or run rules that fire on in-control noise or miss a sustained shift."""
    rng = np.random.default_rng(0)
    noise = rng.normal(10.0, 1.0, 200)
    chart = imr_chart(noise)
    assert chart.sigma == pytest.approx(1.0, rel=0.15)
    assert chart.ucl - chart.center == pytest.approx(3 * chart.sigma)
    assert not [v for v in chart.violations if v.rule == 1]  # no point beyond 3 sigma in 200 normal ones
    shifted = np.concatenate([noise[:100], noise[100:] + 1.5])
    chart = imr_chart(shifted, baseline=100)
    before = [v for v in chart.violations if v.index < 100]
    after = [v for v in chart.violations if v.index >= 100]
    assert len(after) >= 3 * max(1, len(before))
    assert any(v.rule == 2 for v in after)


def test_run_rules_each_pattern():
    """Catches: a Western Electric / Nelson rule that does not fire on its own textbook pattern."""
    assert [v.rule for v in run_rules([0, 0, 4, 0], center=0, sigma=1)] == [1]
    assert [v.index for v in run_rules([0.5] * 9, center=0, sigma=1, rules=[2])] == [8]
    assert [v.rule for v in run_rules([0, 0.1, 0.2, 0.3, 0.4, 0.5], center=0, sigma=1, rules=[3])] == [3]
    alternating = [(-1) ** i * 0.5 for i in range(14)]
    assert [v.rule for v in run_rules(alternating, center=0, sigma=1, rules=[4])] == [4]
    assert [v.rule for v in run_rules([0, 2.5, 2.5], center=0, sigma=1, rules=[5])] == [5]


def test_xbar_r_and_capability():
    """Catches: X-bar/R limits off the A2/D4 constants, or Cp/Cpk computed against the wrong sigma or side."""
    rng = np.random.default_rng(1)
    groups = rng.normal(5.0, 0.1, size=(50, 5))
    chart = xbar_r_chart(groups.tolist())
    r_bar = float(np.mean(groups.max(axis=1) - groups.min(axis=1)))
    assert chart.ucl == pytest.approx(chart.center + 0.577 * r_bar)
    assert chart.range_ucl == pytest.approx(2.114 * r_bar)
    cap = capability([5.0, 5.1, 4.9, 5.0], lsl=4.0, usl=6.0, sigma=0.1)
    assert cap.cp == pytest.approx(2.0 / 0.6)
    off = capability([5.5, 5.5], lsl=4.0, usl=6.0, sigma=0.1)
    assert off.cpk == pytest.approx(0.5 / 0.3)


def _cycle_trace(cycles: int, *, fault_at: float | None = None, seed: int = 0) -> UnitTrace:
    """A command toggling every ~5 s and a position following it 0.3 to 0.7 s later; optionally the command
    closes, the position follows, then drops out on its own while the command holds (the fault), and the unit
    fails 3 s later."""
    rng = np.random.default_rng(seed)
    cmd_t, cmd_v, pos_t, pos_v = [0.0], [0.0], [0.0], [0.0]
    t, value = 0.0, 0.0
    for _ in range(cycles):
        t += 5 + rng.random()
        value = 1.0 - value
        cmd_t.append(t)
        cmd_v.append(value)
        pos_t.append(t + 0.3 + 0.4 * rng.random())
        pos_v.append(value)
    end = t + 5
    if fault_at is not None:
        assert value == 0.0
        cmd_t.append(end)
        cmd_v.append(1.0)
        pos_t += [end + 0.5, end + 2.0]
        pos_v += [1.0, 0.0]
        end += 5.0
    return UnitTrace({"cmd": (tuple(cmd_t), tuple(cmd_v)), "pos": (tuple(pos_t), tuple(pos_v))}, end)


def test_trace_ranking_blames_the_variable_its_cause_does_not_explain():
    """Catches: blaming the command (which behaved) for the position that dropped out on its own, or guessing
    when the failed unit looks like the healthy ones."""
    reference = [_cycle_trace(20, seed=s) for s in range(5)]
    parents = {"pos": ("cmd",)}
    failed = _cycle_trace(10, fault_at=1.0, seed=9)
    ranking = rank_trace_causes(reference=reference, failed=failed, candidates=["cmd", "pos"], parents=parents,
                                order=["cmd", "pos"], window_s=10)  # fmt: skip
    assert ranking.verdict == "ranked"
    assert ranking.causes[0].variable == "pos"
    assert ranking.causes[0].score > ranking.causes[1].score + 2
    faulty_score = ranking.causes[0].score
    healthy = _cycle_trace(10, seed=11)
    ranking = rank_trace_causes(reference=reference, failed=healthy, candidates=["cmd", "pos"], parents=parents,
                                order=["cmd", "pos"], window_s=10)  # fmt: skip
    top = ranking.causes[0].score if ranking.causes else 0.0
    # A healthy unit's transitions can sit in the tail of the healthy ones; they stay below the fault.
    assert ranking.verdict == "cannot_tell" or top < faulty_score


def test_trace_ranking_says_so_without_a_reference():
    """Catches: a ranking made up from no healthy data at all."""
    failed = _cycle_trace(4, fault_at=1.0)
    ranking = rank_trace_causes(reference=[], failed=failed, candidates=["cmd", "pos"], parents={}, window_s=10)
    assert ranking.verdict == "cannot_tell" and "reference" in ranking.reason
