"""The losses of runtime/train/losses.py in keras.ops, for every Keras backend.

`make_portable_loss` takes the same arguments, runs the same checks and returns the same
per-example `fn(y_true, y_pred) -> [B]` as `make_loss`, built only from keras.ops, so a
model can train with it on JAX or PyTorch (RAR's two losses live in
portable_rar_losses.py, as rar_losses.py beside losses.py). No TensorFlow import here:
the backend test loads this module with TensorFlow unimportable.
tests/runtime/test_portable_losses.py checks values and gradients against the TF losses
at production shapes. PyTorch is untested (not installed here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from keras import ops
import numpy as np

from compiler.losses import (
    CLASSES,
    COORDS,
    LOSSES,
    CoordL2Args,
    HeatmapL2Args,
    IdentityXentArgs,
    LgcnWeightedL2Args,
    LossArgs,
    SigmoidXentArgs,
    SpatialSoftmaxNllArgs,
    check_loss,
    checked_class_loss_args,
    coerce_loss_args,
)
from runtime.train import portable_rar_losses as rar_losses
from runtime.train import portable_targets as targets

Tensor = Any  # a backend tensor
LossFn = Callable[[Tensor, Tensor], Tensor]


def make_portable_loss(name: str, *, input_size: int, out_shape: Sequence[int | None],
                       **args: Any) -> LossFn:
    """The per-example loss `name` for an output of `out_shape` ([batch, ...] or without
    the batch dim) on S×S inputs, S = `input_size`; as runtime.train.losses.make_loss."""
    spec = LOSSES.get(name)
    if spec is None:
        raise ValueError("; ".join(check_loss(name, args, (), None)) or f"no loss '{name}'")
    if name not in _BUILDERS:
        raise ValueError(f"loss '{name}' has no keras.ops version yet (ported: "
                         f"{', '.join(sorted(_BUILDERS))}); it trains on TensorFlow only, "
                         "through runtime.train.losses.make_loss")
    shape = tuple(out_shape)
    if spec.kind == CLASSES:  # scores people, not landmarks: no map or subset logic
        return _classes_loss(name, shape, args)
    if len(shape) == (3 if spec.kind != COORDS else 1):
        shape = (None, *shape)
    if len(shape) == (5 if spec.kind != COORDS else 3) and shape[0] is None:
        return _per_time_step(make_portable_loss(
            name, input_size=input_size, out_shape=(None, *shape[2:]), **args))
    problems = check_loss(name, args, shape, None)
    if spec.kind != COORDS and None in shape[1:]:
        problems.append(f"needs a static map shape [batch, H, W, K], found {shape}")
    params, _ = coerce_loss_args(name, args)
    if problems or params is None:
        raise ValueError(f"loss '{name}': " + "; ".join(problems))
    fn = _BUILDERS[name](params, int(input_size), shape)
    if params.landmarks is not None:
        fn = _on_landmarks(fn, params.landmarks)
    fn.__name__ = name
    return fn


def _classes_loss(name: str, shape: tuple, args: Mapping[str, Any]) -> LossFn:
    """A classification loss on [B, N] (or per time step [B, T, N]) logits against int
    class ids [B] ([B, T]); ids < 0 (no training class) are masked."""
    params, shape = checked_class_loss_args(name, args, shape)
    fn = _BUILDERS[name](params, 0, shape)
    fn.__name__ = name
    return fn


def _identity_xent(p: IdentityXentArgs, _size: int, shape: tuple) -> LossFn:
    n = shape[-1]

    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        ids = ops.cast(y_true, "int32")
        known = ids >= 0
        target = ops.one_hot(ops.where(known, ids, 0), n)
        if p.label_smoothing > 0:
            target = target * (1.0 - p.label_smoothing) + p.label_smoothing / n
        logp = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        terms = ops.where(known, -ops.sum(target * logp, axis=-1), 0.0)
        if len(shape) == 2:  # [B]
            return terms
        mask = ops.cast(known, "float32")
        return ops.sum(terms, -1) / ops.maximum(ops.sum(mask, -1), 1.0)  # over T

    return loss


def _on_landmarks(loss: LossFn, indices: Sequence[int]) -> LossFn:
    """`loss` scored against a subset of the labelled landmarks ([..., K, 3] ->
    [..., len(indices), 3]), so a 7-map output trains on 68-point data."""
    index = np.asarray(list(indices), np.int32)

    def subset_loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        return loss(ops.take(ops.cast(y_true, "float32"), index, axis=-2), y_pred)

    return subset_loss


def _per_time_step(frame_loss: LossFn) -> LossFn:
    """A per-frame loss on [B, T, ...] outputs against [B, T, K, 3] labels: the mean over
    each clip's T steps (time folded into the batch for the frame loss)."""

    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true = ops.cast(y_true, "float32")
        t = ops.shape(y_true)[1]
        per_frame = frame_loss(_fold(y_true), _fold(y_pred))
        return ops.mean(ops.reshape(per_frame, (-1, t)), axis=1)

    loss.__name__ = frame_loss.__name__
    return loss


