"""`netspec search`: the Information-Synthesis weight search run on a spec.

Each trial trains the spec with the point's params as `--set` overrides and the
`search.trial` budget into DIR/trials/NNN; the resumable core in runtime/search does
the rest. The parent process never imports TensorFlow when trials run in workers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import contextlib
from dataclasses import dataclass, replace
import functools
import hashlib
import json
import math
import os
from pathlib import Path
import shutil
import sys
import time
from typing import Any

from compiler.api import Spec, expanded_document, load_spec
from compiler.diagnostics import DiagnosticSink, SourceLoc, SpecError, did_you_mean
from compiler.params import coerce_params
from runtime.search import (
    STUDY_FILE,
    Job,
    SearchConfig,
    SearchResult,
    SearchSpace,
    StudyLog,
    TrialRecord,
    run_search,
    trial_dir,
    write_report,
)
from runtime.train.train_config import train_config

SETTINGS_FILE = "search.json"  # what the study was started with; a rerun must match
TRIAL_LOG = "trial.log"  # a trial's own progress lines (fit's), kept out of the terminal
_EXECUTORS = {"local": "local", "process": "local", "ray": "ray"}


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # noqa: T201 - user-facing progress lines


# ---------------------------------------------------------------- the search section

def search_config(spec: Spec, overrides: Sequence[str] = ()
                  ) -> tuple[SearchConfig, SearchSpace]:
    """Validate `spec`'s `search:` section against the spec; SpecError at file:line.

    Beyond the section's own rules (runtime.search.space), every searched name must
    be a declared numeric param, and must change the model or its run sections
    (a param nothing refers to would make every trial the same). `overrides` are
    the --set values `spec` was loaded with.
    """
    raw = spec.sections.get("search")
    if raw is None:
        raise SpecError.at(SourceLoc(spec.file), "this spec has no `search:` section",
                           hint="add search: {params: {NAME: [lo, hi]}, phi: ...}; see "
                                "specs/is_net.yaml")
    cfg, diags = coerce_params(SearchConfig, dict(raw), raw.loc, section="search",
                               key_locs=raw.loc_of)
    if diags or not isinstance(cfg, SearchConfig):
        raise SpecError(diags)
    params_loc = raw.loc_of("params")
    key_loc = getattr(raw.get("params"), "loc_of", lambda _k: params_loc)
    sink = DiagnosticSink()
    for name in cfg.params:
        if name not in spec.params:
            sink.error(key_loc(name), f"search: '{name}' is not a param of this spec",
                       hint=did_you_mean(str(name), spec.params, "declared params"))
        elif isinstance(spec.params[name], bool) or not isinstance(spec.params[name],
                                                                  (int, float)):
            sink.error(key_loc(name), f"search: param '{name}' is "
                       f"{spec.params[name]!r}; only numeric params can be searched")
    sink.raise_if_any()
    space = cfg.space(raw.loc)
    for name, lo, hi in zip(space.names, space.lower, space.upper, strict=True):
        if _model_at(spec, overrides, name, lo) == _model_at(spec, overrides, name, hi):
            sink.error(key_loc(name), f"search: changing '{name}' from {lo:g} to {hi:g} "
                       "changes nothing in the layers or the data/train/eval sections",
                       hint=f"use ${name} (or ${{...{name}...}}) where it should act, "
                            "e.g. a scale layer's value")
    sink.raise_if_any()
    return cfg, space


def _model_at(spec: Spec, overrides: Sequence[str], name: str, value: float
              ) -> dict[str, Any]:
    """The expanded spec with one param set, minus the parts a param always changes."""
    doc = expanded_document(load_spec(spec.file, [*overrides, f"{name}={value!r}"]))
    return {k: v for k, v in doc.items() if k not in ("params", "search")}


def model_digest(spec: Spec, searched: Sequence[str]) -> str:
    """A hash of what a trial trains (layers, data/train/eval, unsearched params), so a
    resumed study notices an edited spec file."""
    doc = expanded_document(spec)
    doc.pop("search", None)
    doc["params"] = {k: v for k, v in doc.get("params", {}).items() if k not in searched}
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def settings(cfg: SearchConfig, **overrides: Any) -> SearchConfig:
    """`cfg` with the command line's workers/executor/address where given."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if "executor" in given:
        executor = _EXECUTORS.get(given["executor"])
        if executor is None:
            raise SpecError.at(SourceLoc("<command line>"),
                               f"unknown executor '{given['executor']}'",
                               hint=did_you_mean(given["executor"], _EXECUTORS, "executors"))
        given["executor"] = executor
    if given.get("workers") is not None and given["workers"] < 1:
        raise SpecError.at(SourceLoc("<command line>"), "--workers must be at least 1")
    return replace(cfg, **given) if given else cfg


