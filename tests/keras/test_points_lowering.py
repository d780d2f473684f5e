"""Point ops against Keras: shape tables, numpy references, finite-difference gradients,
gradient blocking, mixed precision and `.keras` save/load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.ir import TensorType
from compiler.ops import DEFAULT_OPS
from tests.keras.op_harness import assert_lowering_matches, make_params

pytestmark = pytest.mark.keras

ROWS = [
    ("sample_at_points", {}, [(6, 7, 3), (4, 2)]),
    ("sample_at_points", {}, [(1, 1, 5), (1, 2)]),
    ("sample_at_points", {"input_size": 28}, [(7, 7, 2), (68, 2)]),
    ("sample_at_points", {"input_size": [12, 16]}, [(3, 4, 1), (5, 2)]),
    ("points_to_maps", {"height": 5, "width": 6}, [(4, 2)]),
    ("points_to_maps", {"height": 3, "width": 3, "input_size": 12}, [(1, 2)]),
    ("points_to_maps", {"height": 8, "width": 6, "mode": "gaussian", "sigma": 1.0,
                        "input_size": [16, 12]}, [(7, 2)]),
    ("soft_argmax", {}, [(5, 6, 3)]),
    ("soft_argmax", {"temperature": 0.5, "input_size": 20}, [(10, 10, 1)]),
    ("argmax_points", {}, [(4, 7, 5)]),
    ("argmax_points", {"input_size": 12}, [(6, 6, 2)]),
    ("stop_gradient", {}, [(5, 6, 3)]),
    ("stop_gradient", {}, [(4, 2)]),
    ("split", {"start": 1, "size": 2}, [(5, 6, 3)]),
    ("split", {"start": 0, "size": 1}, [(4,)]),
    ("split", {"start": 3, "size": 4}, [(3, 7)]),
    ("gather_points", {"indices": [2, 0, 2]}, [(4, 2)]),
    ("gather_points", {"indices": [1], "axis": -1}, [(5, 6, 3)]),
    ("gather_points", {"indices": [0, 3]}, [(4, 5)]),
    ("fill", {"channels": 4, "value": 2.0}, [(5, 6, 3)]),
    ("fill", {"channels": 2}, [(3,)]),
    ("fill", {"channels": 1}, [(4, 2)]),
    ("channel_affine", {}, [(5, 6, 3)]),
    ("channel_affine", {}, [(4,)]),
]


@pytest.mark.parametrize(("op", "raw", "shapes"), ROWS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_shapes_agree_with_keras(op: str, raw: dict[str, Any], shapes: list[tuple]) -> None:
    out = assert_lowering_matches(op, raw, shapes)
    assert np.isfinite(out).all()


def _layer(op: str, raw: dict[str, Any], **kw: Any) -> Any:
    layer = DEFAULT_OPS.get(op).lower(make_params(op, raw), f"t_{op}")
    if "dtype" in kw:  # float64 for the finite-difference checks
        layer.dtype_policy = kw["dtype"]
    return layer


def _np(x: Any) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(x)


# --- numpy references ---------------------------------------------------------------


def bilinear_ref(feats: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Zero-padded bilinear interpolation at pixel-centre coordinates (x, y)."""
    b, h, w, c = feats.shape
    out = np.zeros((b, pts.shape[1], c))
    for i in range(b):
        for k, (x, y) in enumerate(pts[i]):
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            for xi, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                for yi, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                    if 0 <= xi < w and 0 <= yi < h:
                        out[i, k] += wx * wy * feats[i, yi, xi]
    return out


