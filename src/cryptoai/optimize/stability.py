"""The stable region: parameters whose neighbourhood scores well, not just the point itself.

A lone spike on the objective surface is usually luck; a plateau is more likely to hold.
Each completed trial's neighbourhood is itself plus its neighbours: on a grid, every grid
point at most one step away in every dimension; otherwise the ``k`` nearest trials in
parameter space normalized to [0, 1] per dimension. The stable choice is the trial whose
neighbourhood has the best median objective. A failed neighbour counts as the worst
completed value (too few trades next door is a warning sign); a neighbour the constraints
excluded is not there and is ignored.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cryptoai.optimize.space import Dimension
from cryptoai.optimize.trials import COMPLETE, Trial


def _grid_index(dims: Sequence[Dimension], params: dict[str, Any]) -> tuple[int, ...] | None:
    out = []
    for d in dims:
        points = d.grid()
        try:
            out.append(points.index(params[d.name]))
        except ValueError:
            return None
    return tuple(out)


def neighbours(
    trials: Sequence[Trial], dims: Sequence[Dimension], grid: bool, k: int | None = None
) -> dict[int, list[int]]:
    """Each trial's neighbours (positions in ``trials``, itself excluded)."""
    if grid:
        index = [_grid_index(dims, t.params) for t in trials]
        where = {ix: i for i, ix in enumerate(index) if ix is not None}
        offsets = list(itertools.product((-1, 0, 1), repeat=len(dims))) if len(dims) <= 6 else []
        out: dict[int, list[int]] = {}
        for i, ix in enumerate(index):
            if ix is None:
                out[i] = []
                continue
            if offsets and len(offsets) < len(where):  # few dimensions: look the neighbours up
                cand = (
                    where.get(tuple(a + b for a, b in zip(ix, o, strict=True))) for o in offsets
                )
                near = [j for j in cand if j is not None and j != i]
            else:
                near = [
                    j
                    for j_ix, j in where.items()
                    if j != i and max(abs(a - b) for a, b in zip(ix, j_ix, strict=True)) <= 1
                ]
            out[i] = sorted(near)
        return out
    k = k if k is not None else max(4, 2 * len(dims))
    k = min(k, len(trials) - 1)
    if k <= 0:
        return {i: [] for i in range(len(trials))}
    x = np.array([[d.normalize(t.params[d.name]) for d in dims] for t in trials], dtype=float)
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return {i: sorted(int(j) for j in order[i]) for i in range(len(trials))}


def stable_region(
    trials: Sequence[Trial],
    dims: Sequence[Dimension],
    *,
    maximize: bool = True,
    grid: bool = True,
    k: int | None = None,
) -> dict[str, Any] | None:
    """The stable choice and how the single best fares one step away.

    Returns ``{"number", "score", "neighbours", "best_number", "best_value",
    "best_neighbourhood_median", "best_falloff"}``: ``score`` is the stable trial's
    neighbourhood median, ``neighbours`` the trial numbers around it; ``best_falloff`` is
    how much worse the best trial's neighbours are (median, in objective units, positive =
    worse). None when no trial completed.
    """
    done = [i for i, t in enumerate(trials) if t.state == COMPLETE and t.value is not None]
    if not done:
        return None
    sign = 1.0 if maximize else -1.0
    worst = min(sign * trials[i].value for i in done)
    near = neighbours(trials, dims, grid, k)

    def score_of(i: int) -> float:
        t = trials[i]
        return sign * t.value if t.state == COMPLETE and t.value is not None else worst

    scores = {}
    for i in done:
        values = [score_of(i)] + [score_of(j) for j in near[i]]
        scores[i] = float(np.median(values))
    # best neighbourhood; ties go to the better own value, then the lower trial number
    stable = max(done, key=lambda i: (scores[i], sign * trials[i].value, -trials[i].number))
    best = max(done, key=lambda i: (sign * trials[i].value, -trials[i].number))
    around_best = [score_of(j) for j in near[best]]
    best_median = float(np.median(around_best)) * sign if around_best else None
    falloff = sign * (trials[best].value - best_median) if best_median is not None else None
    return {
        "number": trials[stable].number,
        "score": scores[stable] * sign,
        "neighbours": [trials[j].number for j in near[stable]],
        "best_number": trials[best].number,
        "best_value": trials[best].value,
        "best_neighbourhood_median": best_median,
        "best_falloff": falloff if falloff is None or math.isfinite(falloff) else None,
    }