# ------------------------------------------------------------------ one trial

@dataclass(frozen=True)
class TrialContext:
    """Everything a trial process needs (picklable: plain values only)."""

    spec_file: str
    overrides: tuple[str, ...]  # the user's --set values, then the budget's
    study_dir: str
    objective: str  # "val_loss" | "val_nme"
    data: str | None = None
    data_format: str | None = None
    threads: int | None = None  # TF threads of a trial that shares the cores; None: TF's
    cores: int | None = None  # threads of a trial that runs alone (the proposals)
    initial: int = 0  # trials 1..initial run side by side; later ones one at a time

    def threads_for(self, trial: int) -> int | None:
        """The initial design runs `workers` trials at once, each on its share of the
        cores; a proposal runs alone, so it gets them all."""
        if self.threads is None:
            return None
        return self.threads if trial <= self.initial else (self.cores or self.threads)


def budget_overrides(epochs: int | None, steps: int | None, seed: int,
                     steps_per_epoch: int | None) -> list[str]:
    """`train.*` overrides for a trial's budget (None: the spec's own)."""
    out = [f"train.seed={seed}"]
    if epochs is not None:
        out.append(f"train.epochs={epochs}")
    elif steps is not None:
        if steps_per_epoch:
            out.append(f"train.epochs={max(1, math.ceil(steps / steps_per_epoch))}")
        else:
            out += ["train.epochs=1", f"train.steps_per_epoch={steps}"]
    return out


def point_overrides(point: Mapping[str, float]) -> list[str]:
    """`NAME=VALUE` for each searched param (repr keeps every digit)."""
    return [f"{name}={float(value)!r}" for name, value in point.items()]


def without_params(overrides: Sequence[str], names: Sequence[str]) -> list[str]:
    """Drop the user's overrides of searched params (the point decides those)."""
    def key(text: str) -> str:
        k = text.split("=", 1)[0].strip()
        return k[len("params."):] if k.startswith("params.") else k
    return [o for o in overrides if key(o) not in names]


