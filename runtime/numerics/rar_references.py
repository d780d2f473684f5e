"""Numpy references for RAR's refinement (compiler/keras_layers/refine.py) and its losses
(runtime/train/rar_losses.py), written as plain per-example loops so they share no
vectorisation trick with the TensorFlow code they check; and the numerics-guard cases
that compare the two (runtime/numerics/checks.py runs them with the other losses)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Case = tuple[str, str, Callable[[], tuple[Any, np.ndarray, float]]]


def attention_weights(points: np.ndarray, choice: np.ndarray, kappa: float,
                      radius: float) -> np.ndarray:
    """gamma [B, K]: kappa exp(-|p_l - p_c|^2 / 4 D^2), D = radius sqrt(w h) of the box."""
    pts = np.asarray(points, np.float64)
    out = np.zeros(pts.shape[:2])
    for b in range(pts.shape[0]):
        c = int(np.argmax(choice[b]))
        w, h = pts[b].max(0) - pts[b].min(0)
        d_sq = max(radius ** 2 * w * h, 1e-12)
        for k in range(pts.shape[1]):
            out[b, k] = kappa * np.exp(-np.sum((pts[b, k] - pts[b, c]) ** 2) / (4.0 * d_sq))
    return out


def _residuals(y: np.ndarray, pack: np.ndarray, size: int, col: int) -> np.ndarray:
    """||Gamma_t (S* - S)||^2 per example and step [B, T]; S = pack[..., col:col + 2]."""
    b_n, t_n, k_n, _ = pack.shape
    out = np.zeros((b_n, t_n))
    for b in range(b_n):
        for t in range(t_n):
            for k in range(k_n):
                if y[b, k, 2] > 0.5:
                    d = (y[b, k, :2] - pack[b, t, k, col:col + 2]) / size
                    out[b, t] += pack[b, t, k, 4] ** 2 * float(d @ d)
    return out


def rar_refine(y_true: np.ndarray, pack: np.ndarray, size: int) -> np.ndarray:
    y, p = np.asarray(y_true, np.float64), np.asarray(pack, np.float64)
    return _residuals(y, p, size, 2).sum(-1)


def _log_softmax(v: np.ndarray) -> np.ndarray:
    m = v.max()
    return v - m - np.log(np.exp(v - m).sum())


def rar_attention(y_true: np.ndarray, pack: np.ndarray, size: int, *, mode: str = "reinforce",
                  discount: float = 0.9, baseline: str = "batch_mean",
                  normalize: bool = True) -> np.ndarray:
    y, p = np.asarray(y_true, np.float64), np.asarray(pack, np.float64)
    b_n, t_n, k_n, _ = p.shape
    out = np.zeros(b_n)
    if mode == "surrogate":
        for b in range(b_n):
            vis = [k for k in range(k_n) if y[b, k, 2] > 0.5]
            if not vis:
                continue
            for t in range(t_n):
                err = [np.sum((y[b, k, :2] - p[b, t, k, :2]) ** 2) for k in vis]
                out[b] -= _log_softmax(p[b, t, :, 5])[vis[int(np.argmax(err))]]
        return out
    rewards = _residuals(y, p, size, 0) - _residuals(y, p, size, 2)
    returns = np.zeros_like(rewards)
    for t in range(t_n):
        returns[:, t] = sum(discount ** (u - t) * rewards[:, u] for u in range(t, t_n))
    adv = returns.copy()
    if baseline == "batch_mean" and b_n > 1:
        for b in range(b_n):
            adv[b] = returns[b] - (returns.sum(0) - returns[b]) / (b_n - 1)
    if normalize and b_n > 1:
        adv = adv / np.maximum(returns.std(0), 1e-6)
    for b in range(b_n):
        for t in range(t_n):
            chosen = int(np.argmax(p[b, t, :, 6]))
            if p[b, t, chosen, 6] > 0:
                out[b] -= adv[b, t] * _log_softmax(p[b, t, :, 5])[chosen]
    return out


def random_pack(rng: np.random.Generator, b: int, t: int, k: int, size: int) -> np.ndarray:
    """A plausible stacked pack [B, T, K, 7]: shapes in the crop, gamma in (0, 1], logits,
    one-hot choices."""
    pack = np.zeros((b, t, k, 7), np.float32)
    pack[..., 0:4] = rng.uniform(0, size, (b, t, k, 4))
    pack[..., 4] = rng.uniform(0.05, 1.0, (b, t, k))
    pack[..., 5] = rng.normal(0, 2, (b, t, k))
    pick = rng.integers(0, k, (b, t))
    pack[np.arange(b)[:, None], np.arange(t)[None, :], pick, 6] = 1.0
    return pack


def rar_cases(labels: Callable[[np.random.Generator, int, int, int], np.ndarray],
              tol: Callable[[np.ndarray, float], float]) -> Iterator[Case]:
    """losses.rar_refine / rar_attention(reinforce, surrogate) at RAR's shapes (68 points,
    80 px, T = 3), batch 1 and 64, against the references above."""
    import tensorflow as tf

    from runtime.train.losses import make_loss

    for b in (1, 64):
        for name, args in (("rar_refine", {}), ("rar_attention", {"mode": "reinforce"}),
                           ("rar_attention", {"mode": "surrogate"})):
            def run(b: int = b, name: str = name, args: dict[str, Any] = args
                    ) -> tuple[Any, np.ndarray, float]:
                rng = np.random.default_rng(b)
                y = labels(rng, b, 68, 80)
                pack = random_pack(rng, b, 3, 68, 80)
                fn = make_loss(name, input_size=80, out_shape=(3, 68, 7), **args)
                want = (rar_refine(y, pack, 80) if name == "rar_refine"
                        else rar_attention(y, pack, 80, **args))
                return fn(tf.constant(y), tf.constant(pack)), want, tol(want, 2e-5)
            label = name + (f"({args['mode']})" if args else "")
            yield f"losses.{label}", f"{b}x3x68x7", run
