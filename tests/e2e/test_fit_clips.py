"""`netspec fit` + `netspec eval` on a clip spec (input [3, 32, 32, 1], time_distributed
convs and spatial_softmax per frame, output [B, 3, 32, 32, 5]): one epoch on the embedded
synthetic clips, and on YouTube-Faces clips when the shared data is there. Eval scores
every frame of the held-out clips once and agrees with the run's val_nme."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = [pytest.mark.keras]

SPEC = """\
version: 1
name: clip_tiny
params: {frames: 3, width: 8, n_landmarks: 5}
inputs:
  clip: {shape: [$frames, 32, 32, 1]}
layers:
  - {name: conv1, op: time_distributed, in: [clip],
     layer: {op: conv2d, filters: $width, kernel_size: 5, activation: relu}}
  - {name: head, op: time_distributed, in: [conv1],
     layer: {op: conv2d, filters: $n_landmarks, kernel_size: 1}}
  - {name: prob, op: time_distributed, in: [head], layer: {op: spatial_softmax}}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
train: {epochs: 1, batch_size: 8, optimizer: adam, learning_rate: 0.003}
"""


def _fit_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: str,
                  sets: list[str], limit: int) -> tuple[str, dict, dict]:
    from netspec.cli import main

    spec = tmp_path / "clip_tiny.yaml"
    spec.write_text(SPEC)
    run = tmp_path / "run"
    args = [a for s in [*sets, f"data.limit={limit}"] for a in ("--set", s)]
    assert main(["fit", str(spec), "-o", str(run), "--data", data, *args]) == 0
    fit_err = capsys.readouterr().err
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert main(["eval", str(run), "--json", "--set", f"data.limit={limit}"]) == 0
    out = capsys.readouterr().out
    return fit_err, record, json.loads(out.strip().splitlines()[-1])


def test_fit_and_eval_on_synthetic_clips(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    err, record, result = _fit_and_eval(tmp_path, capsys, "synthetic",
                                        ["data.val_split=60"], limit=40)
    # 20 held-out synthetic clips (60 frames): each clip is its own "person"
    assert "40 train / 20 val clips of 3 frames (120 / 60 frames, 20 held-out" in err
    assert result["split"] == "val" and result["n"] == 60  # every held-out frame, once
    assert result["trained_faces_scored"] == 0
    assert math.isfinite(result["nme"]) and result["nme"] > 0
    assert result["nme"] == pytest.approx(record["val_nme"], rel=1e-6)
    video = result["video"]  # per-clip NME and temporal jitter, over the 20 held-out clips
    assert video["clips"] == 20 and video["jitter_pairs"] == 40
    assert math.isfinite(video["jitter"]) and video["clip_nme_mean"] == pytest.approx(
        result["nme"], rel=1e-6)  # every clip has 3 scored frames: the same mean


def test_fit_and_eval_on_youtube_faces_clips(tmp_path: Path, shared_data: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ytf = shared_data / "ytf68"
    if not (ytf / "frames.csv").is_file():
        pytest.skip(f"YouTube-Faces frames not found at {ytf}")
    err, record, result = _fit_and_eval(tmp_path, capsys, str(ytf),
                                        ["n_landmarks=68", "data.val_split=0.1"], limit=24)
    assert "24 train / 24 val clips of 3 frames (72 / 72 frames" in err
    assert result["n"] == 72 and result["trained_faces_scored"] == 0
    assert math.isfinite(result["nme"])
    assert result["nme"] == pytest.approx(record["val_nme"], rel=1e-6)


def test_clip_spec_on_still_images_is_a_located_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """LFW-style names (Person_0001.jpg) look like frames of one clip; they are not."""
    import numpy as np
    from PIL import Image

    from netspec.cli import main

    rows = []
    for i in range(4):
        Image.fromarray(np.full((40, 40), 60 * i, np.uint8)).save(tmp_path / f"Al_Gore_000{i}.png")
        pts = ",".join(f"{10 + 4 * k},{12 + 3 * k}" for k in range(5))
        rows.append(f"Al_Gore_000{i}.png,{pts}")
    header = ",".join(f"x{k},y{k}" for k in range(5))
    (tmp_path / "faces.csv").write_text(f"image,{header}\n" + "\n".join(rows) + "\n")
    spec = tmp_path / "clip_tiny.yaml"
    spec.write_text(SPEC)
    assert main(["fit", str(spec), "-o", str(tmp_path / "run"), "--data",
                 str(tmp_path / "faces.csv")]) == 1
    err = capsys.readouterr().err
    assert "faces.csv: error: the input is a clip of 3 frames, but this is a set of still " \
           "images" in err and "hint: use a video set" in err
    assert not (tmp_path / "run").exists()
