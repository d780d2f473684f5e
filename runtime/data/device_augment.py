"""Augmentation on the accelerator: warp, occluder, landmarks and normalisation per batch.

Only `keras.ops` (numpy for constants), so the same code runs on every Keras backend and
can sit inside a compiled step. The faces live on the device as a FaceCache
(runtime/data/face_cache.py); the host hands over only a batch's cache indices and a key.

Randomness: batch i of the whole stream (i = pass * batches_per_pass + batch) draws its
[B, N_UNIFORMS] uniforms with `keras.random.uniform` from the key (data.seed, i), a pure
function of (seed, pass, batch): a resumed run redraws exactly the jitter an unbroken one
would. Row order comes from `index_batch` (numpy, keyed by (seed, pass)). The draws are
not TensorFlow's stateless ones, so the stream differs from the tf.data pipeline's, but
given the same uniforms (or matrices) every stage matches it (tests/runtime/
test_device_augment.py): the jitter is `augment.jitter_from_uniforms` term by term, the
warp is its bilinear sampling with zeros outside, targets follow `transform_landmarks`.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any

import keras
from keras import ops
import numpy as np

from runtime.data import geometry
from runtime.data.config import REFERENCE_SIZE, AugmentConfig
from runtime.data.face_cache import FaceCache
from runtime.data.records import ABSENT, UNLABELLED, VISIBLE

N_UNIFORMS = 9  # as runtime/data/augment.py: scale, rotation, tx, ty, flip, occluder w, h, x, y
METHODS = ("per_image", "lcn", "scale", "lgcn")  # runtime/data/normalize.py's
LCN_SIZE = 9
LCN_SIGMA = 1.591
_STD_FLOOR = 1.0
Tensor = Any


@dataclass(frozen=True)
class DeviceFaces:
    """A FaceCache as backend tensors (moved to the device once)."""

    quads: Tensor  # int32 [N * (C + 1)^2] (or [..., channels]): 2x2 neighbourhoods, see pack
    to_cache: Tensor  # float32 [N, 3, 3]
    crops: Tensor  # float32 [N, 3, 3]
    source_hw: Tensor  # float32 [N, 2]
    landmarks: Tensor  # float32 [N, K, 2]
    visible: Tensor  # bool [N, K]
    side: int
    size: int
    channels: int
    scheme: str
    n: int


def pack_quads(images: np.ndarray, chunk: int = 512) -> np.ndarray:
    """int32 [N * (C + 1)^2, channels]: entry (n, Y, X) holds the four bytes of tile n's
    pixels (Y - 1 .. Y, X - 1 .. X), zero beyond the tile, as p00 | p01 << 8 | p10 << 16 |
    p11 << 24. One gather then fetches all four bilinear taps of a sample whose top-left
    tap is (Y - 1, X - 1): on TensorFlow's CPU gather that is ~4x faster than four
    gathers, for 4x the device memory of the uint8 tiles."""
    n, c = images.shape[0], images.shape[1]
    out = np.empty((n, c + 1, c + 1, images.shape[3]), np.uint32)
    for lo in range(0, n, chunk):
        z = np.pad(images[lo:lo + chunk].astype(np.uint32), ((0, 0), (1, 1), (1, 1), (0, 0)))
        out[lo:lo + chunk] = (z[:, :-1, :-1] | (z[:, :-1, 1:] << 8) | (z[:, 1:, :-1] << 16)
                              | (z[:, 1:, 1:] << 24))
    return out.view(np.int32).reshape(n * (c + 1) ** 2, -1)


def device_faces(cache: FaceCache) -> DeviceFaces:
    """Move `cache` to the backend's device; flat indices must fit in int32."""
    n, c, ch = len(cache), cache.side, int(cache.images.shape[-1])
    if n * (c + 1) ** 2 >= 2**31:
        raise ValueError(f"face cache of {n:,} tiles of {c}x{c} exceeds int32 indexing; "
                         "lower data.limit or the augmentation ranges")
    quads = pack_quads(cache.images)
    t = ops.convert_to_tensor
    return DeviceFaces(
        quads=t(quads[:, 0] if ch == 1 else quads), to_cache=t(cache.to_cache, "float32"),
        crops=t(cache.crops, "float32"), source_hw=t(cache.source_hw, "float32"),
        landmarks=t(cache.landmarks, "float32"), visible=t(cache.visible, "bool"), side=c,
        size=cache.size, channels=ch, scheme=cache.scheme, n=n)


def index_batch(n_rows: int, seed: int, pass_: int, batch: int, batch_size: int, *,
                shuffle: bool = True) -> np.ndarray:
    """int32 cache indices of batch `batch` of pass `pass_`: a permutation keyed by
    (seed, pass) when `shuffle`, cut into `batch_size` rows (the last batch may be short)."""
    order = np.arange(n_rows)
    if shuffle:
        order = np.random.Generator(np.random.PCG64([seed, pass_])).permutation(n_rows)
    return order[batch * batch_size:(batch + 1) * batch_size].astype(np.int32)


