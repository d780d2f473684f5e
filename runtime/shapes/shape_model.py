"""LGCN's PCA 2-D shape model (Merget et al., CVPR 2018, section 3.3), in plain numpy:
trained on Procrustes-aligned training shapes, fitted to heat-maps to filter outliers.

Fitting (`fit_heatmaps`): the face rotation comes from a confidence-weighted Kabsch
alignment of the model mean to the activations; then every heat-map pixel above 1 % of
its map's peak is one weighted equation of a linear least-squares problem in
(translation, scale, shape coefficients). Three passes: global, then only the pixels
within 20 and 7 px of the previous fit. See Note [Pixel equations] for why the pixel
system is solved per landmark.

Note [Pixel equations]: a pixel q of map k with value w gives the two equations
w·x_k(u) = w·q (x_k linear in the unknowns u), as in the authors' MATLAB fitting code.
Summed over the pixels of map k, Σ w²‖x_k − q‖² = W_k‖x_k − c_k‖² + const with
W_k = Σ w² and c_k the w²-weighted mean of q, so the pixel system has exactly the same
least-squares solution as K landmark equations with weights W_k at targets c_k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_COMPONENTS = 12  # nEVs of the authors' pca_improve_landmarks.m
DEFAULT_WINDOWS = (20.0, 7.0)  # local fit windows after the global pass (px, half-width) ...
REFERENCE_SIZE = 96  # ... on the paper's 96 x 96 maps


def scaled_windows(map_side: float) -> tuple[float, ...]:
    """The paper's 20 / 7 px windows for maps of side `map_side` instead of 96."""
    return tuple(w * map_side / REFERENCE_SIZE for w in DEFAULT_WINDOWS)


@dataclass(frozen=True)
class ShapeModel:
    """mean (K, 2): centred, unit Frobenius norm; components (n, K, 2): orthonormal modes;
    variances (n,): their variances in the aligned (unit-size) frame."""

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray

    @property
    def n_landmarks(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def truncated(self, n: int) -> ShapeModel:
        """The model with only its first `n` modes (n >= 0)."""
        if n < 0:
            raise ValueError(f"number of components must be >= 0, found {n}")
        return ShapeModel(self.mean, self.components[:n], self.variances[:n])

    def shape(self, coeffs: np.ndarray) -> np.ndarray:
        """Aligned-frame shape (K, 2) for coefficients b (n,)."""
        b = np.asarray(coeffs, np.float64)
        return self.mean + np.tensordot(b, self.components[:b.size], axes=1)

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean, components=self.components, variances=self.variances)

    @classmethod
    def load(cls, path: str | Path) -> ShapeModel:
        with np.load(path) as z:
            return cls(z["mean"], z["components"], z["variances"])


@dataclass(frozen=True)
class ShapeFit:
    """A fitted shape in heat-map pixels and how plausible / supported it is."""

    points: np.ndarray  # (K, 2) x, y (map pixels), after the optional local-peak blend
    model_points: np.ndarray  # (K, 2) the pure shape-model fit
    coeffs: np.ndarray  # (n,) shape coefficients b in the aligned frame
    scale: float  # map pixels per aligned unit
    rotation: float  # radians
    translation: np.ndarray  # (2,)
    mahalanobis: float  # sqrt(Σ b²/λ) before clipping: how unusual the raw fit was
    support: np.ndarray  # (K,) heat-map value at each fitted point


# --- training ---------------------------------------------------------------------------

def _normalise(shape: np.ndarray) -> np.ndarray:
    centred = shape - shape.mean(axis=0)
    norm = np.linalg.norm(centred)
    return centred / norm if norm > 0 else centred


