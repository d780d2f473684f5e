"""The Ray executor against a real Ray cluster on 127.0.0.1 (one head per test session):
trials as tasks with their reservation, a killed worker retried then recorded as failed,
and a SIGKILLed driver whose study resumes without rerunning a finished trial."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

from compiler.diagnostics import SpecError
from runtime.search import Job, run_trials
from runtime.search.executors import RayOptions
from tests.distributed.ray_objectives import always_killed, calls, killed_once, slow_eq4
from tests.unit.search.search_objectives import eq4

pytestmark = pytest.mark.slow
JOBS = [Job(t, (("b2", 0.1 * t), ("b3", 0.0), ("b4", 0.2)), "initial", 0) for t in range(1, 5)]
DRIVER = Path(__file__).with_name("ray_driver.py")


def test_trials_are_ray_tasks_with_their_reservation(ray_head: str, tmp_path: Path) -> None:
    running: set[int] = set()
    most = 0

    def started(job: Job) -> None:
        nonlocal most
        running.add(job.trial)
        most = max(most, len(running))

    out = run_trials(functools.partial(slow_eq4, str(tmp_path), 0.3), JOBS, 2, executor="ray",
                     ray=RayOptions(ray_head, cpus=1), on_start=started,
                     on_outcome=lambda j, o: running.discard(j.trial))
    assert [o.trial for o in out] == [1, 2, 3, 4] and {o.status for o in out} == {"ok"}
    assert [o.objective for o in out] == pytest.approx([eq4(j.params, 0) for j in JOBS])
    assert [o.metrics["cpus"] for o in out] == [1.0] * 4  # Ray reserved one CPU per task
    assert most == 2 and not running
    pids = {t: p for w, t, p in calls(tmp_path) if w == "start"}
    assert len(set(pids.values())) == 4 and os.getpid() not in pids.values()  # fresh workers


def test_a_killed_worker_is_retried_then_recorded_as_failed(ray_head: str,
                                                            tmp_path: Path) -> None:
    once = tmp_path / "once"
    once.mkdir()
    out = run_trials(functools.partial(killed_once, str(once)), JOBS[:3], 2, executor="ray",
                     ray=RayOptions(ray_head, max_retries=1))
    assert [o.status for o in out] == ["ok"] * 3  # trial 2 ran again in a new worker
    starts = [t for w, t, _ in calls(once) if w == "start"]
    assert sorted(starts) == [1, 2, 2, 3]

    for retries in (0, 2):
        always = tmp_path / f"always{retries}"
        always.mkdir()
        seen: list[str] = []
        (lost,) = run_trials(functools.partial(always_killed, str(always)), JOBS[:1], 1,
                             executor="ray", ray=RayOptions(ray_head, max_retries=retries),
                             on_outcome=lambda j, o, seen=seen: seen.append(o.status))
        assert lost.status == "failed" and seen == ["failed"]  # recorded, never dropped
        assert f"died ({1 + retries} attempt(s), search.max_retries = {retries})" in lost.error
        assert len(calls(always)) == 1 + retries


def test_a_reservation_no_node_can_hold_is_refused(ray_head: str) -> None:
    for opts, what in ((RayOptions(ray_head, cpus=3), "3 CPU and 0 GPU"),
                       (RayOptions(ray_head, gpus=1), "1 CPU and 1 GPU")):
        with pytest.raises(SpecError, match=f"a trial reserves {what}") as info:
            run_trials(eq4, JOBS, 2, executor="ray", ray=opts)
        assert "2 CPU / 0 GPU" in str(info.value) and "hint: lower search.resources" in str(
            info.value)


def _study(out: Path) -> list[dict]:
    path = out / "study.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_killed_driver_resumes_without_rerunning_finished_trials(ray_head: str,
                                                                   tmp_path: Path) -> None:
    out, logs = tmp_path / "study", tmp_path / "logs"
    logs.mkdir()
    cmd = [sys.executable, str(DRIVER), ray_head, str(out), str(logs)]
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(_study(out)) < 2:
        assert driver.poll() is None, driver.communicate()[1][-3000:]
        assert time.time() < deadline, "the driver logged no two trials in 120 s"
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first = _study(out)
    assert len(first) == 2 and all(r["status"] == "ok" for r in first)
    before = calls(logs)

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.startswith("4 trials: converged")
    records = _study(out)
    assert [r["trial"] for r in records] == [r["trial"] for r in first] + [
        t for t in (1, 2, 3, 4) if t not in {r["trial"] for r in first}]
    assert all(r["status"] == "ok" for r in records)
    rerun = [t for w, t, _ in calls(logs)[len(before):] if w == "start"]
    assert not {r["trial"] for r in first} & set(rerun)  # no finished trial ran twice
    assert sorted(rerun) == sorted({1, 2, 3, 4} - {r["trial"] for r in first})
