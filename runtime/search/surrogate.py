"""The polynomial surrogate f_hat(beta) of the outer search, fitted by least squares.

Fitting happens in scaled coordinates u = (x - mid) / half_width (in [-1, 1]) for
conditioning; coefficients are reported in the user's own params (the paper's eq. 4).
With transform 'log' the polynomial is fitted to log f and f_hat = exp(poly), which
stays positive for a positive objective (a loss), where a plain fit may dip below 0.
Each fit carries its leave-one-out error, the honest measure for comparing forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
import itertools
import math
from typing import Literal

import numpy as np

from compiler.diagnostics import InternalError
from runtime.search.space import Form, SearchSpace, Transform

Term = tuple[int, ...]  # exponent of each param; all zeros is the intercept
_RANK_TOL = 1e-8  # singular values below this (relative) make a design rank-deficient
RIDGE_ALPHA = 1e-3


def polynomial_terms(n: int, degree: int, form: Form) -> tuple[Term, ...]:
    """Monomials up to `degree`: intercept, then by degree; per_variable has no cross terms.

    per_variable orders as eq. 4: 1, b2, b3, b4, b2^2, b3^2, b4^2, ...
    full orders each degree lexicographically: ..., b2^2, b2*b3, b2*b4, b3^2, ...
    """
    terms: list[Term] = [(0,) * n]
    for p in range(1, degree + 1):
        if form == "per_variable":
            terms += [tuple(p if j == i else 0 for j in range(n)) for i in range(n)]
        else:
            for combo in itertools.combinations_with_replacement(range(n), p):
                terms.append(tuple(combo.count(j) for j in range(n)))
    return tuple(terms)


def term_name(term: Term, names: Sequence[str]) -> str:
    """'1', 'b2', 'b2^2', 'b2*b3'."""
    parts = [n if e == 1 else f"{n}^{e}" for n, e in zip(names, term, strict=True) if e]
    return "*".join(parts) or "1"


def design_matrix(u: np.ndarray, terms: Sequence[Term]) -> np.ndarray:
    """(N, n) points -> (N, len(terms)) monomial values."""
    e = np.asarray(terms, dtype=float)
    return np.prod(np.atleast_2d(u)[:, None, :] ** e[None, :, :], axis=2)


@dataclass(frozen=True)
class Surrogate:
    """A fitted polynomial. `coef` multiplies the monomials of the scaled coordinates."""

    names: tuple[str, ...]
    mid: tuple[float, ...]
    half_width: tuple[float, ...]
    terms: tuple[Term, ...]
    coef: tuple[float, ...]
    form: Form
    degree: int  # the degree actually fitted
    requested_degree: int
    method: Literal["lstsq", "ridge"]
    r2: float
    rmse: float
    n_points: int
    underdetermined: bool  # the requested fit had too few (independent) points
    notes: tuple[str, ...] = ()
    transform: Literal["none", "log"] = "none"  # log: the polynomial models log f
    loo_rmse: float | None = None  # leave-one-out RMSE in f's units; None: not computable
    compared: tuple[FitQuality, ...] = ()  # this form's quality, then the other form's

    def _u(self, x: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(np.asarray(x, dtype=float)) - self.mid) / self.half_width

    def poly(self, x: np.ndarray | Sequence[float]) -> np.ndarray:
        """The polynomial itself (f_hat, or log f_hat with the log transform)."""
        return design_matrix(self._u(np.asarray(x)), self.terms) @ np.asarray(self.coef)

    def predict(self, x: np.ndarray | Sequence[float]) -> np.ndarray:
        """f_hat at (N, n) points (or one point -> shape (1,))."""
        p = self.poly(x)
        return np.exp(p) if self.transform == "log" else p

    @property
    def quality(self) -> FitQuality:
        return FitQuality(self.transform, self.degree, self.form, self.r2, self.rmse,
                          self.loo_rmse)

    def gradient(self, x: np.ndarray | Sequence[float]) -> np.ndarray:
        """d f_hat / dx at one point, shape (n,)."""
        g = self._poly_gradient(x)
        return g * float(self.predict(x)[0]) if self.transform == "log" else g

    def _poly_gradient(self, x: np.ndarray | Sequence[float]) -> np.ndarray:
        u = self._u(np.asarray(x))[0]
        e = np.asarray(self.terms, dtype=float)
        coef = np.asarray(self.coef)
        grad = np.zeros(len(u))
        for i in range(len(u)):
            lowered = e.copy()
            lowered[:, i] = np.maximum(e[:, i] - 1.0, 0.0)
            grad[i] = coef @ (e[:, i] * np.prod(u ** lowered, axis=1))
        return grad / np.asarray(self.half_width)

    def coefficients(self) -> tuple[tuple[str, float], ...]:
        """(term name, coefficient) in the user's params, in `terms` order."""
        raw: dict[Term, float] = {}
        scale = 1.0 / np.asarray(self.half_width)
        shift = -np.asarray(self.mid) * scale  # u_i = scale_i * x_i + shift_i
        for term, c in zip(self.terms, self.coef, strict=True):
            # expand prod_i (scale_i x_i + shift_i)^e_i binomially
            for ks in itertools.product(*(range(e + 1) for e in term)):
                w = c
                for k, e, s, t in zip(ks, term, scale, shift, strict=True):
                    w *= math.comb(e, k) * s ** k * t ** (e - k)
                raw[ks] = raw.get(ks, 0.0) + w
        missing = set(raw) - set(self.terms)
        if any(abs(raw[t]) > 1e-12 for t in missing):
            raise InternalError(f"coefficient expansion left terms {sorted(missing)}")
        return tuple((term_name(t, self.names), float(raw.get(t, 0.0))) for t in self.terms)

    def equation(self, digits: int = 6) -> str:
        """'f = 36.6191 - 15.9662*b2 + ...' in the user's params ('log f = ...' for log),
        to `digits` significant figures so that a loss of 0.0023 keeps its digits."""
        out = []
        for i, (name, c) in enumerate(self.coefficients()):
            mag = f"{abs(c):.{digits}g}"
            body = mag if name == "1" else f"{mag}*{name}"
            out.append(("-" if c < 0 else "") + body if i == 0
                       else f"{'-' if c < 0 else '+'} {body}")
        return ("log f = " if self.transform == "log" else "f = ") + " ".join(out)


