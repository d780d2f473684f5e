"""runtime/evaluate/video_metrics.py against hand-computed values (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.evaluate.video_metrics import clip_figures, temporal_jitter

# 5-point faces: eye centres 10 px apart, so inter_ocular = 10
FACE = np.array([[0, 0], [10, 0], [5, 5], [2, 9], [8, 9]], np.float64)


def moving_clip(t: int = 3, step: float = 2.0) -> np.ndarray:
    """[1, T, 5, 2]: the face translated by `step` px per frame along x."""
    return np.stack([FACE + [i * step, 0] for i in range(t)])[None]


def test_perfect_and_constantly_offset_tracks_have_no_jitter() -> None:
    gt = moving_clip()
    vis = np.ones(gt.shape[:3], bool)
    np.testing.assert_allclose(temporal_jitter(gt, gt, vis), 0.0)
    offset = gt + [3.0, 4.0]  # 5 px off in every frame: NME 0.5, but it moves right
    np.testing.assert_allclose(temporal_jitter(offset, gt, vis), 0.0, atol=1e-12)
    fig = clip_figures(offset, gt, vis)
    assert fig["clip_nme_mean"] == pytest.approx(0.5) and fig["jitter"] == pytest.approx(0.0)
    assert fig["clips"] == 1 and fig["jitter_pairs"] == 2


def test_a_shaking_track_scores_its_motion_error() -> None:
    gt = moving_clip()
    pred = gt.copy()
    pred[0, 1] += [0.0, 3.0]  # frame 1 jumps 3 px down and back: pairs (0,1), (1,2)
    vis = np.ones(gt.shape[:3], bool)
    np.testing.assert_allclose(temporal_jitter(pred, gt, vis), [[0.3, 0.3]])
    assert clip_figures(pred, gt, vis)["jitter"] == pytest.approx(0.3)


def test_landmarks_must_be_visible_in_both_frames() -> None:
    gt = moving_clip(t=2)
    pred = gt.copy()
    pred[0, 1, 2] += [4.0, 0.0]  # only the nose moves wrongly, by 4 px = 0.4
    vis = np.ones(gt.shape[:3], bool)
    np.testing.assert_allclose(temporal_jitter(pred, gt, vis), [[0.4 / 5]])
    vis[0, 0, 2] = False  # nose hidden in frame 0: that pair of nose points is skipped
    np.testing.assert_allclose(temporal_jitter(pred, gt, vis), [[0.0]])
    vis[0, 0] = False  # nothing visible in frame 0: no normaliser, no figure
    assert np.isnan(temporal_jitter(pred, gt, vis)).all()
    assert np.isnan(clip_figures(pred, gt, vis)["jitter"])


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match=r"\[M, T >= 2, K, 2\]"):
        temporal_jitter(FACE[None, None], FACE[None, None], np.ones((1, 1, 5), bool))
