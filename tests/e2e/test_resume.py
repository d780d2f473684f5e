"""Killing `python -m netspec fit` (SIGKILL) and resuming it with `--resume`.

The run must continue from its last committed epoch (metrics.jsonl epochs 1..N with no
duplicate or gap, the optimizer's iteration count carried over through the checkpoint),
a kill in the middle of writing model.keras or a checkpoint must leave state.json valid
JSON and model.keras loadable, a changed spec is refused, and a finished run has nothing
to do. See Note [Checkpoint commit point] in runtime/train/callbacks.py.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.keras]

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/rcn_4branch.yaml"
STEPS = 2
TINY = [f"{k}=[8,8,8,8,8,8,8]" for k in ("enc_filters", "conv1_filters", "conv2_filters")]
QUICK = [*TINY, "size=40", "train.optimizer=adam", "train.learning_rate=0.003",
         f"train.steps_per_epoch={STEPS}", "train.batch_size=8", "data.limit=64",
         "data.val_split=32", "train.val_examples=32"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NETSPEC_DEBUG": ""}


def fit_args(run: Path, epochs: int, *extra: str) -> list[str]:
    sets = [a for v in [*QUICK, f"train.epochs={epochs}"] for a in ("--set", v)]
    return [sys.executable, "-m", "netspec", "fit", SPEC, "-o", str(run), *sets, *extra]


def fit(run: Path, epochs: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(fit_args(run, epochs, *extra), cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=400)


def fit_killed_when(run: Path, epochs: int, ready: Callable[[], bool],
                    timeout: float = 400) -> None:
    """Start a fit, SIGKILL it the moment `ready()` holds (polled every millisecond)."""
    log = run.parent / f"{run.name}.killed.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(fit_args(run, epochs), cwd=REPO, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if ready():
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return
                time.sleep(0.001)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    pytest.fail(f"the moment to kill never came (exit {proc.returncode}):\n"
                f"{log.read_text()[-3000:]}")


def state_of(run: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run / "state.json").read_text())
    except FileNotFoundError:
        return None


def committed(run: Path) -> int:
    state = state_of(run)
    return int(state["epoch"]) if state else 0


def epochs_logged(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text()
            .splitlines()]


def check_readable(run: Path) -> dict[str, Any]:
    """What a resume trusts is whole: valid state.json, its checkpoint, a loadable model."""
    import keras

    import compiler.keras_layers  # noqa: F401 - registers netspec's custom layers

    state = state_of(run)
    assert state is not None and state["epoch"] >= 1
    assert Path(state["checkpoint"] + ".npz").is_file(), state
    assert state["iterations"] == state["epoch"] * STEPS
    model = keras.models.load_model(run / "model.keras", compile=False)
    assert model.outputs and model.count_params() > 0
    return state


def check_finished(r: subprocess.CompletedProcess[str], run: Path, epochs: int,
                   resumed_after: int) -> dict[str, Any]:
    assert r.returncode == 0, r.stderr[-4000:]
    assert f"resuming {run} after epoch {resumed_after}" in r.stderr
    assert epochs_logged(run) == list(range(1, epochs + 1))
    state = state_of(run)
    assert state is not None and state["epoch"] == epochs and state["stopped"] == "completed"
    # the restored optimizer counted on from the checkpoint: no step lost or counted twice
    assert state["iterations"] == epochs * STEPS
    assert state["checkpoint"].endswith(f"ckpt-{epochs}")
    return state


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict[str, Any]]:
    """A 4-epoch run killed once its first epoch was committed, then resumed to the end."""
    run = tmp_path_factory.mktemp("resume") / "run"
    fit_killed_when(run, 4, lambda: committed(run) >= 1)
    killed_after = check_readable(run)["epoch"]
    assert killed_after < 4
    r = fit(run, 4, "--resume")
    return run, killed_after, check_finished(r, run, 4, killed_after)


def test_resume_continues_from_the_next_epoch(resumed_run: tuple[Path, int, Any]) -> None:
    run, killed_after, state = resumed_run
    assert 1 <= killed_after < 4
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.npz")) == \
        ["ckpt-3.npz", "ckpt-4.npz"]  # keep_checkpoints: 2


def _writing_model(run: Path) -> bool:
    return committed(run) >= 1 and any(p.name.startswith(".model.keras.")
                                       for p in run.iterdir())


def _writing_checkpoint(run: Path) -> bool:
    folder = run / "checkpoints"
    # the temporary file of an atomic write (runtime/atomic.py) of epoch 2 or later
    return folder.is_dir() and any(p.name.startswith(".ckpt-") and
                                   not p.name.startswith(".ckpt-1.")
                                   for p in folder.iterdir())


@pytest.mark.parametrize("moment", ["model", "checkpoint"])
def test_kill_while_writing_leaves_a_resumable_run(tmp_path: Path, moment: str) -> None:
    run = tmp_path / "run"
    writing = _writing_model if moment == "model" else _writing_checkpoint
    fit_killed_when(run, 5, lambda: writing(run))
    state = check_readable(run)
    k = state["epoch"]
    if moment == "checkpoint":  # epoch k+1 was logged, but its checkpoint never committed
        assert epochs_logged(run) == list(range(1, k + 2))
    r = fit(run, 5, "--resume")
    check_finished(r, run, 5, k)
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"a resume removes the killed write's temp files: {leftovers}"


def test_resume_with_a_changed_spec_is_refused(resumed_run: tuple[Path, int, Any]) -> None:
    run, _, _ = resumed_run
    before = (run / "state.json").read_text(), (run / "metrics.jsonl").read_text()
    r = fit(run, 4, "--resume", "--set", "train.batch_size=4")
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert "--resume with a spec that differs" in r.stderr and "-o NEW_DIR" in r.stderr
    assert f"{run / 'spec.resolved.yaml'}: error: " in r.stderr
    assert ((run / "state.json").read_text(), (run / "metrics.jsonl").read_text()) == before


def test_resume_of_a_finished_run_has_nothing_to_do(resumed_run: tuple[Path, int, Any]) -> None:
    run, _, _ = resumed_run
    before = (run / "state.json").read_text(), (run / "metrics.jsonl").read_text()
    t0 = time.monotonic()
    r = fit(run, 4, "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "already trained 4 of 4 epochs; nothing to do" in r.stderr
    assert ((run / "state.json").read_text(), (run / "metrics.jsonl").read_text()) == before
    assert time.monotonic() - t0 < 30, "a finished run should not load data or TensorFlow"


def test_fresh_fit_into_an_existing_run_is_refused(resumed_run: tuple[Path, int, Any]) -> None:
    run, _, _ = resumed_run
    r = fit(run, 4)
    assert r.returncode == 1 and "already holds a run" in r.stderr and "--resume" in r.stderr
