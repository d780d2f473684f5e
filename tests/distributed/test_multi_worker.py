"""Multi-worker data-parallel `netspec fit` through TensorFlow's MultiWorkerMirroredStrategy:
two real worker processes on 127.0.0.1 train a tiny RCN on the synthetic faces.

A single-process run with the same global batch is the reference: the two workers must
see different halves of each batch, end with identical weights, and log the reference's
losses. Then one worker is SIGKILLed in epoch 2; both restart with --resume and the run
ends with exactly the reference's epochs (and its epoch-3 loss), every file intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from tests.distributed.ray_cluster import free_port

pytestmark = [pytest.mark.slow, pytest.mark.keras]

REPO = Path(__file__).resolve().parents[2]
TINY = [f"{k}=[8,8,8,8,8,8,8]" for k in ("enc_filters", "conv1_filters", "conv2_filters")]
# global batch 8 = 4 per worker; 6 steps an epoch, so epoch 2 lasts long enough to be hit
QUICK = [*TINY, "size=40", "train.optimizer=adam", "train.learning_rate=0.003",
         "train.steps_per_epoch=6", "train.batch_size=8", "data.limit=64", "data.val_split=32",
         "train.val_examples=32"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NETSPEC_DEBUG": ""}
TIMEOUT = 400


def fit_cmd(run: Path, epochs: int, *extra: str) -> list[str]:
    sets = [a for v in [*QUICK, f"train.epochs={epochs}"] for a in ("--set", v)]
    return [sys.executable, "-m", "netspec", "fit", "specs/rcn_4branch.yaml", "-o", str(run),
            *sets, *extra]


def start_workers(run: Path, epochs: int, *extra: str) -> list[subprocess.Popen[str]]:
    workers = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    return [subprocess.Popen(fit_cmd(run, epochs, "--workers", workers, "--task-index", str(i),
                                     *extra),
                             cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for i in (0, 1)]


def finish(procs: list[subprocess.Popen[str]]) -> list[str]:
    errs = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return errs


def metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def said(err: str, what: str) -> str:
    found = re.search(rf"{what} ([0-9a-f]{{16}})", err)
    assert found, err[-2000:]
    return found.group(1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Epoch records of an unbroken single-process 3-epoch run (global batch 8)."""
    run = tmp_path_factory.mktemp("single") / "run"
    done = subprocess.run(fit_cmd(run, 3), cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return metrics(run)


def check_losses(got: list[dict], want: list[dict]) -> None:
    for g, w in zip(got, want, strict=True):
        assert g["epoch"] == w["epoch"] and g["steps"] == w["steps"] == 6
        for key in ("loss", "val_loss", "val_nme"):
            assert g[key] == pytest.approx(w[key], rel=1e-4), (g["epoch"], key)


def test_two_workers_shard_the_batch_and_train_like_one_process(
        tmp_path: Path, reference: list[dict]) -> None:
    run = tmp_path / "run"
    errs = finish(start_workers(run, 2))
    for i, err in enumerate(errs):
        assert f"worker {i}/2 (127.0.0.1:" in err
        assert "4 of each global batch of 8 examples here" in err
    assert said(errs[0], "first batch digest") != said(errs[1], "first batch digest")
    assert said(errs[0], "weights digest") == said(errs[1], "weights digest")
    # identical weights after every one of the 2 x 6 steps, not only at the end
    assert "12 step weights digest" in errs[0] and "12 step weights digest" in errs[1]
    assert said(errs[0], "step weights digest") == said(errs[1], "step weights digest")
    check_losses(metrics(run), reference[:2])
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints", "metrics.jsonl", "model.keras", "spec.resolved.yaml", "state.json",
        "tensorboard"]  # the chief's; worker 1 wrote into a temporary folder, now gone
    assert "worker 1" not in (run / "metrics.jsonl").read_text()


def test_a_worker_killed_in_epoch_2_resumes_to_an_unbroken_run(
        tmp_path: Path, reference: list[dict]) -> None:
    run = tmp_path / "run"
    procs = start_workers(run, 3)
    deadline = time.monotonic() + TIMEOUT
    while not (run / "state.json").exists():  # epoch 1 committed: epoch 2 is running
        assert all(p.poll() is None for p in procs), procs[0].communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.001)
    procs[1].send_signal(signal.SIGKILL)
    procs[1].wait()
    try:  # the chief loses its peer in a collective: it fails, or is killed here
        procs[0].wait(10)
    except subprocess.TimeoutExpired:
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
    procs[0].communicate()
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] in (1, 2) and len(metrics(run)) <= 2

    errs = finish(start_workers(run, 3, "--resume"))
    assert all(f"resuming {run} after epoch {state['epoch']}" in e for e in errs)
    assert said(errs[0], "weights digest") == said(errs[1], "weights digest")
    check_losses(metrics(run), reference)  # epochs 1..3 once each, the unbroken run's
    final = json.loads((run / "state.json").read_text())
    assert final["epoch"] == 3 and final["stopped"] == "completed"
    with zipfile.ZipFile(run / "model.keras") as z:
        assert z.testzip() is None
    assert not [p for p in run.rglob(".*") if p.is_file()]  # no leftover temp file