@dataclass(frozen=True)
class FitQuality:
    """How well one surrogate form fits: R^2 and RMSE on the trials, and the leave-one-out
    RMSE (each trial predicted by the fit to the others), all in f's own units."""

    transform: Literal["none", "log"]
    degree: int
    form: Form
    r2: float
    rmse: float
    loo_rmse: float | None

    def text(self) -> str:
        loo = "n/a (too few points to leave one out)" if self.loo_rmse is None else (
            f"{self.loo_rmse:.4g}")
        what = "log f" if self.transform == "log" else "f"
        return (f"{what}: degree {self.degree} ({self.form}), R^2 = {self.r2:.4f}, "
                f"RMSE = {self.rmse:.4g}, leave-one-out RMSE = {loo}")


def _candidates(degree: int, form: Form) -> list[tuple[int, Form]]:
    out: list[tuple[int, Form]] = []
    for d in range(degree, 0, -1):
        if form == "full" and d > 1:
            out.append((d, "full"))
        out.append((d, "per_variable"))
    return out


def _solve(m: np.ndarray, y: np.ndarray, alpha: float | None) -> tuple[np.ndarray, int]:
    """Least squares on unit-norm columns; ridge leaves the intercept (column 0) free."""
    norms = np.linalg.norm(m, axis=0)
    norms[norms == 0] = 1.0
    ms = m / norms
    if alpha is not None:
        pen = math.sqrt(alpha) * np.eye(m.shape[1])[1:]
        ms = np.vstack([ms, pen])
        y = np.concatenate([y, np.zeros(len(pen))])
    sol, _res, _rank, sv = np.linalg.lstsq(ms, y, rcond=None)
    rank = int(np.sum(sv > _RANK_TOL * sv[0])) if sv.size and sv[0] > 0 else 0
    return sol / norms, rank


