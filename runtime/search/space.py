"""The `search:` settings of the outer weight search and the space they describe.

`SearchConfig` is validated by `compiler.params.coerce_params` like an op's params;
`SearchSpace` is its numeric view (bounds and linear constraints) for the math.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
import itertools
import math
from typing import Any, Literal

import numpy as np

from compiler.diagnostics import UNKNOWN_LOC, SourceLoc, SpecError, did_you_mean
from compiler.params import OpParams, coerce_params, param

Form = Literal["per_variable", "full"]
Transform = Literal["none", "log", "auto"]
_FEAS_TOL = 1e-9  # relative slack when checking a point against bounds/constraints


@dataclass(frozen=True)
class InitialDesign(OpParams):
    """`search.initial`: the experiments run before the first fit (Table 1's D_n)."""

    count: int = param(15, "size of the initial design: the fixed points, then random "
                       "feasible points up to count", min=1)
    seed: int = param(0, "seeds the random initial points and the minimiser's starts", min=0)
    points: tuple[Mapping[str, Any], ...] = param(
        (), "fixed initial points, each a mapping {param: value} naming every searched param")

    def problems(self) -> list[tuple[str, str]]:
        if len(self.points) > self.count:
            return [("points", f"{len(self.points)} fixed points but count is {self.count}; "
                     "raise count to at least the number of points")]
        return []


@dataclass(frozen=True)
class TrialBudget(OpParams):
    """`search.trial`: how long each trial trains and which number it reports."""

    epochs: int | None = param(None, "epochs per trial (null: the spec's train budget)", min=1)
    steps: int | None = param(None, "steps per trial (null: the spec's train budget)", min=1)
    objective: Literal["val_loss", "val_nme"] = param("val_loss", "the measured f of a trial")
    seed: int = param(0, "training seed of every trial; one seed for all trials, so "
                      "differences between trials come from the point", min=0)

    def problems(self) -> list[tuple[str, str]]:
        if self.epochs is not None and self.steps is not None:
            return [("steps", "give epochs or steps, not both")]
        return []


@dataclass(frozen=True)
class TrialResources(OpParams):
    """`search.resources`: what one trial reserves on a Ray cluster (its task's num_cpus and
    num_gpus), so Ray packs trials onto nodes that can hold them; the trial's TensorFlow
    threads follow `cpus`."""

    cpus: float = param(1.0, "CPU cores a trial reserves (executor ray)", min=0.0)
    gpus: float = param(0.0, "GPUs a trial reserves (executor ray; fractions share one)",
                        min=0.0)

    def problems(self) -> list[tuple[str, str]]:
        if self.cpus == 0 and self.gpus == 0:
            return [("cpus", "a trial must reserve some CPU or GPU, found cpus 0 and gpus 0")]
        return []


@dataclass(frozen=True)
class NoiseDesign(OpParams):
    """`search.noise`: how the objective's run-to-run noise (seed, shuffling) is measured.

    The first initial point is trained again with `replicates` other seeds (the
    trial seed + 1, + 2, ...); the sample standard deviation of its 1 + replicates
    values is the noise estimate sigma_hat. Replicates run with the initial design and
    count towards max_trials; they are left out of the fit (one value per point).
    """

    replicates: int = param(0, "extra runs of the first initial point with other seeds "
                            "(0: the noise is not measured)", min=0)


@dataclass(frozen=True)
class RelativePhi(OpParams):
    """`search.phi: {noise: k}`: the stopping threshold as a multiple of sigma_hat."""

    noise: float = param(doc="phi = noise * sigma_hat, the measured noise standard "
                         "deviation (needs search.noise.replicates >= 2)", min=0)

    def problems(self) -> list[tuple[str, str]]:
        return [] if self.noise > 0 else [("noise", "must be > 0, found 0")]


@dataclass(frozen=True)
class LinearConstraint:
    """coeffs · x <= rhs, with coeffs aligned to `SearchSpace.names`."""

    coeffs: tuple[float, ...]
    rhs: float
    text: str  # as written, e.g. "b2 + b3 + b4 <= 1"; a ">=" one is stored negated


@dataclass(frozen=True)
class SearchSpace:
    """Box bounds plus linear inequalities over named spec params (paper's R(beta))."""

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    constraints: tuple[LinearConstraint, ...] = ()
    loc: SourceLoc = UNKNOWN_LOC

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def lo(self) -> np.ndarray:
        return np.asarray(self.lower, dtype=float)

    @property
    def hi(self) -> np.ndarray:
        return np.asarray(self.upper, dtype=float)

    @property
    def A(self) -> np.ndarray:  # noqa: N802 - the usual name of a constraint matrix
        return np.asarray([c.coeffs for c in self.constraints], dtype=float).reshape(-1, self.dim)

    @property
    def b(self) -> np.ndarray:
        return np.asarray([c.rhs for c in self.constraints], dtype=float)

    def to_point(self, x: Sequence[float] | np.ndarray) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, x, strict=True)}

    def from_point(self, point: Mapping[str, float]) -> np.ndarray:
        return np.asarray([float(point[n]) for n in self.names], dtype=float)

    def violations(self, x: Sequence[float] | np.ndarray, tol: float = _FEAS_TOL) -> list[str]:
        """Human-readable reasons why `x` is outside the space (empty when inside)."""
        x = np.asarray(x, dtype=float)
        out = []
        for name, v, lo, hi in zip(self.names, x, self.lower, self.upper, strict=True):
            slack = tol * max(1.0, hi - lo)
            if not lo - slack <= v <= hi + slack:
                out.append(f"{name} = {v:g} is outside [{lo:g}, {hi:g}]")
        for c in self.constraints:
            lhs = float(np.dot(c.coeffs, x))
            if lhs > c.rhs + tol * max(1.0, abs(c.rhs), float(np.abs(c.coeffs).sum())):
                out.append(f"violates {c.text} (left side is {lhs:g})")
        return out

    def contains(self, x: Sequence[float] | np.ndarray, tol: float = _FEAS_TOL) -> bool:
        return not self.violations(x, tol)

    def contains_rows(self, xs: np.ndarray, tol: float = _FEAS_TOL) -> np.ndarray:
        """Vectorised `contains` for an (N, dim) array."""
        xs = np.atleast_2d(np.asarray(xs, dtype=float))
        width = np.maximum(1.0, self.hi - self.lo)
        ok = np.all((xs >= self.lo - tol * width) & (xs <= self.hi + tol * width), axis=1)
        if self.constraints:
            a, b = self.A, self.b
            slack = tol * np.maximum.reduce([np.ones_like(b), np.abs(b), np.abs(a).sum(axis=1)])
            ok &= np.all(xs @ a.T <= b + slack, axis=1)
        return ok

    @cached_property
    def extreme_points(self) -> np.ndarray:
        """Vertices of the feasible polytope found by minimising/maximising each coordinate
        and the sum (LP solutions); an (K, dim) array, deduplicated, in a fixed order."""
        return _extreme_points(self)

    @cached_property
    def tight_box(self) -> tuple[np.ndarray, np.ndarray]:
        """The smallest box holding the feasible set (for rejection sampling)."""
        pts = self.extreme_points
        return (np.clip(pts.min(axis=0), self.lo, self.hi),
                np.clip(pts.max(axis=0), self.lo, self.hi))

    def box_corners(self, limit: int = 256) -> np.ndarray:
        """The feasible corners of the bounds box (none when there are more than `limit`)."""
        if 2 ** self.dim > limit:
            return np.empty((0, self.dim))
        corners = np.array(list(itertools.product(*zip(self.lower, self.upper, strict=True))))
        return corners[self.contains_rows(corners)]


