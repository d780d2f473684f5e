"""`weights_from: RUN` on a module instance: its layers start from the run's trained weights
(by layer name), `trainable: false` keeps them there, and names that do not match are
one located error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.keras]

TRAINED = """
version: 1
name: part
inputs:
  image: {shape: [32, 32, 1]}
layers:
  - {name: conv1, op: conv2d, in: [image], filters: 4, kernel_size: 3, activation: relu}
  - {name: conv2, op: conv2d, in: [conv1], filters: 5, kernel_size: 3}
  - {name: prob, op: spatial_softmax, in: [conv2]}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
data: {val_split: 32, limit: 64}
train: {epochs: 1, steps_per_epoch: 2, batch_size: 16, optimizer: adam}
"""
COMPOSED = """
version: 1
name: whole
inputs:
  image: {shape: [32, 32, 1]}
modules:
  part:
    inputs: {image: {shape: [null, null, 1]}}
    outputs: {maps: prob}
    layers:
      - {name: conv1, op: conv2d, in: [image], filters: 4, kernel_size: 3, activation: relu}
      - {name: %s, op: conv2d, in: [conv1], filters: 5, kernel_size: 3}
      - {name: prob, op: spatial_softmax, in: [%s]}
layers:
  - {name: pre, op: module, module: part, in: [image], weights_from: "%s", trainable: false}
  - {name: post, op: conv2d, in: [pre.maps], filters: 5, kernel_size: 1}
  - {name: prob, op: spatial_softmax, in: [post]}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
"""


def test_module_weights_come_from_a_trained_run(tmp_path: Path) -> None:
    import keras

    from compiler.api import load_spec_text
    from compiler.diagnostics import SpecError
    from runtime.train.fit import fit_spec
    from runtime.train.model_setup import build_model
    from runtime.train.train_config import train_config

    run = tmp_path / "part"
    fit_spec(load_spec_text(TRAINED, "part.yaml"), run, quiet=True)
    trained = keras.models.load_model(run / "model.keras", compile=False)
    spec = load_spec_text(COMPOSED % ("conv2", "conv2", run), "whole.yaml")
    cfg = train_config({"optimizer": "adam"}, spec.section("train").loc)
    model, _ = build_model(spec, cfg, 32, mixed_precision=False, xla=False)
    for name in ("conv1", "conv2"):
        for got, want in zip(model.get_layer(f"pre__{name}").get_weights(),
                             trained.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    frozen = [w.numpy().copy() for w in model.get_layer("pre__conv2").weights]
    assert not model.get_layer("pre__conv2").trainable
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 1)).astype("float32")
    y = np.concatenate([np.full((4, 5, 2), 16.0), np.ones((4, 5, 1))], -1).astype("float32")
    model.train_on_batch(x, {"heatmaps": y})
    for before, w in zip(frozen, model.get_layer("pre__conv2").weights, strict=True):
        np.testing.assert_array_equal(before, w.numpy())

    bad = load_spec_text(COMPOSED % ("conv9", "conv9", run), "whole.yaml")
    with pytest.raises(SpecError, match=r"1 layer\(s\) cannot take their weights") as info:
        build_model(bad, cfg, 32, mixed_precision=False, xla=False)
    assert "'pre.conv9' <- 'conv9'" in str(info.value)
