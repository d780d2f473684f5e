"""`netspec fit` fills RAR's robust_init_shape templates from the training shapes: a tiny
68-point spec on the synthetic faces fits, model.keras carries non-zero templates whose S_0
equals the numpy reference, a resume does not recompute them, and too few training shapes
for the templates is a located spec error (exit 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.keras, pytest.mark.slow]

SPEC = """version: 1
name: robust_init_tiny
params: {n_landmarks: 68, n_templates: 4}
inputs:
  image: {shape: [32, 32, 1]}
layers:
  - {name: conv1, op: conv2d, in: [image], filters: 8, kernel_size: 3, activation: relu}
  - {name: head, op: conv2d, in: [conv1], filters: 68, kernel_size: 1}
  - {name: prob, op: spatial_softmax, in: [head]}
  - {name: sd, op: argmax_points, in: [prob], input_size: 32}
  - {name: s0, op: robust_init_shape, in: [sd], templates: $n_templates, hypotheses: 16}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
  shape: {from: s0}
data: {dataset: synthetic, scheme: 68pt, size: 32, crop: landmarks, limit: 200,
       val_split: 32}
train: {epochs: 1, steps_per_epoch: 2, batch_size: 16, optimizer: adam, val_examples: 32}
eval: {output: heatmaps}
"""
FILLED = "s0: 4 representative shapes from 200 training shapes"


def test_fit_fills_templates_and_resume_keeps_them(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main
    from runtime.run_dir import load_run_model
    from runtime.shapes.robust_init import ransac_batch

    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    run = tmp_path / "run"
    assert main(["fit", str(spec), "-o", str(run)]) == 0
    err = capsys.readouterr().err
    assert FILLED in err, err[-2000:]
    model = load_run_model(run)
    templates = model.get_layer("s0").templates.numpy()
    assert templates.shape == (4, 68, 2)
    iod = np.linalg.norm(templates[:, 36] - templates[:, 45], axis=-1)
    assert (iod > 3).all() and (templates > 0).all() and (templates < 32).all(), iod
    x = np.random.default_rng(0).normal(size=(6, 32, 32, 1)).astype(np.float32)
    inner = type(model)(model.inputs, [model.get_layer("sd").output, model.get_layer(
        "s0").output])
    sd, s0 = (np.asarray(v) for v in inner.predict(x, verbose=0))
    np.testing.assert_allclose(s0, ransac_batch(sd, templates, 16, 0.08), atol=2e-3)

    assert main(["fit", str(spec), "-o", str(run), "--resume", "--set", "train.epochs=2"]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "representative shapes" not in err, err[-2000:]
    np.testing.assert_array_equal(load_run_model(run).get_layer("s0").templates.numpy(),
                                  templates)

    assert main(["fit", str(spec), "-o", str(tmp_path / "big"), "--set", "n_templates=500"]) == 1
    err = capsys.readouterr().err
    assert "tiny.yaml:11" in err and "needs at least 500 training shapes" in err, err[-2000:]
    assert "Traceback" not in err
