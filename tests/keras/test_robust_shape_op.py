"""`robust_init_shape` against its numpy reference (runtime/shapes/robust_init.py): the same
S_0 on a batch with planted outliers, no gradient to S_d, templates kept by save/load, the
shape rule equal to Keras, and the training-data fill's errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.api import load_spec_text
from compiler.diagnostics import SpecError
from runtime.data.config import DataConfig
from runtime.data.records import FaceSet
from runtime.shapes.robust_init import ransac_batch
from tests.keras.op_harness import assert_lowering_matches

pytestmark = pytest.mark.keras

K, M, H, B = 68, 8, 64, 32


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(templates [M, K, 2], detected shapes [B, K, 2]: templates moved by similarities,
    noised, 20 of 68 points thrown far)."""
    rng = np.random.default_rng(seed)
    templates = (rng.normal(size=(M, K, 2)) * 20 + 64).astype(np.float32)
    sd = []
    for b in range(B):
        t = templates[b % M].astype(np.float64)
        th, sc = rng.uniform(-0.5, 0.5), rng.uniform(0.6, 1.5)
        rot = np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]])
        s = (t - 64) @ rot * sc + 64 + rng.uniform(-10, 10, 2) + rng.normal(size=(K, 2)) * 0.7
        out = rng.choice(K, 20, replace=False)
        s[out] += rng.uniform(30, 80, (20, 2)) * rng.choice([-1, 1], (20, 2))
        sd.append(s)
    return templates, np.asarray(sd, np.float32)


def _layer(templates: np.ndarray | None = None, **kw: object):  # noqa: ANN202
    from compiler.keras_layers.robust_shape import RobustInitShape

    layer = RobustInitShape(templates=M, hypotheses=H, name="s0", **kw)
    layer.build((None, K, 2))
    if templates is not None:
        layer.templates.assign(templates)
    return layer


def test_keras_op_equals_the_numpy_reference_and_passes_no_gradient() -> None:
    import keras
    import tensorflow as tf

    templates, sd = _batch()
    layer = _layer(templates)
    out = keras.ops.convert_to_numpy(layer(sd))
    ref = ransac_batch(sd, templates, H, 0.08, seed=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=2e-3)
    assert np.abs(out - sd).max() > 20  # the thrown points were moved back
    x = tf.Variable(sd)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    grad = tape.gradient(y, x)
    assert grad is None or not np.any(grad.numpy())
    # zero templates (a model before `netspec fit` filled them): S_0 = S_d
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(_layer()(sd)), sd)


def test_mixed_precision_keeps_the_op_in_float32() -> None:
    import keras

    templates, sd = _batch(2)
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        out = keras.ops.convert_to_numpy(_layer(templates)(sd))
    finally:
        keras.mixed_precision.set_global_policy(before)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ransac_batch(sd, templates, H, 0.08), atol=2e-3)


def test_save_load_keeps_templates_and_output(tmp_path: Path) -> None:
    import keras

    import compiler.keras_layers  # noqa: F401 - registers the layers

    templates, sd = _batch(1)
    inp = keras.Input((K, 2))
    layer = _layer(templates, inlier_threshold=0.1, seed=3)
    model = keras.Model(inp, layer(inp))
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    loaded = again.get_layer("s0")
    np.testing.assert_array_equal(loaded.templates.numpy(), templates)
    assert not loaded.templates.trainable and not again.trainable_weights
    np.testing.assert_array_equal(again.predict(sd, verbose=0), model.predict(sd, verbose=0))


@pytest.mark.parametrize(("raw", "shape"), [({}, (68, 2)), ({"templates": 2, "hypotheses": 3},
                                                             (5, 2)),
                                            ({"eyes": [0, 2]}, (3, 2))])
def test_shape_rule_agrees_with_keras(raw: dict, shape: tuple[int, int]) -> None:
    out = assert_lowering_matches("robust_init_shape", raw, [shape])
    assert np.isfinite(out).all()


SPEC = """version: 1
name: tiny
inputs: {image: {shape: [16, 16, 5]}}
layers:
  - {name: sd, op: argmax_points, in: [image], input_size: 16}
  - {name: s0, op: robust_init_shape, in: [sd], templates: 3, hypotheses: 8}
outputs:
  shape: {from: s0}
"""


def _faces(n: int, k: int) -> FaceSet:
    rng = np.random.default_rng(0)
    pts = (rng.normal(size=(n, k, 2)) * 5 + 40).astype(np.float32)
    return FaceSet("t", "5pt", pts, np.ones((n, k), bool))


def test_fill_from_training_shapes_and_its_errors() -> None:
    from compiler.lower_keras import lower_to_keras
    from runtime.train.data_init import fill_robust_templates

    spec = load_spec_text(SPEC, "tiny.yaml")
    model = lower_to_keras(spec.graph)
    cfg = DataConfig(dataset="t", crop="landmarks", size=80)
    assert fill_robust_templates(model, spec, _faces(40, 5), cfg) == 1
    templates = model.get_layer("s0").templates.numpy()
    assert templates.shape == (3, 5, 2) and np.abs(templates).min() > 0
    with pytest.raises(SpecError, match=r"needs at least 3 training shapes.*has 2") as e:
        fill_robust_templates(model, spec, _faces(2, 5), cfg)
    assert "tiny.yaml:6" in str(e.value)
    with pytest.raises(SpecError, match="templates of 5 landmarks but the training data has 7"):
        fill_robust_templates(model, spec, _faces(40, 7), cfg)
