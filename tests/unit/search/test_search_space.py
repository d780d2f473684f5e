"""search: settings: validation messages name the param, the constraint or the point."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from compiler.diagnostics import SourceLoc, SpecError
from compiler.params import coerce_params
from runtime.search import InitialDesign, SearchConfig, TrialBudget, load_search_config

LOC = SourceLoc("net.yaml", 40, 3)
TWO = {"b2": [0, 1], "b3": [0, 1]}


def errors(raw: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        load_search_config(raw, LOC)
    return str(info.value)


def test_valid_config_is_typed_and_gives_the_space() -> None:
    cfg = load_search_config({
        "params": {"b2": [0, 1], "b3": [0, 1], "b4": [0, 1]}, "phi": 0.6,
        "constraints": [{"sum": ["b2", "b3", "b4"], "le": 1},
                        {"coeffs": {"b2": 2, "b4": -1}, "ge": -0.5}],
        "initial": {"count": 15, "seed": 3, "points": [{"b2": 0.1, "b3": 0.4, "b4": 0.5}]},
        "trial": {"epochs": 2, "objective": "val_nme"}, "form": "full", "workers": 2}, LOC)
    assert isinstance(cfg.initial, InitialDesign) and cfg.design.seed == 3
    assert isinstance(cfg.trial, TrialBudget) and cfg.budget.epochs == 2
    space = cfg.space(LOC)
    assert space.names == ("b2", "b3", "b4") and space.loc == LOC
    assert [c.text for c in space.constraints] == ["b2 + b3 + b4 <= 1", "2*b2 - b4 >= -0.5"]
    # a >= constraint is stored negated as <=
    np.testing.assert_array_equal(space.A, [[1, 1, 1], [-2, 0, 1]])
    np.testing.assert_array_equal(space.b, [1, 0.5])
    assert space.contains([0.2, 0.2, 0.2])
    assert space.violations([0.0, 0.0, 0.9]) == ["violates 2*b2 - b4 >= -0.5 (left side is 0.9)"]
    assert space.violations([1.2, 0, 0]) == ["b2 = 1.2 is outside [0, 1]",
                                             "violates b2 + b3 + b4 <= 1 (left side is 1.2)"]


def test_coerce_params_validates_the_section_directly() -> None:
    cfg, diags = coerce_params(SearchConfig, {"params": TWO, "phi": 1.0}, LOC)
    assert diags == [] and isinstance(cfg, SearchConfig)
    assert (cfg.degree, cfg.degree_max, cfg.max_trials, cfg.design.count) == (2, 4, 30, 15)
    _, diags = coerce_params(SearchConfig, {"params": {"b2": [1, 0]}, "phi": 1.0}, LOC)
    assert [d.loc for d in diags] == [LOC]


@pytest.mark.parametrize(("params", "message"), [
    ({"b2": [0, 1], "b3": [1, 0]},
     "'b3': bounds [1, 0] are empty (lo > hi); to fix a value set it in the spec's params"),
    ({"b3": [0.5, 0.5]}, "'b3': bounds [0.5, 0.5] are empty (lo == hi leaves nothing"),
    ({"b3": "x"}, "'b3': bounds must be [lo, hi] (two finite numbers), found 'x'"),
    ({"b3": [0, True]}, "'b3': bounds must be [lo, hi]"),
    ({}, "name at least one spec param to search"),
])
def test_bad_bounds_name_the_param(params: dict[str, Any], message: str) -> None:
    text = errors({"params": params, "phi": 1})
    assert text.startswith("net.yaml:40:3: error: param 'params': ")
    assert message in text


@pytest.mark.parametrize(("constraints", "messages"), [
    ([{"sum": ["b2", "b5"], "le": 1}],
     ["constraints[0]: unknown param 'b5'; searched params: b2, b3"]),
    ([{"sum": ["b2", "b33"], "le": 1}], ["unknown param 'b33'; did you mean 'b3'?"]),
    ([{"coeffs": {"b2": 1}, "lee": 1}],
     ["constraints[0]: unknown key 'lee'; did you mean 'le'?",
      "constraints[0]: give exactly one bound, le: value or ge: value"]),
    ([{"sum": ["b2"], "coeffs": {"b3": 1}, "le": 1}], ["give exactly one of coeffs"]),
    ([{"sum": ["b2", "b2"], "le": 1}], ["'b2' appears twice in sum"]),
    ([{"coeffs": {"b2": 0, "b3": 0}, "le": 1}], ["every coefficient is zero"]),
    ([{"sum": ["b2", "b3"], "le": "one"}], ["le must be a finite number, found 'one'"]),
    ([{"sum": ["b2", "b3"], "le": -1}],
     ["constraints[0] (b2 + b3 <= -1) cannot hold within the bounds: its left side is at "
      "least 0 there"]),
    ([{"sum": ["b2", "b3"], "ge": 3}], ["(b2 + b3 >= 3) cannot hold within the bounds: its "
                                        "left side is at most 2 there"]),
    ([{"sum": ["b2", "b3"], "le": 0.5}, {"sum": ["b2", "b3"], "ge": 0.8}],
     ["the constraints are infeasible together with the bounds: no point satisfies "
      "b2 + b3 <= 0.5, b2 + b3 >= 0.8"]),
    ([{"sum": ["b2", "b3"], "le": 0.5}, {"sum": ["b2", "b3"], "ge": 0.5}],
     ["the feasible set has no interior"]),
])
def test_bad_constraints_are_explained(constraints: list[Any], messages: list[str]) -> None:
    text = errors({"params": TWO, "phi": 1, "constraints": constraints})
    lines = text.splitlines()
    assert len(lines) == len(messages)
    for line, message in zip(lines, messages, strict=True):
        assert line.startswith("net.yaml:40:3: error: param 'constraints': ")
        assert message in line


def test_initial_points_are_checked_against_names_bounds_and_constraints() -> None:
    text = errors({"params": TWO, "phi": 1, "constraints": [{"sum": ["b2", "b3"], "le": 1}],
                   "initial": {"points": [{"b2": 0.8, "b3": 0.7}, {"b2": 0.1},
                                          {"b2": 0.1, "b3": 0.1, "b4": 0},
                                          {"b2": 1.5, "b3": 0}]}})
    assert text.splitlines() == [
        "net.yaml:40:3: error: param 'initial': initial.points[0]: violates b2 + b3 <= 1 "
        "(left side is 1.5)",
        "net.yaml:40:3: error: param 'initial': initial.points[1]: 'b3' is missing",
        "net.yaml:40:3: error: param 'initial': initial.points[2]: unknown param 'b4'; "
        "searched params: b2, b3",
        "net.yaml:40:3: error: param 'initial': initial.points[3]: b2 = 1.5 is outside [0, 1]",
        "net.yaml:40:3: error: param 'initial': initial.points[3]: violates b2 + b3 <= 1 "
        "(left side is 1.5)",
    ]


def test_nested_sections_and_cross_field_rules() -> None:
    text = errors({"params": TWO, "phi": 1, "initial": {"cont": 3},
                   "trial": {"objective": "val_acc"}})
    assert "param 'initial': unknown param 'cont' (did you mean 'count'?)" in text
    assert "param 'trial': param 'objective': expected one of val_loss, val_nme" in text
    assert "give epochs or steps, not both" in errors(
        {"params": TWO, "phi": 1, "trial": {"epochs": 2, "steps": 4}})
    assert "param 'degree_max': must be >= degree (3), found 2" in errors(
        {"params": TWO, "phi": 1, "degree": 3, "degree_max": 2})
    assert "param 'max_trials': must exceed the initial design size (15)" in errors(
        {"params": TWO, "phi": 1, "max_trials": 15})
    assert "2 fixed points but count is 1" in errors(
        {"params": TWO, "phi": 1, "initial": {"count": 1, "points": [{"b2": 0, "b3": 0}] * 2}})
    assert "missing required param 'phi' (float or mapping)" in errors({"params": TWO})
    missing = errors({"params": TWO, "phi": 1, "max_trail": 3})
    assert "unknown param 'max_trail'" in missing and "did you mean 'max_trials'?" in missing


def test_the_cheap_interior_probe_never_contradicts_the_lp() -> None:
    """`netspec check` skips SciPy when a probe point is strictly feasible; whenever the
    probe says so, the LP's inscribed ball must be at least the probe's margin."""
    from runtime.search.space import (
        LinearConstraint,
        SearchSpace,
        _has_interior_sample,
        chebyshev_radius,
    )

    rng = np.random.default_rng(4)
    agreed = 0
    for _ in range(60):
        dim = int(rng.integers(1, 4))
        rows = [LinearConstraint(tuple(rng.normal(size=dim)), float(rng.normal()), "c")
                for _ in range(int(rng.integers(1, 4)))]
        space = SearchSpace(tuple(f"x{i}" for i in range(dim)), (0.0,) * dim, (1.0,) * dim,
                            tuple(rows))
        radius = chebyshev_radius(space)
        if _has_interior_sample(space):
            assert radius is not None and radius >= 1e-3 - 1e-9
            agreed += 1
    assert 10 < agreed < 60  # both outcomes occur