def batch_key(seed: int, step: int) -> np.ndarray:
    """The [2] random key of stream batch `step` (= pass * batches_per_pass + batch)."""
    key = np.array([seed % 2**32, step % 2**32], np.uint32)
    return key if keras.backend.backend() == "jax" else key.view(np.int32)


class _Key(keras.random.SeedGenerator):
    """A fixed key for `keras.random.uniform`: its draws are a pure function of the key
    tensor, so they can be an input of a compiled step (a SeedGenerator's own state would
    advance per call and live in the model)."""

    def __init__(self, key: Tensor) -> None:  # no state variable: nothing to advance
        self._key = key

    def next(self, ordered: bool = True) -> Tensor:  # noqa: ARG002 - SeedGenerator's API
        return self._key


def uniforms(key: Tensor, batch: int) -> Tensor:
    """[batch, N_UNIFORMS] float32 uniforms in [0, 1) from a `batch_key`."""
    key = ops.cast(key, "uint32" if keras.backend.backend() == "jax" else "int32")
    return keras.random.uniform((batch, N_UNIFORMS), seed=_Key(key), dtype="float32")


def _affine(a: Tensor, b: Tensor, c: Tensor, d: Tensor, e: Tensor, f: Tensor) -> Tensor:
    """[B, 3, 3] [[a, b, c], [d, e, f], [0, 0, 1]] from [B] tensors (or numbers)."""
    a = ops.convert_to_tensor(a, "float32")
    vals = [ops.broadcast_to(ops.cast(v, "float32"), ops.shape(a)) for v in (a, b, c, d, e, f)]
    zero, one = ops.zeros_like(a), ops.ones_like(a)
    return ops.stack([ops.stack(vals[:3], -1), ops.stack(vals[3:], -1),
                      ops.stack([zero, zero, one], -1)], -2)


