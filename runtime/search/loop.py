"""The paper's Table 1 (weight optimisation) as a state machine that never trains.

`search_steps` yields batches of `Job`s and is sent back their `TrialRecord`s;
`run_search` drives it with an objective, an executor and the resumable study log.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
import os

import numpy as np

from compiler.diagnostics import UNKNOWN_LOC, SourceLoc, SpecError
from runtime.search.executors import Job, Objective, Outcome, RayOptions, run_trials, takes_seed
from runtime.search.minimize import Minimum, minimize_surrogate, sample_feasible
from runtime.search.noise import NoiseEstimate, estimate_noise, replicate_jobs
from runtime.search.space import SearchConfig, SearchSpace
from runtime.search.study import StudyLog, TrialRecord
from runtime.search.surrogate import Surrogate, fit_surrogate

SAME_POINT_TOL = 1e-6  # per param, as a fraction of its range: "the same trial" on replay
STALL_SHRINK = 0.5  # a productive proposal at least halves the previous prediction gap
EXPLORE_SAMPLES = 4096  # random feasible candidates of an exploration point (plus vertices)


@dataclass(frozen=True)
class SearchResult:
    """Every trial, the last fit and proposal, and why the search stopped."""

    space: SearchSpace
    records: tuple[TrialRecord, ...]
    surrogate: Surrogate | None  # the fit that made the last proposal
    converged: bool  # stopped by |f_hat_min - f_min| < phi
    reason: str
    events: tuple[str, ...] = ()  # degree changes and other decisions, in order
    noise: NoiseEstimate | None = None  # sigma_hat, when search.noise.replicates > 0
    phi: float | None = None  # the threshold the stop rule used
    phi_text: str = ""  # how phi was set, e.g. "2 x noise sd 0.0123"

    @property
    def proposal(self) -> TrialRecord | None:
        """The last proposal: beta_hat, f_hat_min (`predicted`) and f_min (`objective`)."""
        return next((r for r in reversed(self.records) if r.kind == "proposal"), None)

    @property
    def best(self) -> TrialRecord | None:
        """The trial with the lowest measured objective (ties: the earliest)."""
        ok = [r for r in self.records if r.ok]
        return min(ok, key=lambda r: (r.objective, r.trial)) if ok else None


def unit_distance(space: SearchSpace, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Largest |x - y| over params, each as a fraction of its range; y may be (N, dim)."""
    return np.max(np.abs(np.atleast_2d(y) - x) / (space.hi - space.lo), axis=1)


def same_point(space: SearchSpace, x: np.ndarray, y: np.ndarray) -> bool:
    return bool(unit_distance(space, x, y)[0] <= SAME_POINT_TOL)


def nearest_measured(space: SearchSpace, x: np.ndarray, records: Sequence[TrialRecord],
                     within: float) -> TrialRecord | None:
    """The closest trial (ok or failed) within `within` of x; None when x is new."""
    if not records:
        return None
    d = unit_distance(space, x, np.array([space.from_point(r.point) for r in records]))
    i = int(np.argmin(d))
    return records[i] if d[i] <= max(within, SAME_POINT_TOL) else None


def exploration_point(space: SearchSpace, measured: np.ndarray, rng: np.random.Generator
                      ) -> tuple[np.ndarray, float]:
    """The feasible point farthest from every measured one (maximin over the polytope's
    vertices, the feasible box corners and a dense random feasible sample), and its
    distance to the nearest measured point (in unit_distance)."""
    cands = np.concatenate([space.extreme_points, space.box_corners(),
                            sample_feasible(space, EXPLORE_SAMPLES, rng)])
    scaled = (cands - space.lo) / (space.hi - space.lo)
    seen = (np.atleast_2d(measured) - space.lo) / (space.hi - space.lo)
    nearest = np.max(np.abs(scaled[:, None, :] - seen[None, :, :]), axis=2).min(axis=1)
    i = int(np.argmax(nearest))
    return cands[i], float(nearest[i])


