"""Augmentation on the accelerator (runtime/data/face_cache.py + device_augment.py) against
the tf.data pipeline on the same inputs.

Tolerances. Synthetic faces with crop: none at size 80: the cache tile holds the source
pixels themselves (an integer shift), so the device's bilinear warp reads the same four
pixels with the same weights as TF's; only float32 rounding of the composed matrices
differs (< 1e-4 px), so pixels agree to 0.05 grey levels. Otherwise the device resamples
a uint8 tile that was itself resampled from the source: a second bilinear pass (a low-pass
of at most half a pixel) plus rounding to uint8, and the cache decodes JPEGs with PIL (no
TensorFlow), whose gray levels differ from tf.io's by up to 22 (mean 0.54) on MTFL. Measured
on the first 64 MTFL rows (crop_ratio 1.3, full jitter): max 22.4, mean 0.55, p99 3.1 grey
levels (a cache of tf.io-decoded pixels: max 16.4, mean 0.33, p99 2.9), so the bound is a
mean of 1.5 and a p99 of 8. Landmarks never go through the cache: they agree to 1e-3 px.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from runtime.data import augment as aug_ops
from runtime.data import device_augment as da
from runtime.data import face_cache as fc
from runtime.data import geometry
from runtime.data.config import augment_config, data_config
from runtime.data.normalize import lcn as tf_lcn
from runtime.data.normalize import normalize as tf_normalize
from runtime.data.pipeline import crop_squares as tf_crop_squares
from runtime.data.pipeline import make_dataset
from runtime.data.synthetic import synthetic_faceset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def faces():
    return synthetic_faceset(64)


def _reference(faces, cfg, rows: np.ndarray, u: np.ndarray, *, geometric_only: bool = False):
    """The tf.data pipeline's stages (pipeline._dataset plan / per_image / finish) on rows."""
    aug, size = augment_config(cfg), cfg.size
    j = aug_ops.jitter_from_uniforms(tf.constant(u), aug, size, geometric_only=geometric_only)
    images = [tf.cast(fc.to_channels(faces.images[i], cfg.channels), tf.float32) for i in rows]
    hw = tf.constant([im.shape[:2] for im in images], tf.int32)
    squares = tf_crop_squares(faces, cfg)
    crops = (aug_ops.image_crops(hw) if squares is None
             else tf.constant(squares[rows], tf.float32))
    m = j.matrix @ aug_ops.crop_matrices(crops, size)
    t, f = aug_ops.warp_transforms(m, antialias=cfg.antialias)
    x = tf.stack([aug_ops.warp(im, t[k], f[k], size) for k, im in enumerate(images)])
    x = aug_ops.occlude(x, j.occluder)
    perm = tf.constant(geometry.mirror_permutation(faces.scheme, faces.n_landmarks))
    y = aug_ops.transform_landmarks(faces.landmarks[rows], faces.visible[rows], m, size, hw,
                                    flip=j.flip, permutation=perm)
    return x.numpy(), y.numpy(), (m.numpy(), j.flip.numpy(), j.occluder.numpy())


def _device(cache, cfg, rows, u, *, geometric_only: bool = False, normalize: str = "scale"):
    dev = da.DeviceAugment(da.device_faces(cache), augment_config(cfg), normalize,
                           training=True)
    j, flip, occ = da.jitter_from_uniforms(u, augment_config(cfg), cfg.size,
                                           geometric_only=geometric_only)
    m = np.asarray(j) @ cache.crops[rows]
    x, y = dev.apply(np.asarray(rows, np.int32), m, flip, occ)
    return np.asarray(x), np.asarray(y), (m, np.asarray(flip), np.asarray(occ))


def test_cache_side_covers_the_jitter() -> None:
    # RCN's ranges at 80 px: (39.5 + 8) * (cos 40 + sin 40) / 0.9 + 1 per side
    assert fc.cache_side(80, 0.1, 40.0, 0.1) == 152
    assert fc.cache_side(80, 0.0, 0.0, 0.0) == 82
    assert fc.cache_side(80, 0.1, 90.0, 0.1) == fc.cache_side(80, 0.1, 45.0, 0.1)


def test_crop_squares_match_the_pipeline(faces) -> None:
    for crop in ("landmarks", "none"):
        cfg = data_config(crop=crop, crop_ratio=1.7)
        ours, theirs = fc.crop_squares(faces, cfg), tf_crop_squares(faces, cfg)
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_array_equal(ours, theirs)


def test_jitter_matches_augment(faces) -> None:
    cfg = data_config()
    u = np.random.default_rng(1).random((64, da.N_UNIFORMS), np.float32)
    ref = aug_ops.jitter_from_uniforms(tf.constant(u), augment_config(cfg), cfg.size)
    m, flip, occ = da.jitter_from_uniforms(u, augment_config(cfg), cfg.size)
    np.testing.assert_allclose(np.asarray(m), ref.matrix.numpy(), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(flip), ref.flip.numpy())
    np.testing.assert_allclose(np.asarray(occ), ref.occluder.numpy(), atol=1e-4)
    assert 0 < np.asarray(flip).sum() < 64


