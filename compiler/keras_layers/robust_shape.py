"""The Keras layer of `robust_init_shape` (see compiler/ops/robust_shape.py).

One vectorised pass over batch x templates x hypotheses: every 2-point similarity
hypothesis is scored at once ([B, M, H, K] residuals), the best per example is gathered and
refitted by weighted least squares. It must equal the numpy reference
runtime/shapes/robust_init.py::ransac_fit (tests/keras/test_robust_shape_op.py).

Similarities are z -> a z + b on complex points, written out in real arithmetic: a = (ar, ai)
is scale x rotation, b the translation. Float32 throughout (no autocast): points in pixels of a
few hundred need finer steps than float16's.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops
import numpy as np

from compiler.ops.robust_shape import EYES_BY_K, hypothesis_pairs

_EPS_SQ = 1e-6  # as runtime/shapes/robust_init.py
_EPS = 1e-3


def _least_squares(t: Any, s: Any, w: Any) -> tuple[Any, Any, Any, Any, Any]:
    """(ar, ai, bx, by, ok) of the weighted fit of templates t [B, K, 2] onto s [B, K, 2]
    with weights w [B, K]; ok is false where the weighted template points have no spread."""
    total = ops.sum(w, axis=1, keepdims=True)  # [B, 1]
    safe = ops.maximum(total, 1e-12)
    tm = ops.sum(t * w[..., None], axis=1, keepdims=True) / safe[..., None]  # [B, 1, 2]
    sm = ops.sum(s * w[..., None], axis=1, keepdims=True) / safe[..., None]
    tc, sc = t - tm, s - sm
    den = ops.sum(w * ops.sum(tc * tc, axis=-1), axis=1)  # [B]
    re = ops.sum(w * (tc[..., 0] * sc[..., 0] + tc[..., 1] * sc[..., 1]), axis=1)
    im = ops.sum(w * (tc[..., 0] * sc[..., 1] - tc[..., 1] * sc[..., 0]), axis=1)
    ok = den > _EPS_SQ
    den = ops.where(ok, den, ops.ones_like(den))
    ar, ai = re / den, im / den
    bx = sm[:, 0, 0] - (ar * tm[:, 0, 0] - ai * tm[:, 0, 1])
    by = sm[:, 0, 1] - (ai * tm[:, 0, 0] + ar * tm[:, 0, 1])
    return ar, ai, bx, by, ok


def _apply(ar: Any, ai: Any, bx: Any, by: Any, t: Any) -> Any:
    """a z + b for per-example (ar, ai, bx, by) [B] on t [B, K, 2]."""
    ar, ai, bx, by = (v[:, None] for v in (ar, ai, bx, by))
    x = ar * t[..., 0] - ai * t[..., 1] + bx
    y = ai * t[..., 0] + ar * t[..., 1] + by
    return ops.stack([x, y], axis=-1)


@keras.saving.register_keras_serializable(package="netspec")
class RobustInitShape(keras.layers.Layer):
    """S_d [B, K, 2] -> S_0 [B, K, 2]: the template with the most RANSAC inliers, refitted.

    `templates` [M, K, 2] is a non-trainable weight (zeros until `netspec fit` fills it from
    the training shapes; with zeros no hypothesis is valid and S_0 = S_d). The hypotheses'
    landmark pairs are drawn from `seed` when the layer is built and are not saved: the
    config rebuilds the same ones."""

    def __init__(self, templates: int = 8, hypotheses: int = 64,
                 inlier_threshold: float = 0.08, seed: int = 0,
                 eyes: list[int] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("autocast", False)
        kwargs.setdefault("dtype", "float32")  # a mixed policy would cast S_d to float16
        super().__init__(**kwargs)
        if templates < 1 or hypotheses < 1 or inlier_threshold <= 0:
            raise ValueError(f"templates and hypotheses must be >= 1 and inlier_threshold "
                             f"> 0, found {templates}, {hypotheses}, {inlier_threshold}")
        self.n_templates, self.hypotheses = int(templates), int(hypotheses)
        self.inlier_threshold, self.seed = float(inlier_threshold), int(seed)
        self.eyes = None if eyes is None else [int(eyes[0]), int(eyes[1])]

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        k = int(input_shape[1])
        eyes = self.eyes if self.eyes is not None else EYES_BY_K.get(k)
        if eyes is None:
            raise ValueError(f"no inter-ocular pair is known for {k} landmarks; pass eyes")
        self._eye_pair = (int(eyes[0]), int(eyes[1]))
        self.templates = self.add_weight(name="templates", shape=(self.n_templates, k, 2),
                                         initializer="zeros", trainable=False,
                                         dtype="float32")
        pairs = hypothesis_pairs(k, self.n_templates, self.hypotheses, self.seed)
        offset = (np.arange(self.n_templates) * k)[:, None]
        self._pairs = pairs  # [M, H, 2] landmark indices
        self._flat_i = (pairs[..., 0] + offset).reshape(-1)  # into templates as [M*K, 2]
        self._flat_j = (pairs[..., 1] + offset).reshape(-1)

    def call(self, sd: Any) -> Any:
        sd = ops.stop_gradient(ops.cast(sd, "float32"))
        m, h = self.n_templates, self.hypotheses
        k = int(sd.shape[1])
        tmpl = ops.cast(self.templates, "float32")  # [M, K, 2] (no float16 under mixed)
        flat = ops.reshape(tmpl, (m * k, 2))
        ti = ops.reshape(ops.take(flat, self._flat_i, axis=0), (m, h, 2))
        tj = ops.reshape(ops.take(flat, self._flat_j, axis=0), (m, h, 2))
        si = ops.reshape(ops.take(sd, self._pairs[..., 0].reshape(-1), axis=1), (-1, m, h, 2))
        sj = ops.reshape(ops.take(sd, self._pairs[..., 1].reshape(-1), axis=1), (-1, m, h, 2))
        e0, e1 = self._eye_pair
        iod = ops.sqrt(ops.sum(ops.square(tmpl[:, e0] - tmpl[:, e1]), axis=-1))  # [M]

        # the hypotheses: a = (s_i - s_j) / (t_i - t_j), b = s_i - a t_i
        dt, ds = ti - tj, si - sj  # [M, H, 2], [B, M, H, 2]
        dt2 = ops.sum(dt * dt, axis=-1)  # [M, H]
        valid = ops.logical_and(dt2 > _EPS_SQ, (iod > _EPS)[:, None])
        safe = ops.where(valid, dt2, ops.ones_like(dt2))
        ar = (ds[..., 0] * dt[..., 0] + ds[..., 1] * dt[..., 1]) / safe
        ai = (ds[..., 1] * dt[..., 0] - ds[..., 0] * dt[..., 1]) / safe  # [B, M, H]
        bx = si[..., 0] - (ar * ti[..., 0] - ai * ti[..., 1])
        by = si[..., 1] - (ai * ti[..., 0] + ar * ti[..., 1])
        tx, ty = tmpl[None, :, None, :, 0], tmpl[None, :, None, :, 1]  # [1, M, 1, K]
        px = ar[..., None] * tx - ai[..., None] * ty + bx[..., None]  # [B, M, H, K]
        py = ai[..., None] * tx + ar[..., None] * ty + by[..., None]
        r = ops.sqrt(ops.square(px - sd[:, None, None, :, 0])
                     + ops.square(py - sd[:, None, None, :, 1]))
        tol = (self.inlier_threshold * ops.sqrt(ar * ar + ai * ai)
               * iod[None, :, None])[..., None]  # [B, M, H, 1]
        inl = r < tol
        count = ops.sum(ops.cast(inl, "float32"), axis=-1)  # [B, M, H]
        spread = ops.sum(ops.where(inl, r / ops.maximum(tol, 1e-30), 0.0), axis=-1)
        score = count - spread / ops.maximum(count, 1.0)  # fewest outliers, then residual
        score = ops.where(valid[None], score, -ops.ones_like(score))
        score = ops.reshape(score, (-1, m * h))
        best = ops.argmax(score, axis=1)  # [B]; the first of equal scores
        top = ops.max(score, axis=1)

        # the winner's template, inliers and hypothesis, then two least-squares refits
        t = ops.take(tmpl, best // h, axis=0)  # [B, K, 2]
        tiod = ops.take(iod, best // h, axis=0)  # [B]
        pick = ops.one_hot(best, m * h, dtype="float32")  # [B, M*H]
        ar0, ai0, bx0, by0 = (ops.sum(ops.reshape(v, (-1, m * h)) * pick, axis=1)
                              for v in (ar, ai, bx, by))
        fit = (ar0, ai0, bx0, by0)
        ok = top > 1.0  # at least 2 inliers
        ok_chain = ok
        for _ in range(2):
            res = ops.sqrt(ops.sum(ops.square(_apply(*fit, t) - sd), axis=-1))  # [B, K]
            bound = self.inlier_threshold * ops.sqrt(fit[0] ** 2 + fit[1] ** 2) * tiod
            w = ops.cast(res < bound[:, None], "float32")
            *cand, good = _least_squares(t, sd, w)
            ok_chain = ops.logical_and(ok_chain,
                                       ops.logical_and(good, ops.sum(w, axis=1) >= 2.0))
            fit = tuple(ops.where(ok_chain, c, f) for c, f in zip(cand, fit, strict=True))
        s0 = _apply(*fit, t)
        return ops.where(ok[:, None, None], s0, sd)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "templates": self.n_templates,
                "hypotheses": self.hypotheses, "inlier_threshold": self.inlier_threshold,
                "seed": self.seed, "eyes": self.eyes}
