"""runtime/evaluate/metrics.py and ced_plot.py against hand-computed values (numpy only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.evaluate.ced_plot import save_ced_plot
from runtime.evaluate.metrics import (
    POINTS_49,
    auc,
    ced_curve,
    failure_rate,
    landmark_errors,
    nme,
    normalizer_distance,
    per_landmark_error,
    summarize,
)


def face68() -> np.ndarray:
    """A 68-point GT whose eye geometry is known exactly.

    Outer corners 36 = (30, 40), 45 = (70, 40): inter-ocular 40.
    Right eye 36..41 mean (35, 40), left eye 42..47 mean (65, 40): inter-pupil 30.
    Corners 36 & 39 mean (32, 40), 42 & 45 mean (68, 40): RCN eye-centre distance 36.
    Whole box: x in [10, 90], y in [20, 100].
    """
    rng = np.random.default_rng(0)
    gt = np.column_stack([rng.uniform(20, 80, 68), rng.uniform(50, 90, 68)])
    gt[0], gt[16], gt[8], gt[19] = (10, 60), (90, 60), (50, 100), (40, 20)
    gt[36:42] = [(30, 40), (35, 38), (36, 38), (34, 40), (38, 42), (37, 42)]
    gt[42:48] = [(66, 40), (64, 38), (63, 38), (70, 40), (64, 42), (63, 42)]
    return gt[None]


def visible_all(n: int = 1, k: int = 68) -> np.ndarray:
    return np.ones((n, k), dtype=bool)


@pytest.mark.parametrize(("normalizer", "dist"), [
    ("inter_ocular", 40.0), ("inter_pupil", 30.0), ("rcn_eye_centre", 36.0),
    ("box", 80.0), ("box_diag", 80.0 * np.sqrt(2.0)),
])
def test_normalizers_68(normalizer: str, dist: float) -> None:
    gt = face68()
    np.testing.assert_allclose(normalizer_distance(gt, visible_all(), normalizer), [dist])


def test_box_uses_width_and_height() -> None:
    gt = np.array([[[0.0, 0.0], [40.0, 90.0], [10.0, 10.0]]])
    vis = np.array([[True, True, True]])
    assert normalizer_distance(gt, vis, "box")[0] == pytest.approx(60.0)
    assert normalizer_distance(gt, vis, "box_diag")[0] == pytest.approx(np.hypot(40, 90))
    vis = np.array([[True, False, True]])  # hidden points do not stretch the box
    assert normalizer_distance(gt, vis, "box")[0] == pytest.approx(10.0)


@pytest.mark.parametrize("normalizer", ["inter_ocular", "inter_pupil", "rcn_eye_centre"])
def test_normalizers_5pt_use_eye_centres(normalizer: str) -> None:
    gt = np.array([[[30.0, 40.0], [60.0, 44.0], [45.0, 60.0], [35.0, 75.0], [55.0, 75.0]]])
    d = normalizer_distance(gt, visible_all(1, 5), normalizer)
    assert d[0] == pytest.approx(np.hypot(30.0, 4.0))


def test_normalizer_array_and_errors() -> None:
    gt = np.zeros((2, 5, 2))
    np.testing.assert_allclose(normalizer_distance(gt, visible_all(2, 5), np.array([2.0, 4.0])),
                               [2.0, 4.0])
    with pytest.raises(ValueError, match="unknown normalizer 'iod'"):
        normalizer_distance(gt, visible_all(2, 5), "iod")
    with pytest.raises(ValueError, match="not 19"):
        normalizer_distance(np.zeros((1, 19, 2)), visible_all(1, 19), "inter_pupil")
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        normalizer_distance(gt, visible_all(2, 5), np.ones(3))


def test_offset_of_five_percent_iod() -> None:
    gt = face68()
    pred = gt + np.array([0.05 * 40.0, 0.0])  # every point 2 px right: 0.05·IOD
    np.testing.assert_allclose(nme(pred, gt, visible_all()), [0.05])
    s = summarize(pred, gt, visible_all())
    assert s["nme"] == pytest.approx(0.05)
    assert s["fr_008"] == 0.0 and s["fr_010"] == 0.0
    assert s["auc_008"] == pytest.approx(1 - 0.05 / 0.08)  # 0.375
    assert s["auc_010"] == pytest.approx(0.5)
    assert s["n"] == 1
    np.testing.assert_allclose(s["per_landmark"], np.full(68, 0.05))
    assert set(s) == {"nme", "fr_008", "fr_010", "auc_008", "auc_010", "n", "per_landmark"}
    # The same prediction under the inter-pupil normaliser: 2 / 30.
    assert summarize(pred, gt, visible_all(), "inter_pupil")["nme"] == pytest.approx(2 / 30)


def test_two_images_failure_rate_and_auc() -> None:
    gt = np.concatenate([face68(), face68()])
    pred = gt.copy()
    pred[0, :, 1] += 0.05 * 40  # NME 0.05
    pred[1, :, 0] -= 0.09 * 40  # NME 0.09
    s = summarize(pred, gt, visible_all(2))
    assert s["nme"] == pytest.approx(0.07)
    assert s["fr_008"] == 0.5 and s["fr_010"] == 0.0
    # CED is 0 below 0.05, 1/2 on [0.05, 0.09), 1 from 0.09: areas by hand.
    assert s["auc_008"] == pytest.approx(0.5 * 0.03 / 0.08)
    assert s["auc_010"] == pytest.approx((0.5 * 0.04 + 1.0 * 0.01) / 0.10)


def test_auc_matches_numeric_integral_of_ced() -> None:
    e = np.random.default_rng(1).uniform(0, 0.15, 200)
    t, frac = ced_curve(e, 0.08, steps=80001)
    assert auc(e, 0.08) == pytest.approx(np.trapezoid(frac, t) / 0.08, abs=1e-4)
    assert frac[0] == 0.0 and frac[-1] == pytest.approx(np.mean(e <= 0.08))


def test_failure_rate_is_strict_and_ignores_nan() -> None:
    e = np.array([0.08, 0.0801, np.nan, 0.01])
    assert failure_rate(e, 0.08) == pytest.approx(1 / 3)
    assert np.isnan(failure_rate(np.array([np.nan]), 0.08))


def test_hidden_landmarks_are_not_scored() -> None:
    gt = face68()
    pred = gt + np.array([2.0, 0.0])
    pred[0, 5] += 500.0  # a wild guess on a hidden jaw point
    vis = visible_all()
    vis[0, 5] = False
    assert nme(pred, gt, vis)[0] == pytest.approx(0.05)
    errs = landmark_errors(pred, gt, vis)
    assert np.isnan(errs[0, 5]) and errs[0, 6] == pytest.approx(0.05)


def test_hidden_normalizer_point_drops_the_image() -> None:
    gt = np.concatenate([face68(), face68()])
    pred = gt + np.array([2.0, 0.0])
    vis = visible_all(2)
    vis[1, 45] = False  # second image: no outer eye corner, no inter-ocular distance
    per_image = nme(pred, gt, vis)
    assert per_image[0] == pytest.approx(0.05) and np.isnan(per_image[1])
    s = summarize(pred, gt, vis)
    assert s["n"] == 1 and s["nme"] == pytest.approx(0.05)


def test_per_landmark_means_over_visible_images() -> None:
    gt = np.concatenate([face68(), face68()])
    pred = gt.copy()
    pred[0, 10, 0] += 4.0  # 0.1 IOD in image 0
    pred[1, 10, 0] += 8.0  # 0.2 IOD in image 1
    vis = visible_all(2)
    vis[:, 20] = False
    per_kp = per_landmark_error(pred, gt, vis)
    assert per_kp[10] == pytest.approx(0.15)
    assert np.isnan(per_kp[20]) and per_kp[11] == 0.0


def test_49_point_subset_keeps_68_point_normaliser() -> None:
    assert len(POINTS_49) == 49 and 17 in POINTS_49 and 60 not in POINTS_49
    gt = face68()
    pred = gt.copy()
    pred[0, :17, 0] += 40.0  # only the jaw is wrong
    assert nme(pred, gt, visible_all(), subset=POINTS_49)[0] == 0.0
    assert nme(pred, gt, visible_all())[0] == pytest.approx(17 / 68)
    assert len(summarize(pred, gt, visible_all(), subset=POINTS_49)["per_landmark"]) == 49


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\[N, K, 2\]"):
        nme(np.zeros((1, 5, 2)), np.zeros((1, 6, 2)), visible_all(1, 6))


def test_ced_plot_writes_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    out = save_ced_plot({"rcn": rng.uniform(0, 0.1, 50), "sumnet": rng.uniform(0, 0.12, 50)},
                        tmp_path / "ced.png", title="300W")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(ValueError):
        save_ced_plot({}, tmp_path / "empty.png")