def jitter_from_uniforms(u: Tensor, aug: AugmentConfig, size: int, *,
                         geometric_only: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """(matrix [B, 3, 3] output -> output, flip [B] bool, occluder [B, 4]) from [B, 9]
    uniforms: runtime/data/augment.py `jitter_from_uniforms`, term by term."""
    u = ops.convert_to_tensor(u, "float32")
    sym = 2.0 * u - 1.0
    on = aug.enabled
    scale = 1.0 + (aug.scale if on else 0.0) * sym[:, 0]
    theta = (aug.rotation if on else 0.0) * (math.pi / 180.0) * sym[:, 1]
    shift = (aug.translate * size if on else 0.0) * sym[:, 2:4]
    cs, sn = ops.cos(theta) * scale, ops.sin(theta) * scale
    c = (size - 1) / 2
    m = _affine(cs, sn, c - (cs + sn) * c + shift[:, 0], -sn, cs,
                c + (sn - cs) * c + shift[:, 1])
    mirror = ops.convert_to_tensor(geometry.mirror(size), "float32")
    if on and aug.mirror and not geometric_only:
        flip = u[:, 4] < aug.mirror_prob
    else:
        flip = ops.zeros_like(u[:, 4], "bool")
    m = ops.where(flip[:, None, None], ops.matmul(mirror, m), m)
    if on and aug.occlusion and not geometric_only:
        hi = min(aug.occlusion_max * size / REFERENCE_SIZE, float(size))
        lo = min(aug.occlusion_min * size / REFERENCE_SIZE, hi)
        wh = lo + (hi - lo) * u[:, 5:7]
        occ = ops.concatenate([(size - wh) * u[:, 7:9], wh], -1)
    else:
        occ = ops.zeros_like(u[:, :4])
    return m, flip, occ


def _inverse_affine(m: Tensor) -> Tensor:
    """[B, 3, 3] inverses of affine matrices, as augment.warp_transforms computes them."""
    a, b, c = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    d, e, f = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    return _affine(ia, ib, -(ia * c + ib * f), id_, ie, -(id_ * c + ie * f))


def warp(faces: DeviceFaces, index: Tensor, matrices: Tensor) -> Tensor:
    """float32 [B, size, size, channels]: tiles `index` [B] resampled so that source ->
    output is `matrices` [B, 3, 3]; bilinear (TF's order of operations), zero outside the
    tile (which, by construction, is also where the source image ends)."""
    size, side = faces.size, faces.side
    to_cache = ops.take(faces.to_cache, index, axis=0)
    back = ops.matmul(to_cache, _inverse_affine(matrices))  # output -> cache
    g = ops.arange(size, dtype="float32")
    gx, gy = g[None, None, :], g[None, :, None]

    def coord(r: int) -> Tensor:
        return back[:, r, 0, None, None] * gx + back[:, r, 1, None, None] * gy + \
            back[:, r, 2, None, None]

    x, y = coord(0), coord(1)
    x0, y0 = ops.floor(x), ops.floor(y)
    ok = (x0 >= -1.0) & (x0 <= side - 1.0) & (y0 >= -1.0) & (y0 <= side - 1.0)
    s = side + 1
    flat = ops.cast(index, "int32")[:, None, None] * (s * s) + \
        ops.cast(ops.clip(y0 + 1.0, 0, side), "int32") * s + \
        ops.cast(ops.clip(x0 + 1.0, 0, side), "int32")
    quad = ops.take(faces.quads, flat, axis=0)  # [B, S, S] (or [B, S, S, C]) int32
    if faces.channels == 1:
        quad = quad[..., None]
    quad = ops.where(ok[..., None], quad, 0)
    p00, p01, p10, p11 = (ops.cast(ops.bitwise_and(ops.right_shift(quad, b), 255), "float32")
                          for b in (0, 8, 16, 24))
    fx0, fx1 = (x0 + 1.0 - x)[..., None], (x - x0)[..., None]
    top = fx0 * p00 + fx1 * p01
    bottom = fx0 * p10 + fx1 * p11
    return top * (y0 + 1.0 - y)[..., None] + bottom * (y - y0)[..., None]


def occlude(images: Tensor, boxes: Tensor) -> Tensor:
    """Zero pixels of [B, H, W, C] whose centres lie in [B, 4] x0, y0, w, h (augment.occlude)."""
    h, w = images.shape[1], images.shape[2]
    xs = ops.arange(w, dtype="float32")[None, :]
    ys = ops.arange(h, dtype="float32")[None, :]
    in_x = (xs >= boxes[:, 0:1]) & (xs < boxes[:, 0:1] + boxes[:, 2:3])
    in_y = (ys >= boxes[:, 1:2]) & (ys < boxes[:, 1:2] + boxes[:, 3:4])
    hole = ops.cast(in_y[:, :, None] & in_x[:, None, :], images.dtype)
    return images * (1.0 - hole)[..., None]


def transform_landmarks(points: Tensor, visible: Tensor, matrices: Tensor, size: int,
                        source_hw: Tensor, *, flip: Tensor | None = None,
                        permutation: np.ndarray | None = None) -> Tensor:
    """[B, K, 3] x, y, state: augment.transform_landmarks (records.py states: VISIBLE for
    visible, finite points inside the source and on [0, size - 1]; ABSENT for other labelled
    ones; UNLABELLED), indices permuted by the mirror map where `flip`."""
    p = ops.cast(points, "float32")
    finite = ops.all(ops.isfinite(p), axis=-1)
    hw = ops.cast(source_hw, "float32")
    limit = ops.stack([hw[:, 1], hw[:, 0]], -1)[:, None, :] - 0.5
    in_src = ops.all((p >= -0.5) & (p <= limit), axis=-1)
    q = ops.einsum("bij,bkj->bki", matrices[:, :2, :2], p) + matrices[:, None, :2, 2]
    in_out = ops.all((q >= 0.0) & (q <= size - 1.0), axis=-1)
    labelled = ops.cast(visible, "bool")
    inside = labelled & finite & in_src & in_out
    state = ops.where(inside, VISIBLE, ops.where(labelled, ABSENT, UNLABELLED))
    state = ops.cast(state, "float32")
    q = ops.where(finite[..., None], q, 0.0)
    if permutation is not None and flip is not None:
        perm = ops.convert_to_tensor(np.asarray(permutation, np.int32))
        q = ops.where(flip[:, None, None], ops.take(q, perm, axis=1), q)
        state = ops.where(flip[:, None], ops.take(state, perm, axis=1), state)
    return ops.concatenate([q, state[..., None]], axis=-1)


def _blur_band(n: int) -> np.ndarray:
    """[n, n] banded matrix of the 9-tap Gaussian, zero padded (normalize.blur_matrix)."""
    r = np.arange(LCN_SIZE, dtype=np.float64) - (LCN_SIZE - 1) / 2
    g = np.exp(-(r**2) / (2 * LCN_SIGMA**2))
    g /= g.sum()
    half = LCN_SIZE // 2
    out = np.zeros((n, n))
    for d in range(-half, LCN_SIZE - half):
        out += np.eye(n, k=d) * g[d + half]
    return out.astype(np.float32)


def lcn(images: Tensor) -> Tensor:
    """RCN local contrast normalisation per image and channel (normalize.lcn): the 9x9
    Gaussian is separable, applied as two banded rank-2 matmuls (on CPU far faster than a
    9x9 convolution, and the rank-2 form avoids TF's broken batched oneDNN matmul)."""
    x = ops.cast(images, "float32")
    h, w = x.shape[1], x.shape[2]
    rows = ops.convert_to_tensor(_blur_band(h))
    cols = ops.convert_to_tensor(_blur_band(w))

    def along_last(t: Tensor, band: Tensor) -> Tensor:
        shape = ops.shape(t)
        flat = ops.reshape(t, (-1, shape[-1]))
        return ops.reshape(ops.matmul(flat, ops.transpose(band)), shape)

    def blur(t: Tensor) -> Tensor:  # [B, C, H, W]
        t = along_last(t, cols)
        t = along_last(ops.transpose(t, (0, 1, 3, 2)), rows)
        return ops.transpose(t, (0, 1, 3, 2))

    xt = ops.transpose(x, (0, 3, 1, 2))
    v = xt - blur(xt)
    std = ops.sqrt(ops.maximum(blur(ops.square(v)), 0.0))
    mean_std = ops.mean(std, axis=(1, 2, 3), keepdims=True)
    out = v / ops.maximum(ops.maximum(std, mean_std), 1e-6)
    return ops.transpose((out + 2.5) / 5.0, (0, 2, 3, 1))


def normalize(images: Tensor, method: str) -> Tensor:
    """runtime/data/normalize.py `normalize` on [B, H, W, C] raw 0..255 images."""
    x = ops.cast(images, "float32")
    if method == "lcn":
        return lcn(x)
    if method == "per_image":
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=(1, 2, 3), keepdims=True)
        return (x - mean) / ops.maximum(ops.sqrt(var), _STD_FLOOR)
    if method == "scale":
        return x / 255.0
    if method == "lgcn":
        return (x / 128.0 - 1.0) * 0.1
    raise ValueError(f"unknown normalisation '{method}' (one of {', '.join(METHODS)})")


