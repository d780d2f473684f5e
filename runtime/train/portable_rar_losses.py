"""RAR's two losses (runtime/train/rar_losses.py) in keras.ops, for every Keras backend.

Same inputs (stacked steps y_pred [B, T, K, 7] of compiler/ops/refine.py's pack_step:
x_in, y_in, x_out, y_out, gamma, logit, choice in input pixels; labels y_true [B, K, 3]),
same masking and the same values; tests/runtime/test_portable_losses.py checks them and
their gradients against the TF versions. No TensorFlow import here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keras import ops
import numpy as np

from compiler.losses import LossArgs, RarAttentionArgs, RarRefineArgs

Tensor = Any  # a backend tensor
LossFn = Callable[[Tensor, Tensor], Tensor]


def _unpack(y_true: Tensor, y_pred: Tensor, size: int, p: LossArgs) -> tuple[Tensor, ...]:
    """(mask [B, 1, K] with keypoint weights, target [B, 1, K, 2], s_in, s_out [B, T, K, 2],
    gamma, logits, choice [B, T, K]); coordinates / S, invisible labels zeroed."""
    y_true = ops.cast(y_true, "float32")
    pack = ops.cast(y_pred, "float32")
    vis = ops.cast(y_true[..., 2] > 0.5, "float32")
    weights = 1.0 if p.keypoint_weights is None else np.asarray(p.keypoint_weights, np.float32)
    target = ops.where(vis[..., None] > 0, y_true[..., :2], 0.0) / float(size)
    return ((vis * weights)[:, None, :], target[:, None], pack[..., 0:2] / float(size),
            pack[..., 2:4] / float(size), pack[..., 4], pack[..., 5], pack[..., 6])


def weighted_residual(mask: Tensor, gamma: Tensor, target: Tensor, shape: Tensor) -> Tensor:
    """||Gamma (S* - S)||^2 per step [B, T]: sum_l mask_l gamma_l^2 |S*_l - S_l|^2."""
    err = ops.sum(ops.square(target - shape), -1)
    return ops.sum(ops.where(mask > 0, mask * ops.square(gamma) * err, 0.0), -1)


def rar_refine(p: RarRefineArgs, size: int, _shape: tuple) -> LossFn:
    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        mask, target, _s_in, s_out, gamma, _logits, _choice = _unpack(y_true, y_pred, size, p)
        return ops.sum(weighted_residual(mask, gamma, target, s_out), -1)

    return loss


def discounted_returns(rewards: Tensor, discount: float, steps: int) -> Tensor:
    """R_t = sum_{t' >= t} discount^(t' - t) r_t' for rewards [B, T]."""
    t = np.arange(steps)
    power = (t[None, :] - t[:, None]).astype(np.float64)  # [t, t']
    m = np.where(power >= 0, float(discount) ** np.maximum(power, 0.0), 0.0)
    return ops.matmul(rewards, ops.convert_to_tensor(m.T.astype(np.float32)))


def _advantages(returns: Tensor, p: RarAttentionArgs) -> Tensor:
    """R_t - b_t [B, T], optionally over the batch standard deviation; no gradient."""
    n = ops.cast(ops.shape(returns)[0], "float32")
    adv = returns
    if p.baseline == "batch_mean":  # leave-one-out mean of the other examples
        others = (ops.sum(returns, 0, keepdims=True) - returns) / ops.maximum(n - 1.0, 1.0)
        adv = returns - ops.where(n > 1.0, others, 0.0)
    if p.normalize:  # a batch of one has no spread to divide by
        std = ops.maximum(ops.std(returns, axis=0, keepdims=True), 1e-6)
        adv = ops.where(n > 1.0, adv / std, adv)
    return ops.stop_gradient(adv)


def rar_attention(p: RarAttentionArgs, size: int, shape: tuple) -> LossFn:
    steps = int(shape[1])

    def reinforce(y_true: Tensor, y_pred: Tensor) -> Tensor:
        mask, target, s_in, s_out, gamma, logits, choice = _unpack(y_true, y_pred, size, p)
        rewards = (weighted_residual(mask, gamma, target, s_in)
                   - weighted_residual(mask, gamma, target, s_out))
        adv = _advantages(discounted_returns(rewards, p.discount, steps), p)
        log_pi = ops.sum(ops.stop_gradient(choice) * ops.log_softmax(logits, -1), -1)
        return -ops.sum(adv * log_pi, -1)

    def surrogate(y_true: Tensor, y_pred: Tensor) -> Tensor:
        mask, target, s_in, _s_out, _gamma, logits, _choice = _unpack(y_true, y_pred, size, p)
        err = ops.sum(ops.square(target - s_in), -1)  # [B, T, K]
        worst = ops.argmax(ops.where(mask > 0, err, -1.0), axis=-1)  # [B, T]
        logp = ops.log_softmax(logits, -1)
        xent = -ops.take_along_axis(logp, ops.cast(worst, "int32")[..., None], -1)[..., 0]
        any_visible = ops.cast(ops.any(mask > 0, -1), "float32")  # [B, 1]
        return ops.sum(xent * any_visible, -1)

    return reinforce if p.mode == "reinforce" else surrogate
