"""The warp moves pixels and landmarks together; masks, occluder and normalisation."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from runtime.data import augment as A  # noqa: E402
from runtime.data import geometry as g  # noqa: E402
from runtime.data.config import AugmentConfig, data_config  # noqa: E402
from runtime.data.normalize import gaussian_kernel, normalize  # noqa: E402
from runtime.data.pipeline import make_dataset  # noqa: E402
from runtime.data.records import FaceSet  # noqa: E402

pytestmark = pytest.mark.keras

INTENSITY = np.array([60.0, 110.0, 160.0, 210.0, 250.0])  # dot i has its own brightness


def _dot_faces(n: int, side: int, radius: int, seed: int) -> FaceSet:
    """Black images with 5 square dots (one intensity per landmark) at random, spread
    out, asymmetric integer positions; landmark i is the centre of dot i."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, side, side, 1), np.uint8)
    pts = np.zeros((n, 5, 2), np.float32)
    lo, hi = side * 0.3, side * 0.7
    for r in range(n):
        while True:
            p = np.round(rng.uniform(lo, hi, (5, 2)))
            d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(5) * 1e9
            if d.min() > side * 0.12:
                break
        pts[r] = p
        for i, (x, y) in enumerate(p.astype(int)):
            images[r, y - radius: y + radius + 1, x - radius: x + radius + 1] = INTENSITY[i]
    return FaceSet("dots", "5pt", pts, np.ones((n, 5), bool), images=images)


def _centroid(img: np.ndarray, x: float, y: float, r: int = 3) -> tuple[float, float, float]:
    """Intensity-weighted centroid and peak in a (2r+1)^2 window around (x, y)."""
    cx, cy = int(round(x)), int(round(y))
    y0, x0 = max(cy - r, 0), max(cx - r, 0)
    win = img[y0: cy + r + 1, x0: cx + r + 1]
    ys, xs = np.mgrid[y0: y0 + win.shape[0], x0: x0 + win.shape[1]]
    w = win.sum()
    return float((xs * win).sum() / w), float((ys * win).sum() / w), float(win.max())


@pytest.mark.parametrize("side,radius", [(100, 1), (330, 4)])
def test_landmarks_stay_on_their_dots_through_random_augmentation(side: int,
                                                                  radius: int) -> None:
    """Crop + scale + shift + rotation + mirror: every labelled point sits on the dot
    it names, and a flip of the pixels (seen from the dots) comes with the permutation.
    side 330 makes the crop shrink ~4x, so the antialias box filter is exercised too."""
    faces = _dot_faces(48, side, radius, seed=side)
    cfg = data_config(crop="landmarks", crop_ratio=2.0, normalize="scale",
                      augment={"occlusion": False, "rotation": 40.0}, seed=3)
    x, y = next(iter(make_dataset(faces, cfg, training=True, batch_size=48)))
    imgs, lms = x["image"].numpy()[..., 0] * 255.0, y["landmarks"].numpy()
    perm = np.array(g.MIRROR_PERMUTATION["5pt"])
    flips, checked = 0, 0
    for b in range(len(imgs)):
        ok = lms[b, :, 2] > 0
        assert ok.sum() >= 3, "dots should mostly stay inside a 2x crop"
        ids = []
        for i in np.flatnonzero(ok):
            cx, cy, peak = _centroid(imgs[b], *lms[b, i, :2])
            # measured < 0.15 px; a half-pixel slip in the box filter shows as ~0.4 px
            assert np.hypot(cx - lms[b, i, 0], cy - lms[b, i, 1]) < 0.25, (b, i)
            ids.append(int(np.argmin(np.abs(INTENSITY - peak))))
            checked += 1
        ids = np.array(ids)
        idx = np.flatnonzero(ok)
        flipped = np.array_equal(ids, perm[idx])
        assert flipped or np.array_equal(ids, idx), (b, ids, idx)
        flips += int(flipped)
    assert checked > 150
    assert 8 < flips < 40  # mirror_prob 0.5 over 48 images


def test_flip_comes_with_a_reflection() -> None:
    """Without shuffling, fit the source -> output map of the dots; det < 0 iff permuted."""
    faces = _dot_faces(32, 100, 1, seed=7)
    cfg = data_config(crop="landmarks", crop_ratio=2.0, normalize="scale", shuffle=False,
                      augment={"occlusion": False, "rotation": 20.0}, seed=5)
    x, y = next(iter(make_dataset(faces, cfg, training=True, batch_size=32)))
    imgs, lms = x["image"].numpy()[..., 0] * 255.0, y["landmarks"].numpy()
    perm = np.array(g.MIRROR_PERMUTATION["5pt"])
    seen = set()
    for b in range(32):
        ok = lms[b, :, 2] > 0
        if ok.sum() < 4:
            continue
        ids = np.array([int(np.argmin(np.abs(INTENSITY - _centroid(imgs[b], *lms[b, i, :2])[2])))
                        for i in range(5)])
        src = faces.landmarks[b][ids][ok]  # dot that each output label really sits on
        dst = lms[b, ok, :2]
        fit, *_ = np.linalg.lstsq(np.c_[src, np.ones(len(src))], dst, rcond=None)
        reflected = np.linalg.det(fit[:2].T) < 0
        permuted = np.array_equal(ids[ok], perm[ok])
        assert reflected == permuted, b
        seen.add(bool(reflected))
    assert seen == {True, False}


