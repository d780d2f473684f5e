"""Video figures for clip specs (numpy only): NME per clip and temporal jitter.

A per-frame NME hides a tracker that shakes: jitter compares motion, not position. For
each pair of consecutive frames (t, t+1) of a window and each landmark visible in both,
the error is ||(p[t+1] - p[t]) - (g[t+1] - g[t])|| -- the predicted frame-to-frame motion
minus the true one -- normalised like the NME (the normaliser distance of frame t).
A perfect tracker, and a tracker whose error is constant over time, both score 0.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from typing import Any
import warnings

import numpy as np

from runtime.evaluate.metrics import nme, normalizer_distance


def temporal_jitter(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                    normalizer: str = "inter_ocular") -> np.ndarray:
    """Per frame pair [M, T-1]: mean normalised motion error over landmarks visible in
    both frames (NaN when none is). pred/gt [M, T, K, 2], visible [M, T, K]."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    vis = np.asarray(visible, bool)
    if pred.shape != gt.shape or pred.ndim != 4 or pred.shape[1] < 2:
        raise ValueError(f"pred and gt must be [M, T >= 2, K, 2], found {pred.shape}, "
                         f"{gt.shape}")
    m, t, k, _ = gt.shape
    motion_err = np.linalg.norm(np.diff(pred, axis=1) - np.diff(gt, axis=1), axis=-1)
    both = vis[:, 1:] & vis[:, :-1]
    d = normalizer_distance(gt[:, :-1].reshape(-1, k, 2), vis[:, :-1].reshape(-1, k),
                            normalizer).reshape(m, t - 1)
    err = np.where(both, motion_err / d[..., None], np.nan)
    with np.errstate(invalid="ignore"), _no_empty_warning():
        return np.nanmean(err, axis=-1)


def clip_figures(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                 normalizer: str = "inter_ocular") -> dict[str, Any]:
    """Per-clip NME (mean over each window's frames: mean, median, worst) and the mean
    temporal jitter over every consecutive frame pair, for windows [M, T, K, 2]."""
    m, t = gt.shape[:2]
    per_frame = nme(pred.reshape(m * t, *pred.shape[2:]), gt.reshape(m * t, *gt.shape[2:]),
                    visible.reshape(m * t, -1), normalizer).reshape(m, t)
    with _no_empty_warning():
        per_clip = np.nanmean(per_frame, axis=1)
    per_clip = per_clip[np.isfinite(per_clip)]
    jitter = temporal_jitter(pred, gt, visible, normalizer) if t > 1 else np.empty((m, 0))
    jitter = jitter[np.isfinite(jitter)]
    return {
        "clips": int(per_clip.size),
        "clip_nme_mean": float(per_clip.mean()) if per_clip.size else float("nan"),
        "clip_nme_median": float(np.median(per_clip)) if per_clip.size else float("nan"),
        "clip_nme_worst": float(per_clip.max()) if per_clip.size else float("nan"),
        "jitter": float(jitter.mean()) if jitter.size else float("nan"),
        "jitter_pairs": int(jitter.size),
    }


@contextlib.contextmanager
def _no_empty_warning() -> Iterator[None]:
    """nanmean of an all-NaN row is NaN by design here (nothing visible), not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