def test_sample_at_points_values_inside_on_borders_and_outside() -> None:
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((2, 4, 5, 3)).astype("float32")
    pts = np.array([[[0, 0], [4, 3], [2.25, 1.75], [-0.5, 0], [4.5, 2], [-1, 3]],
                    [[1, 2], [3.5, 3.5], [0.1, 2.9], [5, 0], [2, -1.5], [2, 3.25]]], "float32")
    got = _np(_layer("sample_at_points", {})([feats, pts]))
    np.testing.assert_allclose(got, bilinear_ref(feats, pts), rtol=1e-5, atol=1e-6)
    # hand-checked values, independent of the reference
    np.testing.assert_allclose(got[0, 0], feats[0, 0, 0], rtol=1e-6)  # a pixel centre
    np.testing.assert_allclose(got[0, 1], feats[0, 3, 4], rtol=1e-6)  # the far corner
    np.testing.assert_allclose(got[0, 3], 0.5 * feats[0, 0, 0], rtol=1e-6)  # half outside
    np.testing.assert_allclose(got[0, 4], 0.5 * feats[0, 2, 4], rtol=1e-6)
    np.testing.assert_array_equal(got[0, 5], 0.0)  # a whole pixel outside
    np.testing.assert_array_equal(got[1, 3], 0.0)
    np.testing.assert_allclose(got[1, 5], 0.75 * feats[1, 3, 2], rtol=1e-6)
    want = (0.75 * 0.25 * feats[0, 1, 2] + 0.25 * 0.25 * feats[0, 1, 3]
            + 0.75 * 0.75 * feats[0, 2, 2] + 0.25 * 0.75 * feats[0, 2, 3])
    np.testing.assert_allclose(got[0, 2], want, rtol=1e-5)


def test_sample_at_points_in_input_pixels() -> None:
    rng = np.random.default_rng(2)
    feats = rng.standard_normal((1, 8, 4, 2)).astype("float32")
    pts = rng.uniform(-2, 33, (1, 6, 2)).astype("float32")  # an input of 32 x 16 (h x w)
    got = _np(_layer("sample_at_points", {"input_size": [32, 16]})([feats, pts]))
    in_map = np.stack([(pts[..., 0] + 0.5) * 4 / 16 - 0.5,
                       (pts[..., 1] + 0.5) * 8 / 32 - 0.5], axis=-1)
    np.testing.assert_allclose(got, bilinear_ref(feats, in_map), rtol=1e-5, atol=1e-6)


