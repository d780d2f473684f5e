"""The keras.ops losses, targets and decoder (runtime/train/portable_*.py,
runtime/evaluate/decode_ops.py) equal the TF / numpy ones at production shapes, on the
TF backend in this process and on JAX in a subprocess that cannot import TensorFlow."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from runtime.evaluate import decode, decode_ops  # noqa: E402
from runtime.train import portable_targets, targets  # noqa: E402
from runtime.train.losses import IMPLEMENTED, make_loss  # noqa: E402
from runtime.train.portable_losses import PORTABLE, make_portable_loss  # noqa: E402

pytestmark = pytest.mark.keras

REPO = Path(__file__).resolve().parents[2]
B, H = 64, 80  # production: batch 64, 80×80 maps
SUBSET = [36, 39, 42, 45, 30, 48, 54]  # RED-Net's 7 detection points on 68-point data


def labels(seed: int, lead: tuple[int, ...], k: int, size: int, *, channels: int = 3
           ) -> np.ndarray:
    """[*lead, k, channels]: points partly off the input, states 1 / 0 / −1 (labelled
    absent), NaN coordinates on every unseen point, a random 4th 'trained' channel."""
    rng = np.random.default_rng(seed)
    shape = (*lead, k)
    xy = rng.uniform(-0.1 * size, 1.1 * size, (*shape, 2))
    state = rng.choice([1.0, 1.0, 1.0, 1.0, 0.0, -1.0], shape)
    xy[state <= 0.5] = np.nan
    cols = [xy, state[..., None]]
    if channels > 3:
        cols.append((rng.uniform(size=(*shape, 1)) > 0.3).astype(np.float64))
    return np.concatenate(cols, -1).astype(np.float32)


def prediction(seed: int, shape: tuple[int, ...], kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    if kind == "probs":  # spatial softmax over each map's H·W pixels
        flat = np.moveaxis(x, -1, -3).reshape(*shape[:-3], shape[-1], -1)
        flat = np.exp(flat - flat.max(-1, keepdims=True))
        flat /= flat.sum(-1, keepdims=True)
        x = np.moveaxis(flat.reshape(*shape[:-3], shape[-1], *shape[-3:-1]), -3, -1)
    elif kind == "coords":
        x = rng.uniform(-0.1, 1.1, shape).astype(np.float32)
    elif kind == "rar":  # pack_step per step: s_in, s_out (input pixels), gamma, logit, choice
        x[..., 0:4] = rng.uniform(0.0, 80.0, (*shape[:-1], 4))
        x[..., 4] = rng.uniform(0.2, 2.0, shape[:-1])
        x[..., 6] = np.eye(shape[-2])[rng.integers(0, shape[-2], shape[:-2])]
    return x.astype(np.float32)


# (id, loss, args, K, input side, pred kind, label channels, time steps or 0)
CASES = [
    ("nll-logits-68", "spatial_softmax_nll", {"from_logits": True}, 68, 160, "logits", 3, 0),
    ("nll-probs-5-kw", "spatial_softmax_nll",
     {"keypoint_weights": [1, 2, 0.5, 1, 3], "sum_over_keypoints": True}, 5, 80, "probs", 3, 0),
    ("nll-subset-4ch", "spatial_softmax_nll", {"from_logits": True, "landmarks": SUBSET},
     68, 80, "logits", 4, 0),
    ("nll-clips", "spatial_softmax_nll", {}, 5, 80, "probs", 3, 4),
    ("l2-68", "heatmap_l2", {}, 68, 160, "logits", 3, 0),
    ("l2-5-amp-kw-4ch", "heatmap_l2",
     {"sigma": 2.0, "amplitude": 10.0, "keypoint_weights": [1, 0, 2, 1, 1]}, 5, 80, "logits",
     4, 0),
    ("l2-k1-squeezed", "heatmap_l2", {}, 1, 80, "logits", 3, 0),
    ("l2-clips-subset", "heatmap_l2", {"landmarks": SUBSET}, 68, 80, "logits", 3, 4),
    ("xent-balanced-68", "sigmoid_xent", {}, 68, 160, "logits", 3, 0),
    ("xent-disk-5-kw", "sigmoid_xent",
     {"target": "disk", "sigma": 3.0, "pos_weight": 5.0, "keypoint_weights": [1, 2, 3, 4, 5]},
     5, 80, "logits", 4, 0),
    ("xent-clips", "sigmoid_xent", {"sigma": 2.0}, 5, 80, "logits", 3, 4),
    ("coord-68", "coord_l2", {}, 68, 80, "coords", 3, 0),
    ("coord-visible-kw-4ch", "coord_l2",
     {"normalize": "visible", "keypoint_weights": [1, 2, 3, 4, 5]}, 5, 80, "coords", 4, 0),
    ("coord-clips-subset", "coord_l2", {"landmarks": SUBSET}, 68, 80, "coords", 3, 4),
    ("lgcn-68", "lgcn_weighted_l2", {}, 68, 160, "logits", 3, 0),
    ("lgcn-code-5-kw", "lgcn_weighted_l2",
     {"kernel": "lgcn_code", "kernel_size": 31, "keypoint_weights": [1, 2, 0, 1, 1]},
     5, 80, "logits", 3, 0),
    ("lgcn-subset-clips", "lgcn_weighted_l2", {"landmarks": SUBSET}, 68, 80, "logits", 4, 4),
    # RAR: y_pred [B, T = 3, K, 7], the stacked refinement steps of specs/rar.yaml
    ("rar-refine-68", "rar_refine", {}, 68, 80, "rar", 3, 0),
    ("rar-refine-5-kw", "rar_refine", {"keypoint_weights": [1, 2, 0, 1, 3]}, 5, 80, "rar", 3, 0),
    ("rar-reinforce-68", "rar_attention", {}, 68, 80, "rar", 3, 0),
    ("rar-reinforce-plain-5", "rar_attention",
     {"baseline": "none", "normalize": False, "discount": 0.5}, 5, 80, "rar", 3, 0),
    ("rar-surrogate-subset", "rar_attention", {"mode": "surrogate", "landmarks": SUBSET},
     68, 80, "rar", 3, 0),
]


def case_inputs(case: tuple) -> tuple[np.ndarray, np.ndarray, tuple]:
    _, name, args, k, size, kind, channels, steps = case
    n_maps = len(args.get("landmarks") or range(k))
    lead = (B // steps, steps) if steps else (B,)
    per_frame = {"coords": (2 * n_maps,), "rar": (3, n_maps, 7)}.get(kind, (H, H, n_maps))
    yt = labels(len(name) + k, lead, k, size, channels=channels)
    pred = prediction(k + steps, (*lead, *per_frame), kind)
    out_shape = (None, *lead[1:], *per_frame)
    if n_maps == 1 and kind not in ("coords", "rar"):  # Keras squeezes a 1-channel output
        pred = pred[..., 0]
    return yt, pred, out_shape


def value_and_grad(fn, yt: np.ndarray, pred: np.ndarray, mix: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    x = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(x)
        per_example = fn(tf.constant(yt), x)
        total = tf.reduce_sum(per_example * mix)  # distinct weights: per-example gradients
    return per_example.numpy(), tape.gradient(total, x).numpy()


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float, what: str = "") -> None:
    """Equal within rtol of each value or of the largest one (float32 sums reorder)."""
    assert np.all(np.isfinite(want)) and np.all(np.isfinite(got)), what
    scale = float(np.max(np.abs(want))) or 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def test_every_loss_is_ported_and_tested() -> None:
    assert PORTABLE == IMPLEMENTED
    assert {case[1] for case in CASES} | {"identity_xent"} == PORTABLE


@pytest.mark.parametrize(("lead", "smoothing"), [((B,), 0.0), ((B // 4, 4), 0.1)])
def test_identity_xent_equals_tf(lead: tuple[int, ...], smoothing: float) -> None:
    """RED-Net's identity head: [B] (or [B, T]) class ids, -1 for held-out people."""
    rng = np.random.default_rng(len(lead))
    n = 224
    ids = rng.integers(-1, n, lead).astype(np.float32)
    pred = rng.normal(size=(*lead, n)).astype(np.float32) * 3.0
    mix = rng.uniform(0.5, 1.5, lead[0]).astype(np.float32)
    args = {"label_smoothing": smoothing}
    tf_fn = make_loss("identity_xent", input_size=0, out_shape=(None, *lead[1:], n), **args)
    ops_fn = make_portable_loss("identity_xent", input_size=0, out_shape=(None, *lead[1:], n),
                                **args)
    want_v, want_g = value_and_grad(tf_fn, ids, pred, mix)
    got_v, got_g = value_and_grad(ops_fn, ids, pred, mix)
    assert got_v.shape == (lead[0],) and np.any(want_v != 0)
    assert_close(got_v, want_v, 1e-5)
    assert_close(got_g, want_g, 1e-5)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_loss_and_gradient_equal_tf(case: tuple) -> None:
    _, name, args, _, size, _, _, _ = case
    yt, pred, out_shape = case_inputs(case)
    mix = np.random.default_rng(1).uniform(0.5, 1.5, yt.shape[0]).astype(np.float32)
    tf_fn = make_loss(name, input_size=size, out_shape=out_shape, **args)
    ops_fn = make_portable_loss(name, input_size=size, out_shape=out_shape, **args)
    want_v, want_g = value_and_grad(tf_fn, yt, pred, mix)
    got_v, got_g = value_and_grad(ops_fn, yt, pred, mix)
    assert got_v.shape == (yt.shape[0],) and np.any(want_v != 0)
    assert_close(got_v, want_v, 1e-5)
    assert_close(got_g, want_g, 1e-5)
    assert np.any(want_g != 0)


