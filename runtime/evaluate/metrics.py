"""Face-alignment metrics in plain numpy: NME under the field's normalisers, failure
rate, CED curve and its AUC, per-landmark errors.

Inputs are pred, gt [N, K, 2] (pixels, any frame shared by both) and visible [N, K].
Only visible landmarks are scored; an image whose normaliser needs an invisible point,
or that has no visible landmark, gets NaN and is left out of the summary.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
import warnings

import numpy as np

NORMALIZERS: tuple[str, ...] = ("inter_ocular", "inter_pupil", "rcn_eye_centre", "box",
                                "box_diag")

# 300-W/iBUG 49-point subset: the 68 points without the jaw (0-16) and the inner mouth
# corners 60 and 64.
POINTS_49: tuple[int, ...] = tuple(i for i in range(17, 68) if i not in (60, 64))

# Per scheme (by K): the two groups of GT points whose means are the "eyes".
_EYES: dict[str, dict[int, tuple[tuple[int, ...], tuple[int, ...]]]] = {
    "inter_ocular": {68: ((36,), (45,)), 5: ((0,), (1,)), 7: ((0,), (3,))},
    "inter_pupil": {68: (tuple(range(36, 42)), tuple(range(42, 48))), 5: ((0,), (1,))},
    "rcn_eye_centre": {68: ((36, 39), (42, 45)), 5: ((0,), (1,))},
}


def normalizer_distance(gt: np.ndarray, visible: np.ndarray,
                        normalizer: str | np.ndarray) -> np.ndarray:
    """Per-image normalising distance [N] (NaN where undefined).

    'inter_ocular': outer eye corners (68pt 36/45; 5pt eye centres 0/1; 7pt 0/3);
    'inter_pupil': distance of eye centres = means of 36-41 and 42-47 (5pt: 0/1);
    'rcn_eye_centre': means of 36&39 and 42&45 (RCN, 0-based; 5pt: 0/1);
    'box': sqrt(w·h) of the visible landmarks' box; 'box_diag': its diagonal.
    An array [N] is used as given (e.g. face-box sizes from the data set).
    """
    gt = np.asarray(gt, np.float64)
    vis = np.asarray(visible).astype(bool)
    n, k = gt.shape[:2]
    if not isinstance(normalizer, str):
        d = np.asarray(normalizer, np.float64).reshape(-1)
        if d.shape != (n,):
            raise ValueError(f"normalizer array must have shape ({n},), found {d.shape}")
        return np.where(d > 0, d, np.nan)
    if normalizer in ("box", "box_diag"):
        pts = np.where(vis[..., None], gt, np.nan)
        with _quiet_nan():
            size = np.nanmax(pts, axis=1) - np.nanmin(pts, axis=1)  # [N, 2]
        d = np.sqrt(size[:, 0] * size[:, 1]) if normalizer == "box" else np.hypot(*size.T)
        return np.where(d > 0, d, np.nan)
    table = _EYES.get(normalizer)
    if table is None:
        raise ValueError(f"unknown normalizer '{normalizer}', expected one of "
                         f"{', '.join(NORMALIZERS)} or an array of distances")
    if k not in table:
        raise ValueError(f"normalizer '{normalizer}' is defined for {sorted(table)}-point "
                         f"schemes, not {k}; pass 'box' or an array")
    left, right = (list(g) for g in table[k])
    ok = vis[:, left].all(axis=1) & vis[:, right].all(axis=1)
    d = np.linalg.norm(gt[:, left].mean(axis=1) - gt[:, right].mean(axis=1), axis=-1)
    return np.where(ok & (d > 0), d, np.nan)


def landmark_errors(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                    normalizer: str | np.ndarray = "inter_ocular") -> np.ndarray:
    """Normalised point errors [N, K]; NaN for invisible landmarks."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape or gt.ndim != 3 or gt.shape[-1] != 2:
        raise ValueError(f"pred and gt must both be [N, K, 2], found {pred.shape}, {gt.shape}")
    vis = np.asarray(visible).astype(bool)
    d = normalizer_distance(gt, vis, normalizer)
    err = np.linalg.norm(pred - gt, axis=-1) / d[:, None]
    return np.where(vis, err, np.nan)


