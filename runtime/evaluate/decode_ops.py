"""Network outputs -> landmark points in keras.ops, on any Keras backend.

The arithmetic of runtime/evaluate/decode.py (argmax, 3×3 sub-pixel refinement, map ->
input-pixel conversion) as graph ops, so a JAX or PyTorch model decodes in its own jit
or on its own device, as runtime/export/decode_tf.py does for TF graphs. The 3×3 window
is read by clipped flat indices, which is decode.py's edge-replicated padding. Float32
throughout (decode.py computes in float64); tests/runtime/test_portable_losses.py checks
the two agree.
"""

from __future__ import annotations

from typing import Any

from keras import ops
import numpy as np

from runtime.evaluate.decode import REFINES, map_to_image

Tensor = Any  # a backend tensor

_TINY = float(np.finfo(np.float32).tiny)
# decode.py takes log(max(v, float64 tiny)) in float64: a window value <= 0 reads as this
_LOG_NONPOSITIVE = float(np.log(np.finfo(np.float64).tiny))


def decode_points(kind: str, y_pred: Tensor, input_size: int, *, refine: str = "quadratic"
                  ) -> Tensor:
    """Points [B, K, 2] (x, y in input-image pixels) from a 'heatmap' [B, H, W, K] or
    'coords' [B, 2K] output; decode.decode in keras.ops."""
    shape = tuple(y_pred.shape)
    if kind == "coords":
        if len(shape) != 2 or shape[1] is None or shape[1] % 2:
            raise ValueError(f"coords output must be [B, 2K], found shape {shape}")
        return ops.reshape(ops.cast(y_pred, "float32"), (-1, shape[1] // 2, 2)) * float(
            input_size)
    if kind == "heatmap":
        if len(shape) != 4 or None in shape[1:]:
            raise ValueError(f"heatmap output must be [B, H, W, K] with static H, W, K, "
                             f"found shape {shape}")
        xy, _ = heatmap_peaks(y_pred, refine=refine)
        h, w = shape[1:3]
        return ops.stack([map_to_image(xy[..., 0], input_size, w),
                          map_to_image(xy[..., 1], input_size, h)], axis=-1)
    raise ValueError(f"unknown output kind '{kind}', expected 'heatmap' or 'coords'")


def heatmap_peaks(maps: Tensor, *, refine: str = "quadratic") -> tuple[Tensor, Tensor]:
    """(xy [B, K, 2] in map pixels, peak value [B, K]) of maps [B, H, W, K]: argmax, then
    the sub-pixel offset `refine` reads from the 3×3 window (decode.heatmap_peaks)."""
    if refine not in REFINES:
        raise ValueError(f"unknown refine '{refine}', expected one of {', '.join(REFINES)}")
    h, w, k = (int(d) for d in maps.shape[1:])
    flat = ops.reshape(ops.transpose(ops.cast(maps, "float32"), (0, 3, 1, 2)), (-1, k, h * w))
    idx = ops.cast(ops.argmax(flat, axis=-1), "int32")  # [B, K]
    peak = ops.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
    py, px = idx // w, idx % w
    # win[r][c] = m[clip(py + r - 1), clip(px + c - 1)]: edge replication, as decode.py
    rows = [ops.clip(py + d, 0, h - 1) * w for d in (-1, 0, 1)]
    cols = [ops.clip(px + d, 0, w - 1) for d in (-1, 0, 1)]
    index = ops.stack([r + c for r in rows for c in cols], axis=-1)  # [B, K, 9]
    cells = ops.take_along_axis(flat, index, axis=-1)
    win = [[cells[..., 3 * r + c] for c in range(3)] for r in range(3)]
    dx, dy = _offsets(win, refine)
    dx = ops.where(ops.logical_and(px > 0, px < w - 1), dx, 0.0)
    dy = ops.where(ops.logical_and(py > 0, py < h - 1), dy, 0.0)
    xy = ops.stack([ops.cast(px, "float32") + dx, ops.cast(py, "float32") + dy], axis=-1)
    return xy, peak


def _offsets(win: list[list[Tensor]], refine: str) -> tuple[Tensor, Tensor]:
    """Sub-pixel (dx, dy) [B, K] from the 3×3 window win[row][col] around the argmax."""
    if refine == "none":
        zeros = ops.zeros_like(win[1][1])
        return zeros, zeros
    if refine == "com":
        wgt = [[ops.maximum(v, 0.0) for v in row] for row in win]
        total = sum(v for row in wgt for v in row)
        safe = ops.where(total > 0, total, 1.0)
        col = [wgt[0][c] + wgt[1][c] + wgt[2][c] for c in range(3)]
        row = [wgt[r][0] + wgt[r][1] + wgt[r][2] for r in range(3)]
        return (ops.clip((col[2] - col[0]) / safe, -0.5, 0.5),
                ops.clip((row[2] - row[0]) / safe, -0.5, 0.5))
    if refine == "log_quadratic":
        win = [[ops.where(v > 0, ops.log(ops.maximum(v, _TINY)), _LOG_NONPOSITIVE)
                for v in row] for row in win]
    return _vertex(win[1][0], win[1][1], win[1][2]), _vertex(win[0][1], win[1][1], win[2][1])


def _vertex(left: Tensor, centre: Tensor, right: Tensor) -> Tensor:
    """Vertex offset of the parabola through (−1, left), (0, centre), (1, right); 0 where
    the window is flat or not a maximum."""
    curv = left - 2.0 * centre + right
    ok = curv < 0
    off = 0.5 * (left - right) / ops.where(ok, curv, -1.0)
    return ops.where(ok, ops.clip(off, -0.5, 0.5), 0.0)


def heatmap_confidence(maps: Tensor) -> Tensor:
    """Per map [B, K]: max(m) / Σ max(m, 0), 0 for a map with no positive value
    (decode.heatmap_confidence)."""
    h, w, k = (int(d) for d in maps.shape[1:])
    flat = ops.reshape(ops.transpose(ops.cast(maps, "float32"), (0, 3, 1, 2)), (-1, k, h * w))
    peak = ops.max(flat, axis=-1)
    mass = ops.sum(ops.maximum(flat, 0.0), axis=-1)
    return ops.where(mass > 0, ops.maximum(peak, 0.0) / ops.where(mass > 0, mass, 1.0), 0.0)
