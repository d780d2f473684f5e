"""The v1.1 example specs end to end: the recurrent one fits an epoch on the embedded
synthetic faces and evaluates from its reloaded model.keras; the per-frame one compiles,
saves and reloads with identical predictions, and fits an epoch on synthetic clips."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.keras]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "specs" / "examples"


def netspec(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NETSPEC_DEBUG": "1"}
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_recurrent_example_fits_and_evaluates(tmp_path: Path) -> None:
    run = tmp_path / "rec"
    fit = netspec("fit", str(EXAMPLES / "recurrent_tiny.yaml"), "-o", str(run),
                  "--set", "train.steps_per_epoch=8")
    assert fit.returncode == 0, fit.stderr[-3000:]
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(record["val_first_loss"]) and np.isfinite(record["val_heatmaps_loss"])
    ev = netspec("eval", str(run), "--json")
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert json.loads(ev.stdout.splitlines()[-1])["nme"] == pytest.approx(record["val_nme"],
                                                                          rel=2e-3)


def test_per_frame_example_round_trips(tmp_path: Path) -> None:
    import keras

    from compiler.api import load_spec
    from netspec import compile_model

    model = compile_model(load_spec(EXAMPLES / "per_frame_tiny.yaml"))
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32, 1)).astype("float32")
    want = model.predict({"clip": x}, verbose=0)["heatmaps"]
    assert want.shape == (2, 3, 32, 32, 5)
    np.testing.assert_allclose(want.reshape(2, 3, -1, 5).sum(2), 1.0, rtol=1e-4)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict({"clip": x}, verbose=0)["heatmaps"], want,
                               atol=1e-6)


def test_per_frame_example_fits_an_epoch_on_synthetic_clips(tmp_path: Path) -> None:
    run = tmp_path / "frames"
    fit = netspec("fit", str(EXAMPLES / "per_frame_tiny.yaml"), "-o", str(run),
                  "--set", "train.steps_per_epoch=4", "--set", "train.epochs=1",
                  "--set", "data.limit=48", "--set", "data.val_split=12")
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "clips of 3 frames" in fit.stderr
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert np.isfinite(record["val_loss"]) and record["val_nme"] > 0
    assert (run / "model.keras").is_file()
