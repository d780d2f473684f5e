"""Loss targets built on the fly from y_true = [B, K, 3] (x, y in input-image pixels,
visibility), so the data pipeline never depends on the network's output size. A 4th
label channel, when present, says which keypoints the losses train on (see
`trained_mask`).

All maps are [B, H, W, K], zero for invisible landmarks, and carry no gradient. The
pixel convention is runtime.evaluate.decode.image_to_map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from runtime.evaluate.decode import image_to_map


def trained_mask(y_true: tf.Tensor) -> tf.Tensor:
    """[B, K] float32 0/1: the keypoints a loss trains on. Visible ones (state > 0.5),
    and of those only the ones whose 4th label channel is set when labels have one
    (runtime/data/shape_pipeline.py: a denoiser trains on its corrupted keypoints but
    is scored on all)."""
    y_true = tf.convert_to_tensor(y_true, tf.float32)
    vis = y_true[..., 2] > 0.5
    if y_true.shape[-1] is not None and y_true.shape[-1] > 3:
        vis = vis & (y_true[..., 3] > 0.5)
    return tf.cast(vis, tf.float32)


def map_coords(y_true: tf.Tensor, input_size: int, map_hw: Sequence[int]
               ) -> tuple[tf.Tensor, tf.Tensor]:
    """(xy [B, K, 2] in map pixels, `trained_mask` [B, K] as 0/1 float32).

    Coordinates of invisible landmarks are replaced by 0 so that NaN or junk labels
    never reach a target.
    """
    y_true = tf.convert_to_tensor(y_true, tf.float32)
    vis = trained_mask(y_true)
    h, w = map_hw
    x = image_to_map(y_true[..., 0], input_size, w)
    y = image_to_map(y_true[..., 1], input_size, h)
    xy = tf.where(vis[..., None] > 0, tf.stack([x, y], axis=-1), 0.0)
    return tf.stop_gradient(xy), vis


def pixel_index(y_true: tf.Tensor, input_size: int, map_hw: Sequence[int]
                ) -> tuple[tf.Tensor, tf.Tensor]:
    """(flat index y·W + x [B, K] int32 of the nearest map pixel, valid [B, K] float32).

    `valid` is 0 for invisible landmarks and for landmarks outside the map; their
    index is 0. This is RCN's discretised target.
    """
    h, w = map_hw
    xy, vis = map_coords(y_true, input_size, map_hw)
    bound = float(max(h, w) + 2)  # keeps the int cast safe; anything past it is outside
    col = tf.floor(tf.clip_by_value(xy[..., 0], -bound, bound) + 0.5)
    row = tf.floor(tf.clip_by_value(xy[..., 1], -bound, bound) + 0.5)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    valid = vis * tf.cast(inside, tf.float32)
    index = tf.cast(row, tf.int32) * w + tf.cast(col, tf.int32)
    return tf.where(valid > 0, index, 0), valid


def one_hot_maps(y_true: tf.Tensor, input_size: int, map_hw: Sequence[int]) -> tf.Tensor:
    """1 at each visible landmark's nearest pixel, [B, H, W, K]."""
    h, w = map_hw
    index, valid = pixel_index(y_true, input_size, map_hw)
    maps = tf.one_hot(index, h * w, dtype=tf.float32) * valid[..., None]  # [B, K, HW]
    return _to_bhwk(tf.reshape(maps, tf.concat([tf.shape(index), [h, w]], 0)))


def gaussian_maps(y_true: tf.Tensor, input_size: int, map_hw: Sequence[int], sigma: float,
                  amplitude: float = 1.0) -> tf.Tensor:
    """amplitude·exp(−d²/2σ²) around each visible landmark's sub-pixel position."""
    h, w = map_hw
    xy, vis = map_coords(y_true, input_size, map_hw)
    gx = tf.exp(-tf.square(tf.range(w, dtype=tf.float32) - xy[..., 0:1]) / (2.0 * sigma**2))
    gy = tf.exp(-tf.square(tf.range(h, dtype=tf.float32) - xy[..., 1:2]) / (2.0 * sigma**2))
    maps = tf.einsum("bkh,bkw->bhwk", gy * (amplitude * vis[..., None]), gx)
    return tf.stop_gradient(maps)