@pytest.mark.parametrize("name", sorted(PORTABLE))
def test_all_masked_batch_is_zero_with_zero_gradient(name: str) -> None:
    k, size = 5, 80
    yt = labels(3, (8,), k, size)
    yt[..., 2] = 0.0
    yt[..., :2] = np.nan
    kind = {"coord_l2": "coords", "rar_refine": "rar", "rar_attention": "rar",
            "identity_xent": "classes"}.get(name, "logits")
    shape = {"coords": (8, 2 * k), "rar": (8, 3, k, 7), "classes": (8, 10)}.get(
        kind, (8, 20, 20, k))
    pred = prediction(4, shape, kind)
    if kind == "classes":  # no person of the batch has a training class
        yt = np.full((8,), -1.0, np.float32)
    fn = make_portable_loss(name, input_size=size, out_shape=(None, *shape[1:]))
    value, grad = value_and_grad(fn, yt, pred, np.ones(8, np.float32))
    np.testing.assert_array_equal(value, 0.0)
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize(("fn", "extra"), [
    ("map_coords", ()), ("pixel_index", ()), ("one_hot_maps", ()), ("gaussian_maps", (1.5, 3.0)),
    ("disk_maps", (2.5,)), ("splat_profiles", ()), ("bilinear_splat", ()),
    ("kernel_splat", (np.random.default_rng(0).uniform(size=(45, 45)),)),
    ("kernel_splat", (np.random.default_rng(1).uniform(size=(201, 201)),)),  # wider than the map
])
@pytest.mark.parametrize("channels", [3, 4])
def test_targets_equal_tf(fn: str, extra: tuple, channels: int) -> None:
    # K = 5 here; the K = 68 targets are checked through the losses' values and gradients
    yt = labels(5, (B,), 5, 160, channels=channels)
    want = getattr(targets, fn)(yt, 160, (H, H), *extra)
    got = getattr(portable_targets, fn)(yt, 160, (H, H), *extra)
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for w, g in zip(want, got, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g), w.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(portable_targets.trained_mask(yt), targets.trained_mask(yt))


