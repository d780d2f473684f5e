"""Loss targets in keras.ops: runtime/train/targets.py for every Keras backend.

The same maps from the same labels (y_true [B, K, 3] in input-image pixels, an optional
4th channel choosing the trained keypoints), written with keras.ops only so the losses
run on JAX or PyTorch as well as TensorFlow. tests/runtime/test_portable_losses.py
checks each function against the TF one at production shapes.

One-hot encodings are built by comparison with a range rather than `ops.one_hot`: the
splat's neighbours may sit off the map (index −2 … size+1), and backends disagree on
what one_hot does with such indices (TF gives zeros, torch raises).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras import ops
import numpy as np

from runtime.evaluate.decode import image_to_map

Tensor = Any  # a backend tensor (tf.Tensor, jax.Array, torch.Tensor)


def trained_mask(y_true: Tensor) -> Tensor:
    """[B, K] float32 0/1: visible keypoints (state > 0.5), and of those the ones whose
    4th label channel is set when labels have one (as targets.trained_mask)."""
    y_true = ops.cast(y_true, "float32")
    vis = ops.greater(y_true[..., 2], 0.5)
    if y_true.shape[-1] is not None and y_true.shape[-1] > 3:
        vis = ops.logical_and(vis, ops.greater(y_true[..., 3], 0.5))
    return ops.cast(vis, "float32")


def map_coords(y_true: Tensor, input_size: int, map_hw: Sequence[int]
               ) -> tuple[Tensor, Tensor]:
    """(xy [B, K, 2] in map pixels, `trained_mask` [B, K]); untrained coordinates are 0 so
    NaN or junk labels never reach a target."""
    y_true = ops.cast(y_true, "float32")
    vis = trained_mask(y_true)
    h, w = map_hw
    x = image_to_map(y_true[..., 0], input_size, w)
    y = image_to_map(y_true[..., 1], input_size, h)
    xy = ops.where(ops.greater(vis[..., None], 0.0), ops.stack([x, y], axis=-1), 0.0)
    return ops.stop_gradient(xy), vis


def pixel_index(y_true: Tensor, input_size: int, map_hw: Sequence[int]
                ) -> tuple[Tensor, Tensor]:
    """(flat index y·W + x [B, K] int32 of the nearest map pixel, valid [B, K] float32);
    invisible and off-map landmarks are invalid with index 0 (RCN's target)."""
    h, w = map_hw
    xy, vis = map_coords(y_true, input_size, map_hw)
    bound = float(max(h, w) + 2)  # keeps the int cast safe; anything past it is outside
    col = ops.floor(ops.clip(xy[..., 0], -bound, bound) + 0.5)
    row = ops.floor(ops.clip(xy[..., 1], -bound, bound) + 0.5)
    inside = ops.logical_and(ops.logical_and(col >= 0, col < w),
                             ops.logical_and(row >= 0, row < h))
    valid = vis * ops.cast(inside, "float32")
    index = ops.cast(row, "int32") * w + ops.cast(col, "int32")
    return ops.where(valid > 0, index, 0), valid


def _one_hot(index: Tensor, depth: int) -> Tensor:
    """float32 [..., depth]; all zeros for an index outside [0, depth)."""
    return ops.cast(ops.equal(index[..., None], ops.arange(depth, dtype="int32")), "float32")


def one_hot_maps(y_true: Tensor, input_size: int, map_hw: Sequence[int]) -> Tensor:
    """1 at each visible landmark's nearest pixel, [B, H, W, K]."""
    h, w = map_hw
    index, valid = pixel_index(y_true, input_size, map_hw)
    rows, cols = index // w, index % w
    maps = _one_hot(rows, h)[..., :, None] * _one_hot(cols, w)[..., None, :]  # [B, K, H, W]
    return ops.stop_gradient(_to_bhwk(maps * valid[..., None, None]))


def gaussian_maps(y_true: Tensor, input_size: int, map_hw: Sequence[int], sigma: float,
                  amplitude: float = 1.0) -> Tensor:
    """amplitude·exp(−d²/2σ²) around each visible landmark's sub-pixel position."""
    h, w = map_hw
    xy, vis = map_coords(y_true, input_size, map_hw)
    gx = ops.exp(-ops.square(ops.arange(w, dtype="float32") - xy[..., 0:1]) / (2.0 * sigma**2))
    gy = ops.exp(-ops.square(ops.arange(h, dtype="float32") - xy[..., 1:2]) / (2.0 * sigma**2))
    maps = ops.einsum("bkh,bkw->bhwk", gy * (amplitude * vis[..., None]), gx)
    return ops.stop_gradient(maps)


def disk_maps(y_true: Tensor, input_size: int, map_hw: Sequence[int], radius: float) -> Tensor:
    """1 where a pixel centre lies within `radius` map pixels of a visible landmark."""
    h, w = map_hw
    xy, vis = map_coords(y_true, input_size, map_hw)
    dx2 = ops.square(ops.arange(w, dtype="float32") - xy[..., 0:1])[:, :, None, :]
    dy2 = ops.square(ops.arange(h, dtype="float32") - xy[..., 1:2])[:, :, :, None]
    inside = ops.cast(dx2 + dy2 <= radius**2, "float32") * vis[..., None, None]
    return ops.stop_gradient(_to_bhwk(inside))


def _splat_axis(pos: Tensor, size: int) -> tuple[list[Tensor], list[Tensor]]:
    """Two integer neighbours of `pos` [B, K] and their linear weights, 0 off the map."""
    pos = ops.clip(pos, -2.0, size + 1.0)  # beyond this both weights are 0 anyway
    lo = ops.floor(pos)
    frac = pos - lo
    first = ops.cast(lo, "int32")
    cells = [first, first + 1]
    weights = [1.0 - frac, frac]
    weights = [wt * ops.cast(ops.logical_and(c >= 0, c < size), "float32")
               for c, wt in zip(cells, weights, strict=True)]
    return cells, weights


def splat_profiles(y_true: Tensor, input_size: int, map_hw: Sequence[int]
                   ) -> tuple[Tensor, Tensor]:
    """Separable factors of the bilinear splat: (py [B, K, H], px [B, K, W])."""
    h, w = map_hw
    xy, vis = map_coords(y_true, input_size, map_hw)
    xs, wx = _splat_axis(xy[..., 0], w)
    ys, wy = _splat_axis(xy[..., 1], h)
    px = _one_hot(xs[0], w) * wx[0][..., None] + _one_hot(xs[1], w) * wx[1][..., None]
    py = _one_hot(ys[0], h) * wy[0][..., None] + _one_hot(ys[1], h) * wy[1][..., None]
    return ops.stop_gradient(py * vis[..., None]), ops.stop_gradient(px)


def bilinear_splat(y_true: Tensor, input_size: int, map_hw: Sequence[int]) -> Tensor:
    """Each visible landmark's unit mass spread over its 4 neighbouring pixels (off-map
    pixels dropped), [B, H, W, K]."""
    py, px = splat_profiles(y_true, input_size, map_hw)
    return ops.einsum("bkh,bkw->bhwk", py, px)


def kernel_table(kernel: np.ndarray, map_hw: Sequence[int]) -> np.ndarray:
    """table[dy + H − 1, dx + W − 1] = kernel[dy + r, dx + r], zero where the kernel ends:
    every shift of an odd square `kernel` a map of H×W can see."""
    kern = np.asarray(kernel, dtype=np.float32)
    if kern.ndim != 2 or kern.shape[0] != kern.shape[1] or kern.shape[0] % 2 == 0:
        raise ValueError(f"kernel must be a square odd-sized 2-D array, found {kern.shape}")
    h, w = map_hw
    r = kern.shape[0] // 2
    table = np.zeros((2 * h - 1, 2 * w - 1), np.float32)
    ry, rx = min(r, h - 1), min(r, w - 1)
    table[h - 1 - ry:h + ry, w - 1 - rx:w + rx] = kern[r - ry:r + ry + 1, r - rx:r + rx + 1]
    return table


def kernel_splat(y_true: Tensor, input_size: int, map_hw: Sequence[int],
                 kernel: np.ndarray) -> Tensor:
    """bilinear_splat convolved ('same', zero padding) with a fixed odd 2-D `kernel`:
    4 shifted, weighted copies of the kernel read by gathers, as targets.kernel_splat."""
    table = kernel_table(kernel, map_hw)
    h, w = map_hw
    xy, vis = map_coords(y_true, input_size, map_hw)
    xs, wx = _splat_axis(xy[..., 0], w)
    ys, wy = _splat_axis(xy[..., 1], h)
    rows = ops.arange(h, dtype="int32")[None, None, :] + (h - 1)
    cols = ops.arange(w, dtype="int32")[None, None, :] + (w - 1)
    table_t = ops.convert_to_tensor(table)
    by_row = 0.0  # [B, K, H, 2W-1]: the kernel rows each map row sees, blended over y
    for c, wt in zip(ys, wy, strict=True):
        picked = ops.take(table_t, ops.clip(rows - c[..., None], 0, 2 * h - 2), axis=0)
        by_row = by_row + picked * (wt * vis)[..., None, None]
    out = 0.0  # [B, K, H, W]
    for c, wt in zip(xs, wx, strict=True):
        index = ops.clip(cols - c[..., None], 0, 2 * w - 2)[:, :, None, :]  # [B, K, 1, W]
        index = ops.broadcast_to(index, (*_lead(by_row), h, w))
        out = out + ops.take_along_axis(by_row, index, axis=3) * wt[..., None, None]
    return ops.stop_gradient(_to_bhwk(out))


def _lead(x: Tensor) -> tuple:
    """[B, K] of a [B, K, ...] tensor: static where known, dynamic (traced) otherwise."""
    shape = ops.shape(x)
    return shape[0], shape[1]


def _to_bhwk(maps: Tensor) -> Tensor:
    return ops.transpose(maps, (0, 2, 3, 1))
