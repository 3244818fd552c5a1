"""Did a corrective action work? The defect rate after its implementation against before, on evidence.

One-sided Fisher's exact test of "fewer defects after than before" on the 2x2 table (defective / good units,
before / after). Verdicts:

* `not_enough_data`: fewer than `min_units` inspected units on either side, or fewer than `min_defects_before`
  defects before (a rate of zero cannot drop), or the rate dropped but not yet significantly (more units needed);
* `effective`: the rate after is lower, p < `alpha`;
* `not_effective`: with at least `min_units` units after, the rate after is not lower than before (equal or higher):
  the action is reopened.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import fisher_exact

__all__ = ["Effectiveness", "effectiveness"]


@dataclass(frozen=True, slots=True)
class Effectiveness:
    verdict: str  # effective, not_effective, not_enough_data
    units_before: int
    defects_before: int
    units_after: int
    defects_after: int
    rate_before: float | None
    rate_after: float | None
    p_value: float | None
    reason: str


def effectiveness(
    *,
    units_before: int,
    defects_before: int,
    units_after: int,
    defects_after: int,
    min_units: int = 30,
    min_defects_before: int = 3,
    alpha: float = 0.05,
) -> Effectiveness:
    if not (0 <= defects_before <= units_before and 0 <= defects_after <= units_after):
        raise ValueError("defects must be between 0 and the number of units")
    rate_before = defects_before / units_before if units_before else None
    rate_after = defects_after / units_after if units_after else None

    def result(verdict: str, p: float | None, reason: str) -> Effectiveness:
        return Effectiveness(
            verdict, units_before, defects_before, units_after, defects_after, rate_before, rate_after, p, reason
        )

    if units_before < min_units or defects_before < min_defects_before:
        return result(
            "not_enough_data",
            None,
            f"{units_before} units and {defects_before} defects before the action; at least {min_units} units and "
            f"{min_defects_before} defects are needed to compare",
        )
    if units_after < min_units:
        return result(
            "not_enough_data", None, f"{units_after} units inspected since the action; at least {min_units} needed"
        )
    table = [[defects_after, units_after - defects_after], [defects_before, units_before - defects_before]]
    p = float(fisher_exact(table, alternative="less")[1])
    assert rate_before is not None and rate_after is not None
    if rate_after < rate_before and p < alpha:
        return result(
            "effective", p, f"the defect rate fell from {rate_before:.1%} to {rate_after:.1%} (Fisher p = {p:.3g})"
        )
    if rate_after >= rate_before:
        return result(
            "not_effective",
            p,
            f"the defect rate did not fall: {rate_before:.1%} before, {rate_after:.1%} after {units_after} units",
        )
    return result(
        "not_enough_data",
        p,
        f"the defect rate fell from {rate_before:.1%} to {rate_after:.1%}, not yet significantly (Fisher p = {p:.3g})",
    )