def initial_jobs(cfg: SearchConfig, space: SearchSpace) -> list[Job]:
    """Trials 1..count: the fixed points, then random feasible points drawn from the seed;
    then the noise replicates of trial 1 (count+1..count+replicates)."""
    design = cfg.design
    fixed = [space.from_point(p) for p in design.points]
    rng = np.random.default_rng([design.seed, 0])
    xs = fixed + list(sample_feasible(space, design.count - len(fixed), rng))
    jobs = [Job(i + 1, tuple(space.to_point(x).items()), "initial", cfg.budget.seed)
            for i, x in enumerate(xs)]
    return jobs + replicate_jobs(jobs[0], cfg.replicates, len(jobs) + 1)


def _fmt(space: SearchSpace, x: np.ndarray | Sequence[float]) -> str:
    return "(" + ", ".join(f"{n}={v:.4f}" for n, v in zip(space.names, x, strict=True)) + ")"


def _threshold(cfg: SearchConfig, noise: NoiseEstimate | None) -> tuple[float | None, str]:
    """(phi, how it was set); phi None when it is relative and the noise is unknown."""
    k = cfg.phi_noise
    if k is None:
        return float(cfg.phi), f"{float(cfg.phi):g}"  # type: ignore[arg-type]
    if noise is None:
        return None, ""
    return k * noise.sd, f"{k:g} x noise sd {noise.sd:.4g} = {k * noise.sd:.4g}"


