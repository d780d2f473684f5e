"""bench/gpu_train.py's CPU dry run end to end, as the GPU machine runs it (Keras on JAX,
TensorFlow blocked in its children): every throughput cell gets positive img/s, and the
full fit's model.keras and metrics.jsonl come back in the output folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[2]
SPECS = {"rcn_6branch", "lgcn"}
PRECISIONS = {"float32", "mixed"}


@pytest.mark.slow
def test_dry_run_measures_every_cell_and_returns_the_run(tmp_path: Path) -> None:
    pytest.importorskip("jax", reason="jax not installed (pip install -e '.[backends]')")
    out = tmp_path / "out"
    # the bench's face and XLA caches ($TMPDIR/gpu_train_cache, content-keyed) make reruns
    # faster; one batch size (of the dry run's 8 and 16) keeps it to ~1.5 min on 2 idle cores
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "bench/gpu_train.py", "run", "--dry-run",
                           "--batches", "8", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    cells = json.loads((out / "throughput.json").read_text())["cells"]
    train = [c for c in cells if c["kind"] == "train"]
    infer = [c for c in cells if c["kind"] == "inference"]
    combos = {(s, p) for s in SPECS for p in PRECISIONS}
    assert {(c["spec"], c["precision"]) for c in train} == combos
    assert {(c["spec"], c["precision"]) for c in infer} == combos
    for c in train:
        assert "error" not in c, c
        assert c["batch"] == 8 and min(c["train_img_s"], c["model_img_s"],
                                       c["augment_img_s"]) > 0, c
    assert all(c.get("infer_img_s", 0) > 0 for c in infer), infer

    assert (out / "model.keras").stat().st_size > 0
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2] and all("val_nme" in e for e in epochs)
    assert json.loads((out / "state.json").read_text())["epoch"] == 2
    assert "goals (measured, not asserted)" in proc.stdout
