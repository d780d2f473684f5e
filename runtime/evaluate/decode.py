"""Network outputs -> landmark points in input-image pixels (numpy), and the one
pixel convention shared with the loss targets (runtime/train/targets.py).

Convention: pixel centres sit at integers, 0-based. An input of side S and a map of
side M cover the same area, so x_map = (x + 0.5)·M/S − 0.5 and back.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np

T = TypeVar("T")  # numpy arrays, floats or TF tensors: the maps are plain arithmetic

Refine = Literal["none", "quadratic", "log_quadratic", "com"]
REFINES: tuple[str, ...] = ("none", "quadratic", "log_quadratic", "com")


def image_to_map(v: T, input_size: float, map_size: float) -> T:
    """Input-image pixel coordinate -> output-map pixel coordinate."""
    return (v + 0.5) * (map_size / input_size) - 0.5  # type: ignore[operator]


def map_to_image(v: T, input_size: float, map_size: float) -> T:
    """Output-map pixel coordinate -> input-image pixel coordinate."""
    return (v + 0.5) * (input_size / map_size) - 0.5  # type: ignore[operator]


def decode(kind: str, y_pred: np.ndarray, input_size: int, *,
           refine: Refine = "quadratic") -> np.ndarray:
    """Points [B, K, 2] (x, y in input-image pixels) from a 'heatmap' [B, H, W, K] or
    'coords' [B, 2K] (interleaved x, y divided by input_size) output."""
    y = np.asarray(y_pred, dtype=np.float64)
    if kind == "coords":
        if y.ndim != 2 or y.shape[1] % 2:
            raise ValueError(f"coords output must be [B, 2K], found shape {y.shape}")
        return y.reshape(y.shape[0], -1, 2) * input_size
    if kind == "heatmap":
        if y.ndim != 4:
            raise ValueError(f"heatmap output must be [B, H, W, K], found shape {y.shape}")
        xy, _ = heatmap_peaks(y, refine=refine)
        h, w = y.shape[1:3]
        return np.stack([map_to_image(xy[..., 0], input_size, w),
                         map_to_image(xy[..., 1], input_size, h)], axis=-1)
    raise ValueError(f"unknown output kind '{kind}', expected 'heatmap' or 'coords'")


def heatmap_peaks(maps: np.ndarray, *, refine: Refine = "quadratic"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-map argmax with sub-pixel refinement in a 3×3 window.

    Returns (xy [B, K, 2] in map pixels, peak value [B, K]). `refine`: 'none';
    'quadratic' (1-D parabola through the peak and its two neighbours, per axis);
    'log_quadratic' (the same on log values: exact for Gaussian peaks); 'com'
    (centre of mass of the non-negative values in the window). Offsets are clipped to
    ±0.5 px and skipped at the map border or where the peak is flat.
    """
    if refine not in REFINES:
        raise ValueError(f"unknown refine '{refine}', expected one of {', '.join(REFINES)}")
    m = np.moveaxis(np.asarray(maps, dtype=np.float64), 3, 1)  # [B, K, H, W]
    b, k, h, w = m.shape
    flat = m.reshape(b, k, h * w)
    idx = np.argmax(flat, axis=-1)
    peak = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
    py, px = np.divmod(idx, w)
    # 3×3 window around the peak, edge-replicated so border peaks index safely.
    pad = np.pad(m, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    bi, ki = np.meshgrid(np.arange(b), np.arange(k), indexing="ij")
    win = np.stack([pad[bi, ki, py + dy, px + dx] for dy in range(3) for dx in range(3)],
                   axis=-1).reshape(b, k, 3, 3)
    dx, dy = _offsets(win, refine)
    dx = np.where((px > 0) & (px < w - 1), dx, 0.0)
    dy = np.where((py > 0) & (py < h - 1), dy, 0.0)
    return np.stack([px + dx, py + dy], axis=-1), peak


def _offsets(win: np.ndarray, refine: str) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel (dx, dy) from 3×3 windows [..., 3, 3] centred on the argmax."""
    zeros = np.zeros(win.shape[:-2])
    if refine == "none":
        return zeros, zeros
    if refine == "com":
        wgt = np.maximum(win, 0.0)
        total = wgt.sum(axis=(-2, -1))
        safe = np.where(total > 0, total, 1.0)
        off = np.array([-1.0, 0.0, 1.0])
        dx = (wgt.sum(axis=-2) * off).sum(axis=-1) / safe
        dy = (wgt.sum(axis=-1) * off).sum(axis=-1) / safe
        return np.clip(dx, -0.5, 0.5), np.clip(dy, -0.5, 0.5)
    if refine == "log_quadratic":
        win = np.log(np.maximum(win, np.finfo(np.float64).tiny))
    return _vertex(win[..., 1, 0], win[..., 1, 1], win[..., 1, 2]), \
        _vertex(win[..., 0, 1], win[..., 1, 1], win[..., 2, 1])


def _vertex(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Vertex offset of the parabola through (−1, left), (0, centre), (1, right)."""
    curv = left - 2.0 * centre + right
    ok = curv < 0  # a proper maximum; flat or degenerate windows stay at the argmax
    off = 0.5 * (left - right) / np.where(ok, curv, -1.0)
    return np.where(ok, np.clip(off, -0.5, 0.5), 0.0)


def heatmap_confidence(maps: np.ndarray) -> np.ndarray:
    """Per map [B, K]: its peak over its mass, max(m) / sum(max(m, 0)), in (0, 1].

    For a spatial-softmax output (each map a probability distribution over pixels) this is
    the peak probability: 1 when all mass sits on one pixel, 1/(H·W) for a flat map. For
    other heat maps (L2, sigmoid) it measures how concentrated the non-negative response
    is, independent of its scale. A map with no positive value scores 0.
    """
    m = np.moveaxis(np.asarray(maps, dtype=np.float64), 3, 1)  # [B, K, H, W]
    flat = m.reshape(*m.shape[:2], -1)
    peak = flat.max(axis=-1)
    mass = np.maximum(flat, 0.0).sum(axis=-1)
    return np.where(mass > 0, np.maximum(peak, 0.0) / np.where(mass > 0, mass, 1.0), 0.0)


def face_scores(kind: str, y_pred: np.ndarray) -> np.ndarray | None:
    """Per face [B]: the mean over landmarks of `heatmap_confidence`; None for 'coords'
    outputs, which carry no confidence."""
    if kind != "heatmap":
        return None
    return heatmap_confidence(y_pred).mean(axis=1)