def search_steps(cfg: SearchConfig, space: SearchSpace
                 ) -> Generator[list[Job], list[TrialRecord], SearchResult]:
    """Table 1 as a generator: yields jobs to run, is sent their records, returns the result.

    1. Evaluate the initial design and the noise replicates (one batch).
    2. Fit f_hat of degree p (starting at `cfg.degree`; `cfg.transform` picks f or
       log f) to every successful initial, proposal and exploration trial.
    3. Minimise f_hat under the bounds and constraints: beta_hat, f_hat_min.
    4. Evaluate beta_hat (one job): f_min. Stop, converged, when
       |f_hat_min - f_min| < phi; otherwise beta_hat joins the data and we refit (2).

    phi is `cfg.phi`, or k * sigma_hat for `phi: {noise: k}` (sigma_hat from trial 1
    and its replicates; replicates are not fitted: one value per point).

    No point is trained twice. When beta_hat lies within `cfg.min_distance` of a
    measured trial, that trial's f is f(beta_hat): if |f_hat_min - f| < phi the search
    has converged without a new run; otherwise the degree is raised and the fit
    redone (up to `cfg.degree_max`); if the minimum still repeats a measured point,
    the feasible point farthest from all measured ones is trained instead (an
    'explore' trial, which adds data but is not tested against phi). The search
    stops when no feasible point is farther than min_distance from the measured ones.

    Stall rule (when p is raised). After each non-converged proposal at degree p,
    with gap g = |f_hat_min - f_min|, the proposal is *unproductive* when
    g > STALL_SHRINK (0.5) times the gap of the previous proposal at the same
    degree p, i.e. the gap failed to halve (the first proposal at a degree has no
    predecessor). A least-squares fit dragged by far-away points closes its gap
    only slowly (~1/k) however many points pile up near its minimum; halving is the
    progress a better model would show. `cfg.patience` unproductive proposals in a
    row mean the fit has stalled: p rises by one (the counter and previous gap
    reset), or, at `cfg.degree_max`, the search stops as stalled.
    The search also stops after `cfg.max_trials` trials in all, or when a proposal's
    or exploration's trial fails (re-running the same point would fail again).
    Failed initial trials are left out of the fit. Randomness (initial points,
    minimiser starts, exploration candidates) comes from `cfg.design.seed` and the
    trial id, so a replay is identical.
    """
    records: list[TrialRecord] = list((yield initial_jobs(cfg, space)))
    degree, stalls, prev_gap = cfg.degree, 0, None
    events: list[str] = []
    fit: Surrogate | None = None
    noise = estimate_noise(records) if cfg.replicates else None
    phi, phi_text = _threshold(cfg, noise)

    def result(converged: bool, reason: str) -> SearchResult:
        return SearchResult(space, tuple(records), fit, converged, reason, tuple(events),
                            noise, phi, phi_text)

    if phi is None:
        runs = sum(r.ok for r in records if r.trial == 1 or r.kind == "replicate")
        return result(False, f"phi = {{noise: {cfg.phi_noise:g}}} needs the noise, but only "
                      f"{runs} of the {1 + cfg.replicates} runs of trial 1's point succeeded")

    def fit_and_minimize(trial: int) -> tuple[Surrogate, Minimum]:
        ok = [r for r in records if r.ok and r.kind != "replicate"]
        xs = np.array([space.from_point(r.point) for r in ok])
        ys = np.array([r.objective for r in ok], dtype=float)
        surrogate = fit_surrogate(xs, ys, space, degree=degree, form=cfg.form,
                                  transform=cfg.transform)
        rng = np.random.default_rng([cfg.design.seed, 1, trial])
        best = xs[int(np.argmin(ys))]
        return surrogate, minimize_surrogate(surrogate, space, rng, extra_starts=[best])

    while True:
        if not any(r.ok for r in records if r.kind != "replicate"):
            return result(False, "no trial succeeded, so there is nothing to fit")
        if len(records) >= cfg.max_trials:
            return result(False, f"trial budget spent (max_trials = {cfg.max_trials})")
        if cfg.transform == "log":
            bad = next((r for r in records if r.ok and r.objective <= 0), None)
            if bad is not None:
                return result(False, f"transform 'log' needs a positive objective, but trial "
                              f"{bad.trial} measured {bad.objective:g}; use transform: none "
                              "or auto")
        trial = len(records) + 1
        fit, low = fit_and_minimize(trial)
        x = np.asarray(low.point)
        twin = nearest_measured(space, x, records, cfg.min_distance)
        while twin is not None:
            gap = None if not twin.ok else abs(low.value - twin.objective)
            if gap is not None and gap < phi:
                return result(True, f"converged: f_hat's minimum {_fmt(space, x)} is the point"
                              f" of trial {twin.trial}, already measured; |f_hat_min - f_min|"
                              f" = {gap:.6g} < phi = {phi_text}")
            said = (f"trial {trial}: f_hat's minimum {_fmt(space, x)} is within min_distance "
                    f"{cfg.min_distance:g} of trial {twin.trial} (measured "
                    + ("failed" if gap is None else f"{twin.objective:.6g}, gap {gap:.6g}")
                    + "), not trained again")
            if degree >= cfg.degree_max:
                break
            degree, stalls, prev_gap = degree + 1, 0, None
            events.append(f"{said}; degree raised to {degree}")
            fit, low = fit_and_minimize(trial)
            x = np.asarray(low.point)
            twin = nearest_measured(space, x, records, cfg.min_distance)
        if twin is not None:
            rng = np.random.default_rng([cfg.design.seed, 2, trial])
            seen = np.array([space.from_point(r.point) for r in records])
            x, dist = exploration_point(space, seen, rng)
            if dist <= cfg.min_distance:
                return result(False, f"{said} at degree_max = {cfg.degree_max}, and no feasible"
                              f" point is farther than min_distance {cfg.min_distance:g} from"
                              " every measured one")
            events.append(f"{said} at degree_max = {cfg.degree_max}; exploring "
                          f"{_fmt(space, x)} instead, the feasible point farthest from all "
                          f"measured ones (distance {dist:.3f})")
            job = Job(trial, tuple(space.to_point(x).items()), "explore", cfg.budget.seed,
                      predicted=float(fit.predict(x)[0]), degree=fit.degree)
            (rec,) = yield [job]
            records.append(rec)
            if not rec.ok:
                return result(False, f"exploration trial {trial} failed: "
                              f"{rec.error or rec.status}")
            continue
        job = Job(trial, tuple(space.to_point(low.point).items()), "proposal", cfg.budget.seed,
                  predicted=low.value, degree=fit.degree)
        (rec,) = yield [job]
        records.append(rec)
        if not rec.ok or rec.objective is None:
            return result(False, f"proposal trial {trial} failed: {rec.error or rec.status}")
        gap = abs(low.value - rec.objective)
        if gap < phi:
            return result(True, f"converged at trial {trial}: |f_hat_min - f_min| = {gap:.6g} "
                          f"< phi = {phi_text}")
        slow = prev_gap is not None and gap > STALL_SHRINK * prev_gap
        last = f"gap {gap:.6g} did not halve from {prev_gap:.6g}" if slow else ""
        stalls, prev_gap = (stalls + 1 if last else 0), gap
        if stalls >= cfg.patience:
            why = f"{stalls} unproductive proposal(s) in a row, the last {last}"
            if degree >= cfg.degree_max:
                return result(False, f"stalled at degree_max = {cfg.degree_max}: {why}")
            degree, stalls, prev_gap = degree + 1, 0, None
            events.append(f"trial {trial}: fit stalled, {why}; degree raised to {degree}")


