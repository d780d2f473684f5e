"""Plain numpy/scipy references for every TensorFlow computation of the input pipeline,
the loss targets and the losses.

Written from the definitions (a blur is a correlation, a warp is a per-pixel inverse
map plus bilinear reads), never from the TF code's formulas, so a wrong TF kernel
cannot hide behind a reference that calls the same kernel. Everything is float64.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d
from scipy.signal import fftconvolve

from runtime.data import geometry
from runtime.data.config import REFERENCE_SIZE, AugmentConfig
from runtime.data.normalize import LCN_SIGMA, LCN_SIZE, gaussian_1d
from runtime.evaluate.decode import image_to_map

# ---- normalisation ------------------------------------------------------------------------


def lcn(x: np.ndarray) -> np.ndarray:
    """RCN local contrast normalisation of [B, H, W, C] raw images (runtime.data.normalize)."""
    g = gaussian_1d(LCN_SIZE, LCN_SIGMA)
    x = np.asarray(x, np.float64)

    def blur(a: np.ndarray) -> np.ndarray:
        return correlate1d(correlate1d(a, g, axis=1, mode="constant"), g, axis=2,
                           mode="constant")

    v = x - blur(x)
    std = np.sqrt(np.maximum(blur(v * v), 0.0))
    mean_std = std.mean(axis=(1, 2, 3), keepdims=True)
    return (v / np.maximum(np.maximum(std, mean_std), 1e-6) + 2.5) / 5.0


def per_image(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) / np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1.0)


def normalize(x: np.ndarray, method: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if method == "lcn":
        return lcn(x)
    if method == "per_image":
        return per_image(x)
    if method == "scale":
        return x / 255.0
    if method == "lgcn":
        return (x / 128.0 - 1.0) * 0.1
    raise ValueError(f"no reference for normalisation '{method}'")


# ---- geometry and augmentation ------------------------------------------------------------


def jitter(u: np.ndarray, aug: AugmentConfig, size: int) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """(matrices [B, 3, 3], flip [B], occluder [B, 4]) from uniforms, via runtime.data.geometry."""
    u = np.asarray(u, np.float64)
    sym = 2.0 * u - 1.0
    flips = u[:, 4] < aug.mirror_prob if aug.mirror else np.zeros(len(u), bool)
    mats = np.stack([
        geometry.augment_matrix(size, 1.0 + aug.scale * s[0], aug.rotation * s[1],
                                aug.translate * size * s[2], aug.translate * size * s[3], bool(f))
        for s, f in zip(sym, flips, strict=True)])
    hi = min(aug.occlusion_max * size / REFERENCE_SIZE, float(size))
    lo = min(aug.occlusion_min * size / REFERENCE_SIZE, hi)
    wh = lo + (hi - lo) * u[:, 5:7]
    occ = np.concatenate([(size - wh) * u[:, 7:9], wh], axis=1) if aug.occlusion \
        else np.zeros((len(u), 4))
    return mats, flips, occ


def crop_matrices(crops: np.ndarray, size: int) -> np.ndarray:
    return np.stack([geometry.crop_matrix(cx, cy, side, size) for cx, cy, side in crops])


def inverse_transforms(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([B, 8] output -> source projective rows of inv(M), [B] box-filter factors)."""
    inv = np.linalg.inv(np.asarray(matrices, np.float64))
    flat = inv.reshape(-1, 9)[:, :8] / inv[:, 2:3, 2]
    det = np.linalg.det(np.asarray(matrices, np.float64)[:, :2, :2])
    factor = np.maximum(np.floor(1.0 / np.sqrt(np.abs(det))), 1).astype(np.int32)
    return flat, factor


def warp(image: np.ndarray, transform: np.ndarray, factor: int, size: int) -> np.ndarray:
    """Bilinear resampling of [H, W, C] with zero fill: output (x, y) reads source
    T(x, y); with factor f > 1 the source is first averaged over f x f blocks."""
    src = np.asarray(image, np.float64)
    t = np.asarray(transform, np.float64).copy()
    f = int(min(factor, *src.shape[:2]))
    if f > 1:
        h, w = src.shape[0] // f, src.shape[1] // f
        src = src[: h * f, : w * f].reshape(h, f, w, f, -1).mean(axis=(1, 3))
        t[:6] /= f
        t[2] += 0.5 / f - 0.5
        t[5] += 0.5 / f - 0.5
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    k = t[6] * xs + t[7] * ys + 1.0
    sx = (t[0] * xs + t[1] * ys + t[2]) / k
    sy = (t[3] * xs + t[4] * ys + t[5]) / k
    x0, y0 = np.floor(sx), np.floor(sy)
    out = np.zeros((size, size, src.shape[2]))
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wgt = (1 - np.abs(sx - xi)) * (1 - np.abs(sy - yi))
            ok = (xi >= 0) & (xi < src.shape[1]) & (yi >= 0) & (yi < src.shape[0])
            vals = src[np.clip(yi, 0, src.shape[0] - 1).astype(int),
                       np.clip(xi, 0, src.shape[1] - 1).astype(int)]
            out += np.where(ok, wgt, 0.0)[..., None] * vals
    return out


