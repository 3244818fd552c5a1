"""Tabu search on the disjunctive graph of a classic job shop, compiled with numba.

A schedule is one sequence per machine, kept as linked lists (``mach_prev``/``mach_next``); every operation
starts as early as its job and machine predecessors allow, so heads (earliest starts) and tails (time from an
operation's end to the makespan) follow from one topological pass each. A move swaps two adjacent operations at
the start or end of a block on a critical path (Nowicki and Smutnicki's N5): only such swaps can shorten the
schedule, and none of them can make the graph cyclic. Moves are rated in constant time from heads and tails
(Taillard's estimate); the best one that is not tabu is made, even when it makes the schedule longer, and the
swapped pair may not be swapped back for a few iterations. After a long stretch without a better schedule the
search goes back to the best one and kicks it with a few random moves.

Compiled because the search lives on iteration count: pure Python managed 4,000 moves a second, where this does
a few hundred thousand. ``nogil``, so it runs beside CP-SAT's callbacks without holding up the interpreter.
All state lives in arrays owned by the caller, so the search runs in short chunks and resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # numba is not followed (pyproject.toml): its decorator, typed, keeps the signatures checked
    _F = TypeVar("_F", bound=Callable[..., Any])

    def njit(**options: Any) -> Callable[[_F], _F]: ...
else:
    from numba import njit

# indexes into the ``state`` array
IT, STALL, CURRENT, BEST, PROVEN = 0, 1, 2, 3, 4
STATE_SIZE = 5

I64 = npt.NDArray[np.int64]  # every array here: operation indexes (-1: none), times, counters


@njit(cache=True, nogil=True, inline="always")
def _past(neighbour: int, times: I64, p: I64) -> int:  # pragma: no cover
    """How long a path runs through ``neighbour`` up to (heads) or on from (tails) the operation next to it;
    0 where there is none (-1)."""
    return times[neighbour] + p[neighbour] if neighbour >= 0 else 0


@njit(cache=True, nogil=True)
def heads_tails(
    p: I64, job_prev: I64, job_next: I64, mach_prev: I64, mach_next: I64, order: I64, heads: I64, tails: I64
) -> int:  # pragma: no cover
    """Fill ``heads`` and ``tails``; the makespan, or -1 when the sequences form a cycle."""
    n = p.shape[0]
    indegree = np.zeros(n, np.int64)
    for i in range(n):
        indegree[i] = (job_prev[i] >= 0) + (mach_prev[i] >= 0)
    size = 0
    for i in range(n):
        if indegree[i] == 0:
            order[size] = i
            size += 1
    done = 0
    while done < size:
        i = order[done]
        done += 1
        heads[i] = max(_past(job_prev[i], heads, p), _past(mach_prev[i], heads, p))
        for s in (job_next[i], mach_next[i]):
            if s >= 0:
                indegree[s] -= 1
                if indegree[s] == 0:
                    order[size] = s
                    size += 1
    if size < n:
        return -1
    makespan = 0
    for k in range(n - 1, -1, -1):
        i = order[k]
        tails[i] = max(_past(job_next[i], tails, p), _past(mach_next[i], tails, p))
        makespan = max(makespan, heads[i] + p[i])
    return makespan


@njit(cache=True, nogil=True)
def _critical_moves(
    p: I64, job_prev: I64, mach_prev: I64, heads: I64, tails: I64, makespan: int, moves: I64
) -> int:  # pragma: no cover
    """N5 swaps on one critical path, picked at random where paths fork; each row of ``moves`` is the pair
    (first, second) adjacent on their machine. Returns how many; 0 means the schedule is optimal."""
    n = p.shape[0]
    # the path, walked backwards from an operation that ends at the makespan
    path = np.empty(n, np.int64)
    by_machine = np.empty(n, np.bool_)  # by_machine[k]: path[k] follows path[k + 1] on a machine (reversed)
    ends = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        if heads[i] + p[i] == makespan and tails[i] == 0:
            ends[count] = i
            count += 1
    current = ends[np.random.randint(count)]
    length = 0
    while True:
        path[length] = current
        length += 1
        mp, jp = mach_prev[current], job_prev[current]
        via_machine = mp >= 0 and heads[mp] + p[mp] == heads[current]
        via_job = jp >= 0 and heads[jp] + p[jp] == heads[current]
        if via_machine and via_job:
            via_job = np.random.random() < 0.5
            via_machine = not via_job
        if via_machine:
            by_machine[length - 1] = True
            current = mp
        elif via_job:
            by_machine[length - 1] = False
            current = jp
        else:
            break
    # blocks: runs of path operations joined by machine arcs, in time order (path is reversed)
    found = 0
    first_block = True
    k = length - 1
    while k >= 0:
        # the block runs in time from path[k] on while the arcs are machine arcs
        j = k
        while j > 0 and by_machine[j - 1]:
            j -= 1
        # block is path[k] (earliest) ... path[j] (latest)
        size = k - j + 1
        last_block = j == 0
        if size >= 2:
            if not first_block:
                moves[found, 0] = path[k]
                moves[found, 1] = path[k - 1]
                found += 1
            if not last_block and (first_block or size > 2):
                moves[found, 0] = path[j + 1]
                moves[found, 1] = path[j]
                found += 1
        first_block = False
        k = j - 1
    return found


@njit(cache=True, nogil=True)
def _estimate(
    u: int, v: int, p: I64, job_prev: I64, job_next: I64, mach_prev: I64, mach_next: I64, heads: I64, tails: I64
) -> int:  # pragma: no cover
    """Makespan through u and v after swapping them (u right before v on their machine): a lower estimate of
    the new makespan that is exact for the paths through the swapped pair (Taillard)."""
    head_v = max(_past(job_prev[v], heads, p), _past(mach_prev[u], heads, p))
    head_u = max(head_v + p[v], _past(job_prev[u], heads, p))
    tail_u = max(_past(job_next[u], tails, p), _past(mach_next[v], tails, p))
    tail_v = max(tail_u + p[u], _past(job_next[v], tails, p))
    return int(max(head_v + p[v] + tail_v, head_u + p[u] + tail_u))  # numba: int64 either way


@njit(cache=True, nogil=True)
def _swap(u: int, v: int, mach_prev: I64, mach_next: I64) -> None:  # pragma: no cover
    a, b = mach_prev[u], mach_next[v]
    if a >= 0:
        mach_next[a] = v
    mach_prev[v] = a
    mach_next[v] = u
    mach_prev[u] = v
    mach_next[u] = b
    if b >= 0:
        mach_prev[b] = u


@njit(cache=True, nogil=True)
def search(
    p: I64,
    job_prev: I64,
    job_next: I64,
    mach_prev: I64,
    mach_next: I64,
    best_prev: I64,
    best_next: I64,
    best_heads: I64,
    tabu: I64,
    state: I64,
    iterations: int,
    seed: int,
    tenure_min: int,
    tenure_max: int,
    max_stall: int,
    kick: int,
) -> int:  # pragma: no cover
    """Run ``iterations`` moves from the current sequences. ``state`` carries the iteration count, the
    iterations since the last better schedule, the current and the best makespan between calls; the best
    sequences and their heads (the schedule's starts) are kept in ``best_*``. Returns the best makespan;
    it stops early, setting ``state[PROVEN]``, once the schedule is provably optimal (no critical swap left)."""
    np.random.seed(seed)
    n = p.shape[0]
    heads = np.empty(n, np.int64)
    tails = np.empty(n, np.int64)
    order = np.empty(n, np.int64)
    moves = np.empty((2 * n + 2, 2), np.int64)
    makespan = heads_tails(p, job_prev, job_next, mach_prev, mach_next, order, heads, tails)
    state[CURRENT] = makespan
    if state[BEST] < 0 or makespan < state[BEST]:
        state[BEST] = makespan
        best_prev[:] = mach_prev
        best_next[:] = mach_next
        best_heads[:] = heads
    for _ in range(iterations):
        count = _critical_moves(p, job_prev, mach_prev, heads, tails, makespan, moves)
        if count == 0:
            state[PROVEN] = 1  # a single machine block or a single job makes the makespan: nothing is shorter
            return int(state[BEST])
        it = state[IT]
        chosen = -1
        chosen_value = 1 << 62
        ties = 0
        for k in range(count):
            u, v = moves[k, 0], moves[k, 1]
            if job_next[u] == v:
                continue  # same job: the swap would reverse the routing
            value = _estimate(u, v, p, job_prev, job_next, mach_prev, mach_next, heads, tails)
            if tabu[v, u] > it and value >= state[BEST]:
                continue  # tabu, and not better than the best schedule
            if value < chosen_value:
                chosen, chosen_value, ties = k, value, 1
            elif value == chosen_value:
                ties += 1
                if np.random.randint(ties) == 0:
                    chosen = k
        if chosen < 0:
            chosen = np.random.randint(count)  # every move is tabu: any, to get out
            if job_next[moves[chosen, 0]] == moves[chosen, 1]:
                state[IT] += 1
                continue
        u, v = moves[chosen, 0], moves[chosen, 1]
        _swap(u, v, mach_prev, mach_next)
        tabu[u, v] = it + np.random.randint(tenure_min, tenure_max + 1)
        state[IT] = it + 1
        makespan = heads_tails(p, job_prev, job_next, mach_prev, mach_next, order, heads, tails)
        state[CURRENT] = makespan
        if makespan < state[BEST]:
            state[BEST] = makespan
            state[STALL] = 0
            best_prev[:] = mach_prev
            best_next[:] = mach_next
            best_heads[:] = heads
            continue
        state[STALL] += 1
        if state[STALL] >= max_stall:
            # back to the best schedule, kicked with random critical swaps, and a fresh tabu list
            mach_prev[:] = best_prev
            mach_next[:] = best_next
            tabu[:, :] = 0
            state[STALL] = 0
            makespan = heads_tails(p, job_prev, job_next, mach_prev, mach_next, order, heads, tails)
            for _k in range(kick):
                count = _critical_moves(p, job_prev, mach_prev, heads, tails, makespan, moves)
                if count == 0:
                    break
                pick = np.random.randint(count)
                if job_next[moves[pick, 0]] != moves[pick, 1]:
                    _swap(moves[pick, 0], moves[pick, 1], mach_prev, mach_next)
                    makespan = heads_tails(p, job_prev, job_next, mach_prev, mach_next, order, heads, tails)
            state[CURRENT] = makespan
    return int(state[BEST])


def warm_up() -> None:
    """Compile every function above into numba's cache (a few seconds, once per installation) by searching a
    two-job shop; the image build runs it so that no job pays the compilation."""
    p = np.array([3, 2, 4, 1], np.int64)
    job_prev, job_next = np.array([-1, 0, -1, 2], np.int64), np.array([1, -1, 3, -1], np.int64)
    mach_prev, mach_next = np.array([3, 2, -1, -1], np.int64), np.array([-1, -1, 1, 0], np.int64)
    search(
        p,
        job_prev,
        job_next,
        mach_prev,
        mach_next,
        mach_prev.copy(),
        mach_next.copy(),
        np.zeros(4, np.int64),
        np.zeros((4, 4), np.int64),
        np.array([0, 0, 0, -1, 0], np.int64),
        10,
        0,
        1,
        2,
        5,
        1,
    )
