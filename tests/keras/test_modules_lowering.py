"""Modules in Keras: a shared module is one weight set that every use trains, .keras files
round-trip it (one weight set after reload), and the recurrent, one-shot and cascade
variants of one spec build with the IR's parameter counts and train a step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.keras

from compiler.api import load_spec, load_spec_text  # noqa: E402
from compiler.format import param_summary  # noqa: E402
from compiler.ops import DEFAULT_OPS  # noqa: E402
from netspec import compile_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RECURRENT = REPO / "specs" / "examples" / "recurrent_tiny.yaml"
SHARED = """
version: 1
name: shared
inputs:
  image: {shape: [16, 16, 1]}
modules:
  block:
    inputs: {x: {shape: [null, null, 1]}}
    outputs: {y: conv}
    layers:
      - {name: conv, op: conv2d, in: [x], filters: 1, kernel_size: 3}
layers:
  - {name: a, op: module, module: block, in: [image]}
  - {name: b, op: module, module: block, in: [a.y], share: a}
outputs:
  out: {from: b.y}
"""


def test_a_shared_module_has_one_weight_set_trained_by_every_use(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    model = compile_model(load_spec_text(SHARED, "shared.yaml"))
    assert len(model.trainable_weights) == 2  # one kernel, one bias
    kernel = model.get_layer("a__conv").kernel
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 16, 16, 1)), tf.float32)
    with tf.GradientTape() as tape:
        y = model({"image": x})["out"]
        loss = tf.reduce_sum(y)
    grad = tape.gradient(loss, kernel)
    # The same function with a separate copy of the weights per use: the shared kernel's
    # gradient must be the sum of the two uses' gradients (each use alone is not enough).
    layer = model.get_layer("a__conv")
    w1, w2 = tf.Variable(layer.kernel), tf.Variable(layer.kernel)
    with tf.GradientTape() as tape2:
        inner = tf.nn.conv2d(x, w1, 1, "SAME") + layer.bias
        total = tf.reduce_sum(tf.nn.conv2d(inner, w2, 1, "SAME") + layer.bias)
    g1, g2 = tape2.gradient(total, [w1, w2])
    np.testing.assert_allclose(grad.numpy(), (g1 + g2).numpy(), rtol=1e-4, atol=1e-4)
    assert np.abs(g1.numpy()).max() > 0 and np.abs(g2.numpy()).max() > 0
    path = tmp_path / "shared.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert len(again.trainable_weights) == 2
    np.testing.assert_allclose(again({"image": x})["out"], y, atol=1e-6)


@pytest.mark.parametrize("overrides", [[], ["steps=1"], ["share_steps=false"],
                                       ["step_stats=true"]])
def test_recurrent_variants_match_ir_counts_and_train_a_step(overrides: list[str]) -> None:
    spec = load_spec(RECURRENT, overrides)
    model = compile_model(spec)
    assert model.count_params() == param_summary(spec.graph, DEFAULT_OPS)[0]
    model.compile(optimizer="adam", loss={o.name: "mse" for o in spec.graph.outputs})
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 32, 32, 1)).astype("float32")
    ys = {o.name: rng.random((4, 32, 32, 5)).astype("float32") for o in spec.graph.outputs}
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, ys)
    assert np.isfinite(np.asarray(loss)).all()
    moved = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights,
                                                              strict=True)]
    assert all(moved)  # every weight group, shared or not, gets a gradient
