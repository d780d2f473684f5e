"""The README's snippet, `import netspec, keras; keras.models.load_model(...)`, works on a
trained run's model.keras in a fresh process, compile config (losses, optimizer) included,
and the reloaded model trains on with the same loss."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.keras]

SMALL = [f"{k}=[8,8,8,8,8,8,8]" for k in ("enc_filters", "conv1_filters", "conv2_filters")]
RUN_ARGS = [*SMALL, "size=40", "train.epochs=1", "train.steps_per_epoch=3",
            "train.batch_size=8", "data.limit=64", "data.val_split=16", "train.l2={enc: 0.0001}"]

SNIPPET = """
import sys
import numpy as np
import netspec, keras

model = keras.models.load_model(sys.argv[1])
assert model.compiled, "the compile config was not restored"
loss = model.loss["heatmaps"] if isinstance(model.loss, dict) else model.loss
cfg = loss.get_config()
assert cfg["loss"] == "spatial_softmax_nll" and cfg["input_size"] == 40, cfg
x = np.random.default_rng(0).normal(size=(4, 40, 40, 1)).astype("float32")
y = np.concatenate([np.full((4, 5, 2), 20.0), np.ones((4, 5, 1))], -1).astype("float32")

def score():
    r = model.evaluate(x, {"heatmaps": y}, verbose=0)
    return float(r[0] if isinstance(r, list) else r)

before = score()
model.fit(x, {"heatmaps": y}, epochs=3, verbose=0)
after = score()
assert np.isfinite(before) and after < before, (before, after)
print("loaded", type(loss).__name__, model.optimizer.__class__.__name__, before, after)
"""


def test_trained_run_model_loads_in_plain_keras(tmp_path: Path, repo: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NETSPEC_DEBUG": "1"}
    run = tmp_path / "run"
    sets = [a for v in RUN_ARGS for a in ("--set", v)]
    fit = subprocess.run([sys.executable, "-m", "netspec", "fit", "specs/rcn_4branch.yaml",
                          "-o", str(run), *sets], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=300)
    assert fit.returncode == 0, fit.stderr[-3000:]
    # a fresh process, from another directory: only the installed package and the file
    proc = subprocess.run([sys.executable, "-c", SNIPPET, str(run / "model.keras")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "loaded LandmarkLoss Adadelta" in proc.stdout