@pytest.mark.parametrize(("name", "args", "out_shape"), [
    ("no_such_loss", {}, (None, 8, 8, 5)),
    ("heatmap_l2", {"sigma": -1.0}, (None, 8, 8, 5)),
    ("heatmap_l2", {"landmarks": [0, 1]}, (None, 8, 8, 5)),
    ("coord_l2", {"keypoint_weights": [1.0, 2.0]}, (None, 10)),
    ("coord_l2", {}, (None, 8, 8, 5)),
    ("spatial_softmax_nll", {}, (None, None, 8, 5)),
    ("lgcn_weighted_l2", {"kernel_size": 4}, (None, 8, 8, 5)),
])
def test_bad_loss_requests_fail_as_make_loss_does(name: str, args: dict,
                                                  out_shape: tuple) -> None:
    with pytest.raises(ValueError) as tf_error:
        make_loss(name, input_size=8, out_shape=out_shape, **args)
    with pytest.raises(ValueError) as ops_error:
        make_portable_loss(name, input_size=8, out_shape=out_shape, **args)
    assert str(ops_error.value) == str(tf_error.value)


# ---- decoding -----------------------------------------------------------------------------

@functools.cache
def decode_maps(seed: int, k: int = 68) -> np.ndarray:
    """[B, 80, 80, K]: Gaussian blobs (the positive maps decoders see) with noise, a few
    peaks on the border, and random-normal maps (negative window values) for k >= 2."""
    rng = np.random.default_rng(seed)
    pts = np.concatenate([rng.uniform(-0.4, H - 0.6, (B, k, 2)), np.ones((B, k, 1))], -1)
    pts[:4, 0, 0], pts[4:8, 0, 1] = 0.0, H - 1.0  # exactly on the left / bottom border
    maps = targets.gaussian_maps(pts.astype(np.float32), H, (H, H), 1.7).numpy()
    maps = maps + rng.uniform(0, 1e-3, maps.shape).astype(np.float32)
    maps[..., 1] = rng.normal(size=maps.shape[:3])
    maps.setflags(write=False)  # shared by the tests (cached)
    return maps


