"""RAR's robust initial shape in numpy: representative training shapes and a RANSAC fit.

The slides pose S_0 = argmin ||S - S_d||_0 + lambda ||c||_0 subject to S = sum c_i S_i: the
training shape that disagrees with the detected shape S_d at the fewest landmarks, using one
representative shape (||c||_0 = 1). They solve it with K representative shapes (K-means
clustering) and RANSAC. What they leave open, chosen here:

- shapes are compared up to a similarity (position, scale, in-plane rotation): the detector
  places the face anywhere in the crop, so clusters should hold pose and expression, not
  where the face sits. Training shapes are aligned by generalised Procrustes first, and each
  template is fitted to S_d by a similarity (complex form: z -> a z + b, a = scale x rotation);
- missing points (occluded or off the crop) are left out of the alignment and of the K-means
  distances, never filled with guesses;
- the outlier bound is relative: residual < threshold x the fitted template's inter-ocular
  distance, the unit `netspec eval` scores in, so one threshold fits every image size;
- RANSAC's minimal subset is 2 points (a similarity has 4 degrees of freedom); the hypothesis
  with the most inliers wins -- fewest outliers under the inlier bound, the l0 objective --
  ties broken by the smaller mean inlier residual; then least squares on the inliers, once
  more on the refit's inliers (a local-optimisation step: the 2-point fit is noisy, so its
  inlier set can miss good points).

This module is the reference for the graph op `robust_init_shape`
(compiler/keras_layers/robust_shape.py, which must give the same S_0) and what
runtime/train/data_init.py runs on the training shapes to fill the op's templates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ops.robust_shape import EYES_BY_K, hypothesis_pairs

# Below these a template pair / a fitted scale is degenerate (points in pixels: far below
# any real distance, far above float32 rounding of the differences).
_EPS_SQ = 1e-6
_EPS = 1e-3


# --- similarities -----------------------------------------------------------------------

def _c(points: np.ndarray) -> np.ndarray:
    """(…, 2) x, y -> complex (…)."""
    p = np.asarray(points, np.float64)
    return p[..., 0] + 1j * p[..., 1]


def _xy(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1)


def similarity_fit(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
                   ) -> tuple[complex, complex] | None:
    """(a, b) minimising sum_k w_k |a src_k + b - dst_k|^2 for (K, 2) point sets, or None
    when the weighted source points have no spread (any a would do)."""
    s, d = _c(src), _c(dst)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, np.float64)
    total = w.sum()
    if total <= 0:
        return None
    sc = s - (w * s).sum() / total
    dc = d - (w * d).sum() / total
    den = float((w * np.abs(sc) ** 2).sum())
    if den <= _EPS_SQ:
        return None
    a = complex((w * np.conj(sc) * dc).sum() / den)
    b = complex((w * d).sum() / total - a * (w * s).sum() / total)
    return a, b


def apply_similarity(a: complex, b: complex, points: np.ndarray) -> np.ndarray:
    """a z + b on (…, 2) points."""
    return _xy(a * _c(points) + b)


# --- alignment of training shapes ---------------------------------------------------------

@dataclass(frozen=True)
class Aligned:
    shapes: np.ndarray  # (N, K, 2) each mapped onto `mean` by a similarity; invisible
    # points hold the mean's (neutral for anything that forgets the mask)
    mean: np.ndarray  # (K, 2) centred, unit norm
    scale: float  # mean size of the input shapes (their norm about the centroid)
    centre: np.ndarray  # (2,) mean centroid of the input shapes


def _normalised(shape: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Centred on the visible points' centroid, unit norm over them (rescaled to K points
    so shapes with missing points keep the same size)."""
    c = shape[mask].mean(axis=0)
    out = shape - c
    norm = np.sqrt((out[mask] ** 2).sum() * len(shape) / mask.sum())
    return out / norm if norm > 0 else out


