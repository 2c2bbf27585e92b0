"""The stable region on hand-built objective surfaces: a lone spike loses to a plateau."""

from __future__ import annotations

import itertools

import pytest

from cryptoai.optimize.space import make_dimension
from cryptoai.optimize.stability import stable_region
from cryptoai.optimize.trials import Trial

DIMS = [make_dimension("a", [0, 1, 2, 3, 4], 1), make_dimension("b", [0, 1, 2, 3, 4], 1)]


def surface(values, failed=()):
    trials = []
    for n, (a, b) in enumerate(itertools.product(range(5), range(5))):
        v = values(a, b)
        state = "failed" if (a, b) in failed else "complete"
        trials.append(Trial(n, {"a": a, "b": b}, {}, state, value=None if state == "failed" else v))
    return trials


def spike_and_plateau(a, b):
    if (a, b) == (0, 0):
        return 10.0  # the single best: a spike with nothing around it
    if abs(a - 3) <= 1 and abs(b - 3) <= 1:
        return 5.0 + (1.0 if (a, b) == (3, 3) else 0.0)
    return 0.0


def test_grid_stable_choice_is_the_plateau_not_the_spike():
    trials = surface(spike_and_plateau)
    out = stable_region(trials, DIMS, maximize=True, grid=True)
    number = {(t.params["a"], t.params["b"]): t.number for t in trials}
    assert out["best_number"] == number[(0, 0)]
    assert out["number"] == number[(3, 3)]
    # (3,3) and its 8 neighbours: 6 and eight 5s -> median 5
    assert out["score"] == 5.0
    assert sorted(out["neighbours"]) == sorted(
        number[(a, b)] for a in (2, 3, 4) for b in (2, 3, 4) if (a, b) != (3, 3)
    )
    # one step from the spike everything is 0: it falls off by the whole 10
    assert out["best_neighbourhood_median"] == 0.0
    assert out["best_falloff"] == 10.0


def test_minimize_flips_the_surface():
    trials = surface(lambda a, b: -spike_and_plateau(a, b))
    out = stable_region(trials, DIMS, maximize=False, grid=True)
    assert trials[out["number"]].params == {"a": 3, "b": 3}
    assert out["best_falloff"] == 10.0


def test_failed_neighbours_count_as_the_worst_value():
    # a clean plateau of 4s (rows a <= 1) and a 5 at (4, 2) whose neighbours all failed:
    # ignoring failures, (4, 2) would be a "neighbourhood" of one 5 and win
    def values(a, b):
        return 4.0 if a <= 1 else 5.0 if (a, b) == (4, 2) else 0.0

    failed = {(3, 1), (3, 2), (3, 3), (4, 1), (4, 3)}
    trials = surface(values, failed=failed)
    out = stable_region(trials, DIMS, maximize=True, grid=True)
    assert trials[out["number"]].params["a"] <= 1
    assert out["score"] == 4.0
    assert trials[out["best_number"]].params == {"a": 4, "b": 2}
    assert out["best_neighbourhood_median"] == 0.0  # failures count as the worst value, 0


def test_nearest_neighbours_off_grid():
    dims = [make_dimension("x", {"low": 0.0, "high": 1.0}, 0.5)]
    xs = [0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.95]
    vals = [1.5, 1.5, 1.6, 1.5, 0.0, 0.0, 3.0]  # 0.95 is a lone spike beside two zeros
    trials = [
        Trial(i, {"x": x}, {}, "complete", value=v)
        for i, (x, v) in enumerate(zip(xs, vals, strict=True))
    ]
    out = stable_region(trials, dims, maximize=True, grid=False, k=2)
    assert out["best_number"] == 6
    assert out["number"] == 2  # ties on the median (1.5) go to the better own value
    assert out["score"] == 1.5
    assert out["best_falloff"] == pytest.approx(3.0)