def transform_landmarks(points: np.ndarray, visible: np.ndarray, matrices: np.ndarray,
                        size: int, source_hw: np.ndarray, flip: np.ndarray | None = None,
                        permutation: np.ndarray | None = None) -> np.ndarray:
    """[B, K, 3] output x, y, state (1 visible and inside, -1 labelled elsewhere, 0 unlabelled)."""
    p = np.asarray(points, np.float64)
    out = np.zeros(p.shape[:2] + (3,))
    for b in range(p.shape[0]):
        h, w = source_hw[b]
        for k in range(p.shape[1]):
            x, y = p[b, k]
            finite = np.isfinite(x) and np.isfinite(y)
            q = geometry.apply(matrices[b], np.array([x, y])) if finite else np.zeros(2)
            in_src = finite and -0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5
            in_out = finite and bool(np.all((q >= 0) & (q <= size - 1)))
            state = 1.0 if visible[b, k] and in_src and in_out else (
                -1.0 if visible[b, k] else 0.0)
            out[b, k] = (q[0], q[1], state)
        if flip is not None and permutation is not None and flip[b]:
            out[b] = out[b][permutation]
    return out


def occlude(images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    out = np.array(images, np.float64)
    ys, xs = np.mgrid[0:out.shape[1], 0:out.shape[2]]
    for b, (x0, y0, bw, bh) in enumerate(boxes):
        hole = (xs >= x0) & (xs < x0 + bw) & (ys >= y0) & (ys < y0 + bh)
        out[b][hole] = 0.0
    return out


# ---- loss targets --------------------------------------------------------------------------


def map_points(y_true: np.ndarray, input_size: int, map_hw: tuple[int, int]
               ) -> tuple[np.ndarray, np.ndarray]:
    """(xy [B, K, 2] in map pixels, 0 where invisible; visibility [B, K] 0/1)."""
    y = np.asarray(y_true, np.float64)
    vis = (y[..., 2] > 0.5).astype(np.float64)
    h, w = map_hw
    xy = np.stack([image_to_map(y[..., 0], input_size, w),
                   image_to_map(y[..., 1], input_size, h)], -1)
    return np.where(vis[..., None] > 0, xy, 0.0), vis


def pixel_index(y_true: np.ndarray, input_size: int, map_hw: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """(nearest pixel's flat index [B, K], valid [B, K]): RCN's discretised target."""
    h, w = map_hw
    xy, vis = map_points(y_true, input_size, map_hw)
    col, row = np.floor(xy[..., 0] + 0.5), np.floor(xy[..., 1] + 0.5)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    valid = vis * inside
    return np.where(valid > 0, row * w + col, 0).astype(np.int64), valid


def one_hot_maps(y_true: np.ndarray, input_size: int, map_hw: tuple[int, int]) -> np.ndarray:
    h, w = map_hw
    index, valid = pixel_index(y_true, input_size, map_hw)
    b, k = index.shape
    out = np.zeros((b, h * w, k))
    bi, ki = np.meshgrid(np.arange(b), np.arange(k), indexing="ij")
    out[bi, index, ki] = valid
    return out.reshape(b, h, w, k)


def gaussian_maps(y_true: np.ndarray, input_size: int, map_hw: tuple[int, int], sigma: float,
                  amplitude: float = 1.0) -> np.ndarray:
    h, w = map_hw
    xy, vis = map_points(y_true, input_size, map_hw)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    d2 = ((xs[None, :, :, None] - xy[:, None, None, :, 0]) ** 2
          + (ys[None, :, :, None] - xy[:, None, None, :, 1]) ** 2)
    return amplitude * np.exp(-d2 / (2.0 * sigma**2)) * vis[:, None, None, :]


def disk_maps(y_true: np.ndarray, input_size: int, map_hw: tuple[int, int], radius: float
              ) -> np.ndarray:
    h, w = map_hw
    xy, vis = map_points(y_true, input_size, map_hw)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    d2 = ((xs[None, :, :, None] - xy[:, None, None, :, 0]) ** 2
          + (ys[None, :, :, None] - xy[:, None, None, :, 1]) ** 2)
    return (d2 <= radius**2) * vis[:, None, None, :]


def bilinear_splat(y_true: np.ndarray, input_size: int, map_hw: tuple[int, int]) -> np.ndarray:
    """Unit mass per visible landmark over its 4 neighbouring pixels, off-map mass dropped."""
    h, w = map_hw
    xy, vis = map_points(y_true, input_size, map_hw)
    out = np.zeros((xy.shape[0], h, w, xy.shape[1]))
    x0, y0 = np.floor(xy[..., 0]), np.floor(xy[..., 1])
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wgt = (1 - np.abs(xy[..., 0] - xi)) * (1 - np.abs(xy[..., 1] - yi)) * vis
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h) & (wgt != 0)
            b, k = np.nonzero(ok)
            np.add.at(out, (b, yi[b, k].astype(int), xi[b, k].astype(int), k), wgt[b, k])
    return out


def kernel_splat(y_true: np.ndarray, input_size: int, map_hw: tuple[int, int],
                 kernel: np.ndarray) -> np.ndarray:
    splat = bilinear_splat(y_true, input_size, map_hw)
    kern = np.asarray(kernel, np.float64)[None, :, :, None]
    return fftconvolve(splat, kern, mode="same", axes=(1, 2))


# ---- losses ------------------------------------------------------------------------------


def _masked_mean(per_kp: np.ndarray, mask: np.ndarray, weights: np.ndarray | float = 1.0
                 ) -> np.ndarray:
    terms = np.where(mask > 0, per_kp * weights, 0.0)
    return terms.sum(-1) / np.maximum(mask.sum(-1), 1.0)


def spatial_softmax_nll(y_true: np.ndarray, y_pred: np.ndarray, input_size: int, *,
                        from_logits: bool = False, sum_over_keypoints: bool = True,
                        eps: float = 1e-12) -> np.ndarray:
    p = np.asarray(y_pred, np.float64)
    b, h, w, k = p.shape
    flat = np.moveaxis(p, 3, 1).reshape(b, k, h * w)
    if from_logits:
        z = flat - flat.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    else:
        logp = np.log(np.maximum(flat, eps if eps > 0 else 1e-30))
    index, valid = pixel_index(y_true, input_size, (h, w))
    nll = -np.take_along_axis(logp, index[..., None], -1)[..., 0]
    out = _masked_mean(nll, valid)
    return out * k if sum_over_keypoints else out


def heatmap_l2(y_true: np.ndarray, y_pred: np.ndarray, input_size: int, *, sigma: float = 1.0,
               amplitude: float = 1.0) -> np.ndarray:
    p = np.asarray(y_pred, np.float64)
    target = gaussian_maps(y_true, input_size, p.shape[1:3], sigma, amplitude)
    _, vis = map_points(y_true, input_size, p.shape[1:3])
    return _masked_mean(((p - target) ** 2).mean(axis=(1, 2)), vis)


def sigmoid_xent(y_true: np.ndarray, y_pred: np.ndarray, input_size: int, *,
                 sigma: float = 1.0) -> np.ndarray:
    """Gaussian targets, 'balanced' positive weight (background / foreground mass per map)."""
    z = np.asarray(y_pred, np.float64)
    h, w = z.shape[1:3]
    target = gaussian_maps(y_true, input_size, (h, w), sigma)
    _, vis = map_points(y_true, input_size, (h, w))
    fg = target.sum(axis=(1, 2))
    pos_weight = np.where(fg > 0, (h * w - fg) / np.maximum(fg, 1e-6), 1.0)[:, None, None, :]
    log_sig, log_not = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
    xent = -(pos_weight * target * log_sig + (1.0 - target) * log_not)
    return _masked_mean(xent.mean(axis=(1, 2)), vis)


def coord_l2(y_true: np.ndarray, y_pred: np.ndarray, input_size: int) -> np.ndarray:
    y = np.asarray(y_true, np.float64)
    vis = y[..., 2] > 0.5
    pred = np.asarray(y_pred, np.float64).reshape(y.shape[0], -1, 2)
    sq = ((pred - np.where(vis[..., None], y[..., :2], 0.0) / input_size) ** 2).sum(-1)
    return 0.5 * np.where(vis, sq, 0.0).sum(-1)


def lgcn_weighted_l2(y_true: np.ndarray, y_pred: np.ndarray, input_size: int,
                     kernel: np.ndarray, *, scale: float = 0.05) -> np.ndarray:
    """LGCN eq. 3-4: w_k = L_k (0.1 + 0.5 mean_j V_j) + V_k, V = GT mass on the map."""
    p = np.asarray(y_pred, np.float64)
    h, w = p.shape[1:3]
    splat = bilinear_splat(y_true, input_size, (h, w))
    target = kernel_splat(y_true, input_size, (h, w), kernel)
    labelled = (np.abs(np.asarray(y_true, np.float64)[..., 2]) > 0.5).astype(np.float64)
    mass = splat.sum(axis=(1, 2))
    weight = labelled * (0.1 + 0.5 * mass.mean(-1, keepdims=True)) + mass
    sse = ((p - target) ** 2).sum(axis=(1, 2))
    return scale * np.where(labelled > 0, weight * sse, 0.0).sum(-1)


def identity_xent(ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Softmax cross-entropy per frame [B, T] against class ids (< 0: masked), the mean
    over each clip's known frames."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ids = np.asarray(ids)
    known = ids >= 0
    nll = -np.take_along_axis(logp, np.maximum(ids, 0)[..., None], -1)[..., 0]
    return np.where(known, nll, 0.0).sum(-1) / np.maximum(known.sum(-1), 1)