def _unit_lp(space: SearchSpace) -> tuple[np.ndarray, np.ndarray]:
    """Constraints rewritten for u in [0, 1]^dim where x = lo + (hi - lo) * u."""
    a, b = space.A, space.b
    return a * (space.hi - space.lo), b - a @ space.lo


def _extreme_points(space: SearchSpace) -> np.ndarray:
    from scipy.optimize import linprog

    a_ub, b_ub = _unit_lp(space)
    n = space.dim
    directions = [np.eye(n)[i] * s for i in range(n) for s in (1.0, -1.0)]
    directions += [np.ones(n), -np.ones(n)]
    found: list[np.ndarray] = []
    for c in directions:
        res = linprog(c, A_ub=a_ub if len(b_ub) else None, b_ub=b_ub if len(b_ub) else None,
                      bounds=[(0.0, 1.0)] * n, method="highs-ds")
        if res.status != 0:
            raise SpecError.at(space.loc, "the search constraints leave no feasible point "
                               "within the bounds")
        x = space.lo + (space.hi - space.lo) * np.clip(res.x, 0.0, 1.0)
        if not any(np.allclose(x, f, rtol=0, atol=1e-12) for f in found):
            found.append(x)
    return np.array(found)


def chebyshev_radius(space: SearchSpace) -> float | None:
    """Radius of the largest ball inside the feasible set in unit coordinates
    (each param scaled to [0, 1]); None when the set is empty."""
    from scipy.optimize import linprog

    a_ub, b_ub = _unit_lp(space)
    n = space.dim
    norms = np.linalg.norm(a_ub, axis=1)
    # variables (u, r): maximise r s.t. a.u + r|a| <= b, r <= u_j <= 1 - r
    rows = [np.append(a, nrm) for a, nrm in zip(a_ub, norms, strict=True)]
    rhs = list(b_ub)
    for j in range(n):
        e = np.zeros(n + 1)
        e[j], e[n] = -1.0, 1.0
        rows.append(e.copy())
        rhs.append(0.0)
        e[j] = 1.0
        rows.append(e)
        rhs.append(1.0)
    c = np.zeros(n + 1)
    c[n] = -1.0
    res = linprog(c, A_ub=np.array(rows), b_ub=np.array(rhs),
                  bounds=[(None, None)] * n + [(0.0, None)], method="highs")
    return float(res.x[n]) if res.status == 0 else None