def test_warp_is_exact_where_the_tile_holds_the_source(faces) -> None:
    """crop: none, 80 px sources at size 80: full jitter, mirror and occluder."""
    cfg = data_config(crop="none", channels=3)
    cache = fc.build_face_cache(faces, cfg)
    assert cache.side == 152 and np.allclose(cache.to_cache[:, :2, 2], 36.0)
    rows = np.arange(64)
    u = np.random.default_rng(2).random((64, da.N_UNIFORMS), np.float32)
    x_ref, y_ref, (m_ref, flip_ref, _) = _reference(faces, cfg, rows, u)
    x, y, (m, flip, _) = _device(cache, cfg, rows, u)
    np.testing.assert_allclose(m, m_ref, atol=1e-4)
    np.testing.assert_array_equal(flip, flip_ref)
    diff = np.abs(x * 255.0 - x_ref)
    assert diff.max() < 0.05, diff.max()
    np.testing.assert_allclose(y, y_ref, atol=1e-3)
    assert (y[..., 2] == 1).any() and (x_ref == 0).any()  # occluders and borders were hit


def test_val_jitter_matches_make_dataset(faces) -> None:
    """End to end through make_dataset: a landmark crop upsampled by ~2 (crop_ratio 1.7),
    geometric validation jitter from the pipeline's own per-row table, gray, LCN."""
    cfg = data_config(crop="landmarks", crop_ratio=1.7, val_jitter=True, normalize="lcn")
    (x_ref, y_ref), = make_dataset(faces, cfg, training=False, batch_size=64).take(1)
    x_ref, y_ref = x_ref["image"].numpy(), y_ref["landmarks"].numpy()
    table = np.random.default_rng(cfg.seed).random((len(faces), da.N_UNIFORMS), np.float32)
    cache = fc.build_face_cache(faces, cfg)
    dev = da.DeviceAugment(da.device_faces(cache), augment_config(cfg), "lcn", training=False,
                           val_uniforms=table)
    x, y = dev(np.arange(64, dtype=np.int32), da.batch_key(0, 0))
    np.testing.assert_allclose(np.asarray(y), y_ref, atol=1e-3)
    diff = np.abs(np.asarray(x) - x_ref)
    assert diff.mean() < 0.02 and np.quantile(diff, 0.99) < 0.12, (diff.mean(), diff.max())


def test_real_mtfl_within_the_double_resampling_bound(shared_data: Path) -> None:
    from runtime.data.readers import load_faceset

    faces = load_faceset(shared_data / "mtfl" / "train.txt", limit=64)
    cfg = data_config(crop="landmarks", crop_ratio=1.3)  # gray, decoded by PIL here
    cache = fc.build_face_cache(faces, cfg)
    u = np.random.default_rng(3).random((64, da.N_UNIFORMS), np.float32)
    rows = np.arange(64)
    x, y, (m, _, occ) = _device(cache, cfg, rows, u)
    # the pipeline's decode + one warp per image, with the same matrices and occluders
    t, f = aug_ops.warp_transforms(tf.constant(m, tf.float32))
    ref, hw = [], []
    for k, p in enumerate(faces.paths):
        img = tf.io.decode_image(tf.io.read_file(p), channels=1, expand_animations=False)
        hw.append(img.shape[:2])
        ref.append(aug_ops.warp(tf.cast(img, tf.float32), t[k], f[k], cfg.size))
    x_ref = aug_ops.occlude(tf.stack(ref), tf.constant(occ)).numpy()
    perm = tf.constant(geometry.mirror_permutation("5pt", 5))
    _, flip, _ = da.jitter_from_uniforms(u, augment_config(cfg), cfg.size)
    y_ref = aug_ops.transform_landmarks(faces.landmarks, faces.visible, tf.constant(m), 80,
                                        tf.constant(hw), flip=tf.constant(np.asarray(flip)),
                                        permutation=perm).numpy()
    np.testing.assert_allclose(y, y_ref, atol=1e-3)
    diff = np.abs(x * 255.0 - x_ref)
    stats = f"max {diff.max():.1f}, mean {diff.mean():.2f}, p99 {np.quantile(diff, 0.99):.1f}"
    assert diff.mean() < 1.5 and np.quantile(diff, 0.99) < 8.0, stats


@pytest.mark.parametrize("channels", [1, 3])
def test_lcn_and_per_image_equal_normalize(channels: int) -> None:
    rng = np.random.default_rng(4)
    x = (rng.random((64, 80, 80, channels)) * 255).astype(np.float32)
    x[0] = 7.0  # a flat image: the 1e-6 / std floors
    np.testing.assert_allclose(np.asarray(da.lcn(x)), tf_lcn(tf.constant(x)).numpy(),
                               atol=2e-5)
    for method in ("per_image", "scale", "lgcn"):
        np.testing.assert_allclose(np.asarray(da.normalize(x, method)),
                                   tf_normalize(tf.constant(x), method).numpy(), atol=2e-5)


