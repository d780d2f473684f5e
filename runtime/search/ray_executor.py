"""Trials as Ray tasks: one fresh worker process per trial, reserving the spec's resources.

The study log, not Ray, is the record of a search: this module only runs jobs and hands
each outcome back as it arrives. A task whose worker process dies (killed, out of memory,
its node lost) is rerun by Ray up to `max_retries` times, then becomes a failed outcome
with the reason; a trial is never dropped. A trial that raises is a failed outcome at
once (call_objective catches it), since running it again would raise again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from compiler.diagnostics import SourceLoc, SpecError
from runtime.search.executors import Job, Objective, Outcome, RayOptions, call_objective


def import_ray(loc: SourceLoc) -> Any:
    try:
        import ray
    except ImportError:
        raise SpecError.at(loc, "executor 'ray' needs the ray package, which is not installed",
                           hint="pip install netspec[ray]") from None
    return ray


def connect(ray: Any, address: str | None, loc: SourceLoc) -> None:
    """Join the cluster at `address`, or start a local one (None), once per process.

    Kept up between batches (the initial design, then each proposal): starting a local
    cluster takes seconds. Trial output goes to each trial's own log, not to the driver.
    """
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address is None:
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = address or "a new local cluster"
        raise SpecError.at(loc, f"cannot connect to the Ray cluster at {where}: "
                           f"{str(exc).strip().splitlines()[0][:200]}",
                           hint="start one with `ray start --head`, then pass --address "
                                "HOST:PORT (or 'auto' on a cluster node); a cluster with "
                                "token authentication also needs RAY_AUTH_MODE=token and its "
                                "token (RAY_AUTH_TOKEN or ~/.ray/auth_token)") from None


def check_fits(ray: Any, opts: RayOptions, loc: SourceLoc) -> None:
    """Refuse a reservation no node can hold (Ray would otherwise wait for ever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(n.get("CPU", 0) >= opts.cpus and n.get("GPU", 0) >= opts.gpus for n in nodes):
        return
    have = ", ".join(f"{n.get('CPU', 0):g} CPU / {n.get('GPU', 0):g} GPU" for n in nodes)
    raise SpecError.at(loc, f"a trial reserves {opts.cpus:g} CPU and {opts.gpus:g} GPU "
                       f"(search.resources), but no node of the Ray cluster has that "
                       f"(nodes: {have or 'none alive'})",
                       hint="lower search.resources.cpus / gpus, or add a node that has them")


def run_on_ray(fn: Objective, jobs: Sequence[Job], workers: int, opts: RayOptions,
               on_outcome: Callable[[Job, Outcome], None] | None,
               on_start: Callable[[Job], None] | None, loc: SourceLoc) -> list[Outcome]:
    """Run `jobs` as Ray tasks, at most `workers` in flight; outcomes in job order."""
    ray = import_ray(loc)
    connect(ray, opts.address, loc)
    check_fits(ray, opts, loc)
    task = ray.remote(num_cpus=opts.cpus, num_gpus=opts.gpus, max_calls=1,
                      max_retries=opts.max_retries, retry_exceptions=False)(call_objective)
    pending: dict[Any, int] = {}
    results: dict[int, Outcome] = {}
    queue = list(enumerate(jobs))
    try:
        while queue or pending:
            while queue and len(pending) < max(1, workers):
                i, job = queue.pop(0)
                if on_start:
                    on_start(job)
                pending[task.options(name=f"netspec-trial-{job.trial}").remote(fn, job)] = i
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                results[i] = _outcome(ray, ref, jobs[i], opts.max_retries)
                if on_outcome:
                    on_outcome(jobs[i], results[i])
    except BaseException:
        for ref in pending:  # an interrupted driver leaves no trial running on the cluster
            ray.cancel(ref, force=True)
        raise
    return [results[i] for i in range(len(jobs))]


def _outcome(ray: Any, ref: Any, job: Job, retries: int) -> Outcome:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the task itself raised (e.g. unpicklable fn)
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return Outcome(job.trial, None, 0.0, "failed",
                       f"ray task failed: {type(cause).__name__}: {_first_line(cause)}")
    except ray.exceptions.RayError as exc:  # the worker or its node died, every attempt
        return Outcome(job.trial, None, 0.0, "failed",
                       f"the Ray worker running trial {job.trial} died "
                       f"({1 + retries} attempt(s), search.max_retries = {retries}): "
                       f"{type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    lines = [x for x in str(exc).strip().splitlines() if x.strip()]
    return lines[0][:300] if lines else ""