@dataclass(frozen=True)
class SearchConfig(OpParams):
    """A spec's `search:` section: the polynomial-regression outer search (Table 1).

    Beyond the paper: `noise` measures the run-to-run sd that `phi: {noise: k}` is
    relative to, `transform` offers a positive log-form surrogate, and `min_distance`
    keeps a measured point from being trained twice (see runtime.search.loop).
    """

    params: Mapping[str, Any] = param(doc="searched spec params: name -> [lo, hi]")
    # {noise: k} becomes a RelativePhi in __post_init__ (the annotation is what YAML gives)
    phi: float | Mapping[str, Any] = param(
        doc="stop when |f_hat_min - f_min| < phi (the paper's phi_r): a number in units of "
        "the objective, or {noise: k} for k times the measured noise sd (see noise)", min=0)
    constraints: tuple[Mapping[str, Any], ...] = param(
        (), "linear constraints R(beta): {sum: [names], le: c} or "
        "{coeffs: {name: a, ...}, le: c}; ge: instead of le for >=")
    initial: InitialDesign | Mapping[str, Any] = param(
        InitialDesign(), "initial design {count: 15, seed: 0, points: [...]}")
    trial: TrialBudget | Mapping[str, Any] = param(
        TrialBudget(), "per-trial budget {epochs | steps, objective, seed}")
    noise: NoiseDesign | Mapping[str, Any] = param(
        NoiseDesign(), "noise measurement {replicates: N}: the first initial point trained "
        "again with N other seeds; report.txt gives the sd and how many runs it is from")
    form: Form = param("per_variable", "per_variable: powers of each param, no cross terms "
                       "(the paper's eq. 4); full: every monomial up to the degree")
    transform: Transform = param(
        "none", "none: fit the polynomial to f; log: fit it to log f (a positive surrogate "
        "exp(poly) for a positive objective such as a loss); auto: the one with the lower "
        "leave-one-out error (log only when every f > 0)")
    min_distance: float = param(
        0.01, "a proposal closer than this to a measured point (largest difference over "
        "params, as a fraction of each range) is not trained again: the degree is raised, "
        "then the feasible point farthest from all measured ones is explored", min=0, max=1,
        max_exclusive=True)
    degree: int = param(2, "polynomial degree of the first fit", min=1)
    degree_max: int = param(4, "highest degree the fit may be raised to when it stalls", min=1)
    patience: int = param(2, "unproductive proposals in a row that count as a stalled fit",
                          min=1)
    max_trials: int = param(30, "total trial budget: initial design, noise replicates, "
                            "proposals and explorations", min=2)
    workers: int = param(1, "trials run at once (1: serial in this process)", min=1)
    executor: Literal["local", "ray"] = param("local", "local: serial or a process pool; "
                                               "ray: a Ray cluster (pip install netspec[ray])")
    address: str | None = param(None, "Ray cluster address (null: start or join a local one)")
    resources: TrialResources | Mapping[str, Any] = param(
        TrialResources(), "per-trial Ray resources {cpus: 1, gpus: 0}")
    max_retries: int = param(1, "times a trial is rerun when its Ray worker process dies "
                             "(then it is recorded as failed); a raising trial is not rerun",
                             min=0)

    def __post_init__(self) -> None:
        # Nested sections arrive as mappings from YAML; keep them typed once valid.
        for name, cls in _NESTED:
            value = getattr(self, name)
            if isinstance(value, Mapping):
                parsed, _ = coerce_params(cls, value, UNKNOWN_LOC)
                if parsed is not None:
                    object.__setattr__(self, name, parsed)

    @property
    def design(self) -> InitialDesign:
        if not isinstance(self.initial, InitialDesign):
            raise SpecError.at(UNKNOWN_LOC, "search.initial is not valid; "
                               "load the config with load_search_config")
        return self.initial

    @property
    def budget(self) -> TrialBudget:
        if not isinstance(self.trial, TrialBudget):
            raise SpecError.at(UNKNOWN_LOC, "search.trial is not valid; "
                               "load the config with load_search_config")
        return self.trial

    @property
    def trial_resources(self) -> TrialResources:
        return self.resources if isinstance(self.resources, TrialResources) else TrialResources()

    @property
    def replicates(self) -> int:
        return self.noise.replicates if isinstance(self.noise, NoiseDesign) else 0

    @property
    def phi_noise(self) -> float | None:
        """k of `phi: {noise: k}`; None when phi is an absolute number."""
        return self.phi.noise if isinstance(self.phi, RelativePhi) else None

    def space(self, loc: SourceLoc = UNKNOWN_LOC) -> SearchSpace:
        """The numeric search space; raises SpecError when the settings are invalid."""
        space, problems = _build_space(self, loc)
        if problems or space is None:
            raise SpecError.at(loc, "; ".join(f"{k}: {m}" for k, m in problems))
        return space

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name, cls in _NESTED:
            value = getattr(self, name)
            if isinstance(value, Mapping):
                _, diags = coerce_params(cls, value, UNKNOWN_LOC)
                out += [(name, d.message + (f" ({d.hint})" if d.hint else "")) for d in diags]
        if self.degree_max < self.degree:
            out.append(("degree_max", f"must be >= degree ({self.degree}), "
                        f"found {self.degree_max}"))
        if isinstance(self.initial, InitialDesign) and isinstance(self.noise, NoiseDesign):
            first = self.initial.count + self.replicates
            what = (f"the initial design size ({self.initial.count})" if not self.replicates
                    else f"the initial design and the noise replicates ({self.initial.count}"
                    f" + {self.replicates})")
            if self.max_trials <= first:
                out.append(("max_trials", f"must exceed {what} so at least one proposal is "
                            f"tried, found {self.max_trials}"))
        if isinstance(self.phi, RelativePhi) and isinstance(self.noise, NoiseDesign) \
                and self.replicates < 2:
            out.append(("phi", f"{{noise: {self.phi.noise:g}}} needs the noise measured from "
                        "3 runs or more: set noise: {replicates: 2} or more (found "
                        f"{self.replicates}), or give phi as a number"))
        _space, space_problems = _build_space(self, UNKNOWN_LOC)
        return out + space_problems