def disk_maps(y_true: tf.Tensor, input_size: int, map_hw: Sequence[int], radius: float
              ) -> tf.Tensor:
    """1 where a pixel centre lies within `radius` map pixels of a visible landmark."""
    h, w = map_hw
    xy, vis = map_coords(y_true, input_size, map_hw)
    dx2 = tf.square(tf.range(w, dtype=tf.float32) - xy[..., 0:1])[:, :, None, :]
    dy2 = tf.square(tf.range(h, dtype=tf.float32) - xy[..., 1:2])[:, :, :, None]
    inside = tf.cast(dx2 + dy2 <= radius**2, tf.float32) * vis[..., None, None]
    return tf.stop_gradient(_to_bhwk(inside))


def _splat_axis(pos: tf.Tensor, size: int) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
    """Two integer neighbours of `pos` [B, K] and their linear weights, 0 off the map."""
    pos = tf.clip_by_value(pos, -2.0, size + 1.0)  # beyond this both weights are 0 anyway
    lo = tf.floor(pos)
    frac = pos - lo
    cells = [tf.cast(lo, tf.int32), tf.cast(lo, tf.int32) + 1]
    weights = [(1.0 - frac), frac]
    weights = [wt * tf.cast((c >= 0) & (c < size), tf.float32)
               for c, wt in zip(cells, weights, strict=True)]
    return cells, weights


def splat_profiles(y_true: tf.Tensor, input_size: int, map_hw: Sequence[int]
                   ) -> tuple[tf.Tensor, tf.Tensor]:
    """Separable factors of the bilinear splat: (py [B, K, H], px [B, K, W])."""
    h, w = map_hw
    xy, vis = map_coords(y_true, input_size, map_hw)
    xs, wx = _splat_axis(xy[..., 0], w)
    ys, wy = _splat_axis(xy[..., 1], h)
    px = sum(tf.one_hot(c, w) * wt[..., None] for c, wt in zip(xs, wx, strict=True))
    py = sum(tf.one_hot(c, h) * wt[..., None] for c, wt in zip(ys, wy, strict=True))
    return tf.stop_gradient(py * vis[..., None]), tf.stop_gradient(px)


def bilinear_splat(y_true: tf.Tensor, input_size: int, map_hw: Sequence[int]) -> tf.Tensor:
    """Each visible landmark's unit mass spread over its 4 neighbouring pixels.

    Sums to 1 per map when all 4 pixels are on the map; off-map pixels are dropped.
    """
    py, px = splat_profiles(y_true, input_size, map_hw)
    return tf.einsum("bkh,bkw->bhwk", py, px)


def kernel_splat(y_true: tf.Tensor, input_size: int, map_hw: Sequence[int],
                 kernel: np.ndarray) -> tf.Tensor:
    """bilinear_splat convolved ('same', zero padding) with a fixed odd 2-D `kernel`.

    Exact and cheap: the splat has 4 non-zero pixels, so the result is 4 shifted,
    weighted copies of the kernel, read by gathers instead of a 45×45 convolution.
    """
    kern = np.asarray(kernel, dtype=np.float32)
    if kern.ndim != 2 or kern.shape[0] != kern.shape[1] or kern.shape[0] % 2 == 0:
        raise ValueError(f"kernel must be a square odd-sized 2-D array, found {kern.shape}")
    h, w = map_hw
    r = kern.shape[0] // 2
    # table[dy + h - 1, dx + w - 1] = kernel[dy + r, dx + r], zero where the kernel ends.
    table = np.zeros((2 * h - 1, 2 * w - 1), np.float32)
    ry, rx = min(r, h - 1), min(r, w - 1)
    table[h - 1 - ry:h + ry, w - 1 - rx:w + rx] = kern[r - ry:r + ry + 1, r - rx:r + rx + 1]
    table_t = tf.constant(table)
    xy, vis = map_coords(y_true, input_size, map_hw)
    xs, wx = _splat_axis(xy[..., 0], w)
    ys, wy = _splat_axis(xy[..., 1], h)
    rows = tf.range(h)[None, None, :] + (h - 1)
    cols = tf.range(w)[None, None, :] + (w - 1)
    by_row = sum(  # [B, K, H, 2W-1]: kernel rows for each map row, blended over y
        tf.gather(table_t, tf.clip_by_value(rows - c[..., None], 0, 2 * h - 2))
        * (wt * vis)[..., None, None] for c, wt in zip(ys, wy, strict=True))
    out = sum(  # [B, K, H, W]
        tf.gather(by_row, tf.clip_by_value(cols - c[..., None], 0, 2 * w - 2),
                  axis=3, batch_dims=2) * wt[..., None, None]
        for c, wt in zip(xs, wx, strict=True))
    return tf.stop_gradient(_to_bhwk(out))


def _to_bhwk(maps: tf.Tensor) -> tf.Tensor:
    return tf.transpose(maps, [0, 2, 3, 1])