def align_shapes(shapes: np.ndarray, visible: np.ndarray, iterations: int = 50,
                 tol: float = 1e-9) -> Aligned:
    """Generalised Procrustes with missing points: each shape (N, K, 2) is mapped by the
    similarity fitted on its visible points onto a mean (and given the mean's spread over
    those points), the mean is re-estimated per landmark from the shapes that see it and
    re-normalised (centred, unit norm) so it cannot shrink. The start is the shape with the
    most visible points (a stable, deterministic reference). Every shape needs >= 2
    visible points and every landmark one shape that sees it (ValueError otherwise)."""
    pts = np.asarray(shapes, np.float64)
    vis = np.asarray(visible, bool)
    if pts.ndim != 3 or pts.shape[-1] != 2 or vis.shape != pts.shape[:2]:
        raise ValueError(f"shapes must be (N, K, 2) with visible (N, K), found {pts.shape}, "
                         f"{vis.shape}")
    vis = vis & np.isfinite(pts).all(axis=-1)
    if (vis.sum(axis=1) < 2).any():
        raise ValueError("every shape needs at least 2 visible points to be aligned")
    if not vis.any(axis=0).all():
        never = np.flatnonzero(~vis.any(axis=0)).tolist()
        raise ValueError(f"landmarks {never} are visible in no training shape")
    pts = np.where(vis[..., None], pts, 0.0)
    sizes = [np.sqrt(((p[m] - p[m].mean(axis=0)) ** 2).sum() * len(p) / m.sum())
             for p, m in zip(pts, vis, strict=True)]
    centres = np.stack([p[m].mean(axis=0) for p, m in zip(pts, vis, strict=True)])
    ref = int(np.argmax(vis.sum(axis=1)))
    mean = _normalised(pts[ref], vis[ref])
    aligned = pts
    for _ in range(iterations):
        aligned = np.stack([_onto(p, m, mean) for p, m in zip(pts, vis, strict=True)])
        counts = vis.sum(axis=0)[:, None]
        new = np.where(vis[..., None], aligned, 0.0).sum(axis=0) / counts
        new = _normalised(new, np.ones(len(new), bool))
        fit = similarity_fit(new, mean)  # keep the reference's orientation (rotation only:
        if fit is not None and abs(fit[0]) > 0:  # a fitted scale would shrink the mean)
            new = _xy(fit[0] / abs(fit[0]) * _c(new))
        done = float(np.abs(new - mean).max()) < tol
        mean = new
        if done:
            break
    aligned = np.where(vis[..., None], aligned, mean)
    return Aligned(aligned, mean, float(np.mean(sizes)), centres.mean(axis=0))


