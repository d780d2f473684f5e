"""Running trials serially or in spawned processes (the Ray executor runs against a real
Ray cluster in tests/distributed/test_search_ray.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from compiler.diagnostics import SpecError
from runtime.search import Job, call_objective, run_search, run_trials
from tests.unit.search.search_objectives import config, eq4, fails_on_trial_3

JOBS = [Job(t, (("b2", 0.1 * t), ("b3", 0.0), ("b4", 0.2)), "initial", 0) for t in range(1, 5)]


def test_outcomes_of_values_mappings_and_failures() -> None:
    ok = call_objective(eq4, JOBS[0])
    assert ok.status == "ok" and ok.objective == pytest.approx(eq4(JOBS[0].params, 1))
    assert ok.seconds >= 0
    rich = call_objective(lambda p, t: {"objective": 2.0, "run_dir": "/r/1", "val_nme": 0.07},
                          JOBS[0])
    assert (rich.objective, rich.run_dir, dict(rich.metrics)) == (2.0, "/r/1", {"val_nme": 0.07})
    f32 = call_objective(lambda p, t: np.float32(0.25), JOBS[0])  # what a Keras metric gives
    assert f32.status == "ok" and f32.objective == 0.25 and type(f32.objective) is float
    nan = call_objective(lambda p, t: float("nan"), JOBS[0])
    assert nan.status == "failed" and nan.error == "objective was nan"
    bad = call_objective(lambda p, t: "low", JOBS[0])
    assert bad.error == "objective returned 'low', expected a number"
    boom = call_objective(fails_on_trial_3, JOBS[2])
    assert boom.status == "failed" and boom.error == "RuntimeError: out of memory"


def test_serial_runs_report_each_outcome_as_it_finishes() -> None:
    seen: list[int] = []
    out = run_trials(eq4, JOBS, 1, on_outcome=lambda j, o: seen.append(o.trial))
    assert [o.trial for o in out] == seen == [1, 2, 3, 4]


def test_two_workers_give_the_same_search_as_one() -> None:
    cfg = config(initial={"count": 8}, max_trials=10)
    serial = run_search(cfg, eq4)
    parallel = run_search(config(initial={"count": 8}, max_trials=10, workers=2), eq4)
    assert [(r.trial, dict(r.point), r.objective, r.kind) for r in parallel.records] == [
        (r.trial, dict(r.point), r.objective, r.kind) for r in serial.records]
    assert parallel.reason == serial.reason


def test_process_pool_keeps_job_order_and_isolates_failures() -> None:
    seen: list[int] = []
    out = run_trials(fails_on_trial_3, JOBS, 2, on_outcome=lambda j, o: seen.append(o.trial))
    assert [o.trial for o in out] == [1, 2, 3, 4] and sorted(seen) == [1, 2, 3, 4]
    assert [o.status for o in out] == ["ok", "ok", "failed", "ok"]


def test_unpicklable_objectives_are_refused_with_a_reason() -> None:
    with pytest.raises(TypeError, match="must be a top-level function"):
        run_trials(lambda p, t: 0.0, JOBS, 2)


def test_ray_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(SpecError, match=r"executor 'ray' needs the ray package") as info:
        run_trials(eq4, JOBS, 2, executor="ray")
    assert "hint: pip install netspec[ray]" in str(info.value)