@pytest.mark.parametrize("refine", decode.REFINES)
def test_decode_ops_equals_numpy(refine: str) -> None:
    maps = decode_maps(7)
    want_xy, want_peak = decode.heatmap_peaks(maps, refine=refine)
    got_xy, got_peak = decode_ops.heatmap_peaks(tf.constant(maps), refine=refine)
    np.testing.assert_allclose(got_xy, want_xy, atol=2e-5)
    np.testing.assert_allclose(got_peak, want_peak, rtol=1e-6)
    np.testing.assert_allclose(decode_ops.decode_points("heatmap", maps, 160, refine=refine),
                               decode.decode("heatmap", maps, 160, refine=refine), atol=5e-5)


def test_decode_ops_flat_map_confidence_and_coords() -> None:
    maps = decode_maps(8, k=5).copy()
    maps[0] = 0.0  # flat: stays at the argmax, no confidence
    np.testing.assert_allclose(decode_ops.heatmap_confidence(maps),
                               decode.heatmap_confidence(maps), rtol=1e-5, atol=1e-7)
    for refine in decode.REFINES:
        np.testing.assert_array_equal(
            decode_ops.heatmap_peaks(maps[:1], refine=refine)[0], np.zeros((1, 5, 2)))
    coords = np.random.default_rng(9).uniform(size=(B, 136)).astype(np.float32)
    np.testing.assert_allclose(decode_ops.decode_points("coords", coords, 80),
                               decode.decode("coords", coords, 80), rtol=1e-6)


