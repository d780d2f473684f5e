"""Table 1 as a state machine: the stopping rule, raising the degree, failures, budget."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.search import load_search_config, run_search, search_steps
from runtime.search.study import TrialRecord
from tests.unit.search.search_objectives import SIMPLEX3, config, eq4, fails_on_trial_3, quartic

XY = {"params": {"x": [0, 1], "y": [0, 1]}, "phi": 1e-3, "initial": {"count": 8},
      "max_trials": 30}


def test_noiseless_quadratic_stops_after_the_first_proposal() -> None:
    result = run_search(config(), eq4)
    assert len(result.records) == 16 and result.converged
    prop = result.proposal
    assert prop is not None and prop.trial == 16 and prop.kind == "proposal"
    np.testing.assert_allclose([prop.point[n] for n in ("b2", "b3", "b4")],
                               [0.4014, 0.0, 0.5986], atol=5e-5)
    assert prop.predicted == pytest.approx(prop.objective, abs=1e-9)
    assert prop.objective == pytest.approx(27.1380, abs=5e-5)
    assert result.best == prop and result.reason.startswith("converged at trial 16")
    assert result.surrogate is not None and result.surrogate.degree == 2


def test_quadratic_with_cross_terms_stops_after_one_proposal_with_the_full_form() -> None:
    def f(p: dict[str, float], _t: int) -> float:
        return 2 * (p["x"] - 0.6) ** 2 + (p["y"] - 0.7) ** 2 + (p["x"] - 0.6) * (p["y"] - 0.7)

    raw = {**XY, "constraints": [{"sum": ["x", "y"], "le": 1}]}
    full = run_search(load_search_config({**raw, "form": "full"}), f)
    assert full.converged and len(full.records) == 9
    per_var = run_search(load_search_config(raw), f)
    assert len(per_var.records) > 9  # no cross term: the first prediction misses


def test_paper_noise_level_stops_when_the_gap_is_below_phi() -> None:
    # Table 2 -> eq. 4 -> beta_hat, then the network measured 27.6405 against the
    # predicted 27.1380: a gap of 0.5025 stops the search for any phi above it.
    def noisy(p: dict[str, float], t: int) -> float:
        return eq4(p, t) + (0.5025 if t > 15 else 0.0)

    paper = run_search(config(phi=0.6), noisy)
    assert paper.converged and len(paper.records) == 16
    assert paper.proposal.objective == pytest.approx(27.6405, abs=5e-5)
    stuck = run_search(config(phi=0.5, max_trials=16), noisy)
    assert not stuck.converged and len(stuck.records) == 16
    assert stuck.reason == "trial budget spent (max_trials = 16)"
    # with budget left, the measured point joins the data and the refit closes the gap
    more = run_search(config(phi=0.5), noisy)
    assert more.converged and len(more.records) == 17


def test_non_quadratic_objective_adds_points_and_raises_the_degree() -> None:
    result = run_search(load_search_config({**XY, "patience": 2}), quartic)
    props = [r for r in result.records if r.kind == "proposal"]
    assert len(props) > 2
    assert [r.degree for r in props] == sorted(r.degree for r in props)  # never lowered
    assert {r.degree for r in props} == {2, 3, 4}
    assert any("degree raised to 3" in e for e in result.events)
    assert result.converged and props[-1].degree == 4
    best_initial = min(r.objective for r in result.records if r.kind == "initial")
    assert result.best is not None and result.best.objective < best_initial - 0.01


def test_stalling_at_degree_max_stops_the_search() -> None:
    result = run_search(load_search_config({**XY, "degree": 2, "degree_max": 2,
                                            "patience": 1}), quartic)
    assert not result.converged
    assert result.reason.startswith("stalled at degree_max = 2: 1 unproductive proposal")
    assert len(result.records) < 30


def test_the_loop_is_a_generator_that_never_calls_an_objective() -> None:
    for phi, stops in ((0.6, True), (0.01, False)):
        steps = search_steps(config(phi=phi), config().space())
        jobs = next(steps)
        assert [j.trial for j in jobs] == list(range(1, 16))
        assert {j.kind for j in jobs} == {"initial"}
        records = [TrialRecord(j.trial, j.params, eq4(j.params, j.trial), "initial", "ok", 0, 0.0)
                   for j in jobs]
        (prop,) = steps.send(records)
        assert prop.trial == 16 and prop.kind == "proposal" and prop.degree == 2
        assert prop.predicted == pytest.approx(27.1380, abs=5e-5)
        measured = TrialRecord(16, prop.params, 27.6405, "proposal", "ok", 0, 0.0,
                               predicted=prop.predicted)
        if stops:  # the paper's case: gap 0.5025 < phi
            with pytest.raises(StopIteration) as stop:
                steps.send([measured])
            assert stop.value.value.converged and len(stop.value.value.records) == 16
        else:
            (again,) = steps.send([measured])
            assert again.trial == 17 and again.kind == "proposal"


def test_failed_trials_are_logged_and_left_out_of_the_fit() -> None:
    result = run_search(config(), fails_on_trial_3)
    failed = [r for r in result.records if r.status == "failed"]
    assert [r.trial for r in failed] == [3]
    assert failed[0].objective is None and failed[0].error == "RuntimeError: out of memory"
    assert result.converged and result.surrogate is not None
    assert result.surrogate.n_points == 14  # 15 initial minus the failed one


def test_fixed_initial_points_come_first() -> None:
    pts = [{"b2": 0.1, "b3": 0.4, "b4": 0.5}, {"b2": 0.0, "b3": 0.0, "b4": 1.0}]
    result = run_search(load_search_config({**SIMPLEX3, "phi": 0.01,
                                            "initial": {"count": 10, "points": pts}}), eq4)
    assert [dict(r.point) for r in result.records[:2]] == pts
    assert len(result.records) == 11