def test_jitter_matrices_match_the_numpy_reference() -> None:
    aug = AugmentConfig(scale=0.2, translate=0.15, rotation=30.0, mirror_prob=0.5)
    u = np.random.default_rng(0).random((16, A.N_UNIFORMS)).astype(np.float32)
    j = A.jitter_from_uniforms(u, aug, 64)
    for k in range(16):
        s = 2 * u[k] - 1
        ref = g.augment_matrix(64, 1 + 0.2 * s[0], 30.0 * s[1], 0.15 * 64 * s[2],
                               0.15 * 64 * s[3], bool(u[k, 4] < 0.5))
        np.testing.assert_allclose(j.matrix[k].numpy(), ref, atol=2e-4)
    occ = j.occluder.numpy()
    lo, hi = 20 * 64 / 80, 50 * 64 / 80
    assert ((occ[:, 2:] >= lo) & (occ[:, 2:] <= hi)).all()
    assert ((occ[:, :2] >= 0) & (occ[:, :2] + occ[:, 2:] <= 64)).all()


def test_disabled_augmentation_is_identity() -> None:
    j = A.jitter_from_uniforms(np.full((3, A.N_UNIFORMS), 0.9, np.float32),
                               AugmentConfig(enabled=False), 80)
    np.testing.assert_allclose(j.matrix.numpy(), np.broadcast_to(np.eye(3), (3, 3, 3)))
    assert not j.flip.numpy().any() and not j.occluder.numpy().any()


def test_warp_transform_round_trip_with_numpy_geometry() -> None:
    m = g.augment_matrix(80, 1.05, 17.0, 3.0, -2.0, True) @ g.crop_matrix(60, 70, 90, 80)
    t, f = A.warp_transforms(tf.constant(m[None], tf.float32))
    inv = np.linalg.inv(m)
    np.testing.assert_allclose(t.numpy()[0], [*inv[0], *inv[1], 0, 0], rtol=1e-5,
                               atol=1e-5)
    assert int(f[0]) == 1  # scale 80/90*1.05 > 0.5: no box filter


def test_points_pushed_outside_or_invisible_are_masked() -> None:
    pts = np.array([[[10, 10], [70, 40], [40, 40], [np.nan, 5], [20, 20], [-3, 40]]], np.float32)
    vis = np.array([[True, True, True, True, False, True]])
    shift = tf.constant(g.translation(15.0, 0.0)[None], tf.float32)  # pushes x=70 to 85
    out = A.transform_landmarks(pts, vis, shift, 80, tf.constant([[60, 100]])).numpy()[0]
    np.testing.assert_allclose(out[:3, :2], [[25, 10], [85, 40], [55, 40]])
    # inside, pushed past x = 79, inside, NaN (zeroed), unlabelled, outside the source image:
    # labelled points that are not in the crop are ABSENT (-1), unlabelled ones 0
    assert out[:, 2].tolist() == [1, -1, 1, -1, 0, -1]
    assert np.isfinite(out).all() and out[3, 0] == 0


def test_occluder_zeroes_exactly_its_box() -> None:
    imgs = tf.ones([2, 10, 12, 3])
    out = A.occlude(imgs, tf.constant([[2.0, 3.0, 4.0, 5.0], [0.0, 0.0, 0.0, 0.0]])).numpy()
    hole = out[0, ..., 0] == 0
    assert hole.sum() == 20 and hole[3:8, 2:6].all()
    assert (out[1] == 1).all()


def test_antialias_suppresses_aliasing() -> None:
    checker = ((np.indices((320, 320)).sum(0) % 2) * 255.0).astype(np.float32)[..., None]
    m = g.crop_matrix(*g.image_crop(320, 320), 64)[None]  # 5x shrink: samples hit x = 5j + 2
    for antialias in (True, False):
        t, f = A.warp_transforms(tf.constant(m, tf.float32), antialias=antialias)
        assert int(f[0]) == (5 if antialias else 1)
        out = A.warp(tf.constant(checker), t[0], f[0], 64).numpy()[2:-2, 2:-2]
        assert abs(out.mean() - 127.5) < 3
        # 5x5 box means of a checker are 122 or 133; point samples alias to 0 / 255
        assert (out.std() < 10) if antialias else (out.std() > 100)


def _lcn_reference(img: np.ndarray) -> np.ndarray:
    """RCN's formula with scipy ('same' zero-padded 9x9 Gaussian), one channel."""
    from scipy.signal import convolve2d

    k = gaussian_kernel()
    v = img - convolve2d(img, k, mode="same")
    std = np.sqrt(convolve2d(v * v, k, mode="same"))
    return (v / np.maximum(std, std.mean()) + 2.5) / 5


def test_lcn_matches_rcn_formula_and_is_centred() -> None:
    rng = np.random.default_rng(0)
    img = (rng.uniform(0, 255, (40, 48)) * np.linspace(0.2, 1, 48)).astype(np.float32)
    out = normalize(tf.constant(img[None, ..., None]), "lcn").numpy()[0, ..., 0]
    np.testing.assert_allclose(out, _lcn_reference(img.astype(np.float64)), atol=1e-4)
    assert np.isfinite(out).all()
    assert abs((out * 5 - 2.5).mean()) < 0.15  # ~zero-mean before (x + 2.5) / 5 (borders bias)
    flat = normalize(tf.zeros([1, 16, 16, 1]), "lcn").numpy()
    assert np.isfinite(flat).all()


def test_other_normalisations() -> None:
    x = tf.constant(np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)), tf.float32)
    np.testing.assert_allclose(normalize(x, "scale"), x / 255, rtol=1e-6)
    np.testing.assert_allclose(normalize(x, "lgcn"), (x / 128 - 1) * 0.1, rtol=1e-5, atol=1e-7)
    p = normalize(x, "per_image").numpy()
    np.testing.assert_allclose(p.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(p.std(axis=(1, 2, 3)), 1, atol=1e-4)
    assert normalize(x[0], "scale").shape == (8, 8, 3)
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize(x, "zca")