@pytest.mark.parametrize(("kind", "shape", "refine", "message"), [
    ("coords", (2, 5), "none", "coords output must be"),
    ("heatmap", (2, 8, 8), "none", "heatmap output must be"),
    ("boxes", (2, 4), "none", "unknown output kind"),
    ("heatmap", (2, 8, 8, 3), "cubic", "unknown refine"),
])
def test_decode_ops_rejects_bad_input(kind: str, shape: tuple, refine: str,
                                      message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_ops.decode_points(kind, np.zeros(shape, np.float32), 8, refine=refine)


# ---- another backend ----------------------------------------------------------------------

_CHILD = r"""
import os, sys
sys.modules["tensorflow"] = None  # any `import tensorflow` now fails
import json
import numpy as np
import jax
import keras
from runtime.evaluate import decode_ops
from runtime.train.portable_losses import make_portable_loss

assert keras.backend.backend() == "jax", keras.backend.backend()
data = np.load(sys.argv[1], allow_pickle=False)
cases = json.loads(str(data["cases"]))
out = {}
for i, (name, args, size, out_shape) in enumerate(cases):
    fn = make_portable_loss(name, input_size=size, out_shape=out_shape, **args)
    yt, pred, mix = data[f"yt{i}"], data[f"pred{i}"], data[f"mix{i}"]
    def total(p, fn=fn, yt=yt, mix=mix):
        per_example = fn(yt, p)
        return (per_example * mix).sum(), per_example
    (_, value), grad = jax.jit(jax.value_and_grad(total, has_aux=True))(pred)
    out[f"value{i}"], out[f"grad{i}"] = np.asarray(value), np.asarray(grad)
for refine in ("none", "quadratic", "log_quadratic", "com"):
    points = jax.jit(lambda m, r=refine: decode_ops.decode_points("heatmap", m, 160, refine=r))
    out[f"points_{refine}"] = np.asarray(points(data["maps"]))
out["tf_loaded"] = np.array([m for m in sys.modules if m.split(".")[0] == "tensorflow"
                             and sys.modules[m] is not None], dtype=str)
np.savez(sys.argv[2], **out)
"""


@pytest.mark.slow
def test_jax_backend_without_tensorflow_matches_tf(tmp_path: Path) -> None:
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install -e '.[backends]'): no second backend")
    chosen = [c for c in CASES if c[0] in ("nll-subset-4ch", "nll-clips", "xent-disk-5-kw",
                                          "coord-visible-kw-4ch", "lgcn-code-5-kw",
                                          "l2-5-amp-kw-4ch", "rar-reinforce-68",
                                          "rar-surrogate-subset")]
    data: dict[str, np.ndarray] = {"maps": decode_maps(11, k=5)}
    cases, want = [], {}
    for i, case in enumerate(chosen):
        _, name, args, _, size, _, _, _ = case
        yt, pred, out_shape = case_inputs(case)
        mix = np.random.default_rng(i).uniform(0.5, 1.5, yt.shape[0]).astype(np.float32)
        data.update({f"yt{i}": yt, f"pred{i}": pred, f"mix{i}": mix})
        cases.append((name, args, size, list(out_shape)))
        fn = make_loss(name, input_size=size, out_shape=out_shape, **args)
        want[f"value{i}"], want[f"grad{i}"] = value_and_grad(fn, yt, pred, mix)
    data["cases"] = np.array(json.dumps(cases))
    np.savez(tmp_path / "in.npz", **data)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "in.npz"),
                          str(tmp_path / "out.npz")], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    assert got["tf_loaded"].size == 0
    for i, case in enumerate(chosen):
        assert_close(got[f"value{i}"], want[f"value{i}"], 2e-5, case[0])
        assert_close(got[f"grad{i}"], want[f"grad{i}"], 2e-5, case[0])
    for refine in decode.REFINES:
        np.testing.assert_allclose(got[f"points_{refine}"],
                                   decode.decode("heatmap", data["maps"], 160, refine=refine),
                                   atol=5e-5, err_msg=refine)