_NESTED: tuple[tuple[str, type[OpParams]], ...] = (
    ("initial", InitialDesign), ("trial", TrialBudget), ("noise", NoiseDesign),
    ("phi", RelativePhi), ("resources", TrialResources))


def load_search_config(raw: Mapping[str, Any], loc: SourceLoc = UNKNOWN_LOC, *,
                       key_locs: Any = None) -> SearchConfig:
    """Validate a spec's `search:` mapping; raises SpecError with every problem found."""
    cfg, diags = coerce_params(SearchConfig, raw, loc, key_locs=key_locs)
    if diags or not isinstance(cfg, SearchConfig):
        raise SpecError(diags)
    return cfg


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _parse_bounds(params: Mapping[str, Any]) -> tuple[list[tuple[str, float, float]],
                                                     list[tuple[str, str]]]:
    out, problems = [], []
    if not params:
        return [], [("params", "name at least one spec param to search, e.g. {b2: [0, 1]}")]
    for name, bounds in params.items():
        if not isinstance(name, str) or not name:
            problems.append(("params", f"param names must be strings, found {name!r}"))
            continue
        if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
                or not all(_is_number(v) for v in bounds)):
            problems.append(("params", f"'{name}': bounds must be [lo, hi] (two finite "
                             f"numbers), found {bounds!r}"))
            continue
        lo, hi = float(bounds[0]), float(bounds[1])
        if lo >= hi:
            why = "lo > hi" if lo > hi else "lo == hi leaves nothing to search"
            problems.append(("params", f"'{name}': bounds [{lo:g}, {hi:g}] are empty ({why}); "
                             "to fix a value set it in the spec's params instead"))
            continue
        out.append((name, lo, hi))
    return out, problems


