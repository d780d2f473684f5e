"""An identity head on a clip spec, end to end on the embedded clips (each clip is its
own person): the class count is checked against the training people, the classes are
stored in the run and are the same in a second run, the identity loss trains, and eval
scores the landmark output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = [pytest.mark.keras]

SPEC = """\
version: 1
name: clip_identity
params: {frames: 3, width: 8, n_landmarks: 5, n_identities: 30}
inputs:
  clip: {shape: [$frames, 32, 32, 1]}
layers:
  - {name: conv1, op: time_distributed, in: [clip],
     layer: {op: conv2d, filters: $width, kernel_size: 5, activation: relu}}
  - {name: head, op: time_distributed, in: [conv1],
     layer: {op: conv2d, filters: $n_landmarks, kernel_size: 1}}
  - {name: prob, op: time_distributed, in: [head], layer: {op: spatial_softmax}}
  - {name: id.vec, op: time_distributed, in: [conv1], layer: {op: global_avg_pool2d}}
  - {name: id.logits, op: dense, in: [id.vec], units: $n_identities}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
  identity: {from: id.logits, loss: identity_xent, weight: 0.5}
data: {val_split: 30, limit: 30}
train: {epochs: 1, batch_size: 6, optimizer: adam, learning_rate: 0.003}
"""


def test_identity_head_trains_on_clips(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    from netspec.cli import main

    spec = tmp_path / "clip_identity.yaml"
    spec.write_text(SPEC)
    assert main(["fit", str(spec), "-o", str(tmp_path / "bad"), "--data", "synthetic",
                 "--set", "n_identities=29"]) == 1
    err = capsys.readouterr().err
    assert "scores 29 identity classes, but the training split has 30 people" in err
    assert "n_identities=30" in err
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        assert main(["fit", str(spec), "-o", str(run), "--data", "synthetic"]) == 0
    classes = [json.loads((r / "identities.json").read_text())["classes"] for r in runs]
    assert classes[0] == classes[1] == sorted(classes[0]) and len(classes[0]) == 30
    (record,) = [json.loads(x) for x in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert math.isfinite(record["identity_loss"]) and record["identity_loss"] > 0
    assert "val_identity_loss" not in record  # held-out people have no training class
    assert main(["eval", str(runs[0]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 30 and math.isfinite(result["nme"])  # val_split: 30 frames (10 clips)