def trial_threads(workers: int, executor: str, cores: int | None = None,
                  ray_cpus: float | None = None) -> int | None:
    """Threads per trial so `workers` concurrent trials share the cores; None: no limit.

    A Ray trial uses the CPUs it reserved (search.resources.cpus, at least one thread),
    since other trials may share its node whatever `workers` says."""
    if executor == "ray":
        return None if ray_cpus is None else max(1, math.ceil(ray_cpus))
    if workers <= 1:
        return None
    return max(1, (cores or available_cores()) // workers)


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def limit_threads(threads: int | None) -> None:
    """Cap the backend's thread pools in this (fresh) process before it starts its runtime
    (TensorFlow's through its API; XLA's CPU client and PyTorch's through OMP/env)."""
    if threads is None:
        return
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(threads)
    from runtime.backend import requested

    if requested() != "tensorflow":
        return
    from runtime.quiet_tf import import_tensorflow

    import_tensorflow()  # a trial process: no start-up banner per trial
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already set in this process: keep it
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """RUN/metrics.jsonl as a list of epoch records (empty when absent)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trial_figures(rows: Sequence[Mapping[str, Any]], objective: str) -> dict[str, float]:
    """{objective: best value, val_loss, val_nme (bests), epochs}; raises if none is finite."""
    def best(key: str) -> float | None:
        vals = [float(r[key]) for r in rows if isinstance(r.get(key), (int, float))
                and math.isfinite(float(r[key]))]
        return min(vals) if vals else None

    value = best(objective)
    if value is None:
        raise ValueError(f"the trial recorded no finite {objective} "
                         f"({len(rows)} epoch(s) in metrics.jsonl)")
    out = {"objective": value, "epochs": float(len(rows))}
    for key in ("val_loss", "val_nme"):
        v = best(key)
        if v is not None:
            out[key] = v
    return out


def run_trial(ctx: TrialContext, point: dict[str, float], trial: int,
              seed: int | None = None) -> dict[str, Any]:
    """The search objective: train the spec at `point`, return its best validation figure.

    Top level (and `ctx` plain data) so a process pool can send it to a worker.
    A leftover DIR/trials/NNN from an interrupted run is cleared and retrained, so a
    resumed search gives the trial the same result an uninterrupted one would.
    `seed` (a noise replicate's) overrides the budget's train.seed.
    """
    limit_threads(ctx.threads_for(trial))
    from runtime.search.quiet import retracing_silenced
    from runtime.train.fit import fit_spec

    overrides = [*ctx.overrides, *point_overrides(point),
                 *([] if seed is None else [f"train.seed={seed}"])]
    spec = load_spec(ctx.spec_file, overrides)
    run_dir = trial_dir(ctx.study_dir, trial)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    try:
        with (open(run_dir / TRIAL_LOG, "w") as log, contextlib.redirect_stderr(log),
              retracing_silenced()):
            fit_spec(spec, run_dir, data=ctx.data, data_format=ctx.data_format,
                     overrides=overrides, explicit_dir=True, quiet=True)
    finally:
        _release_keras()
    return {**trial_figures(read_metrics(run_dir), ctx.objective), "run_dir": str(run_dir)}


def _release_keras() -> None:
    """Free the trial's graph when trials share this process (workers = 1)."""
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()


# ------------------------------------------------------------------ progress

def format_point(point: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in point.items())


class Progress:
    """Search progress on stderr: one line per finished trial with the best objective so far
    (NME in percent, as everywhere in human output) and the state of the study: trials
    running, finished, failed, and the current surrogate minimum f_hat_min (the last
    proposal's prediction). A proposal or exploration, which runs alone, also gets a line
    when it starts. On a terminal a bar of trials done / the limit carries the same state."""

    def __init__(self, objective: str, max_trials: int,
                 previous: Sequence[TrialRecord] = ()) -> None:
        self.objective, self.max_trials = objective, max_trials
        ok = [r for r in previous if r.ok]
        self.best: TrialRecord | None = min(ok, key=lambda r: r.objective) if ok else None
        self._bar: Any = None
        last = {r.trial: r for r in previous}
        self.finished = sum(r.ok for r in last.values())
        self.failed = len(last) - self.finished
        self.running: set[int] = set()
        self.f_hat_min: tuple[float, int] | None = next(
            ((r.predicted, r.trial) for r in reversed(previous)
             if r.kind == "proposal" and r.predicted is not None), None)
        self._done = self.finished

    def state(self) -> str:
        """'2 running, 5 finished, 1 failed, f_hat_min 0.231 (trial 7)'."""
        low = ("f_hat_min -" if self.f_hat_min is None else
               f"f_hat_min {figure(self.objective, self.f_hat_min[0])} "
               f"(trial {self.f_hat_min[1]})")
        return (f"{len(self.running)} running, {self.finished} finished, "
                f"{self.failed} failed, {low}")

    def started(self, job: Job) -> None:
        self.running.add(job.trial)
        if job.kind == "proposal" and job.predicted is not None:
            self.f_hat_min = (job.predicted, job.trial)
        if job.kind in ("proposal", "explore"):
            self._write(f"started trial {job.trial}/{self.max_trials} {job.kind} "
                        f"{format_point(job.params)}; {self.state()}")
        self._update(0)

    def line(self, rec: TrialRecord) -> str:
        if rec.ok and (self.best is None or rec.objective < self.best.objective):
            self.best = rec
        self.running.discard(rec.trial)
        if rec.ok:
            self.finished += 1
        else:
            self.failed += 1
        head = f"trial {rec.trial:>3}/{self.max_trials} {rec.kind:<9} {format_point(rec.point)}"
        if rec.kind == "proposal" and rec.predicted is not None:
            head += f" (f_hat {figure(self.objective, rec.predicted)}, degree {rec.degree})"
        body = (f"{self.objective} {figure(self.objective, rec.objective)}" if rec.ok
                else f"FAILED: {rec.error or rec.status}")
        best = (f"best {figure(self.objective, self.best.objective)} (trial {self.best.trial})"
                if self.best else "best -")
        return f"{head}  {body}  {rec.seconds:.1f} s  {best}  [{self.state()}]"

    def start(self) -> None:
        from runtime.progress import Bar

        self._bar = Bar(self.max_trials, "search", "trial", initial=self._done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _write(self, text: str) -> None:
        if self._bar is None:
            _say(text)
        else:
            self._bar.write(text)

    def _update(self, n: int) -> None:
        if self._bar is not None:
            low = self.f_hat_min
            self._bar.update(n, running=str(len(self.running)), failed=str(self.failed),
                             f_hat_min="-" if low is None else figure(self.objective, low[0]))

    def __call__(self, rec: TrialRecord) -> None:
        self._write(self.line(rec))
        self._update(1)


def figure(objective: str, value: float | None) -> str:
    """An objective value for people: val_nme in percent, losses as 5 digits."""
    from runtime.evaluate.metrics import format_figure, is_percent_figure

    if value is None:
        return "-"
    return format_figure(objective, value) if is_percent_figure(objective) else f"{value:.5g}"


def summary(result: SearchResult, report: Path, plot: Path | None, seconds: float,
            objective: str = "val_loss") -> str:
    """The closing lines: beta_hat, f_hat_min vs f_min, best trial, where the report is."""
    lines = [f"search stopped: {result.reason}"]
    if result.noise is not None:
        lines.append(result.noise.text(objective))
    prop = result.proposal
    if prop is not None:
        gap = (abs(prop.predicted - prop.objective)
               if prop.predicted is not None and prop.objective is not None else None)
        lines.append(f"beta_hat (trial {prop.trial}): {format_point(prop.point)}")
        lines.append("f_hat_min (predicted) "
                     + figure(objective, prop.predicted)
                     + " vs f_min (measured) "
                     + figure(objective, prop.objective)
                     + ("" if gap is None else f": gap {figure(objective, gap)}"))
    best = result.best
    if best is not None:
        lines.append(f"best measured: trial {best.trial} ({best.kind}) "
                     f"{figure(objective, best.objective)} "
                     f"at {format_point(best.point)}")
    lines.append(f"{len(result.records)} trials, {seconds:.0f} s; report: {report}"
                 + (f", plot: {plot}" if plot else ""))
    return "\n".join(lines)


# ------------------------------------------------------------------ the command

def _check_settings(out_dir: Path, current: dict[str, Any]) -> None:
    """Refuse to resume a study started with other settings (they change f)."""
    path = out_dir / SETTINGS_FILE
    if (out_dir / STUDY_FILE).exists() and path.exists():
        before = json.loads(path.read_text())
        changed = sorted(k for k in set(before) | set(current) if before.get(k) != current.get(k))
        if changed:
            raise SpecError.at(SourceLoc(str(path)), "this study was started with other "
                               f"settings ({', '.join(changed)} differ), so its trials are "
                               "not comparable with new ones",
                               hint="rerun with the same spec, --set and --data, or use a new "
                                    "output directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")


def search_spec(spec: Spec, out_dir: str | os.PathLike[str], *, data: str | None = None,
                data_format: str | None = None, workers: int | None = None,
                executor: str | None = None, address: str | None = None,
                overrides: Sequence[str] = ()) -> SearchResult:
    """Run the spec's `search:` study in `out_dir` (resuming it), then write the report.

    DIR/study.jsonl logs every trial, DIR/trials/NNN holds each trial's run,
    DIR/report.txt and DIR/surrogate.png summarise the result.
    """
    out_dir = Path(out_dir)
    cfg, space = search_config(spec, overrides)
    cfg = settings(cfg, workers=workers, executor=executor, address=address)
    budget = cfg.budget
    tcfg = train_config(spec.section("train"), spec.section("train").loc)
    user = without_params(overrides, space.names)
    for dropped in sorted(set(overrides) - set(user)):
        _say(f"note: --set {dropped} is ignored: that param is searched")
    trial_overrides = (*user, *budget_overrides(budget.epochs, budget.steps, budget.seed,
                                                tcfg.steps_per_epoch))
    _check_settings(out_dir, {
        "spec": str(Path(spec.file).resolve()), "model": model_digest(spec, space.names),
        "overrides": list(trial_overrides), "data": data, "data_format": data_format,
        "objective": budget.objective})
    threads = trial_threads(cfg.workers, cfg.executor,
                            ray_cpus=cfg.trial_resources.cpus if cfg.executor == "ray" else None)
    # absolute paths: a trial may run in another working directory (a Ray worker)
    ctx = TrialContext(str(Path(spec.file).resolve()), tuple(trial_overrides),
                       str(out_dir.resolve()), budget.objective,
                       str(Path(data).resolve()) if data and Path(data).exists() else data,
                       data_format, threads,
                       threads if cfg.executor == "ray" else available_cores(),
                       cfg.design.count)
    previous = StudyLog(out_dir).records
    done = sum(r.ok for r in {r.trial: r for r in previous}.values())
    _say(f"search {spec.name}: {', '.join(space.names)} "
         f"({'; '.join(c.text for c in space.constraints) or 'box only'}), "
         f"{cfg.design.count} initial trials, at most {cfg.max_trials}; "
         f"trial budget {_budget_text(budget.epochs, budget.steps)}, objective "
         f"{budget.objective}; {cfg.workers} worker(s) ({cfg.executor}"
         + (_ray_text(cfg) if cfg.executor == "ray" else "")
         + (f", {ctx.threads} thread(s) per initial trial, {ctx.cores} per proposal"
            if ctx.threads and cfg.executor != "ray" else "") + f") -> {out_dir}/")
    if done:
        _say(f"resuming: {done} finished trial(s) in {out_dir / STUDY_FILE} are not run again")
    t0 = time.perf_counter()
    progress = Progress(budget.objective, cfg.max_trials, previous)
    progress.start()
    try:
        result = run_search(cfg, functools.partial(run_trial, ctx), out_dir=out_dir,
                            space=space, loc=spec.section("search").loc, on_record=progress,
                            on_start=progress.started)
    finally:
        progress.close()
    report, plot = write_report(result, out_dir)
    _say(summary(result, report, plot, time.perf_counter() - t0, budget.objective))
    return result


def _ray_text(cfg: SearchConfig) -> str:
    res = cfg.trial_resources
    return (f" at {cfg.address or 'a local cluster'}, {res.cpus:g} CPU / {res.gpus:g} GPU "
            f"per trial, max_retries {cfg.max_retries}")


def _budget_text(epochs: int | None, steps: int | None) -> str:
    if epochs is not None:
        return f"{epochs} epoch(s)"
    if steps is not None:
        return f"{steps} step(s)"
    return "the spec's train section"