def _constraint_text(coeffs: Mapping[str, float], rhs: float, op: str) -> str:
    parts = []
    for i, (name, c) in enumerate(coeffs.items()):
        sign = "-" if c < 0 else "+"
        mag = "" if abs(c) == 1 else f"{abs(c):g}*"
        parts.append(f"{'-' if c < 0 else ''}{mag}{name}" if i == 0 else f"{sign} {mag}{name}")
    return f"{' '.join(parts)} {op} {rhs:g}"


def _parse_constraint(i: int, raw: Mapping[str, Any], names: Sequence[str]
                      ) -> tuple[LinearConstraint | None, list[str]]:
    where = f"constraints[{i}]"
    allowed = ("coeffs", "sum", "le", "ge")
    errs = [f"{where}: unknown key '{k}'; {did_you_mean(str(k), allowed, 'keys')}"
            for k in raw if k not in allowed]
    if ("coeffs" in raw) == ("sum" in raw):
        errs.append(f"{where}: give exactly one of coeffs: {{name: a, ...}} or sum: [names]")
    if ("le" in raw) == ("ge" in raw):
        errs.append(f"{where}: give exactly one bound, le: value or ge: value")
    bound_key = "le" if "le" in raw else "ge"
    if bound_key in raw and not _is_number(raw[bound_key]):
        errs.append(f"{where}: {bound_key} must be a finite number, found {raw[bound_key]!r}")
    coeffs: dict[str, float] = {}
    if isinstance(raw.get("sum"), (list, tuple)) and raw["sum"]:
        for n in raw["sum"]:
            if n in coeffs:
                errs.append(f"{where}: '{n}' appears twice in sum")
            coeffs[n] = 1.0
    elif "sum" in raw:
        errs.append(f"{where}: sum must be a non-empty list of param names")
    if isinstance(raw.get("coeffs"), Mapping) and raw["coeffs"]:
        for n, c in raw["coeffs"].items():
            if not _is_number(c):
                errs.append(f"{where}: coefficient of '{n}' must be a number, found {c!r}")
            else:
                coeffs[n] = float(c)
    elif "coeffs" in raw:
        errs.append(f"{where}: coeffs must be a non-empty mapping {{name: coefficient}}")
    for n in coeffs:
        if n not in names:
            errs.append(f"{where}: unknown param '{n}'; "
                        f"{did_you_mean(str(n), names, 'searched params')}")
    if coeffs and all(c == 0 for c in coeffs.values()):
        errs.append(f"{where}: every coefficient is zero")
    if errs:
        return None, errs
    rhs = float(raw[bound_key])
    text = _constraint_text(coeffs, rhs, "<=" if bound_key == "le" else ">=")
    sign = 1.0 if bound_key == "le" else -1.0
    row = tuple(sign * coeffs.get(n, 0.0) for n in names)
    return LinearConstraint(row, sign * rhs, text), []


