"""The LGCN PCA shape model: Procrustes training and the three-pass heat-map fit recover a
shape that argmax decoding gets wrong because of a far-off false peak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.kernels import lgcn_kernel
from runtime.data.geometry import mirror_permutation
from runtime.data.synthetic import synthetic_faceset
from runtime.shapes.shape_model import (
    ShapeModel,
    fit_batch,
    fit_heatmaps,
    fit_shape_model,
    kabsch_angle,
    procrustes_align,
)

SIZE = 96


@pytest.fixture(scope="module")
def faces():  # noqa: ANN201 - FaceSet
    return synthetic_faceset(240, scheme="68pt", size=SIZE, seed=3)


@pytest.fixture(scope="module")
def model(faces) -> ShapeModel:  # noqa: ANN001
    return fit_shape_model(faces.landmarks[:200], faces.visible[:200], 12)


def splat(points: np.ndarray, size: int = SIZE, values: np.ndarray | None = None,
          radius: int = 22) -> np.ndarray:
    """Heat-maps (size, size, K): the LGCN kernel (peak `values`) at each point."""
    kern = lgcn_kernel(2 * radius + 1)
    k = len(points)
    vals = np.ones(k) if values is None else values
    maps = np.zeros((size + 2 * radius, size + 2 * radius, k))
    for i, (x, y) in enumerate(points):
        c, r = int(round(x)), int(round(y))
        if -radius <= c < size + radius and -radius <= r < size + radius:
            maps[r:r + 2 * radius + 1, c:c + 2 * radius + 1, i] += vals[i] * kern
    return maps[radius:radius + size, radius:radius + size]


def argmax_points(maps: np.ndarray) -> np.ndarray:
    flat = maps.reshape(-1, maps.shape[2]).argmax(axis=0)
    return np.stack([flat % maps.shape[1], flat // maps.shape[1]], axis=1).astype(float)


def test_kabsch_recovers_a_rotation() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 2))
    theta = 0.4
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    b = 2.5 * a @ rot.T + [10.0, -3.0]
    assert kabsch_angle(a, b) == pytest.approx(theta, abs=1e-9)
    # a gross outlier with zero weight does not matter
    b[0] += 100.0
    w = np.ones(30)
    w[0] = 0.0
    assert kabsch_angle(a, b, w) == pytest.approx(theta, abs=1e-9)


def test_procrustes_removes_similarity_transforms() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(20, 2))
    shapes = []
    for _ in range(6):
        t = rng.uniform(-0.8, 0.8)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        shapes.append(rng.uniform(0.5, 3) * base @ rot.T + rng.normal(size=2) * 10)
    aligned, mean = procrustes_align(np.stack(shapes))
    assert np.linalg.norm(mean) == pytest.approx(1.0)
    assert np.allclose(mean.mean(axis=0), 0.0)
    assert np.max(np.abs(aligned - aligned[0])) < 1e-9


def test_model_is_orthonormal_and_ordered(model: ShapeModel) -> None:
    flat = model.components.reshape(model.n_components, -1)
    assert model.n_components == 12
    assert np.allclose(flat @ flat.T, np.eye(12), atol=1e-9)
    assert np.all(np.diff(model.variances) <= 0)
    assert model.truncated(5).n_components == 5


def test_mirrored_training_gives_a_symmetric_mean(faces) -> None:  # noqa: ANN001
    perm = mirror_permutation("68pt", 68)
    m = fit_shape_model(faces.landmarks, faces.visible, 8, perm)
    mirrored = m.mean[perm] * np.array([-1.0, 1.0])
    theta = kabsch_angle(mirrored, m.mean)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    assert np.max(np.abs(mirrored @ rot.T - m.mean)) < 1e-6


def test_save_load_round_trip(model: ShapeModel, tmp_path: Path) -> None:
    model.save(tmp_path / "sm.npz")
    back = ShapeModel.load(tmp_path / "sm.npz")
    assert np.array_equal(back.mean, model.mean)
    assert np.array_equal(back.components, model.components)
    assert np.array_equal(back.variances, model.variances)


def test_invalid_inputs_raise(model: ShapeModel) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fit_shape_model(np.zeros((1, 68, 2)))
    with pytest.raises(ValueError, match="heat-maps"):
        fit_heatmaps(model, np.zeros((96, 96, 5)))


def test_clean_heatmaps_fit_closely(model: ShapeModel, faces) -> None:  # noqa: ANN001
    gt = faces.landmarks[205].astype(float)
    fit = fit_heatmaps(model, splat(gt), blend=False)
    err = np.linalg.norm(fit.model_points - gt, axis=1)
    assert err.mean() < 1.5, err.mean()
    assert fit.mahalanobis < 6.0


@pytest.mark.parametrize("row", [201, 215, 230])
def test_far_false_peak_is_filtered(model: ShapeModel, faces, row: int) -> None:  # noqa: ANN001
    """Landmark 36 (outer eye corner) loses its true peak to a stronger one 40 px away;
    landmark 48 (mouth corner) has only the false peak: argmax is far off for both, the
    fitted shape is not."""
    gt = faces.landmarks[row].astype(float)
    maps = splat(gt)
    maps[..., 36] *= 0.5
    far = gt[36] + np.array([0.0, 40.0]) if gt[36, 1] < SIZE / 2 else gt[36] - [0.0, 40.0]
    maps[..., 36] += splat(np.repeat(far[None], 68, 0))[..., 36]
    far48 = np.clip(gt[48] + [-38.0, -35.0], 2, SIZE - 3)
    maps[..., 48] = splat(np.repeat(far48[None], 68, 0))[..., 48]
    arg = argmax_points(maps)
    arg_err = np.linalg.norm(arg - gt, axis=1)
    assert arg_err[36] > 30 and arg_err[48] > 30

    fit = fit_heatmaps(model, maps)
    err = np.linalg.norm(fit.points - gt, axis=1)
    assert err[36] < 3.0, err[36]
    assert err[48] < 5.0, err[48]
    assert err.mean() < 0.25 * arg_err.mean(), (err.mean(), arg_err.mean())
    # the pure model fit is also close on the outlier landmarks
    model_err = np.linalg.norm(fit.model_points - gt, axis=1)
    assert model_err[[36, 48]].max() < 5.0


def test_blend_keeps_confident_peaks_exact(model: ShapeModel, faces) -> None:  # noqa: ANN001
    gt = np.round(faces.landmarks[220].astype(float))
    fit = fit_heatmaps(model, splat(gt))
    assert np.abs(fit.points - gt).max() < 0.05
    assert np.all(fit.support > 0.9)


def test_empty_or_negative_maps_give_a_finite_implausible_fit(model: ShapeModel) -> None:
    for maps in (np.zeros((40, 40, 68)), -np.ones((40, 40, 68))):
        fit = fit_heatmaps(model, maps)
        assert np.isfinite(fit.points).all()
        assert fit.mahalanobis == np.inf and np.all(fit.support <= 0)


def test_fit_batch_shapes(model: ShapeModel, faces) -> None:  # noqa: ANN001
    maps = np.stack([splat(faces.landmarks[i]) for i in (202, 203)])
    pts = fit_batch(model, maps)
    assert pts.shape == (2, 68, 2)
    assert np.linalg.norm(pts - faces.landmarks[[202, 203]], axis=-1).mean() < 1.0