def _onto(shape: np.ndarray, mask: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`shape` moved onto `target` by the least-squares similarity on its visible points,
    then rescaled about their centroid to the target's spread over the same points: a
    fitted scale alone shrinks a shape by its cosine to the target, so shapes far from the
    mean would look small (an exact copy of the target is left exact)."""
    fit = similarity_fit(shape, target, mask.astype(np.float64))
    z = _c(shape) if fit is None else fit[0] * _c(shape) + fit[1]
    t = _c(target)
    zm, tm = z[mask].mean(), t[mask].mean()
    spread = np.sqrt((np.abs(z[mask] - zm) ** 2).sum())
    k = np.sqrt((np.abs(t[mask] - tm) ** 2).sum()) / spread if spread > 0 else 1.0
    return _xy(k * (z - zm) + tm)


# --- K-means ---------------------------------------------------------------------------

def _distances(x: np.ndarray, w: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(N, C) squared distances over each row's visible points, rescaled to all K points."""
    d = ((x[:, None] - centres[None]) ** 2).sum(axis=-1)  # (N, C, K)
    return (d * w[:, None]).sum(axis=-1) * (x.shape[1] / w.sum(axis=1))[:, None]


def _update(x: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int,
            fallback: np.ndarray) -> np.ndarray:
    out = np.empty((k, *x.shape[1:]))
    for c in range(k):
        ww = w[labels == c]
        num = (x[labels == c] * ww[..., None]).sum(axis=0)
        den = ww.sum(axis=0)[:, None]
        out[c] = np.where(den > 0, num / np.maximum(den, 1e-300), fallback)
    return out


def _kmeans_once(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator,
                 fallback: np.ndarray, max_iter: int) -> tuple[np.ndarray, np.ndarray, float]:
    n = len(x)
    # k-means++: each next centre drawn with probability ~ D^2 to the nearest chosen one,
    # so the initial centres spread over the shape space (few bad local optima)
    first = int(rng.integers(n))
    centres = [np.where(w[first][:, None], x[first], fallback)]
    d2 = _distances(x, w, np.stack(centres))[:, 0]
    for _ in range(1, k):
        total = d2.sum()
        pick = int(rng.integers(n)) if total <= 0 else int(rng.choice(n, p=d2 / total))
        centres.append(np.where(w[pick][:, None], x[pick], fallback))
        d2 = np.minimum(d2, _distances(x, w, centres[-1][None])[:, 0])
    c = np.stack(centres)
    labels = np.full(n, -1)
    for _ in range(max_iter):
        d = _distances(x, w, c)
        new = d.argmin(axis=1)
        for empty in sorted(set(range(k)) - set(new.tolist())):
            far = int(d[np.arange(n), new].argmax())  # reseed with the worst-fitted shape
            new[far] = empty
            d[far] = 0.0
        if (new == labels).all():
            break
        labels = new
        c = _update(x, w, labels, k, fallback)
    inertia = float(_distances(x, w, c)[np.arange(n), labels].sum())
    return c, labels, inertia


def kmeans(x: np.ndarray, w: np.ndarray, k: int, seed: int = 0, n_init: int = 4,
           max_iter: int = 100, fallback: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, float]:
    """(centres (k, K, 2), labels (N,), inertia) of Lloyd's K-means on shapes x (N, K, 2)
    whose points count where w (N, K) is true. Seeded k-means++ starts, `n_init` of them,
    the lowest inertia kept: the same input and seed give the same clusters. A centre's
    landmark that none of its shapes sees takes `fallback` (K, 2) (default: the mean)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    if k < 1 or len(x) < k:
        raise ValueError(f"K-means with {k} clusters needs at least {k} shapes, found {len(x)}")
    if fallback is None:
        fallback = (x * w[..., None]).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-300)[:, None]
    rng = np.random.default_rng(seed)
    best = _kmeans_once(x, w, k, rng, fallback, max_iter)
    for _ in range(1, n_init):
        run = _kmeans_once(x, w, k, rng, fallback, max_iter)
        if run[2] < best[2]:
            best = run
    return best


# --- representative shapes ---------------------------------------------------------------

@dataclass(frozen=True)
class Representatives:
    templates: np.ndarray  # float32 (M, K, 2), largest cluster first, in the training frame
    counts: np.ndarray  # (M,) training shapes per cluster
    used: int  # training shapes clustered


def usable_rows(visible: np.ndarray) -> np.ndarray:
    """Rows that see at least half their landmarks (and 2): a shape mostly missing says
    little about pose or expression, and its alignment is poorly determined."""
    vis = np.asarray(visible, bool)
    n = vis.sum(axis=1)
    return np.flatnonzero((n >= 2) & (2 * n >= vis.shape[1]))


def representative_shapes(shapes: np.ndarray, visible: np.ndarray, m: int, seed: int = 0
                          ) -> Representatives:
    """M representative shapes of training shapes (N, K, 2) (visible (N, K)): K-means on
    the Procrustes-aligned shapes, centres placed back at the training set's mean size and
    position (the op fits a similarity, so the frame only makes them readable)."""
    vis = np.asarray(visible, bool)
    rows = usable_rows(vis)
    if len(rows) < m:
        raise ValueError(f"{m} representative shapes need at least {m} training shapes that "
                         f"see half their landmarks, found {len(rows)} of {len(vis)}")
    al = align_shapes(np.asarray(shapes)[rows], vis[rows])
    centres, labels, _ = kmeans(al.shapes, vis[rows], m, seed=seed, fallback=al.mean)
    counts = np.bincount(labels, minlength=m)
    order = np.argsort(-counts, kind="stable")
    placed = centres[order] * al.scale + al.centre
    return Representatives(placed.astype(np.float32), counts[order], len(rows))


# --- RANSAC fit to a detected shape ------------------------------------------------------

@dataclass(frozen=True)
class RansacFit:
    shape: np.ndarray  # (K, 2) S_0 (S_d itself when no hypothesis was valid)
    template: int  # index of the winning template (-1: none)
    inliers: np.ndarray  # (K,) bool: points of S_d within the bound of the final fit


def eye_pair(k: int, eyes: tuple[int, int] | None = None) -> tuple[int, int]:
    """The op's inter-ocular pair for K points (its `eyes` param, or netspec eval's)."""
    if eyes is not None:
        return eyes
    if k not in EYES_BY_K:
        raise ValueError(f"no inter-ocular pair is known for {k} landmarks; pass eyes")
    return EYES_BY_K[k]


def _refit(t: np.ndarray, sd: np.ndarray, mask: np.ndarray
           ) -> tuple[complex, complex] | None:
    if mask.sum() < 2:
        return None
    return similarity_fit(t, sd, mask.astype(np.float64))


def ransac_fit(sd: np.ndarray, templates: np.ndarray, pairs: np.ndarray, threshold: float,
               eyes: tuple[int, int]) -> RansacFit:
    """S_0 for one detected shape sd (K, 2): templates (M, K, 2), pairs (M, H, 2) the
    2-point subsets of each template's hypotheses (compiler.ops.robust_shape.
    hypothesis_pairs), threshold a fraction of the fitted template's inter-ocular distance
    (landmarks `eyes`). See the module docstring for the choices."""
    s = _c(sd)
    best: tuple[float, int, complex, complex] | None = None
    for m, tmpl in enumerate(np.asarray(templates, np.float64)):
        t = _c(tmpl)
        iod = abs(t[eyes[0]] - t[eyes[1]])
        for i, j in pairs[m]:
            dt = t[i] - t[j]
            if abs(dt) ** 2 <= _EPS_SQ or iod <= _EPS:
                continue  # degenerate (e.g. templates not filled yet)
            a = (s[i] - s[j]) / dt
            b = s[i] - a * t[i]
            r = np.abs(a * t + b - s)
            tol = threshold * abs(a) * iod
            inl = r < tol
            count = int(inl.sum())
            score = count - (float((r[inl] / tol).mean()) if count else 0.0)
            if best is None or score > best[0]:  # first of equal scores wins
                best = (score, m, a, b)
    if best is None or best[0] <= 1.0:  # no hypothesis with 2 inliers
        return RansacFit(np.asarray(sd, np.float64), -1, np.zeros(len(s), bool))
    _, m, a, b = best
    t = _c(np.asarray(templates, np.float64)[m])
    iod = abs(t[eyes[0]] - t[eyes[1]])
    for _ in range(2):  # least squares on the inliers, then on the refit's inliers
        inl = np.abs(a * t + b - s) < threshold * abs(a) * iod
        fit = _refit(_xy(t), sd, inl)
        if fit is None:
            break
        a, b = fit
    inl = np.abs(a * t + b - s) < threshold * abs(a) * iod
    return RansacFit(_xy(a * t + b), m, inl)


def ransac_batch(sd: np.ndarray, templates: np.ndarray, hypotheses: int, threshold: float,
                 seed: int = 0, eyes: tuple[int, int] | None = None) -> np.ndarray:
    """S_0 (B, K, 2) for detected shapes (B, K, 2), with the op's hypotheses for `seed`."""
    sd = np.asarray(sd, np.float64)
    k = sd.shape[1]
    pairs = hypothesis_pairs(k, len(templates), hypotheses, seed)
    e = eye_pair(k, eyes)
    return np.stack([ransac_fit(s, templates, pairs, threshold, e).shape for s in sd])