def _feasibility_problems(space: SearchSpace) -> list[tuple[str, str]]:
    out = []
    for i, c in enumerate(space.constraints):
        a = np.asarray(c.coeffs)
        least = float(np.minimum(a * space.lo, a * space.hi).sum())
        if least > c.rhs + _FEAS_TOL * max(1.0, abs(c.rhs)):
            side = (f"at least {least:g}" if "<=" in c.text else f"at most {-least:g}")
            out.append(("constraints", f"constraints[{i}] ({c.text}) cannot hold within the "
                        f"bounds: its left side is {side} there"))
    if out:
        return out
    if _has_interior_sample(space):  # the usual case, decided without importing SciPy
        return []
    radius = chebyshev_radius(space)
    if radius is None:
        return [("constraints", "the constraints are infeasible together with the bounds: "
                 "no point satisfies " + ", ".join(c.text for c in space.constraints))]
    if radius < 1e-6:
        return [("constraints", "the feasible set has no interior (the constraints pin it to "
                 "a lower-dimensional set); loosen them or drop a searched param")]
    return []


def _has_interior_sample(space: SearchSpace, margin: float = 1e-3) -> bool:
    """True when a probe point lies `margin` (unit coordinates) inside bounds and
    constraints: the diagonal of the unit box and some seeded random points. A cheap
    sufficient test; `chebyshev_radius` (an LP) decides the rest."""
    a_ub, b_ub = _unit_lp(space)
    probes = np.concatenate([
        np.linspace(0.0, 1.0, 41)[1:-1, None] * np.ones(space.dim),
        np.random.default_rng(0).uniform(margin, 1.0 - margin, (256, space.dim))])
    inside = np.all((probes >= margin) & (probes <= 1.0 - margin), axis=1)
    if len(b_ub):
        reach = margin * np.linalg.norm(a_ub, axis=1)
        inside &= np.all(probes @ a_ub.T + reach <= b_ub, axis=1)
    return bool(inside.any())


def _point_problems(design: InitialDesign, space: SearchSpace) -> list[tuple[str, str]]:
    out = []
    for i, pt in enumerate(design.points):
        where = f"initial.points[{i}]"
        if not isinstance(pt, Mapping):
            out.append(("initial", f"{where} must be a mapping {{param: value}}, found {pt!r}"))
            continue
        bad = [f"unknown param '{k}'; {did_you_mean(str(k), space.names, 'searched params')}"
               for k in pt if k not in space.names]
        bad += [f"'{n}' is missing" for n in space.names if n not in pt]
        bad += [f"'{k}' must be a finite number, found {v!r}"
                for k, v in pt.items() if k in space.names and not _is_number(v)]
        if not bad:
            bad = space.violations(space.from_point(pt))
        out += [("initial", f"{where}: {b}") for b in bad]
    return out


def _build_space(cfg: SearchConfig, loc: SourceLoc) -> tuple[SearchSpace | None,
                                                              list[tuple[str, str]]]:
    bounds, problems = _parse_bounds(cfg.params)
    if problems:
        return None, problems
    names = tuple(n for n, _, _ in bounds)
    rows, errs = [], []
    for i, raw in enumerate(cfg.constraints):
        con, msgs = _parse_constraint(i, raw, names)
        errs += msgs
        if con is not None:
            rows.append(con)
    if errs:
        return None, [("constraints", m) for m in errs]
    space = SearchSpace(names, tuple(lo for _, lo, _ in bounds), tuple(hi for _, _, hi in bounds),
                        tuple(rows), loc)
    problems = _feasibility_problems(space)
    if not problems and isinstance(cfg.initial, InitialDesign):
        problems = _point_problems(cfg.initial, space)
    return (None if problems else space), problems
