"""TF implementations of RAR's two losses (compiler/losses.py: rar_refine, rar_attention).

Both read the stacked refinement steps y_pred [B, T, K, 7] (compiler/ops/refine.py's
pack_step: x_in, y_in, x_out, y_out, gamma, logit, choice, in input pixels) and the labels
y_true [B, K, 3] (x, y in input pixels, state > 0.5 = visible). Coordinates are divided by
the input side S, so a loss value does not depend on the resolution (as coord_l2).
Invisible landmarks are masked: they add no error, no reward and are never the surrogate's
target. Each builder returns fn(y_true, y_pred) -> [B].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from compiler.losses import LossArgs, RarAttentionArgs, RarRefineArgs

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _unpack(y_true: tf.Tensor, y_pred: tf.Tensor, size: int, p: LossArgs
            ) -> tuple[tf.Tensor, ...]:
    """(mask [B, 1, K] with keypoint weights, target [B, 1, K, 2], s_in, s_out [B, T, K, 2],
    gamma, logits, choice [B, T, K]); coordinates / S, invisible labels zeroed."""
    y_true = tf.convert_to_tensor(y_true, tf.float32)
    pack = tf.cast(y_pred, tf.float32)
    vis = tf.cast(y_true[..., 2] > 0.5, tf.float32)
    weights = 1.0 if p.keypoint_weights is None else tf.constant(p.keypoint_weights, tf.float32)
    target = tf.where(vis[..., None] > 0, y_true[..., :2], 0.0) / float(size)
    return ((vis * weights)[:, None, :], target[:, None], pack[..., 0:2] / float(size),
            pack[..., 2:4] / float(size), pack[..., 4], pack[..., 5], pack[..., 6])


def weighted_residual(mask: tf.Tensor, gamma: tf.Tensor, target: tf.Tensor,
                      shape: tf.Tensor) -> tf.Tensor:
    """||Gamma (S* - S)||^2 per step [B, T]: sum_l mask_l gamma_l^2 |S*_l - S_l|^2."""
    err = tf.reduce_sum(tf.square(target - shape), -1)
    return tf.reduce_sum(tf.where(mask > 0, mask * tf.square(gamma) * err, 0.0), -1)


def rar_refine(p: RarRefineArgs, size: int, _shape: tuple) -> LossFn:
    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        mask, target, _s_in, s_out, gamma, _logits, _choice = _unpack(y_true, y_pred, size, p)
        return tf.reduce_sum(weighted_residual(mask, gamma, target, s_out), -1)

    return loss


def discounted_returns(rewards: tf.Tensor, discount: float, steps: int) -> tf.Tensor:
    """R_t = sum_{t' >= t} discount^(t' - t) r_t' for rewards [B, T]."""
    t = np.arange(steps)
    power = (t[None, :] - t[:, None]).astype(np.float64)  # [t, t']
    m = np.where(power >= 0, float(discount) ** np.maximum(power, 0.0), 0.0)
    return tf.linalg.matvec(tf.constant(m, tf.float32), rewards)


def _advantages(returns: tf.Tensor, p: RarAttentionArgs) -> tf.Tensor:
    """R_t - b_t [B, T], optionally over the batch standard deviation; no gradient."""
    n = tf.cast(tf.shape(returns)[0], tf.float32)
    adv = returns
    if p.baseline == "batch_mean":
        others = (tf.reduce_sum(returns, 0, keepdims=True) - returns) / tf.maximum(n - 1.0, 1.0)
        adv = returns - tf.where(n > 1.0, others, 0.0)
    if p.normalize:  # a batch of one has no spread to divide by
        std = tf.maximum(tf.math.reduce_std(returns, axis=0, keepdims=True), 1e-6)
        adv = tf.where(n > 1.0, adv / std, adv)
    return tf.stop_gradient(adv)


def rar_attention(p: RarAttentionArgs, size: int, shape: tuple) -> LossFn:
    steps = int(shape[1])

    def reinforce(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        mask, target, s_in, s_out, gamma, logits, choice = _unpack(y_true, y_pred, size, p)
        rewards = (weighted_residual(mask, gamma, target, s_in)
                   - weighted_residual(mask, gamma, target, s_out))
        adv = _advantages(discounted_returns(rewards, p.discount, steps), p)
        log_pi = tf.reduce_sum(tf.stop_gradient(choice) * tf.nn.log_softmax(logits, -1), -1)
        return -tf.reduce_sum(adv * log_pi, -1)

    def surrogate(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        mask, target, s_in, _s_out, _gamma, logits, _choice = _unpack(y_true, y_pred, size, p)
        err = tf.reduce_sum(tf.square(target - s_in), -1)  # [B, T, K]
        worst = tf.argmax(tf.where(mask > 0, err, -1.0), axis=-1)  # [B, T]
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=worst, logits=logits)
        any_visible = tf.cast(tf.reduce_any(mask > 0, -1), tf.float32)  # [B, 1]
        return tf.reduce_sum(xent * any_visible, -1)

    return reinforce if p.mode == "reinforce" else surrogate
