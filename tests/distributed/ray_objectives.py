"""Cheap objectives for the Ray tests (top level, so Ray workers import them by name).

Each writes one line per call to DIR/calls.log (`start TRIAL PID`, `end TRIAL PID`), so
a test can tell which trials ran, how often, and in which process.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import time

from tests.unit.search.search_objectives import eq4


def _note(log_dir: str, what: str, trial: int) -> None:
    with open(Path(log_dir) / "calls.log", "a") as fh:
        fh.write(f"{what} {trial} {os.getpid()}\n")
        fh.flush()


def calls(log_dir: str | os.PathLike[str]) -> list[tuple[str, int, int]]:
    path = Path(log_dir) / "calls.log"
    if not path.exists():
        return []
    return [(w, int(t), int(p)) for w, t, p in
            (line.split() for line in path.read_text().splitlines())]


def slow_eq4(log_dir: str, seconds: float, point: dict[str, float], trial: int) -> dict:
    """eq. 4 after `seconds`, with the CPUs Ray reserved for the task as a metric."""
    import ray

    _note(log_dir, "start", trial)
    time.sleep(seconds)
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)
    _note(log_dir, "end", trial)
    return {"objective": eq4(point, trial), "cpus": cpus}


def killed_once(log_dir: str, point: dict[str, float], trial: int) -> float:
    """Trial 2's first worker is SIGKILLed mid-trial (as the OOM killer would)."""
    _note(log_dir, "start", trial)
    if trial == 2 and sum(c[:2] == ("start", 2) for c in calls(log_dir)) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    _note(log_dir, "end", trial)
    return eq4(point, trial)


def always_killed(log_dir: str, point: dict[str, float], trial: int) -> float:
    _note(log_dir, "start", trial)
    os.kill(os.getpid(), signal.SIGKILL)
    return 0.0