def fit_surrogate(x: np.ndarray, y: np.ndarray, space: SearchSpace, *, degree: int = 2,
                  form: Form = "per_variable", transform: Transform = "none") -> Surrogate:
    """Least-squares polynomial through (x, y), x of shape (N, dim) in `space`'s params.

    When the requested fit is underdetermined (more terms than points, or a
    rank-deficient design) it falls back to per_variable at the same degree (from
    full), then to lower degrees, and to a ridge fit of degree 1 when even that is
    underdetermined; `notes` says what happened. transform 'log' fits log y (every
    y must be > 0); 'auto' fits both forms and keeps the one with the lower
    leave-one-out RMSE (the plain one when log is impossible or LOO is unavailable).
    `compared` holds the quality of the chosen form, then of the other one (when every
    y > 0), so a report can say how well each fits.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float).reshape(-1)
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"need matching, non-empty x and y, found {len(x)} and {len(y)}")
    if transform == "auto":
        return _fit_auto(x, y, space, degree, form)
    if transform == "log" and np.any(y <= 0):
        raise ValueError(f"transform 'log' needs every objective > 0, found {y.min():g}")
    chosen = _fit_one(x, y, space, degree, form, transform)
    if np.any(y <= 0):
        return replace(chosen, compared=(chosen.quality,))
    other = _fit_one(x, y, space, degree, form, "none" if transform == "log" else "log")
    return replace(chosen, compared=(chosen.quality, other.quality))


def _fit_auto(x: np.ndarray, y: np.ndarray, space: SearchSpace, degree: int,
              form: Form) -> Surrogate:
    plain = _fit_one(x, y, space, degree, form, "none")
    if np.any(y <= 0):
        note = f"transform auto: log f left out (an objective is {y.min():g} <= 0)"
        return replace(plain, compared=(plain.quality,), notes=(*plain.notes, note))
    log = _fit_one(x, y, space, degree, form, "log")
    if log.loo_rmse is not None and (plain.loo_rmse is None or log.loo_rmse < plain.loo_rmse):
        chosen, other, why = log, plain, "lower leave-one-out RMSE"
    else:
        chosen, other = plain, log
        why = ("leave-one-out error not computable, kept f" if log.loo_rmse is None
               else "lower or equal leave-one-out RMSE")
    note = f"transform auto: fitted {'log f' if chosen is log else 'f'} ({why})"
    return replace(chosen, compared=(chosen.quality, other.quality),
                   notes=(*chosen.notes, note))


def _loo_rmse(u: np.ndarray, y: np.ndarray, terms: Sequence[Term], method: str,
              log: bool) -> float | None:
    """RMSE of predicting each point from a fit (same terms) to the others, in y's units."""
    n = len(y)
    if n - 1 < len(terms) and method == "lstsq":
        return None
    m = design_matrix(u, terms)
    target = np.log(y) if log else y
    errs = []
    for i in range(n):
        keep = np.arange(n) != i
        coef, rank = _solve(m[keep], target[keep], RIDGE_ALPHA if method == "ridge" else None)
        if method == "lstsq" and rank < len(terms):
            return None
        pred = float(m[i] @ coef)
        errs.append((math.exp(min(pred, 700.0)) if log else pred) - y[i])
    return float(math.sqrt(np.mean(np.square(errs))))


def _fit_one(x: np.ndarray, y: np.ndarray, space: SearchSpace, degree: int, form: Form,
             transform: Literal["none", "log"]) -> Surrogate:
    target = np.log(y) if transform == "log" else y
    mid = (space.hi + space.lo) / 2.0
    half = (space.hi - space.lo) / 2.0
    u = (x - mid) / half
    notes: list[str] = []
    chosen = None
    for d, f in _candidates(degree, form):
        terms = polynomial_terms(space.dim, d, f)
        what = f"degree {d} ({f}, {len(terms)} terms)"
        if len(terms) > len(y):
            notes.append(f"{what} is underdetermined with {len(y)} points")
            continue
        m = design_matrix(u, terms)
        coef, rank = _solve(m, target, None)
        if rank < len(terms):
            notes.append(f"{what} is rank-deficient on these points (rank {rank})")
            continue
        chosen = (d, f, terms, coef, "lstsq")
        break
    if chosen is None:
        terms = polynomial_terms(space.dim, 1, "per_variable")
        coef, _ = _solve(design_matrix(u, terms), target, RIDGE_ALPHA)
        chosen = (1, "per_variable", terms, coef, "ridge")
        notes.append(f"fitted degree 1 by ridge regression (alpha={RIDGE_ALPHA:g} on "
                     "unit-norm columns) instead")
    elif notes:
        notes.append(f"fitted degree {chosen[0]} ({chosen[1]}) instead")
    d, f, terms, coef, method = chosen
    fell_back = bool(notes)
    if method == "lstsq" and len(terms) == len(y):
        notes.append(f"{len(y)} points for {len(terms)} terms: the fit interpolates, "
                     "so R^2 = 1 says nothing about its quality")
    fitted = design_matrix(u, terms) @ coef
    resid = y - (np.exp(np.minimum(fitted, 700.0)) if transform == "log" else fitted)
    ss_res, ss_tot = float(resid @ resid), float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res <= 1e-24 else 0.0)
    return Surrogate(
        names=space.names, mid=tuple(mid.tolist()), half_width=tuple(half.tolist()),
        terms=terms, coef=tuple(float(c) for c in coef), form=f, degree=d,
        requested_degree=degree, method=method, r2=r2, rmse=math.sqrt(ss_res / len(y)),
        n_points=len(y), underdetermined=fell_back,
        notes=tuple(notes), transform=transform,
        loo_rmse=_loo_rmse(u, y, terms, method, transform == "log"))
