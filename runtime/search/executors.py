"""Running trials: serially, in a spawned process pool, or on a Ray cluster.

The search loop never calls an objective itself; it hands `Job`s to `run_trials`,
which returns one `Outcome` per job (a raising objective is a failed trial, not a crash).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
import inspect
import math
import multiprocessing
import numbers
import pickle
import time
import traceback
from typing import Any, Literal

from compiler.diagnostics import UNKNOWN_LOC, SourceLoc
from runtime.search.study import Kind

# objective(point, trial_id) -> f, or a mapping {objective: f, run_dir: ..., other metrics};
# an objective with a `seed` parameter is also given the trial's training seed (seed=...)
Objective = Callable[..., Any]


@dataclass(frozen=True)
class Job:
    """One trial to run, and why it is run (`predicted`/`degree`: proposals, explorations)."""

    trial: int
    point: tuple[tuple[str, float], ...]
    kind: Kind
    seed: int
    predicted: float | None = None
    degree: int | None = None

    @property
    def params(self) -> dict[str, float]:
        return dict(self.point)


@dataclass(frozen=True)
class Outcome:
    """What a trial returned: `objective` is None unless status is 'ok'."""

    trial: int
    objective: float | None
    seconds: float
    status: Literal["ok", "failed"]
    error: str | None = None
    run_dir: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)


def takes_seed(fn: Objective) -> bool:
    """Does `fn` accept a `seed` keyword (so noise replicates can vary it)?"""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def call_objective(fn: Objective, job: Job) -> Outcome:
    """Run one job, timing it; exceptions and non-finite values become failed outcomes."""
    start = time.perf_counter()
    try:
        value = (fn(job.params, job.trial, seed=job.seed) if takes_seed(fn)
                 else fn(job.params, job.trial))
    except Exception as exc:  # noqa: BLE001 - a failing trial must not end the search
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Outcome(job.trial, None, time.perf_counter() - start, "failed", last)
    seconds = time.perf_counter() - start
    run_dir, metrics = None, {}
    if isinstance(value, Mapping):
        extra = dict(value)
        run_dir = extra.pop("run_dir", None)
        value = extra.pop("objective", None)
        metrics = {k: float(v) for k, v in extra.items()
                   if isinstance(v, numbers.Real) and not isinstance(v, bool)}
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return Outcome(job.trial, None, seconds, "failed",
                       f"objective returned {value!r}, expected a number", run_dir, metrics)
    value = float(value)
    if not math.isfinite(value):
        return Outcome(job.trial, None, seconds, "failed", f"objective was {value}",
                       run_dir, metrics)
    return Outcome(job.trial, value, seconds, "ok", None,
                   None if run_dir is None else str(run_dir), metrics)


@dataclass(frozen=True)
class RayOptions:
    """Where and how trials run on Ray: the cluster, each task's reservation, and how many
    times a trial whose worker process died is run again."""

    address: str | None = None
    cpus: float = 1.0
    gpus: float = 0.0
    max_retries: int = 1


def run_trials(fn: Objective, jobs: Sequence[Job], workers: int = 1, *,
               executor: Literal["local", "ray"] = "local", address: str | None = None,
               on_outcome: Callable[[Job, Outcome], None] | None = None,
               on_start: Callable[[Job], None] | None = None,
               ray: RayOptions | None = None,
               loc: SourceLoc = UNKNOWN_LOC) -> list[Outcome]:
    """Run `jobs`, at most `workers` at a time; outcomes come back in job order.

    workers=1 with the local executor calls `fn` in this process. Otherwise `fn` must
    be a picklable top-level function (Ray's cloudpickle is laxer): each trial runs in
    a fresh spawned process (local) or Ray worker, so per-trial state such as a TF
    graph or GPU memory is released between trials. `on_start` and `on_outcome` are
    called in this process as each trial is started and finishes (e.g. to append it to
    the study log at once). `ray` (with executor 'ray') overrides `address`.
    """
    if not jobs:
        return []
    if executor == "ray":
        from runtime.search.ray_executor import run_on_ray

        return run_on_ray(fn, jobs, workers, ray or RayOptions(address=address),
                          on_outcome, on_start, loc)
    if workers <= 1:
        out = []
        for job in jobs:
            if on_start:
                on_start(job)
            out.append(call_objective(fn, job))
            if on_outcome:
                on_outcome(job, out[-1])
        return out
    _check_picklable(fn)
    results: dict[int, Outcome] = {}
    ctx = multiprocessing.get_context("spawn")
    queue = list(enumerate(jobs))
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                                max_tasks_per_child=1) as pool:
        futures: dict[cf.Future[Outcome], int] = {}
        while queue or futures:
            while queue and len(futures) < workers:  # submitted = running: honest progress
                i, job = queue.pop(0)
                if on_start:
                    on_start(job)
                futures[pool.submit(call_objective, fn, job)] = i
            done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                i = futures.pop(fut)
                try:
                    outcome = fut.result()
                except BrokenProcessPool as exc:
                    outcome = Outcome(jobs[i].trial, None, 0.0, "failed",
                                      f"trial process died: {exc}")
                results[i] = outcome
                if on_outcome:
                    on_outcome(jobs[i], outcome)
    return [results[i] for i in range(len(jobs))]


def _check_picklable(fn: Objective) -> None:
    try:
        pickle.dumps(fn)
    except Exception as exc:  # noqa: BLE001 - pickle raises several unrelated types
        raise TypeError(
            f"the objective {fn!r} cannot be sent to worker processes ({exc}); with "
            "workers > 1 it must be a top-level function (or a functools.partial of one)"
        ) from exc
