"""Positive surrogate forms: fitting log f for a positive objective (issue 17)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compiler.diagnostics import SpecError
from runtime.search import fit_surrogate, format_report, load_search_config, run_search

XY = {"params": {"x": [0, 1], "y": [0, 1]}, "phi": 1e-6, "initial": {"count": 8},
      "max_trials": 12}


def exp_quadratic(p: dict[str, float], _t: int) -> float:
    """A positive loss shaped like exp of a quadratic; minimum 0.02 at (0.3, 0.6)."""
    return 0.02 * math.exp(6 * (p["x"] - 0.3) ** 2 + 4 * (p["y"] - 0.6) ** 2)


def test_a_plain_quadratic_predicts_a_negative_loss_on_this_surface() -> None:
    result = run_search(load_search_config(XY), exp_quadratic)
    first = next(r for r in result.records if r.kind == "proposal")
    assert first.predicted < 0 < first.objective  # the f_hat -0.33 for a loss


def test_the_log_form_is_exact_and_its_minimum_positive() -> None:
    result = run_search(load_search_config({**XY, "transform": "log"}), exp_quadratic)
    assert result.converged and len(result.records) == 9
    fit, prop = result.surrogate, result.proposal
    assert fit is not None and prop is not None and fit.transform == "log"
    assert fit.r2 == pytest.approx(1.0, abs=1e-12) and fit.loo_rmse < 1e-12
    assert prop.predicted == pytest.approx(0.02, rel=1e-9) and prop.predicted > 0
    assert [prop.point["x"], prop.point["y"]] == pytest.approx([0.3, 0.6], abs=1e-5)
    coefs = dict(fit.coefficients())
    assert coefs["x^2"] == pytest.approx(6.0) and coefs["y^2"] == pytest.approx(4.0)
    text = format_report(result)
    assert "fitted to log f (f_hat = exp(poly))" in text and "  log f = -1.93202 " in text
    # the report says how well the other form would fit the same trials
    assert [q.transform for q in fit.compared] == ["log", "none"]
    assert "    f: degree 2 (per_variable), R^2 = 0.9343" in text


def test_auto_picks_the_form_with_the_lower_leave_one_out_error() -> None:
    result = run_search(load_search_config({**XY, "transform": "auto"}), exp_quadratic)
    fit = result.surrogate
    assert fit is not None and fit.transform == "log" and result.converged
    log_q, plain_q = fit.compared
    assert (log_q.transform, plain_q.transform) == ("log", "none")
    assert plain_q.loo_rmse > 0.1 > log_q.loo_rmse
    text = format_report(result)
    assert "forms compared (R^2 and errors in f's units; the first is used):" in text
    assert "    log f: degree 2 (per_variable), R^2 = 1.0000" in text
    assert "    f: degree 2 (per_variable), R^2 = 0.9343, RMSE = 0.04013, leave-one-out " \
           "RMSE = 1.001" in text


def test_auto_keeps_the_plain_form_for_an_objective_that_is_not_positive() -> None:
    space = load_search_config(XY).space()
    x = np.random.default_rng(0).random((10, 2))
    y = (x[:, 0] - 0.5) ** 2 - 0.1
    fit = fit_surrogate(x, y, space, transform="auto")
    assert fit.transform == "none" and len(fit.compared) == 1
    assert any("log f left out" in n for n in fit.notes)
    with pytest.raises(ValueError, match="transform 'log' needs every objective > 0"):
        fit_surrogate(x, y, space, transform="log")


def test_leave_one_out_error_matches_explicit_refits() -> None:
    space = load_search_config(XY).space()
    rng = np.random.default_rng(1)
    x = rng.random((9, 2))
    y = 1 + x[:, 0] ** 2 + np.sin(3 * x[:, 1])
    fit = fit_surrogate(x, y, space)
    errs = [fit_surrogate(np.delete(x, i, 0), np.delete(y, i), space).predict(x[i])[0] - y[i]
            for i in range(len(y))]
    assert fit.loo_rmse == pytest.approx(math.sqrt(np.mean(np.square(errs))), rel=1e-9)
    # 5 terms, 5 points: leaving one out is underdetermined
    assert fit_surrogate(x[:5], y[:5], space).loo_rmse is None


def test_log_transform_on_a_non_positive_trial_stops_with_the_reason() -> None:
    result = run_search(load_search_config({**XY, "transform": "log"}),
                        lambda p, t: -1.0 if t == 2 else exp_quadratic(p, t))
    assert not result.converged
    assert result.reason == ("transform 'log' needs a positive objective, but trial 2 measured "
                             "-1; use transform: none or auto")


def test_an_unknown_transform_is_a_clear_error() -> None:
    with pytest.raises(SpecError, match="transform.*one of none, log, auto"):
        load_search_config({**XY, "transform": "sqrt"})