def _record(job: Job, outcome: Outcome) -> TrialRecord:
    return TrialRecord(
        trial=job.trial, point=job.params, objective=outcome.objective, kind=job.kind,
        status=outcome.status, seed=job.seed, seconds=outcome.seconds, run_dir=outcome.run_dir,
        predicted=job.predicted, degree=job.degree, error=outcome.error,
        metrics=dict(outcome.metrics))


def _replayed(job: Job, logged: TrialRecord | None, space: SearchSpace,
              where: SourceLoc) -> TrialRecord | None:
    """The logged record standing for `job`, or None when the job still has to run."""
    if logged is None or not logged.ok:
        return None
    if logged.kind != job.kind or logged.seed != job.seed or set(logged.point) != set(
            space.names) or not same_point(
            space, space.from_point(logged.point), space.from_point(job.params)):
        raise SpecError.at(
            where, f"trial {job.trial} in the log ({logged.kind} at {dict(logged.point)}, seed "
            f"{logged.seed}) is not the trial this search would run now ({job.kind} at "
            f"{job.params}, seed {job.seed}); the search "
            "settings changed since the log was written",
            hint="use a new output directory, or move study.jsonl aside to start over")
    return logged


def run_search(cfg: SearchConfig, objective: Objective, *,
               out_dir: str | os.PathLike[str] | None = None,
               space: SearchSpace | None = None, loc: SourceLoc = UNKNOWN_LOC,
               on_record: Callable[[TrialRecord], None] | None = None,
               on_start: Callable[[Job], None] | None = None) -> SearchResult:
    """Run Table 1 with `objective(point, trial_id) -> f`.

    With `out_dir`, each finished trial is appended to out_dir/study.jsonl as soon as
    it finishes, and trials already logged as ok are not run again: the search
    replays them (same ids and points, since they derive from the seed) and carries
    on where it stopped. Workers and executor come from `cfg`. `on_record` is called
    in this process with each trial's record as it finishes (not for replayed ones),
    `on_start` with each job as it is handed to a worker.
    """
    space = space or cfg.space(loc)
    if cfg.replicates and not takes_seed(objective):
        raise SpecError.at(loc, f"search.noise.replicates = {cfg.replicates} retrains a point "
                           "with other seeds, but the objective takes no seed",
                           hint="give the objective a `seed` keyword argument, or set "
                                "noise: {replicates: 0}")
    log = StudyLog(out_dir) if out_dir is not None else None
    logged = log.finished() if log else {}
    where = SourceLoc(str(log.path)) if log else loc

    def on_outcome(job: Job, outcome: Outcome) -> None:
        record = _record(job, outcome)
        if log:
            log.append(record)
        if on_record:
            on_record(record)

    steps = search_steps(cfg, space)
    try:
        jobs = next(steps)
        while True:
            jobs = steps.send(_evaluate(jobs, objective, cfg, logged, space, where, on_outcome,
                                        on_start))
    except StopIteration as stop:
        return stop.value


def _evaluate(jobs: Sequence[Job], objective: Objective, cfg: SearchConfig,
              logged: dict[int, TrialRecord], space: SearchSpace, where: SourceLoc,
              on_outcome: Callable[[Job, Outcome], None],
              on_start: Callable[[Job], None] | None = None) -> list[TrialRecord]:
    done = {j.trial: _replayed(j, logged.get(j.trial), space, where) for j in jobs}
    todo = [j for j in jobs if done[j.trial] is None]
    res = cfg.trial_resources
    outcomes = run_trials(objective, todo, cfg.workers, executor=cfg.executor,
                          address=cfg.address, on_outcome=on_outcome, on_start=on_start,
                          ray=RayOptions(cfg.address, res.cpus, res.gpus, cfg.max_retries),
                          loc=space.loc)
    records = {t: r for t, r in done.items() if r is not None}
    records.update((j.trial, _record(j, o)) for j, o in zip(todo, outcomes, strict=True))
    return [records[j.trial] for j in jobs]
