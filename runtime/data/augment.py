"""Crop + jitter as one affine warp, applied identically to pixels and landmarks (TF).

TF mirror of `geometry` (same conventions: pixel centres at integers, 3x3 matrices map
source -> output points). Everything but the warp itself is vectorised over a leading
batch axis, so the per-image work in tf.data is little more than decode + resample.
Randomness is stateless (keyed by seeds), so pipelines are reproducible under parallel map.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf

from runtime.data.config import REFERENCE_SIZE, AugmentConfig
from runtime.data.records import ABSENT, UNLABELLED, VISIBLE

Num = tf.Tensor | float
N_UNIFORMS = 9  # uniforms per image: scale, rotation, tx, ty, flip, occluder w, h, x, y


class Jitter(NamedTuple):
    """Random draws for a batch of B images."""

    matrix: tf.Tensor  # [B, 3, 3] output -> output (scale, rotation, shift, flip)
    flip: tf.Tensor  # [B] bool
    occluder: tf.Tensor  # [B, 4] x0, y0, width, height in output pixels (0 x 0 = none)


def _affine(a: tf.Tensor, b: Num, c: Num, d: Num, e: Num, f: Num) -> tf.Tensor:
    """[B, 3, 3] matrices [[a, b, c], [d, e, f], [0, 0, 1]] from [B] tensors or numbers."""
    a = tf.convert_to_tensor(a, tf.float32)
    zero = tf.zeros_like(a)
    row = [tf.broadcast_to(tf.cast(v, tf.float32), tf.shape(a)) for v in (a, b, c, d, e, f)]
    return tf.stack([tf.stack(row[:3], -1), tf.stack(row[3:], -1),
                     tf.stack([zero, zero, tf.ones_like(a)], -1)], -2)


def jitter_from_uniforms(u: tf.Tensor, aug: AugmentConfig, size: int, *,
                         geometric_only: bool = False) -> Jitter:
    """Turn [B, N_UNIFORMS] uniforms in [0, 1) into a batch's jitter (identity if disabled)."""
    u = tf.convert_to_tensor(u, tf.float32)
    sym = 2.0 * u - 1.0
    on = aug.enabled
    scale = 1.0 + (aug.scale if on else 0.0) * sym[:, 0]
    theta = (aug.rotation if on else 0.0) * (math.pi / 180.0) * sym[:, 1]
    shift = (aug.translate * size if on else 0.0) * sym[:, 2:4]
    cs, sn = tf.cos(theta) * scale, tf.sin(theta) * scale
    c = (size - 1) / 2
    # translation(shift) @ T(c) @ rotation @ scaling @ T(-c), as geometry.augment_matrix
    m = _affine(cs, sn, c - (cs + sn) * c + shift[:, 0], -sn, cs, c + (sn - cs) * c + shift[:, 1])
    mirror = tf.constant([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    use_flip = on and aug.mirror and not geometric_only
    flip = (u[:, 4] < aug.mirror_prob) if use_flip else tf.zeros_like(u[:, 4], tf.bool)
    m = tf.where(flip[:, None, None], mirror @ m, m)
    if on and aug.occlusion and not geometric_only:
        hi = min(aug.occlusion_max * size / REFERENCE_SIZE, float(size))
        lo = min(aug.occlusion_min * size / REFERENCE_SIZE, hi)
        wh = lo + (hi - lo) * u[:, 5:7]
        occ = tf.concat([(size - wh) * u[:, 7:9], wh], -1)
    else:
        occ = tf.zeros_like(u[:, :4])
    return Jitter(m, flip, occ)


def sample_jitter(seed: tf.Tensor, batch: tf.Tensor | int, aug: AugmentConfig, size: int, *,
                  geometric_only: bool = False) -> Jitter:
    """Draw jitter for `batch` images from one [2] integer seed."""
    u = tf.random.stateless_uniform(tf.stack([batch, N_UNIFORMS]), seed=seed, dtype=tf.float32)
    return jitter_from_uniforms(u, aug, size, geometric_only=geometric_only)


def crop_matrices(crops: tf.Tensor, size: int) -> tf.Tensor:
    """[B, 3, 3] source -> output for squares [B, 3] = cx, cy, side (geometry.crop_matrix)."""
    crops = tf.convert_to_tensor(crops, tf.float32)
    s = size / crops[:, 2]
    c = (size - 1) / 2
    return _affine(s, 0.0, c - s * crops[:, 0], 0.0, s, c - s * crops[:, 1])


def image_crops(hw: tf.Tensor) -> tf.Tensor:
    """[B, 3] squares holding whole images of [B, 2] heights, widths (geometry.image_crop)."""
    hw = tf.cast(hw, tf.float32)
    h, w = hw[:, 0], hw[:, 1]
    return tf.stack([(w - 1.0) / 2.0, (h - 1.0) / 2.0, tf.maximum(w, h)], -1)


def warp_transforms(matrices: tf.Tensor, *, antialias: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
    """([B, 8] projective transforms output -> source, [B] int32 box-filter factors).

    The factor is floor(1 / scale) of each matrix (1 when `antialias` is off): `warp`
    shrinks the source by it first, so bilinear sampling never skips source pixels.
    """
    m = matrices
    a, b, c = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    d, e, f = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    zero = tf.zeros_like(a)
    transform = tf.stack([ia, ib, -(ia * c + ib * f), id_, ie, -(id_ * c + ie * f), zero, zero],
                         -1)
    if antialias:
        factor = tf.maximum(tf.cast(tf.floor(1.0 / tf.sqrt(tf.abs(det))), tf.int32), 1)
    else:
        factor = tf.ones_like(a, tf.int32)
    return transform, factor


def warp(image: tf.Tensor, transform: tf.Tensor, factor: tf.Tensor, size: int) -> tf.Tensor:
    """Resample one float [H, W, C] image to [size, size, C]: bilinear, zero outside.

    `transform` [8] maps output to source points; with `factor` f > 1 the source is first
    averaged over f x f blocks, whose centres sit at x' = (x + 0.5) / f - 0.5.
    """
    hw = tf.shape(image)[:2]
    f = tf.minimum(factor, tf.reduce_min(hw))

    def shrink() -> tuple[tf.Tensor, tf.Tensor]:
        h, w = hw[0] // f, hw[1] // f
        small = tf.image.resize(image[: h * f, : w * f], tf.stack([h, w]), method="area")
        inv_f = 1.0 / tf.cast(f, tf.float32)
        off = 0.5 * inv_f - 0.5
        mul = tf.stack([inv_f, inv_f, inv_f, inv_f, inv_f, inv_f, 1.0, 1.0])
        add = tf.stack([0.0, 0.0, off, 0.0, 0.0, off, 0.0, 0.0])
        return small, transform * mul + add

    src, t = tf.cond(f > 1, shrink, lambda: (image, transform))
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=src[None], transforms=t[None], output_shape=tf.constant([size, size]),
        fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="CONSTANT")
    return out[0]


def transform_landmarks(points: tf.Tensor, visible: tf.Tensor, matrices: tf.Tensor, size: int,
                        source_hw: tf.Tensor, *, flip: tf.Tensor | None = None,
                        permutation: tf.Tensor | None = None) -> tf.Tensor:
    """[B, K, 3] output x, y and state from source points [B, K, 2] and visibility [B, K].

    The state (runtime.data.records) is VISIBLE (1) only for visible, finite points that
    lie inside the source image (not in the zero fill) and on the output's pixel-centre
    range [0, size - 1], as RCN masks points in the padded border; ABSENT (-1) for the
    other labelled points (LGCN's eq. 3 weights them, against an empty target); 0 for
    unlabelled ones. Non-finite coordinates become 0 so mask * loss stays finite. Where
    `flip` is true, indices are permuted by the scheme's mirror map.
    """
    p = tf.cast(points, tf.float32)
    finite = tf.reduce_all(tf.math.is_finite(p), axis=-1)
    hw = tf.cast(source_hw, tf.float32)
    limit = tf.stack([hw[:, 1], hw[:, 0]], -1)[:, None, :] - 0.5
    in_src = tf.reduce_all((p >= -0.5) & (p <= limit), axis=-1)
    q = tf.einsum("bij,bkj->bki", matrices[:, :2, :2], p) + matrices[:, None, :2, 2]
    in_out = tf.reduce_all((q >= 0.0) & (q <= size - 1.0), axis=-1)
    labelled = tf.cast(visible, tf.bool)
    inside = labelled & finite & in_src & in_out
    state = tf.where(inside, VISIBLE, tf.where(labelled, ABSENT, UNLABELLED))
    q = tf.where(finite[..., None], q, 0.0)
    if permutation is not None and flip is not None:
        q = tf.where(flip[:, None, None], tf.gather(q, permutation, axis=1), q)
        state = tf.where(flip[:, None], tf.gather(state, permutation, axis=1), state)
    return tf.concat([q, state[..., None]], axis=-1)


def occlude(images: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """Zero pixels of [B, H, W, C] images whose centres lie in [B, 4] x0, y0, w, h boxes."""
    shape = tf.shape(images)
    xs = tf.range(tf.cast(shape[2], tf.float32))[None, :]
    ys = tf.range(tf.cast(shape[1], tf.float32))[None, :]
    in_x = (xs >= boxes[:, 0:1]) & (xs < boxes[:, 0:1] + boxes[:, 2:3])
    in_y = (ys >= boxes[:, 1:2]) & (ys < boxes[:, 1:2] + boxes[:, 3:4])
    hole = tf.cast(in_y[:, :, None] & in_x[:, None, :], images.dtype)
    return images * (1.0 - hole)[..., None]