def _fold(x: Tensor) -> Tensor:
    """[B, T, ...] -> [B·T, ...]."""
    return ops.reshape(x, (-1, *ops.shape(x)[2:]))


# ---- helpers -----------------------------------------------------------------------------

def _maps(y_pred: Tensor) -> Tensor:
    """float32 [B, H, W, K]; Keras squeezes a K=1 output to [B, H, W] before the call."""
    y_pred = ops.cast(y_pred, "float32")
    return y_pred[..., None] if len(y_pred.shape) == 3 else y_pred


def _kp_weights(p: LossArgs) -> np.ndarray | float:
    return 1.0 if p.keypoint_weights is None else np.asarray(p.keypoint_weights, np.float32)


def _masked_mean(per_kp: Tensor, mask: Tensor, weights: np.ndarray | float) -> Tensor:
    """Σ_k w_k·m_k·ℓ_k / max(Σ_k m_k, 1): [B, K] -> [B]; masked terms never leak NaN."""
    terms = ops.where(mask > 0, per_kp * weights, 0.0)
    return ops.sum(terms, -1) / ops.maximum(ops.sum(mask, -1), 1.0)


# ---- the losses --------------------------------------------------------------------------

def _spatial_softmax_nll(p: SpatialSoftmaxNllArgs, size: int, shape: tuple) -> LossFn:
    h, w, k = shape[1:]
    kw = _kp_weights(p)
    floor = p.eps if p.eps > 0 else 1e-30

    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        flat = ops.reshape(ops.transpose(_maps(y_pred), (0, 3, 1, 2)), (-1, k, h * w))
        index, valid = targets.pixel_index(y_true, size, (h, w))
        picked = ops.take_along_axis(flat, index[..., None], axis=-1)[..., 0]  # [B, K]
        # −log p at the target pixel only: the [B, K, H·W] log-probabilities are never built
        if p.from_logits:
            nll = ops.logsumexp(flat, axis=-1) - picked
        else:
            nll = -ops.log(ops.maximum(picked, floor))
        per_ex = _masked_mean(nll, valid, kw)
        return per_ex * k if p.sum_over_keypoints else per_ex

    return loss


def _heatmap_l2(p: HeatmapL2Args, size: int, shape: tuple) -> LossFn:
    h, w = shape[1:3]
    kw = _kp_weights(p)

    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        target = targets.gaussian_maps(y_true, size, (h, w), p.sigma, p.amplitude)
        vis = targets.trained_mask(y_true)
        mse = ops.mean(ops.square(_maps(y_pred) - target), axis=(1, 2))  # [B, K]
        return _masked_mean(mse, vis, kw)

    return loss


def weighted_xent_with_logits(labels: Tensor, logits: Tensor, pos_weight: Tensor | float
                              ) -> Tensor:
    """q·z·−log σ(x) + (1 − z)·−log(1 − σ(x)) in the overflow-safe form
    (1 − z)·x + (1 + (q − 1)·z)·(log(1 + e^−|x|) + max(−x, 0))."""
    log_weight = 1.0 + (pos_weight - 1.0) * labels
    return (1.0 - labels) * logits + log_weight * (
        ops.log1p(ops.exp(-ops.abs(logits))) + ops.relu(-logits))