def test_landmarks_equal_transform_landmarks() -> None:
    rng = np.random.default_rng(5)
    b, k = 64, 68
    pts = (rng.random((b, k, 2)) * 140 - 10).astype(np.float32)
    pts[0, :3] = np.nan  # labelled absent (background rows)
    vis = rng.random((b, k)) > 0.2
    u = rng.random((b, da.N_UNIFORMS)).astype(np.float32)
    cfg = data_config()
    m, flip, _ = da.jitter_from_uniforms(u, augment_config(cfg), 80)
    m = np.asarray(m) @ geometry.crop_matrix(60, 60, 100, 80).astype(np.float32)
    hw = np.tile([[120, 110]], (b, 1)).astype(np.int32)
    perm = geometry.mirror_permutation("68pt", k)
    ours = np.asarray(da.transform_landmarks(pts, vis, m, 80, hw, flip=flip, permutation=perm))
    ref = aug_ops.transform_landmarks(pts, vis, tf.constant(m), 80, tf.constant(hw),
                                      flip=tf.constant(np.asarray(flip)),
                                      permutation=tf.constant(perm)).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    assert set(np.unique(ref[..., 2])) == {-1.0, 0.0, 1.0}


def test_batches_are_a_pure_function_of_seed_pass_and_batch(faces) -> None:
    cfg = data_config()
    cache = fc.build_face_cache(faces, cfg)
    dev = da.DeviceAugment(da.device_faces(cache), augment_config(cfg), "lcn", training=True)
    idx = da.index_batch(len(cache), 0, 3, 1, 16)
    np.testing.assert_array_equal(idx, da.index_batch(len(cache), 0, 3, 1, 16))
    assert not np.array_equal(idx, da.index_batch(len(cache), 0, 4, 1, 16))
    a = [np.asarray(t) for t in dev(idx, da.batch_key(0, 7))]
    b = [np.asarray(t) for t in dev(idx, da.batch_key(0, 7))]
    c = [np.asarray(t) for t in dev(idx, da.batch_key(0, 8))]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.abs(a[0] - c[0]).max() > 0.1


def test_cache_round_trips_through_npz(faces, tmp_path: Path) -> None:
    cfg = data_config(crop="none")
    first = fc.build_face_cache(faces, cfg, cache_dir=tmp_path)
    (saved,) = tmp_path.glob("facecache-*.npz")
    again = fc.build_face_cache(faces, cfg, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.images, again.images)
    assert again.scheme == first.scheme and again.size == first.size
    other = fc.build_face_cache(faces, data_config(crop="none", size=64), cache_dir=tmp_path)
    assert other.size == 64 and len(list(tmp_path.glob("facecache-*.npz"))) == 2
    saved.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="damaged"):
        fc.build_face_cache(faces, cfg, cache_dir=tmp_path)


_JAX_PROBE = """
import json, sys
sys.modules["tensorflow"] = None  # TensorFlow unimportable
import numpy as np, jax
from runtime.data import device_augment as da, face_cache as fc
from runtime.data.config import augment_config, data_config
from runtime.data.synthetic import synthetic_faceset
cfg = data_config(crop="landmarks", crop_ratio=1.7)
cache = fc.build_face_cache(synthetic_faceset(16), cfg)
dev = da.DeviceAugment(da.device_faces(cache), augment_config(cfg), "lcn", training=True)
u = np.random.default_rng(6).random((16, da.N_UNIFORMS), np.float32)
j, flip, occ = da.jitter_from_uniforms(u, augment_config(cfg), 80)
m = np.asarray(j) @ cache.crops
x, y = jax.jit(dev.apply)(np.arange(16, dtype=np.int32), m, flip, occ)
step = jax.jit(dev.__call__)
a, b = step(np.arange(16, dtype=np.int32), da.batch_key(0, 5))
a2, _ = step(np.arange(16, dtype=np.int32), da.batch_key(0, 5))
print(json.dumps({"x": np.asarray(x).tolist(), "y": np.asarray(y).tolist(),
                  "same": bool((np.asarray(a) == np.asarray(a2)).all()),
                  "tf": [m for m in sys.modules if m.startswith("tensorflow") and sys.modules[m]]}))
"""


def test_jax_backend_without_tensorflow_gives_the_same_batch() -> None:
    pytest.importorskip("jax", reason="jax not installed (pip install -e '.[backends]')")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO),
           "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", _JAX_PROBE], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["same"] and got["tf"] == []
    cfg = data_config(crop="landmarks", crop_ratio=1.7)
    cache = fc.build_face_cache(synthetic_faceset(16), cfg)
    dev = da.DeviceAugment(da.device_faces(cache), augment_config(cfg), "lcn", training=True)
    u = np.random.default_rng(6).random((16, da.N_UNIFORMS), np.float32)
    j, flip, occ = da.jitter_from_uniforms(u, augment_config(cfg), 80)
    x, y = dev.apply(np.arange(16, dtype=np.int32), np.asarray(j) @ cache.crops, flip, occ)
    np.testing.assert_allclose(np.asarray(got["x"]), np.asarray(x), atol=1e-4)
    np.testing.assert_allclose(np.asarray(got["y"]), np.asarray(y), atol=1e-4)