def nme(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
        normalizer: str | np.ndarray = "inter_ocular", *,
        subset: Sequence[int] | None = None) -> np.ndarray:
    """Per-image NME [N]: mean normalised error over the visible (subset) landmarks.

    The normaliser always uses the full GT, so `subset=POINTS_49` gives the 49-point
    error normalised like the 68-point one.
    """
    err = landmark_errors(pred, gt, visible, normalizer)
    if subset is not None:
        err = err[:, list(subset)]
    with _quiet_nan():
        return np.nanmean(err, axis=1)


def failure_rate(nmes: np.ndarray, threshold: float) -> float:
    """Fraction of images with NME > threshold (NaN images ignored)."""
    e = _valid(nmes)
    return float(np.mean(e > threshold)) if e.size else float("nan")


def ced_curve(nmes: np.ndarray, max_threshold: float = 0.10, steps: int = 1001
              ) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: (thresholds, fraction of images with NME <= t)."""
    e = np.sort(_valid(nmes))
    t = np.linspace(0.0, max_threshold, steps)
    frac = np.searchsorted(e, t, side="right") / max(e.size, 1)
    return t, frac


def auc(nmes: np.ndarray, threshold: float) -> float:
    """Area under the CED curve on [0, threshold], divided by threshold (1 = perfect).

    Exact for the step-shaped CED: ∫₀ᵀ 1[e <= t] dt = max(0, T − e).
    """
    e = _valid(nmes)
    if not e.size:
        return float("nan")
    return float(np.mean(np.maximum(0.0, 1.0 - e / threshold)))


def per_landmark_error(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                       normalizer: str | np.ndarray = "inter_ocular") -> np.ndarray:
    """Mean normalised error of each landmark over the images where it is visible [K]."""
    err = landmark_errors(pred, gt, visible, normalizer)
    with _quiet_nan():
        return np.nanmean(err, axis=0)


def summarize(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
              normalizer: str | np.ndarray = "inter_ocular", *,
              subset: Sequence[int] | None = None) -> dict[str, Any]:
    """nme, fr_008, fr_010, auc_008, auc_010 (floats), n (scored images), per_landmark."""
    per_image = nme(pred, gt, visible, normalizer, subset=subset)
    per_kp = per_landmark_error(pred, gt, visible, normalizer)
    if subset is not None:
        per_kp = per_kp[list(subset)]
    e = _valid(per_image)
    return {
        "nme": float(e.mean()) if e.size else float("nan"),
        "fr_008": failure_rate(e, 0.08),
        "fr_010": failure_rate(e, 0.10),
        "auc_008": auc(e, 0.08),
        "auc_010": auc(e, 0.10),
        "n": int(e.size),
        "per_landmark": [float(v) for v in per_kp],
    }


def _valid(nmes: np.ndarray) -> np.ndarray:
    e = np.asarray(nmes, np.float64).reshape(-1)
    return e[np.isfinite(e)]


@contextmanager
def _quiet_nan() -> Iterator[None]:
    """Silences numpy's 'Mean of empty slice' / 'All-NaN slice' warnings: NaN is the answer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ------------------------------------------------------------------ human-readable figures
# One convention in every command's human output: NME, failure rates and AUC in percent
# (as the field reports them), everything else (losses, learning rate) as plain numbers.
# JSON output and metrics.jsonl keep fractions.

def is_percent_figure(key: str) -> bool:
    """True for NME / FR / AUC figures (`nme`, `val_nme`, `val_fr_010`, `auc_008`, ...)."""
    base = key.removeprefix("val_")
    return base == "nme" or base.startswith(("fr_", "auc_"))


def format_figure(key: str, value: float | None) -> str:
    """`value` of figure `key` for people: '9.73 %' for NME/FR/AUC, '0.0123' otherwise."""
    if value is None:
        return "-"
    if is_percent_figure(key):
        return f"{100 * float(value):.2f} %"
    return f"{float(value):.4g}"
