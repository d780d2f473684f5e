"""No point is trained twice: a proposal on a measured point converges on that point's
measurement, raises the degree, or is replaced by an exploration point (issue 17)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from runtime.search import load_search_config, run_search
from runtime.search.loop import unit_distance
from tests.unit.search.search_objectives import SIMPLEX3


def tilted(p: dict[str, float], _t: int) -> float:
    """Per-variable quadratic whose minimum is the b3 vertex (0, 1, 0): a linear fit
    points there again after the vertex has been measured."""
    return (1.0 - 0.8 * p["b3"] + 0.9 * (p["b3"] - 0.7) ** 2
            + 0.6 * p["b2"] ** 2 + 0.6 * p["b4"] ** 2)


def assert_no_point_trained_twice(result, tol: float) -> None:
    space = result.space
    xs = [space.from_point(r.point) for r in result.records]
    for (i, a), (j, b) in itertools.combinations(enumerate(xs), 2):
        assert unit_distance(space, a, b)[0] > tol, (result.records[i], result.records[j])


def test_a_linear_fit_stuck_on_a_measured_vertex_explores_instead_of_retraining() -> None:
    cfg = load_search_config({**SIMPLEX3, "phi": 1e-4, "degree": 1, "degree_max": 1,
                              "initial": {"count": 6}, "max_trials": 14})
    result = run_search(cfg, tilted)
    kinds = [r.kind for r in result.records]
    assert kinds == ["initial"] * 6 + ["proposal"] + ["explore"] * 7
    vertex = result.records[6].point
    assert [vertex[n] for n in ("b2", "b3", "b4")] == pytest.approx([0.0, 1.0, 0.0], abs=1e-12)
    assert_no_point_trained_twice(result, cfg.min_distance)
    assert result.reason == "trial budget spent (max_trials = 14)" and not result.converged
    first = result.events[0]
    assert first.startswith("trial 8: f_hat's minimum (b2=0.0000, b3=1.0000, b4=0.0000) is "
                            "within min_distance 0.01 of trial 7 (measured 0.281, gap ")
    assert "not trained again at degree_max = 1; exploring (b2=0.0000, b3=0.0000, " \
           "b4=1.0000) instead, the feasible point farthest from all measured ones" in first
    explores = [r for r in result.records if r.kind == "explore"]
    assert all(r.predicted is not None and r.degree == 1 for r in explores)


def test_raising_the_degree_finds_the_measured_vertex_is_the_minimum() -> None:
    # degree 2 fits this surface exactly: its minimum is trial 7's vertex, whose
    # measurement matches the prediction, so the search ends without a new trial
    cfg = load_search_config({**SIMPLEX3, "phi": 1e-4, "degree": 1, "degree_max": 2,
                              "initial": {"count": 6}, "max_trials": 14})
    result = run_search(cfg, tilted)
    assert len(result.records) == 7 and result.converged
    assert result.events == (
        result.events[0],) and result.events[0].endswith("not trained again; degree raised "
                                                          "to 2")
    assert result.reason.startswith("converged: f_hat's minimum (b2=0.0000, b3=1.0000, "
                                    "b4=0.0000) is the point of trial 7, already measured")
    assert result.surrogate is not None and result.surrogate.degree == 2


def test_a_minimum_on_a_fixed_initial_point_is_never_retrained() -> None:
    def slope(p: dict[str, float], _t: int) -> float:  # minimum at the x = 1 bound
        return -p["x"] + 0.05 * math.cos(40 * p["x"])

    cfg = load_search_config({"params": {"x": [0, 1]}, "phi": 1e-6, "patience": 1,
                              "initial": {"count": 6, "points": [{"x": 1.0}]},
                              "max_trials": 12})
    result = run_search(cfg, slope)
    assert [r.kind for r in result.records[6:]] == ["explore"] * 6
    assert_no_point_trained_twice(result, cfg.min_distance)
    assert [e.split("; ")[-1] for e in result.events[:2]] == ["degree raised to 3",
                                                              "degree raised to 4"]
    assert all("of trial 1 (measured -1.03335" in e for e in result.events)


def test_the_search_stops_when_no_unmeasured_point_is_left() -> None:
    cfg = load_search_config({"params": {"x": [0, 1]}, "phi": 1e-9, "degree": 1,
                              "degree_max": 1, "min_distance": 0.2,
                              "initial": {"count": 3, "points": [{"x": 1.0}]},
                              "max_trials": 40})
    result = run_search(cfg, lambda p, _t: -p["x"] + 0.1 * math.sin(9 * p["x"]))
    assert not result.converged and len(result.records) < 12
    assert result.reason.endswith("and no feasible point is farther than min_distance 0.2 "
                                  "from every measured one")
    assert_no_point_trained_twice(result, 0.2)
    xs = np.sort([r.point["x"] for r in result.records])
    assert np.max(np.diff(np.concatenate([[0.0], xs, [1.0]]))) <= 0.4 + 1e-9


def test_min_distance_is_validated() -> None:
    from compiler.diagnostics import SpecError

    with pytest.raises(SpecError, match=r"min_distance' must be < 1, found 1"):
        load_search_config({**SIMPLEX3, "phi": 0.1, "min_distance": 1})
