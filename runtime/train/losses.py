"""TF implementations of the losses named in compiler/losses.py.

`make_loss` returns a plain `fn(y_true, y_pred) -> [B]` per-example loss for
`model.compile`; Keras averages it over the batch. Every loss masks invisible
landmarks and stays finite (0) on an all-masked batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

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
from runtime.train import rar_losses, targets

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def make_loss(name: str, *, input_size: int, out_shape: Sequence[int | None],
              **args: Any) -> LossFn:
    """The per-example loss `name` for an output of `out_shape` ([batch, ...] as in
    TensorType, or without the batch dim) on S×S inputs, S = `input_size`."""
    spec = LOSSES.get(name)
    if spec is None or name not in _BUILDERS:
        raise ValueError("; ".join(check_loss(name, args, (), None)) or f"no loss '{name}'")
    shape = tuple(out_shape)
    if spec.kind == CLASSES:  # scores people, not landmarks: no map or subset logic
        return _classes_loss(name, shape, args)
    if len(shape) == (3 if spec.kind != COORDS else 1):
        shape = (None, *shape)
    if len(shape) == (5 if spec.kind != COORDS else 3) and shape[0] is None:
        return _per_time_step(make_loss(name, input_size=input_size, out_shape=(None, *shape[2:]),
                                        **args))
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
    """A classification loss on [B, N] (or per time step [B, T, N]) logits against
    int class ids [B] ([B, T]); ids < 0 (no training class) are masked."""
    params, shape = checked_class_loss_args(name, args, shape)
    fn = _BUILDERS[name](params, 0, shape)
    fn.__name__ = name
    return fn


def _identity_xent(p: IdentityXentArgs, _size: int, shape: tuple) -> LossFn:
    n = shape[-1]

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        ids = tf.cast(tf.convert_to_tensor(y_true), tf.int32)
        logits = tf.cast(y_pred, tf.float32)
        known = ids >= 0
        target = tf.one_hot(tf.where(known, ids, 0), n)
        if p.label_smoothing > 0:
            target = target * (1.0 - p.label_smoothing) + p.label_smoothing / n
        xent = -tf.reduce_sum(target * tf.nn.log_softmax(logits, axis=-1), axis=-1)
        mask = tf.cast(known, tf.float32)
        terms = tf.where(known, xent, 0.0)
        if len(shape) == 2:  # [B]
            return terms
        return tf.reduce_sum(terms, -1) / tf.maximum(tf.reduce_sum(mask, -1), 1.0)  # over T

    return loss


def _on_landmarks(loss: LossFn, indices: Sequence[int]) -> LossFn:
    """`loss` scored against a subset of the labelled landmarks (y_true [..., K, 3] ->
    [..., len(indices), 3]), so a 7-map output trains on 68-point data."""
    index = tf.constant(list(indices), tf.int32)

    def subset_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return loss(tf.gather(tf.convert_to_tensor(y_true, tf.float32), index, axis=-2), y_pred)

    return subset_loss


def _per_time_step(frame_loss: LossFn) -> LossFn:
    """A per-frame loss on [B, T, ...] outputs against [B, T, K, 3] labels: the mean over
    the T time steps of each clip (time folded into the batch for the frame loss)."""

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        y_true = tf.convert_to_tensor(y_true, tf.float32)
        t = tf.shape(y_true)[1]
        per_frame = frame_loss(tf.reshape(y_true, tf.concat([[-1], tf.shape(y_true)[2:]], 0)),
                               tf.reshape(y_pred, tf.concat([[-1], tf.shape(y_pred)[2:]], 0)))
        return tf.reduce_mean(tf.reshape(per_frame, [-1, t]), axis=1)

    loss.__name__ = frame_loss.__name__
    return loss


# ---- helpers -----------------------------------------------------------------------------

def _maps(y_pred: tf.Tensor) -> tf.Tensor:
    """float32 [B, H, W, K]; Keras squeezes a K=1 output to [B, H, W] before the call."""
    y_pred = tf.cast(y_pred, tf.float32)
    return y_pred[..., None] if y_pred.shape.rank == 3 else y_pred


def _kp_weights(p: LossArgs) -> tf.Tensor | float:
    return 1.0 if p.keypoint_weights is None else tf.constant(p.keypoint_weights, tf.float32)


def _masked_mean(per_kp: tf.Tensor, mask: tf.Tensor, weights: tf.Tensor | float) -> tf.Tensor:
    """Σ_k w_k·m_k·ℓ_k / max(Σ_k m_k, 1): [B, K] -> [B]; masked terms never leak NaN."""
    terms = tf.where(mask > 0, per_kp * weights, 0.0)
    return tf.reduce_sum(terms, -1) / tf.maximum(tf.reduce_sum(mask, -1), 1.0)


# ---- the losses --------------------------------------------------------------------------

def _spatial_softmax_nll(p: SpatialSoftmaxNllArgs, size: int, shape: tuple) -> LossFn:
    h, w, k = shape[1:]
    kw = _kp_weights(p)

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        flat = tf.reshape(tf.transpose(_maps(y_pred), [0, 3, 1, 2]), [-1, k, h * w])
        if p.from_logits:
            logp = tf.nn.log_softmax(flat, axis=-1)
        else:
            logp = tf.math.log(tf.maximum(flat, p.eps if p.eps > 0 else 1e-30))
        index, valid = targets.pixel_index(y_true, size, (h, w))
        nll = -tf.gather(logp, index[..., None], batch_dims=2)[..., 0]
        per_ex = _masked_mean(nll, valid, kw)
        return per_ex * k if p.sum_over_keypoints else per_ex

    return loss


def _heatmap_l2(p: HeatmapL2Args, size: int, shape: tuple) -> LossFn:
    h, w = shape[1:3]
    kw = _kp_weights(p)

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        target = targets.gaussian_maps(y_true, size, (h, w), p.sigma, p.amplitude)
        _, vis = targets.map_coords(y_true, size, (h, w))
        mse = tf.reduce_mean(tf.square(_maps(y_pred) - target), axis=[1, 2])  # [B, K]
        return _masked_mean(mse, vis, kw)

    return loss


def _sigmoid_xent(p: SigmoidXentArgs, size: int, shape: tuple) -> LossFn:
    h, w = shape[1:3]
    kw = _kp_weights(p)

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        if p.target == "gaussian":
            target = targets.gaussian_maps(y_true, size, (h, w), p.sigma)
        else:
            target = targets.disk_maps(y_true, size, (h, w), p.sigma)
        _, vis = targets.map_coords(y_true, size, (h, w))
        if p.pos_weight == "balanced":
            fg = tf.reduce_sum(target, axis=[1, 2])  # [B, K]
            ratio = tf.where(fg > 0, (h * w - fg) / tf.maximum(fg, 1e-6), 1.0)
            pos_weight = tf.stop_gradient(ratio)[:, None, None, :]
        else:
            pos_weight = float(p.pos_weight)
        xent = tf.nn.weighted_cross_entropy_with_logits(
            labels=target, logits=_maps(y_pred), pos_weight=pos_weight)
        return _masked_mean(tf.reduce_mean(xent, axis=[1, 2]), vis, kw)

    return loss


def _coord_l2(p: CoordL2Args, size: int, shape: tuple) -> LossFn:
    kw = _kp_weights(p)

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        y_true = tf.convert_to_tensor(y_true, tf.float32)
        vis = targets.trained_mask(y_true)  # [B, K]
        pred = tf.reshape(tf.cast(y_pred, tf.float32), tf.shape(y_true[..., :2]))
        label = tf.where(vis[..., None] > 0, y_true[..., :2], 0.0)  # NaN labels -> no NaN grads
        diff = pred - label / float(size)
        sq = tf.where(vis > 0, tf.reduce_sum(tf.square(diff), -1) * kw, 0.0)
        total = 0.5 * tf.reduce_sum(sq, -1)
        if p.normalize == "visible":
            total = total / tf.maximum(2.0 * tf.reduce_sum(vis, -1), 1.0)
        return total

    return loss


def _lgcn_weighted_l2(p: LgcnWeightedL2Args, size: int, shape: tuple) -> LossFn:
    from compiler.kernels import named_kernel  # numpy only; kept local so import errors are clear

    h, w = shape[1:3]
    kernel = np.asarray(named_kernel(p.kernel, p.kernel_size), np.float32)
    kw = _kp_weights(p)

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        # eq. 3: w = V + L / 10 + L / 2N * sum_k V, with V the GT mass on the map (the
        # bilinear splat's share inside it) and L = labelled, visible or ABSENT (a point
        # outside the crop, or any point of a background crop, whose target is empty).
        target = targets.kernel_splat(y_true, size, (h, w), kernel)
        py, px = targets.splat_profiles(y_true, size, (h, w))
        labelled = tf.cast(tf.abs(tf.convert_to_tensor(y_true, tf.float32)[..., 2]) > 0.5,
                           tf.float32)
        mass = tf.reduce_sum(py, -1) * tf.reduce_sum(px, -1)  # V: 0 unless visible
        weight = (labelled * (0.1 + 0.5 * tf.reduce_mean(mass, -1, keepdims=True)) + mass) * kw
        sse = tf.reduce_sum(tf.square(_maps(y_pred) - target), axis=[1, 2])  # [B, K]
        return p.scale * tf.reduce_sum(tf.where(labelled > 0, weight * sse, 0.0), -1)

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

IMPLEMENTED: frozenset[str] = frozenset(_BUILDERS)
