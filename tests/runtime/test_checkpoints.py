"""Backend-neutral checkpoints (runtime/train/checkpoints.py): what is saved comes back
exactly, old ones are pruned, and a damaged or foreign file is a located error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from compiler.api import load_spec_text  # noqa: E402
from compiler.diagnostics import SpecError  # noqa: E402
from runtime.train import checkpoints as ck  # noqa: E402

pytestmark = pytest.mark.keras

TINY = """version: 1
name: tiny
inputs: {image: {shape: [16, 16, 1]}}
layers:
  - {name: c1, op: conv2d, in: [image], filters: %(f)d, kernel_size: 3, padding: same}
  - {name: bn, op: batch_norm, in: [c1]}
  - {name: c2, op: conv2d, in: [bn], filters: 5, kernel_size: 3, padding: same}
  - {name: maps, op: spatial_softmax, in: [c2]}
outputs: {maps: {from: maps, loss: spatial_softmax_nll}}
train: {optimizer: adam}
"""


def model(filters: int = 4):  # noqa: ANN201 - a compiled keras.Model
    from runtime.train.model_setup import build_model
    from runtime.train.train_config import train_config

    spec = load_spec_text(TINY % {"f": filters}, "tiny.yaml")
    cfg = train_config(spec.section("train"), spec.section("train").loc)
    m, _ = build_model(spec, cfg, 16, mixed_precision=False, xla=False)
    m.optimizer.build(m.trainable_variables)
    return m


def test_round_trip_restores_weights_and_optimizer_state(tmp_path: Path) -> None:
    a = model()
    rng = np.random.default_rng(0)
    for v in [*a.variables, *a.optimizer.variables]:
        v.assign(rng.normal(size=v.shape).astype(v.dtype) if "float" in str(v.dtype)
                 else np.full(v.shape, 7, v.dtype))
    path = ck.save_checkpoint(a, tmp_path, 3)
    assert path == tmp_path / "ckpt-3.npz" and not list(tmp_path.glob(".*"))
    b = model()
    ck.restore_checkpoint(b, path, 3)
    for x, y in zip([*a.variables, *a.optimizer.variables],
                    [*b.variables, *b.optimizer.variables], strict=True):
        np.testing.assert_array_equal(np.asarray(y), np.asarray(x), err_msg=x.path)
    header, _, _ = ck.read_checkpoint(path)
    assert header["epoch"] == 3 and header["backend"] == "tensorflow"
    assert [m["path"] for m in header["model"]] == [v.path for v in a.variables]


def test_keep_prunes_the_oldest(tmp_path: Path) -> None:
    m = model()
    for epoch in range(1, 5):
        ck.save_checkpoint(m, tmp_path, epoch, keep=2)
    assert ck.checkpoint_epochs(tmp_path) == [3, 4]


def test_a_truncated_file_is_a_located_error(tmp_path: Path) -> None:
    m = model()
    path = ck.save_checkpoint(m, tmp_path, 1)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(SpecError) as e:
        ck.restore_checkpoint(m, path, 1)
    text = str(e.value)
    assert str(path) in text and "cannot restore the checkpoint of epoch 1" in text
    assert "-o NEW_DIR" in text


def test_another_models_checkpoint_names_the_variable(tmp_path: Path) -> None:
    path = ck.save_checkpoint(model(4), tmp_path, 1)
    with pytest.raises(SpecError) as e:
        ck.restore_checkpoint(model(6), path, 1)
    assert "c1/kernel" in str(e.value) and "(3, 3, 1, 6) in the model" in str(e.value)
