"""Detection-less multi-face search (runtime/predict/multiface.py) on synthetic heat-maps.

No network is trained here (a useful LGCN does not train on CPU in a test's budget): an
"oracle" predictor draws LGCN-kernel peaks at the true landmarks of the faces in the image,
strongest at the training scale, plus false peaks. This exercises the pyramid, the max
combination, the clustering and the shape-model acceptance; bench/lgcn_helen.py runs the
same search with a trained network end to end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.kernels import lgcn_kernel
from runtime.data.synthetic import synthetic_faceset
from runtime.predict.multiface import (
    DetectOptions,
    Hypothesis,
    Pyramid,
    downsample,
    face_hypotheses,
    faces_from_heatmaps,
    heatmap_pyramid,
    local_maxima,
    pyramid_factors,
    upsample,
    verify,
    write_faces,
)
from runtime.shapes.shape_model import ShapeModel, fit_shape_model

FACE_SIZE = 64.0  # landmark-box side the oracle "network" responds to best
KERNEL = lgcn_kernel(31)


def draw_peaks(maps: np.ndarray, points: np.ndarray, amplitude: float) -> None:
    """Add the kernel (peak `amplitude`) at each point of landmark k into channel k."""
    h, w, _ = maps.shape
    r = KERNEL.shape[0] // 2
    for k, (x, y) in enumerate(points):
        c, q = int(round(x)), int(round(y))
        ya, yb, xa, xb = max(q - r, 0), min(q + r + 1, h), max(c - r, 0), min(c + r + 1, w)
        if ya < yb and xa < xb:
            patch = KERNEL[ya - q + r:yb - q + r, xa - c + r:xb - c + r]
            maps[ya:yb, xa:xb, k] = np.maximum(maps[ya:yb, xa:xb, k], amplitude * patch)


def oracle(faces: list[np.ndarray], height: int, n_landmarks: int = 68,
           false_peaks: int = 0, seed: int = 0):  # noqa: ANN201 - Predictor
    """A stand-in network: peaks at the faces' landmarks, amplitude falling off with the
    log2 distance from FACE_SIZE at the level's resolution; optional random false peaks."""
    rng = np.random.default_rng(seed)

    def predict(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        f = height / h
        maps = np.zeros((h, w, n_landmarks), np.float32)
        for pts in faces:
            lvl = (pts + 0.5) / f - 0.5
            extent = np.ptp(lvl, axis=0).max()
            amp = float(np.exp(-np.log2(extent / FACE_SIZE) ** 2 / (2 * 0.4**2)))
            if amp > 0.05:
                draw_peaks(maps, lvl, amp)
        for _ in range(false_peaks):
            k = int(rng.integers(n_landmarks))
            p = np.zeros((n_landmarks, 2)) - 1000
            p[k] = rng.uniform([0, 0], [w, h])
            draw_peaks(maps, p, 0.7)
        return maps

    return predict


def place(shape: np.ndarray, centre: tuple[float, float], extent: float) -> np.ndarray:
    c = shape - (shape.min(0) + shape.max(0)) / 2
    return c * (extent / np.ptp(shape, axis=0).max()) + np.asarray(centre)


def match(found: list, truth: list[np.ndarray]) -> list[float]:
    """Mean landmark error / face extent of the found face nearest each true face."""
    out = []
    for t in truth:
        errs = [np.linalg.norm(f.points - t, axis=1).mean() for f in found]
        out.append(min(errs) / np.ptp(t, axis=0).max() if errs else np.inf)
    return out


@pytest.fixture(scope="module")
def synth() -> tuple[ShapeModel, np.ndarray]:
    faces = synthetic_faceset(160, scheme="68pt", size=96, seed=5)
    return fit_shape_model(faces.landmarks[:150], faces.visible[:150], 12), faces.landmarks[150:]


def test_pyramid_factors_follow_the_paper() -> None:
    assert pyramid_factors(480, 640) == [1, 2, 4, 8]  # ... the last one 80 x 60
    assert pyramid_factors(256, 512) == [1, 2, 4, 8]
    assert pyramid_factors(90, 90) == [1]
    with pytest.raises(ValueError):
        pyramid_factors(0, 10)


def test_down_and_up_sampling_keep_the_pixel_convention() -> None:
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    img = np.stack([xx, yy], -1)
    small = downsample(img, 4)
    assert small.shape == (16, 24, 2)
    assert small[0, 0, 0] == pytest.approx(1.5)  # mean of columns 0..3
    back = upsample(small, 4, 64, 96)
    inner = (slice(4, -4), slice(4, -4))
    assert np.allclose(back[inner], img[inner], atol=1e-4)


def test_local_maxima_finds_isolated_peaks() -> None:
    maps = np.zeros((40, 50, 2), np.float32)
    draw_peaks(maps, np.array([[10.0, 12.0], [-99, -99]]), 1.0)
    draw_peaks(maps, np.array([[-99, -99], [35.0, 30.0]]), 0.2)
    x, y, k, v = local_maxima(maps, 0.5)
    assert list(zip(x, y, k, strict=True)) == [(10.0, 12.0, 0)]
    assert local_maxima(maps, 0.1)[0].size == 2


def test_two_faces_at_two_scales_are_found(synth) -> None:  # noqa: ANN001
    model, shapes = synth
    truth = [place(shapes[0], (100, 110), 128.0), place(shapes[1], (300, 80), 64.0)]
    predict = oracle(truth, 200, false_peaks=40, seed=1)
    pyr = heatmap_pyramid(predict, np.zeros((200, 400, 1)))
    assert pyr.factors == (1, 2, 4, 8) and pyr.maps[1].shape == (100, 200, 68)
    assert pyr.combined.shape == (200, 400, 68) and pyr.level.max() >= 1
    faces = faces_from_heatmaps(pyr, model, FACE_SIZE)
    assert len(faces) == 2, [(f.score, f.level, f.points.mean(0)) for f in faces]
    assert max(match(faces, truth)) < 0.03
    levels_found = sorted(round(f.level) for f in faces)
    assert levels_found == [0, 1]


def test_scattered_peaks_are_no_face(synth) -> None:  # noqa: ANN001
    model, _ = synth
    predict = oracle([], 200, false_peaks=300, seed=2)
    pyr = heatmap_pyramid(predict, np.zeros((200, 300, 1)))
    assert faces_from_heatmaps(pyr, model, FACE_SIZE) == []


def test_shape_model_rejects_an_implausible_hypothesis(synth) -> None:  # noqa: ANN001
    """The peaks of a face with its landmark labels shuffled: voting alone finds nothing
    there, and a hypothesis put right on it is rejected by the shape-model check, while
    the same peaks correctly labelled are accepted."""
    model, shapes = synth
    pts = place(shapes[2], (80, 80), FACE_SIZE)
    scrambled = pts[np.random.default_rng(3).permutation(68)]
    maps = np.zeros((160, 160, 68), np.float32)
    draw_peaks(maps, scrambled, 1.0)
    good = np.zeros_like(maps)
    draw_peaks(good, pts, 1.0)
    scale0 = FACE_SIZE / np.ptp(model.mean, axis=0).max()
    opts = DetectOptions()
    assert face_hypotheses(Pyramid.single(maps), model, scale0, opts) == []
    hyp = Hypothesis(pts.mean(axis=0), 0.0, 68, 68.0)
    assert verify(Pyramid.single(maps), hyp, model, scale0, opts) is None
    face = verify(Pyramid.single(good), hyp, model, scale0, opts)
    assert face is not None and np.linalg.norm(face.points - pts, axis=1).mean() < 1.0
    assert len(faces_from_heatmaps(Pyramid.single(good), model, FACE_SIZE)) == 1


def test_two_helen_faces_side_by_side(shared_data: Path, tmp_path: Path) -> None:
    """Two real HELEN faces (256 x 256 crops) side by side; the oracle responds at their
    true landmarks; the model is trained on other HELEN shapes."""
    from PIL import Image

    from runtime.data.readers import load_faceset

    helen = load_faceset(shared_data / "helen68" / "trainset")
    model = fit_shape_model(helen.landmarks[:800], helen.visible[:800], 12)
    left, right = 850, 860
    images = [np.asarray(Image.open(helen.paths[i]).convert("RGB"), np.float32)
              for i in (left, right)]
    image = np.concatenate(images, axis=1)
    truth = [helen.landmarks[left].astype(float),
             helen.landmarks[right].astype(float) + [images[0].shape[1], 0]]
    predict = oracle(truth, image.shape[0], false_peaks=60, seed=4)
    faces = faces_from_heatmaps(heatmap_pyramid(predict, image), model, FACE_SIZE)
    assert len(faces) == 2
    assert max(match(faces, truth)) < 0.03
    xs = sorted(f.points[:, 0].mean() for f in faces)
    assert xs[0] < image.shape[1] / 2 < xs[1]
    path = write_faces(tmp_path, Path("pair.jpg"), image, faces)
    assert '"faces"' in path.read_text()
    assert (tmp_path / "pair.faces.png").exists()


def test_weak_support_is_no_face_unless_asked(synth) -> None:  # noqa: ANN001
    """A face whose peaks reach only 0.3 (a network unsure of it) falls below the default
    min_score 0.35; --min-score 0.2 accepts it."""
    model, shapes = synth
    pts = place(shapes[3], (80, 80), FACE_SIZE)
    maps = np.zeros((160, 160, 68), np.float32)
    draw_peaks(maps, pts, 0.3)
    assert faces_from_heatmaps(Pyramid.single(maps), model, FACE_SIZE) == []
    weak = DetectOptions(min_score=0.2)
    faces = faces_from_heatmaps(Pyramid.single(maps), model, FACE_SIZE, weak)
    assert len(faces) == 1 and match(faces, [pts])[0] < 0.03


def test_a_face_between_levels_is_fitted_where_it_is_sharpest(synth) -> None:  # noqa: ANN001
    """Votes from two levels average to a level in between; verification tries both
    neighbouring levels and keeps the better-supported fit."""
    model, shapes = synth
    truth = [place(shapes[4], (150, 100), FACE_SIZE * 1.45)]  # level 0.54 by the oracle
    pyr = heatmap_pyramid(oracle(truth, 200), np.zeros((200, 300, 1)))
    scale0 = FACE_SIZE / np.ptp(model.mean, axis=0).max()
    hyp = Hypothesis(truth[0].mean(axis=0), 0.4, 68, 68.0)  # rounds to level 0 ...
    face = verify(pyr, hyp, model, scale0, DetectOptions())
    assert face is not None and face.level == 1.0  # ... but level 1 is nearer the scale
    assert match([face], truth)[0] < 0.03