def _rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def kabsch_angle(source: np.ndarray, target: np.ndarray,
                 weights: np.ndarray | None = None) -> float:
    """Angle θ of the rotation R(θ) that best maps centred `source` onto centred `target`
    (both (K, 2)) in the weighted least-squares sense; reflections are excluded."""
    w = np.ones(len(source)) if weights is None else np.asarray(weights, np.float64)
    if not np.any(w > 0):
        return 0.0
    a = source - np.average(source, axis=0, weights=w)
    b = target - np.average(target, axis=0, weights=w)
    cross = np.sum(w * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]))
    dot = np.sum(w * np.sum(a * b, axis=1))
    return float(np.arctan2(cross, dot))


def _align_all(shapes: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotate each centred shape (N, K, 2) onto centred `target` (K, 2) (batched Kabsch)."""
    cross = np.sum(shapes[..., 0] * target[:, 1] - shapes[..., 1] * target[:, 0], axis=1)
    dot = np.sum(shapes * target, axis=(1, 2))
    theta = np.arctan2(cross, dot)
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    x, y = shapes[..., 0], shapes[..., 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1)


def procrustes_align(shapes: np.ndarray, iterations: int = 20, tol: float = 1e-10
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes: (aligned shapes (N, K, 2), mean (K, 2)), every shape centred,
    unit norm and rotated onto the mean; the mean is unit norm."""
    aligned = np.stack([_normalise(s) for s in np.asarray(shapes, np.float64)])
    mean = aligned[0]
    for _ in range(iterations):
        aligned = _align_all(aligned, mean)
        new_mean = _align_all(_normalise(aligned.mean(axis=0))[None], mean)[0]
        converged = np.linalg.norm(new_mean - mean) < tol
        mean = new_mean
        if converged:
            break
    return _align_all(aligned, mean), mean


def fit_shape_model(shapes: np.ndarray, visible: np.ndarray | None = None,
                    n_components: int = DEFAULT_COMPONENTS,
                    mirror_permutation: Sequence[int] | None = None) -> ShapeModel:
    """PCA of Procrustes-aligned training shapes (N, K, 2).

    Rows with an invisible or non-finite landmark are dropped (as the authors' code drops
    partially labelled faces). `mirror_permutation` also adds every shape mirrored
    (x -> -x, landmarks permuted), matching training with horizontal flips.
    """
    pts = np.asarray(shapes, np.float64)
    if pts.ndim != 3 or pts.shape[2] != 2:
        raise ValueError(f"shapes must be (N, K, 2), found {pts.shape}")
    ok = np.isfinite(pts).all(axis=(1, 2))
    if visible is not None:
        ok &= np.asarray(visible, bool).all(axis=1)
    pts = pts[ok]
    if mirror_permutation is not None:
        perm = np.asarray(mirror_permutation, int)
        if perm.shape != (pts.shape[1],):
            raise ValueError(f"mirror permutation has {perm.size} entries for "
                             f"{pts.shape[1]} landmarks")
        mirrored = pts[:, perm] * np.array([-1.0, 1.0])
        pts = np.concatenate([pts, mirrored])
    if len(pts) < 2:
        raise ValueError(f"a shape model needs at least 2 fully labelled shapes, found "
                         f"{len(pts)}")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, found {n_components}")
    aligned, mean = procrustes_align(pts)
    k = mean.shape[0]
    dev = (aligned - mean).reshape(len(aligned), 2 * k)
    _, sing, vt = np.linalg.svd(dev, full_matrices=False)
    variances = sing**2 / max(len(aligned) - 1, 1)
    n = int(min(n_components, int(np.sum(variances > 1e-12 * max(variances.max(), 1e-300)))))
    return ShapeModel(mean, vt[:n].reshape(n, k, 2), variances[:n])


# --- fitting ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Targets:
    centre: np.ndarray  # (K, 2) w²-weighted mean pixel per map
    weight: np.ndarray  # (K,) Σ w² (0 = no pixel)
    confidence: np.ndarray  # (K,) largest pixel value used


def _targets(maps: np.ndarray, floor: np.ndarray, around: np.ndarray | None,
             window: float | None) -> _Targets:
    """Per-map pixel statistics of Note [Pixel equations] over the pixels above `floor`
    (K,), optionally only within a square of half-side `window` around `around` (K, 2)."""
    h, w, _ = maps.shape
    vals = np.where(maps > floor, maps, 0.0)
    if around is not None and window is not None:
        xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
        in_x = np.abs(xs[:, None] - around[None, :, 0]) <= window  # (W, K)
        in_y = np.abs(ys[:, None] - around[None, :, 1]) <= window  # (H, K)
        vals = vals * (in_y[:, None, :] & in_x[None, :, :])
    sq = vals**2
    weight = sq.sum(axis=(0, 1))
    ys_sum = np.einsum("hwk,h->k", sq, np.arange(h, dtype=np.float64))
    xs_sum = np.einsum("hwk,w->k", sq, np.arange(w, dtype=np.float64))
    safe = np.where(weight > 0, weight, 1.0)
    centre = np.stack([xs_sum / safe, ys_sum / safe], axis=1)
    return _Targets(centre, weight, vals.max(axis=(0, 1)))


def _confident(conf: np.ndarray, weight: np.ndarray, threshold: float) -> np.ndarray:
    """Kabsch weights: confidence where it is >= threshold x the best, else 0; at least the
    3 most confident landmarks (with any weight) take part."""
    top = conf.max() if conf.size else 0.0
    keep = (conf >= threshold * top) & (weight > 0)
    if keep.sum() < 3:
        order = np.argsort(-np.where(weight > 0, conf, -np.inf))
        keep = np.zeros_like(keep)
        keep[order[:3]] = True
        keep &= weight > 0
    return np.where(keep, np.maximum(conf, 1e-12), 0.0)


def _solve(model: ShapeModel, t: _Targets, theta: float, prior: float, max_sigma: float
           ) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Weighted linear least squares for x_k = t + R(s·m_k + P_k c), c = s·b.

    Returns (translation, scale, b, raw Mahalanobis). A mild Gaussian prior (`prior` x the
    mean landmark weight) on b keeps the system well posed when few maps have pixels;
    coefficients beyond `max_sigma` standard deviations are clipped and the pose re-solved.
    """
    rot = _rotation(theta)
    k, n = model.n_landmarks, model.n_components
    m = model.mean @ rot.T  # (K, 2)
    modes = np.einsum("ij,nkj->kin", rot, model.components)  # (K, 2, n)
    sw = np.sqrt(t.weight)[:, None]  # (K, 1)
    a = np.zeros((k, 2, 3 + n))
    a[:, 0, 0] = 1.0
    a[:, 1, 1] = 1.0
    a[:, :, 2] = m
    a[:, :, 3:] = modes
    rows = (a * sw[:, :, None]).reshape(2 * k, 3 + n)
    rhs = (t.centre * sw).reshape(2 * k)
    # scale estimate for the prior: similarity fit of the mean to the targets
    s0 = _similarity_scale(m, t)
    lam = np.maximum(model.variances, 1e-12)
    reg = np.sqrt(prior * max(t.weight.mean(), 1e-12)) / (s0 * np.sqrt(lam))
    reg_rows = np.zeros((n, 3 + n))
    reg_rows[np.arange(n), 3 + np.arange(n)] = reg
    sol, *_ = np.linalg.lstsq(np.vstack([rows, reg_rows]), np.concatenate([rhs, np.zeros(n)]),
                              rcond=None)
    trans, scale, c = sol[:2], float(sol[2]), sol[3:]
    if scale <= 1e-9:  # degenerate (a flipped or empty fit): the mean shape, pose only
        trans, scale = _pose_only(m, t, np.zeros(n), modes, s0)
        return trans, scale, np.zeros(n), float("inf")
    b = c / scale
    maha = float(np.sqrt(np.sum(b**2 / lam)))
    limit = max_sigma * np.sqrt(lam)
    if np.any(np.abs(b) > limit):
        b = np.clip(b, -limit, limit)
        trans, scale = _pose_only(m, t, b, modes, scale)
    return trans, scale, b, maha


def _similarity_scale(m: np.ndarray, t: _Targets) -> float:
    w = t.weight
    if not np.any(w > 0):
        return 1.0
    mc = m - np.average(m, axis=0, weights=w)
    tc = t.centre - np.average(t.centre, axis=0, weights=w)
    den = np.sum(w * np.sum(mc * mc, axis=1))
    s = np.sum(w * np.sum(mc * tc, axis=1)) / den if den > 0 else 1.0
    return float(s) if s > 1e-9 else 1.0


def _pose_only(m: np.ndarray, t: _Targets, b: np.ndarray, modes: np.ndarray,
               fallback: float) -> tuple[np.ndarray, float]:
    """(translation, scale) for a fixed shape b: linear in (t, s)."""
    shape = m + modes @ b  # (K, 2), rotated
    k = shape.shape[0]
    sw = np.sqrt(t.weight)[:, None]
    a = np.zeros((k, 2, 3))
    a[:, 0, 0] = 1.0
    a[:, 1, 1] = 1.0
    a[:, :, 2] = shape
    sol, *_ = np.linalg.lstsq((a * sw[:, :, None]).reshape(2 * k, 3),
                              (t.centre * sw).reshape(2 * k), rcond=None)
    scale = float(sol[2]) if sol[2] > 1e-9 else fallback
    return sol[:2], scale


def _place(model: ShapeModel, theta: float, trans: np.ndarray, scale: float,
           b: np.ndarray) -> np.ndarray:
    return trans + scale * (model.shape(b) @ _rotation(theta).T)


def sample_maps(maps: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Heat-map value of map k at the nearest pixel to points[k] (0 off the map)."""
    h, w, k = maps.shape
    col = np.round(points[:, 0]).astype(int)
    row = np.round(points[:, 1]).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    out = np.zeros(k)
    idx = np.flatnonzero(inside)
    out[idx] = maps[row[idx], col[idx], idx]
    return out


def _local_peaks(maps: np.ndarray, around: np.ndarray, window: float, radius: int = 2
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per map, the strongest pixel within `window` of `around`, refined to the
    value-weighted mean of the positive pixels within ±`radius`: (points (K, 2), value (K,))."""
    h, w, k = maps.shape
    pts = np.array(around, dtype=np.float64)
    vals = np.zeros(k)
    for i in range(k):
        x0 = int(np.clip(np.floor(around[i, 0] - window), 0, w - 1))
        x1 = int(np.clip(np.ceil(around[i, 0] + window), 0, w - 1))
        y0 = int(np.clip(np.floor(around[i, 1] - window), 0, h - 1))
        y1 = int(np.clip(np.ceil(around[i, 1] + window), 0, h - 1))
        patch = maps[y0:y1 + 1, x0:x1 + 1, i]
        if patch.size == 0:
            continue
        r, c = np.unravel_index(int(np.argmax(patch)), patch.shape)
        r, c = r + y0, c + x0
        vals[i] = maps[r, c, i]
        ra, rb = max(r - radius, 0), min(r + radius, h - 1)
        ca, cb = max(c - radius, 0), min(c + radius, w - 1)
        nb = np.maximum(maps[ra:rb + 1, ca:cb + 1, i], 0.0)
        total = nb.sum()
        if total > 0:
            gy, gx = np.mgrid[ra:rb + 1, ca:cb + 1]
            pts[i] = (np.sum(nb * gx) / total, np.sum(nb * gy) / total)
        else:
            pts[i] = (c, r)
    return pts, vals


def fit_heatmaps(model: ShapeModel, maps: np.ndarray, *,
                 windows: Sequence[float] = DEFAULT_WINDOWS, rel_threshold: float = 0.01,
                 confidence: float = 0.1, max_sigma: float = 3.0, prior: float = 1e-3,
                 blend: bool = True, peak_value: float = 1.0) -> ShapeFit:
    """Fit `model` to one image's heat-maps (H, W, K) (map pixels, x right, y down).

    `rel_threshold`: pixels at or below this fraction of their map's peak are ignored.
    `confidence`: Kabsch uses landmarks whose activation is at least this fraction of the
    most confident one, weighted by activation. `windows`: half-sides (px) of the local
    passes after the global one. `blend`: as the authors' code, move each fitted point
    towards the strongest activation within the last window by w = value/`peak_value`
    (clipped to [0, 1]), so confident peaks keep their accuracy and weak ones follow the model.
    """
    hm = np.asarray(maps, np.float64)
    if hm.ndim != 3 or hm.shape[2] != model.n_landmarks:
        raise ValueError(f"heat-maps must be (H, W, {model.n_landmarks}), found {hm.shape}")
    hm = np.where(np.isfinite(hm), hm, 0.0)
    peak = hm.max(axis=(0, 1))
    floor = np.maximum(rel_threshold * np.maximum(peak, 0.0), 0.0)
    flat = hm.reshape(-1, hm.shape[2]).argmax(axis=0)
    argmax = np.stack([flat % hm.shape[1], flat // hm.shape[1]], axis=1).astype(np.float64)

    # pass 1 (global): rotation from the argmax points weighted by their activation
    targets = _targets(hm, floor, None, None)
    kabsch_w = _confident(np.maximum(peak, 0.0), targets.weight, confidence)
    theta = kabsch_angle(model.mean, argmax, kabsch_w)
    trans, scale, b, maha = _solve(model, targets, theta, prior, max_sigma)
    points = _place(model, theta, trans, scale, b)
    # passes 2.. (local): only pixels near the previous fit; rotation from their centres
    for window in windows:
        targets = _targets(hm, floor, points, float(window))
        if not np.any(targets.weight > 0):
            break
        kabsch_w = _confident(targets.confidence, targets.weight, confidence)
        theta = kabsch_angle(model.mean, targets.centre, kabsch_w)
        trans, scale, b, maha = _solve(model, targets, theta, prior, max_sigma)
        points = _place(model, theta, trans, scale, b)
    final = points
    if blend:
        last = float(windows[-1]) if len(windows) else 7.0
        local, value = _local_peaks(hm, points, last)
        wgt = np.clip(value / peak_value, 0.0, 1.0)[:, None]
        final = (1.0 - wgt) * points + wgt * local
    return ShapeFit(final, points, b, scale, theta, np.asarray(trans), maha,
                    sample_maps(hm, final))


def fit_batch(model: ShapeModel, maps: np.ndarray, **kw: Any) -> np.ndarray:
    """Fitted points (B, K, 2) in map pixels for heat-maps (B, H, W, K)."""
    return np.stack([fit_heatmaps(model, m, **kw).points for m in np.asarray(maps)])


# --- `netspec fit` / `netspec eval` glue ----------------------------------------------

SHAPE_MODEL_FILE = "shape_model.npz"


def save_training_shape_model(run_dir: Path, train_faces: Any, dcfg: Any, ecfg: Any) -> Path:
    """Fit the shape model on a run's training shapes (source-image frame: alignment removes
    the crop's similarity transform) and write RUN/shape_model.npz. Mirrored shapes are
    added when training flips faces."""
    from runtime.data.config import augment_config
    from runtime.data.geometry import mirror_permutation

    aug = augment_config(dcfg)
    perm = None
    if aug.enabled and aug.mirror:
        perm = mirror_permutation(train_faces.scheme, train_faces.n_landmarks)
    model = fit_shape_model(train_faces.landmarks, train_faces.visible,
                            ecfg.shape_model_components, perm)
    path = Path(run_dir) / SHAPE_MODEL_FILE
    model.save(path)
    return path