def _sigmoid_xent(p: SigmoidXentArgs, size: int, shape: tuple) -> LossFn:
    h, w = shape[1:3]
    kw = _kp_weights(p)

    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        if p.target == "gaussian":
            target = targets.gaussian_maps(y_true, size, (h, w), p.sigma)
        else:
            target = targets.disk_maps(y_true, size, (h, w), p.sigma)
        vis = targets.trained_mask(y_true)
        if p.pos_weight == "balanced":
            fg = ops.sum(target, axis=(1, 2))  # [B, K]
            ratio = ops.where(fg > 0, (h * w - fg) / ops.maximum(fg, 1e-6), 1.0)
            pos_weight = ops.stop_gradient(ratio)[:, None, None, :]
        else:
            pos_weight = float(p.pos_weight)
        xent = weighted_xent_with_logits(target, _maps(y_pred), pos_weight)
        return _masked_mean(ops.mean(xent, axis=(1, 2)), vis, kw)

    return loss


def _coord_l2(p: CoordL2Args, size: int, shape: tuple) -> LossFn:
    kw = _kp_weights(p)

    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true = ops.cast(y_true, "float32")
        vis = targets.trained_mask(y_true)  # [B, K]
        pred = ops.reshape(ops.cast(y_pred, "float32"), ops.shape(y_true[..., :2]))
        label = ops.where(vis[..., None] > 0, y_true[..., :2], 0.0)  # NaN labels: no NaN grads
        diff = pred - label / float(size)
        sq = ops.where(vis > 0, ops.sum(ops.square(diff), -1) * kw, 0.0)
        total = 0.5 * ops.sum(sq, -1)
        if p.normalize == "visible":
            total = total / ops.maximum(2.0 * ops.sum(vis, -1), 1.0)
        return total

    return loss


def _lgcn_weighted_l2(p: LgcnWeightedL2Args, size: int, shape: tuple) -> LossFn:
    from compiler.kernels import named_kernel  # numpy only; kept local as in losses.py

    h, w = shape[1:3]
    kernel = np.asarray(named_kernel(p.kernel, p.kernel_size), np.float32)
    targets.kernel_table(kernel, (h, w))  # a bad kernel fails here, not at the first call
    kw = _kp_weights(p)

    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        # LGCN eq. 3: w = V + L/10 + L/2N·Σ_k V (losses._lgcn_weighted_l2 says more).
        y_true = ops.cast(y_true, "float32")
        target = targets.kernel_splat(y_true, size, (h, w), kernel)
        py, px = targets.splat_profiles(y_true, size, (h, w))
        labelled = ops.cast(ops.abs(y_true[..., 2]) > 0.5, "float32")
        mass = ops.sum(py, -1) * ops.sum(px, -1)  # V: 0 unless visible
        weight = (labelled * (0.1 + 0.5 * ops.mean(mass, -1, keepdims=True)) + mass) * kw
        sse = ops.sum(ops.square(_maps(y_pred) - target), axis=(1, 2))  # [B, K]
        return p.scale * ops.sum(ops.where(labelled > 0, weight * sse, 0.0), -1)

    return loss


_BUILDERS: Mapping[str, Callable[[Any, int, tuple], LossFn]] = {
    "spatial_softmax_nll": _spatial_softmax_nll,
    "heatmap_l2": _heatmap_l2,
    "sigmoid_xent": _sigmoid_xent,
    "coord_l2": _coord_l2,
    "lgcn_weighted_l2": _lgcn_weighted_l2,
    "identity_xent": _identity_xent,
    "rar_refine": rar_losses.rar_refine,
    "rar_attention": rar_losses.rar_attention,
}

PORTABLE: frozenset[str] = frozenset(_BUILDERS)