class DeviceAugment:
    """One batch on the device: (index [B] int32, key [2]) -> (images, landmarks [B, K, 3]).

    `training` draws jitter (scale, rotation, shift, mirror, occluder) from the key;
    otherwise `val_uniforms` (one fixed [N, 9] row per cache entry, as data.val_jitter)
    adds a geometric jitter, or none. Call it inside `jax.jit` / `tf.function` / a
    train step: every argument is a tensor, every shape static but the batch.
    """

    def __init__(self, faces: DeviceFaces, aug: AugmentConfig, normalize_method: str, *,
                 training: bool, val_uniforms: np.ndarray | None = None) -> None:
        if normalize_method not in METHODS:
            raise ValueError(f"unknown normalisation '{normalize_method}' "
                             f"(one of {', '.join(METHODS)})")
        self.faces, self.aug, self.method = faces, aug, normalize_method
        self.training = training and aug.enabled
        self.val_uniforms = (None if val_uniforms is None or self.training
                             else ops.convert_to_tensor(val_uniforms, "float32"))
        self.permutation = None
        if self.training and aug.mirror and aug.mirror_prob > 0:
            self.permutation = geometry.mirror_permutation(
                faces.scheme, int(faces.landmarks.shape[1]))

    def plan(self, index: Tensor, key: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(source -> output matrices [B, 3, 3], flip [B], occluder [B, 4])."""
        crops = ops.take(self.faces.crops, index, axis=0)
        b = index.shape[0]
        if self.training:
            u = uniforms(key, b)
            j, flip, occ = jitter_from_uniforms(u, self.aug, self.faces.size)
        elif self.val_uniforms is not None:
            u = ops.take(self.val_uniforms, index, axis=0)
            j, flip, occ = jitter_from_uniforms(u, self.aug, self.faces.size,
                                                geometric_only=True)
        else:
            return crops, ops.zeros((b,), "bool"), ops.zeros((b, 4))
        return ops.matmul(j, crops), flip, occ

    def apply(self, index: Tensor, matrices: Tensor, flip: Tensor,
              occluder: Tensor) -> tuple[Tensor, Tensor]:
        """Pixels and targets for given matrices / flips / occluders (the checks use it)."""
        f = self.faces
        x = warp(f, index, matrices)
        if self.training and self.aug.occlusion:
            x = occlude(x, occluder)
        y = transform_landmarks(ops.take(f.landmarks, index, axis=0),
                                ops.take(f.visible, index, axis=0), matrices, f.size,
                                ops.take(f.source_hw, index, axis=0), flip=flip,
                                permutation=self.permutation)
        return normalize(x, self.method), y

    def __call__(self, index: Tensor, key: Tensor) -> tuple[Tensor, Tensor]:
        index = ops.convert_to_tensor(index, "int32")
        return self.apply(index, *self.plan(index, key))
