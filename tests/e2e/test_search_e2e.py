"""`netspec search` end to end on real MTFL faces: a 4-trial search of a shrunken
is_net (3 initial trials + 1 proposal, one short epoch each), then two reruns of the
same study: one that must re-run only the trial missing from the log (as a task on a
real Ray cluster on 127.0.0.1), one that must run nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import subprocess
import sys

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.keras]

REPO = Path(__file__).resolve().parents[2]
SHRINK = ["filters=[4, 4, 4, 4]", "hidden=8", "data.val_split=20", "train.batch_size=16",
          "search.initial.count=3", "search.max_trials=4", "search.trial.epochs=1",
          "search.phi=1000",  # any gap converges: the first proposal ends the search
          "search.noise.replicates=0"]


@pytest.fixture(scope="module")
def faces(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MTFL list of 60 faces pointing into the shared data (nothing is copied)."""
    root = shared_data / "mtfl"
    rows = (root / "train.txt").read_text().splitlines()[:60]
    out = tmp_path_factory.mktemp("mtfl") / "small.txt"
    out.write_text("".join(f"{root / r.split()[0]} {' '.join(r.split()[1:])}\n" for r in rows))
    return out


def search(out: Path, faces: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "netspec", "search", "specs/is_net.yaml", "-o", str(out),
           "--data", str(faces), "--format", "mtfl", *extra]
    for s in SHRINK:
        cmd += ["--set", s]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def study(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "study.jsonl").read_text().splitlines()]


def trial_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if re.match(r"trial +\d+/4 ", line)]


@pytest.mark.data
def test_search_trains_trials_reports_and_resumes(tmp_path: Path, faces: Path,
                                                  ray_head: str) -> None:
    out = tmp_path / "study"
    first = search(out, faces)
    records = study(out)
    assert [r["trial"] for r in records] == [1, 2, 3, 4]
    assert [r["kind"] for r in records] == ["initial"] * 3 + ["proposal"]
    assert all(r["status"] == "ok" for r in records)
    for r in records:
        run = out / "trials" / f"{r['trial']:03d}"
        assert r["run_dir"] == str(run) and (run / "model.keras").exists()
        epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert r["objective"] == min(e["val_loss"] for e in epochs) > 0
        # the trial trained the point: its resolved spec scales c_i by the point's betas
        layers = yaml.safe_load((run / "spec.resolved.yaml").read_text())["layers"]
        scales = {x["name"]: x["value"] for x in layers if x["op"] == "scale"}
        assert scales == pytest.approx({f"syn{i}.beta": r["point"][f"beta{i}"]
                                        for i in (2, 3, 4)}, abs=1e-12)
        assert sum(r["point"].values()) <= 1 + 1e-9
    assert len({tuple(r["point"].values()) for r in records}) == 4
    prop = records[-1]
    assert prop["predicted"] is not None and prop["degree"] is not None

    lines = trial_lines(first.stderr)
    assert [int(re.match(r"trial +(\d+)", x).group(1)) for x in lines] == [1, 2, 3, 4]
    winner = min(records, key=lambda r: r["objective"])
    best = winner["objective"]
    assert f"best {best:.5g} (trial {winner['trial']})  [0 running, 4 finished, 0 failed, " \
        f"f_hat_min {prop['predicted']:.5g} (trial 4)]" in lines[-1]
    assert f"f_min (measured) {prop['objective']:.5g}" in first.stderr
    report = (out / "report.txt").read_text()
    assert "search over beta2, beta3, beta4: 4 trials (3 initial, 1 proposal)" in report
    assert "beta_hat (trial 4)" in report and f"{best:.4f}" in report
    assert (out / "surrogate.png").stat().st_size > 0

    # lose the proposal's record: a rerun on a real Ray cluster replays 1-3 and runs only
    # trial 4, as a Ray task
    kept = {n: (out / "trials" / f"{n:03d}" / "metrics.jsonl").stat().st_mtime_ns
            for n in (1, 2, 3)}
    lines = (out / "study.jsonl").read_text().splitlines(keepends=True)
    (out / "study.jsonl").write_text("".join(lines[:3]))
    second = search(out, faces, "--workers", "2", "--executor", "ray", "--address", ray_head)
    assert f"2 worker(s) (ray at {ray_head}, 1 CPU / 0 GPU per trial, max_retries 1)" \
        in second.stderr
    assert "started trial 4/4 proposal" in second.stderr
    assert "resuming: 3 finished trial(s)" in second.stderr
    assert [x.split()[1] for x in trial_lines(second.stderr)] == ["4/4"]
    again = study(out)
    assert [r["trial"] for r in again] == [1, 2, 3, 4]
    assert again[3]["point"] == pytest.approx(prop["point"], abs=1e-9)
    assert again[:3] == records[:3]
    for n, mtime in kept.items():
        assert (out / "trials" / f"{n:03d}" / "metrics.jsonl").stat().st_mtime_ns == mtime

    # nothing left to run: the rerun only replays the log and rewrites the report
    third = search(out, faces)
    assert "resuming: 4 finished trial(s)" in third.stderr
    assert trial_lines(third.stderr) == [] and study(out) == again
    assert "beta_hat (trial 4)" in (out / "report.txt").read_text()


def test_a_trial_process_caps_tensorflow_threads() -> None:
    code = ("from runtime.search.command import limit_threads; limit_threads(1); "
            "import tensorflow as tf; t = tf.config.threading; "
            "print(t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads())")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, env=env, timeout=120, check=True)
    assert out.stdout.split() == ["1", "1"]


def test_in_process_trials_print_no_retracing_warning(
        tmp_path: Path, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    # Keras builds new tf.functions for every trial's model; without the filter TF warns
    # "5 out of the last 5 calls to ...one_step_on_data_distributed triggered tf.function
    # retracing" during the third in-process trial, between the trial lines.
    from netspec.cli import main

    sets = ["filters=[4, 4, 4, 4]", "hidden=8", "data.val_split=20", "train.batch_size=16",
            "search.initial.count=2", "search.max_trials=3", "search.trial.epochs=1",
            "train.steps_per_epoch=2", "search.phi=1000", "search.noise.replicates=0"]
    argv = ["search", str(REPO / "specs/is_net.yaml"), "-o", str(tmp_path / "s")]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    out = capfd.readouterr()
    assert len(trial_lines(out.err.replace("/3 ", "/4 "))) == 3  # all three trials ran
    assert "retracing" not in out.out + out.err
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