def test_soft_argmax_on_peaked_maps_and_against_numpy() -> None:
    logits = np.zeros((1, 6, 8, 2), "float32")
    logits[0, 2, 5, 0] = 40.0  # peak at x=5, y=2
    logits[0, 4, 1, 1] = 40.0
    got = _np(_layer("soft_argmax", {})(logits))
    np.testing.assert_allclose(got, [[[5, 2], [1, 4]]], atol=1e-4)
    got = _np(_layer("soft_argmax", {"input_size": 24})(logits))  # map 8 wide for 24 px
    np.testing.assert_allclose(got, [[[(5.5 * 3) - 0.5, 2.5 * 4 - 0.5],
                                      [1.5 * 3 - 0.5, 4.5 * 4 - 0.5]]], atol=1e-3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 4, 3)).astype("float32")
    for raw, t in (({}, 1.0), ({"temperature": 0.25}, 0.25)):
        flat = x.reshape(2, 20, 3) / t
        p = np.exp(flat - flat.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        ys, xs = np.divmod(np.arange(20), 4)
        want = np.stack([(p * xs[None, :, None]).sum(1), (p * ys[None, :, None]).sum(1)], -1)
        np.testing.assert_allclose(_np(_layer("soft_argmax", raw)(x)), want, rtol=1e-5,
                                   atol=1e-5)
    probs = np.abs(x) / np.abs(x).sum((1, 2), keepdims=True)
    flat = probs.reshape(2, 20, 3)
    want = np.stack([(flat * xs[None, :, None]).sum(1), (flat * ys[None, :, None]).sum(1)], -1)
    np.testing.assert_allclose(_np(_layer("soft_argmax", {"from_logits": False})(probs)), want,
                               rtol=1e-5, atol=1e-5)


def test_argmax_points_against_numpy_with_ties_first() -> None:
    rng = np.random.default_rng(4)
    maps = rng.standard_normal((3, 5, 7, 4)).astype("float32")
    maps[0, :, :, 1] = 1.0  # all tied: the first pixel in row-major order
    maps[1, 3, 2, 2] = maps[1, 4, 6, 2] = 9.0  # two maxima: (2, 3) comes first
    got = _np(_layer("argmax_points", {})(maps))
    idx = maps.reshape(3, 35, 4).argmax(1)
    np.testing.assert_array_equal(got, np.stack([idx % 7, idx // 7], -1))
    assert got[0, 1].tolist() == [0, 0] and got[1, 2].tolist() == [2, 3]
    got = _np(_layer("argmax_points", {"input_size": 14})(maps))  # 7 wide, 5 high for 14
    np.testing.assert_allclose(got[..., 0], (idx % 7 + 0.5) * 2 - 0.5, rtol=1e-6)
    np.testing.assert_allclose(got[..., 1], (idx // 7 + 0.5) * 14 / 5 - 0.5, rtol=1e-6)


def test_points_to_maps_one_hot_and_gaussian_against_numpy() -> None:
    pts = np.array([[[2.0, 1.0], [3.49, 0.5], [-0.6, 2], [5.7, 3.2], [0.2, 3.6]]], "float32")
    got = _np(_layer("points_to_maps", {"height": 4, "width": 6})(pts))
    want = np.zeros((1, 4, 6, 5))
    for k, (x, y) in enumerate(pts[0]):
        col, row = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        if 0 <= col < 6 and 0 <= row < 4:
            want[0, row, col, k] = 1.0
    np.testing.assert_array_equal(got, want)
    assert want[0, 1, 3, 1] == 1 and want[0, :, :, 2].sum() == 0  # (3.49, 0.5) -> (3, 1)
    got = _np(_layer("points_to_maps", {"height": 4, "width": 6, "mode": "gaussian",
                                        "sigma": 1.5})(pts))
    rows, cols = np.mgrid[0:4, 0:6]
    want = np.stack([np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 1.5 ** 2))
                     for x, y in pts[0]], -1)[None]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # input pixels: a 12 x 12 input seen by a 4 x 6 map
    got = _np(_layer("points_to_maps", {"height": 4, "width": 6, "input_size": 12})(
        np.array([[[7.0, 10.0]]], "float32")))
    assert np.argwhere(got[0, :, :, 0]).tolist() == [[3, 3]]  # x 7 -> 3.25, y 10 -> 3.0


def test_gather_split_fill_and_channel_affine_values() -> None:
    x = np.random.default_rng(5).standard_normal((2, 4, 5, 3)).astype("float32")
    np.testing.assert_array_equal(
        _np(_layer("gather_points", {"indices": [3, 0, 3]})(x[:, :, 0, :2])),
        x[:, [3, 0, 3], 0, :2])
    np.testing.assert_array_equal(
        _np(_layer("gather_points", {"indices": [2, 0], "axis": -1})(x)), x[..., [2, 0]])
    np.testing.assert_array_equal(_np(_layer("split", {"start": 1, "size": 2})(x)), x[..., 1:3])
    np.testing.assert_array_equal(_np(_layer("split", {"start": 0, "size": 1})(x)), x[..., :1])
    np.testing.assert_array_equal(_np(_layer("fill", {"channels": 7, "value": -1.5})(x)),
                                  np.full((2, 4, 5, 7), -1.5, "float32"))
    np.testing.assert_array_equal(_np(_layer("fill", {"channels": 2})(x[:, 0, 0])),
                                  np.zeros((2, 2)))
    affine = _layer("channel_affine", {})
    np.testing.assert_array_equal(_np(affine(x)), x)  # init: scale 1, bias 0
    affine.set_weights([np.array([2.0, -1.0, 0.5], "float32"), np.array([1, 2, 3], "float32")])
    np.testing.assert_allclose(_np(affine(x)), x * [2.0, -1.0, 0.5] + [1, 2, 3], rtol=1e-6)
    assert [w.name for w in affine.weights] == ["gamma", "beta"]
    opdef = DEFAULT_OPS.get("channel_affine")
    ins = (TensorType((None, 4, 5, 3)),)
    assert opdef.count_params(make_params("channel_affine", {}), ins, ins[0]) == \
        affine.count_params() == 6


# --- gradients ----------------------------------------------------------------------


def _fd_check(fn: Any, arrays: list[np.ndarray], wrt: int, eps: float = 1e-6) -> None:
    """Central differences of sum(weights * fn(*arrays)) w.r.t. arrays[wrt] vs the tape."""
    import tensorflow as tf

    out = np.asarray(fn(*[tf.constant(a) for a in arrays]))
    weights = np.random.default_rng(6).standard_normal(out.shape)

    def loss(*xs: Any) -> Any:
        return tf.reduce_sum(fn(*xs) * weights)

    vars_ = [tf.Variable(a) for a in arrays]
    with tf.GradientTape() as tape:
        value = loss(*vars_)
    analytic = tape.gradient(value, vars_[wrt]).numpy()
    numeric = np.zeros_like(arrays[wrt])
    for idx in np.ndindex(arrays[wrt].shape):
        up = [a.copy() for a in arrays]
        down = [a.copy() for a in arrays]
        up[wrt][idx] += eps
        down[wrt][idx] -= eps
        numeric[idx] = (float(loss(*map(tf.constant, up)))
                        - float(loss(*map(tf.constant, down)))) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(analytic).max() > 1e-3  # the check is not vacuous


def test_sample_at_points_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(7)
    feats = rng.standard_normal((2, 4, 5, 3))
    # non-integer positions, inside, straddling the border and half outside
    pts = np.array([[[1.3, 2.6], [-0.4, 0.7], [4.2, 3.3]],
                    [[3.7, 0.2], [2.5, 2.5], [0.6, -0.3]]])
    layer = _layer("sample_at_points", {}, dtype="float64")

    def fn(f: Any, p: Any) -> Any:
        return layer([f, p])

    _fd_check(fn, [feats, pts], wrt=0)
    _fd_check(fn, [feats, pts], wrt=1)
    scaled = _layer("sample_at_points", {"input_size": 20}, dtype="float64")
    _fd_check(lambda f, p: scaled([f, p]), [feats, pts * 3.1 + 0.2], wrt=1)


def test_soft_argmax_gradients_match_finite_differences() -> None:
    maps = np.random.default_rng(8).standard_normal((2, 3, 4, 2))
    for raw in ({}, {"temperature": 0.5, "input_size": 16}):
        layer = _layer("soft_argmax", raw, dtype="float64")
        _fd_check(layer, [maps], wrt=0)
    probs = np.abs(maps) + 0.1
    _fd_check(_layer("soft_argmax", {"from_logits": False}, dtype="float64"), [probs], wrt=0)


def test_gaussian_maps_are_differentiable_in_the_points() -> None:
    pts = np.array([[[1.3, 2.2], [3.6, 0.4]]])
    layer = _layer("points_to_maps", {"height": 4, "width": 5, "mode": "gaussian",
                                      "sigma": 1.2}, dtype="float64")
    _fd_check(layer, [pts], wrt=0)


def test_blocking_ops_pass_no_gradient() -> None:
    import tensorflow as tf

    x = tf.Variable(np.random.default_rng(9).standard_normal((2, 4, 5, 3)).astype("float32"))
    pts = tf.Variable([[[1.2, 2.0]], [[0.4, 3.1]]])
    cases = [("stop_gradient", {}, x), ("fill", {"channels": 2, "value": 1.0}, x),
             ("argmax_points", {}, x), ("points_to_maps", {"height": 4, "width": 5}, pts)]
    for op, raw, var in cases:
        with tf.GradientTape() as tape:
            y = _layer(op, raw)(var)
            loss = tf.reduce_sum(y * y) + tf.reduce_sum(var)  # the direct path has gradient 1
        np.testing.assert_array_equal(tape.gradient(loss, var).numpy(), 1.0, err_msg=op)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(_layer("split", {"start": 1, "size": 1})(x))
    grad = tape.gradient(loss, x).numpy()
    assert grad[..., 1].min() == 1.0 and grad[..., [0, 2]].max() == 0.0


def test_mixed_precision_keeps_coordinates_in_float32() -> None:
    import keras

    feats = np.random.default_rng(10).standard_normal((1, 64, 64, 2)).astype("float16")
    pts = np.array([[[200.37, 13.61]]], "float32")  # in a 256 px input
    layer = _layer("sample_at_points", {"input_size": 256})
    layer.dtype_policy = keras.DTypePolicy("mixed_float16")
    got = _np(layer([feats, pts])).astype("float64")
    in_map = (pts.astype("float64") + 0.5) * 64 / 256 - 0.5
    want = bilinear_ref(feats.astype("float64"), in_map)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)
    soft = _layer("soft_argmax", {"input_size": 256})
    soft.dtype_policy = keras.DTypePolicy("mixed_float16")
    maps = np.full((1, 64, 64, 1), -30.0, "float16")
    maps[0, 50, 40, 0] = 30.0
    out = soft(maps)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_allclose(_np(out)[0, 0], [40.5 * 4 - 0.5, 50.5 * 4 - 0.5], atol=1e-3)


# --- save / load --------------------------------------------------------------------


def test_save_load_round_trip(tmp_path: Path) -> None:
    import keras

    import compiler.keras_layers  # noqa: F401 - registers the custom layers

    def build(op: str, raw: dict[str, Any], name: str) -> Any:
        return DEFAULT_OPS.get(op).lower(make_params(op, raw), name)

    image = keras.Input(shape=(16, 16, 3), name="image")
    shape = keras.Input(shape=(5, 2), name="shape")
    maps = keras.layers.Conv2D(5, 3, padding="same", name="head")(image)
    pts = build("soft_argmax", {"temperature": 0.5, "input_size": 32}, "pts")(maps)
    pts = build("stop_gradient", {}, "detach")(pts)
    hard = build("argmax_points", {"input_size": [32, 32]}, "hard")(maps)
    feat = build("sample_at_points", {"input_size": 32}, "feat")([maps, shape])
    fb = build("points_to_maps", {"height": 8, "width": 8, "mode": "gaussian", "sigma": 1.5,
                                  "input_size": 32}, "fb")(pts)
    onehot = build("points_to_maps", {"height": 8, "width": 8}, "onehot")(shape)
    some = build("gather_points", {"indices": [4, 0]}, "some")(hard)
    chans = build("gather_points", {"indices": [1, 3], "axis": -1}, "chans")(fb)
    group = build("split", {"start": 2, "size": 3}, "group")(onehot)
    z0 = build("fill", {"channels": 4, "value": 0.5}, "z0")(maps)
    affine = build("channel_affine", {}, "affine")
    aff = affine(maps)
    model = keras.Model({"image": image, "shape": shape},
                        {"feat": feat, "fb": fb, "some": some, "chans": chans, "group": group,
                         "z0": z0, "aff": aff, "pts": pts})
    affine.set_weights([np.arange(1, 6, dtype="float32"), np.full(5, 0.25, "float32")])
    path = tmp_path / "points.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    rng = np.random.default_rng(11)
    x = {"image": rng.standard_normal((2, 16, 16, 3)).astype("float32"),
         "shape": rng.uniform(0, 31, (2, 5, 2)).astype("float32")}
    want, got = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6, err_msg=key)
    assert loaded.get_layer("fb").sigma == 1.5 and loaded.get_layer("fb").input_size == (32, 32)
    assert loaded.get_layer("pts").temperature == 0.5
    assert loaded.get_layer("chans").indices == [1, 3] and loaded.get_layer("chans").axis == -1
    assert (loaded.get_layer("group").start, loaded.get_layer("group").size) == (2, 3)
    assert loaded.get_layer("z0").value == 0.5
    np.testing.assert_array_equal(loaded.get_layer("affine").get_weights()[0], np.arange(1, 6))


def test_a_points_spec_compiles_and_its_shapes_agree() -> None:
    """Through the compiler: lowering cross-checks every Keras shape against the IR."""
    from compiler.api import load_spec_text
    from compiler.lower_keras import lower_to_keras

    text = """
version: 1
inputs:
  image: {shape: [16, 16, 1]}
layers:
  - {name: maps, op: conv2d, in: [image], filters: 3, kernel_size: 3}
  - {name: pts, op: soft_argmax, in: [maps], input_size: 16}
  - {name: hard, op: argmax_points, in: [maps], input_size: 16}
  - {name: sg, op: stop_gradient, in: [pts]}
  - {name: feat, op: sample_at_points, in: [maps, sg], input_size: 16}
  - {name: fb, op: points_to_maps, in: [hard], height: 16, width: 16, input_size: 16}
  - {name: z0, op: fill, in: [image], channels: 3}
  - {name: both, op: concat, in: [fb, z0, image]}
  - {name: grp, op: split, in: [both], start: 3, size: 4}
  - {name: aff, op: channel_affine, in: [grp]}
  - {name: two, op: gather_points, in: [pts], indices: [2, 0]}
outputs:
  aff: {from: aff}
  feat: {from: feat}
  two: {from: two}
"""
    spec = load_spec_text(text, "p.yaml")
    model = lower_to_keras(spec.graph)
    assert model.get_layer("aff").count_params() == 8
    out = model.predict({"image": np.zeros((2, 16, 16, 1), "float32")}, verbose=0)
    assert out["aff"].shape == (2, 16, 16, 4) and out["feat"].shape == (2, 3, 3)
    assert out["two"].shape == (2, 2, 2)
