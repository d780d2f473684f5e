"""Polynomial surrogate: terms, names, exact recovery of eq. 4, fallbacks when underdetermined."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.search import SearchSpace, fit_surrogate, polynomial_terms, sample_feasible
from runtime.search.surrogate import design_matrix, term_name
from tests.unit.search.search_objectives import EQ4, config, eq4

NAMES = ("b2", "b3", "b4")


def names(degree: int, form: str) -> list[str]:
    return [term_name(t, NAMES) for t in polynomial_terms(3, degree, form)]  # type: ignore[arg-type]


def test_term_sets_and_readable_names() -> None:
    assert names(2, "per_variable") == ["1", "b2", "b3", "b4", "b2^2", "b3^2", "b4^2"]
    assert names(2, "full") == ["1", "b2", "b3", "b4", "b2^2", "b2*b3", "b2*b4", "b3^2",
                                "b3*b4", "b4^2"]
    assert len(names(3, "full")) == 20 and "b2*b3*b4" in names(3, "full")
    assert "b2^2*b3" in names(3, "full") and len(names(4, "per_variable")) == 13


def test_fit_of_15_eq4_samples_recovers_its_coefficients() -> None:
    space = config().space()
    x = sample_feasible(space, 15, np.random.default_rng(0))
    y = np.array([eq4(space.to_point(p), 0) for p in x])
    fit = fit_surrogate(x, y, space, degree=2, form="per_variable")
    got = dict(fit.coefficients())
    assert list(got) == list(EQ4)
    for term, want in EQ4.items():
        assert got[term] == pytest.approx(want, abs=1e-8)
    assert fit.r2 == pytest.approx(1.0) and fit.rmse < 1e-9 and fit.method == "lstsq"
    assert not fit.underdetermined and fit.notes == ()
    assert fit.equation() == ("f = 36.6191 - 15.9662*b2 - 1.621*b3 - 13.9947*b4 + "
                              "14.6877*b2^2 - 2.9474*b3^2 + 8.2006*b4^2")
    np.testing.assert_allclose(fit.predict(x), y, atol=1e-9)


def test_coefficients_are_in_the_users_units_for_any_bounds() -> None:
    # the fit runs on scaled coordinates; the reported polynomial must be the user's own
    space = SearchSpace(("lr", "w"), (1e-4, 10.0), (1e-2, 30.0))
    rng = np.random.default_rng(1)
    x = space.lo + (space.hi - space.lo) * rng.random((25, 2))
    f = lambda p: 3.0 + 200.0 * p[:, 0] - 0.5 * p[:, 1] + 4e3 * p[:, 0] ** 2 + 0.01 * p[:, 0] * p[:, 1] + 0.02 * p[:, 1] ** 2  # noqa: E731,E501
    fit = fit_surrogate(x, f(x), space, degree=2, form="full")
    want = {"1": 3.0, "lr": 200.0, "w": -0.5, "lr^2": 4e3, "lr*w": 0.01, "w^2": 0.02}
    for term, c in fit.coefficients():
        assert c == pytest.approx(want[term], rel=1e-6, abs=1e-9)
    # analytic gradient agrees with central differences
    p, h = np.array([3e-3, 17.0]), np.array([1e-7, 1e-4])
    numeric = [(fit.predict(p + h * e)[0] - fit.predict(p - h * e)[0]) / (2 * h[i])
               for i, e in enumerate(np.eye(2))]
    np.testing.assert_allclose(fit.gradient(p), numeric, rtol=1e-5)


def test_cross_terms_need_the_full_form() -> None:
    space = SearchSpace(("a", "b"), (0.0, 0.0), (1.0, 1.0))
    x = np.random.default_rng(2).random((12, 2))
    y = (x[:, 0] - 0.5) ** 2 + x[:, 0] * x[:, 1]
    assert fit_surrogate(x, y, space, form="full").r2 == pytest.approx(1.0)
    assert fit_surrogate(x, y, space, form="per_variable").r2 < 0.99


def test_underdetermined_fit_falls_back_and_says_so() -> None:
    space = config().space()
    x = sample_feasible(space, 5, np.random.default_rng(3))
    y = np.array([eq4(space.to_point(p), 0) for p in x])
    fit = fit_surrogate(x, y, space, degree=2, form="per_variable")
    assert fit.underdetermined and fit.degree == 1 and fit.requested_degree == 2
    assert fit.notes[0] == "degree 2 (per_variable, 7 terms) is underdetermined with 5 points"
    assert fit.notes[1] == "fitted degree 1 (per_variable) instead"
    full = fit_surrogate(np.vstack([x, x[:3] * 0.5]), np.r_[y, y[:3]], space, form="full")
    assert (full.degree, full.form) == (2, "per_variable")  # full drops to no cross terms first
    assert full.notes[0].startswith("degree 2 (full, 10 terms) is underdetermined")


def test_rank_deficient_and_tiny_designs() -> None:
    space = config().space()
    # 8 points, but all on the line b2 = b3 = b4: columns coincide
    t = np.linspace(0.0, 0.3, 8)
    x = np.column_stack([t, t, t])
    fit = fit_surrogate(x, t ** 2, space, degree=2)
    assert fit.notes[0].startswith("degree 2 (per_variable, 7 terms) is rank-deficient")
    assert fit.method == "ridge" and fit.degree == 1 and fit.underdetermined
    assert "ridge regression" in fit.notes[-1]
    one = fit_surrogate(x[:1], np.array([2.5]), space)
    assert one.method == "ridge" and one.predict(x[:1])[0] == pytest.approx(2.5, abs=1e-6)


def test_exactly_determined_fit_warns_that_r2_is_meaningless() -> None:
    space = SearchSpace(("a",), (0.0,), (1.0,))
    fit = fit_surrogate(np.array([[0.0], [0.5], [1.0]]), np.array([1.0, 0.0, 3.0]), space)
    assert fit.notes == ("3 points for 3 terms: the fit interpolates, so R^2 = 1 says "
                         "nothing about its quality",)
    np.testing.assert_allclose(design_matrix(np.array([[2.0]]), fit.terms), [[1.0, 2.0, 4.0]])
