"""Core ops: normalisation, dropout, activations, dense, reshaping, global pools.

Counts follow one convention: parameters are every Keras weight (trainable or not,
as `count_params` does); FLOPs are per example at inference, a multiply-add is 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Literal

from compiler.diagnostics import ShapeMismatch, did_you_mean
from compiler.ir import TensorType
from compiler.ops.activations import activation_problem
from compiler.ops.shapes import axis_index, need_rank
from compiler.params import NoParams, OpParams, param
from compiler.registry import OpDef

INITIALIZERS: tuple[str, ...] = (
    "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal",
    "lecun_uniform", "zeros", "ones", "random_normal", "random_uniform",
    "truncated_normal", "orthogonal", "variance_scaling",
)


def elems(x: TensorType) -> int:
    """Elements per example; unknown sizes count as 1 (for FLOP estimates only)."""
    return prod(d or 1 for d in x.shape[1:])


def _initializer_problem(name: str) -> str | None:
    if name in INITIALIZERS:
        return None
    return f"unknown initializer '{name}'; {did_you_mean(name, INITIALIZERS, 'initializers')}"





# --- batch_norm -------------------------------------------------------------------


@dataclass(frozen=True)
class BatchNormParams(OpParams):
    axis: int = param(-1, "feature axis to normalise per channel (default: channels)")
    momentum: float = param(0.99, "moving-average momentum: new = m*old + (1-m)*batch",
                            min=0.0, max=1.0)
    epsilon: float = param(1e-3, "added to the variance; must be > 0", min=0.0)
    center: bool = param(True, "learn an offset (beta)")
    scale: bool = param(True, "learn a scale (gamma)")

    def problems(self) -> list[tuple[str, str]]:
        return [("epsilon", "must be > 0")] if self.epsilon <= 0 else []


def infer_batch_norm(p: BatchNormParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    axis = axis_index(p.axis, x)
    if x.shape[axis] is None:
        raise ShapeMismatch(f"batch_norm needs a known size on axis {axis}, found {x}")
    return x


def count_batch_norm(p: BatchNormParams, xs: tuple[TensorType, ...], _out: TensorType) -> int:
    """gamma and beta (if enabled) plus the non-trainable moving mean and variance."""
    channels = xs[0].shape[axis_index(p.axis, xs[0])] or 0
    return channels * (2 + int(p.center) + int(p.scale))


def lower_batch_norm(p: BatchNormParams, name: str):  # noqa: ANN201 - Keras layer
    from keras import layers

    return layers.BatchNormalization(axis=p.axis, momentum=p.momentum, epsilon=p.epsilon,
                                     center=p.center, scale=p.scale, name=name)


# --- dropout ----------------------------------------------------------------------


@dataclass(frozen=True)
class DropoutParams(OpParams):
    rate: float = param(doc="fraction dropped (bernoulli) or noise level (gaussian)",
                        min=0.0, max=1.0, max_exclusive=True)
    noise: Literal["bernoulli", "gaussian"] = param(
        "bernoulli", "bernoulli: zero units and rescale; gaussian: multiply by "
        "N(1, rate/(1-rate)) noise (rate 0.5 gives RCN's N(1, 1))")


def lower_dropout(p: DropoutParams, name: str):  # noqa: ANN201
    from keras import layers

    if p.noise == "gaussian":
        return layers.GaussianDropout(p.rate, name=name)
    return layers.Dropout(p.rate, name=name)


# --- activation / softmax ---------------------------------------------------------


@dataclass(frozen=True)
class ActivationParams(OpParams):
    activation: str = param(doc="activation name (see compiler.ops.activations)")

    def problems(self) -> list[tuple[str, str]]:
        msg = activation_problem(self.activation)
        return [("activation", msg)] if msg else []


def infer_same(_p: OpParams, xs: tuple[TensorType, ...]) -> TensorType:
    return xs[0]


def lower_activation(p: ActivationParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.Activation(p.activation, name=name)


@dataclass(frozen=True)
class SoftmaxParams(OpParams):
    axis: int = param(-1, "axis that sums to 1")


def infer_softmax(p: SoftmaxParams, xs: tuple[TensorType, ...]) -> TensorType:
    axis_index(p.axis, xs[0])
    return xs[0]


def lower_softmax(p: SoftmaxParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.Softmax(axis=p.axis, name=name)


# --- dense ------------------------------------------------------------------------


@dataclass(frozen=True)
class DenseParams(OpParams):
    units: int = param(doc="output features", min=1)
    activation: str = param("linear", "activation name")
    use_bias: bool = param(True, "add a learned bias")
    kernel_initializer: str = param("glorot_uniform", "kernel initializer name")
    bias_initializer: str = param("zeros", "bias initializer name")
    l2: float = param(0.0, "L2 penalty on the kernel (0: none)", min=0.0)

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if msg := activation_problem(self.activation):
            out.append(("activation", msg))
        for key in ("kernel_initializer", "bias_initializer"):
            if msg := _initializer_problem(getattr(self, key)):
                out.append((key, msg))
        return out


def infer_dense(p: DenseParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    if x.rank < 2:
        raise ShapeMismatch(f"dense needs rank >= 2 [batch, ..., features], found {x}")
    if x.shape[-1] is None:
        raise ShapeMismatch(f"dense needs a known last axis (features), found {x}")
    return TensorType((*x.shape[:-1], p.units), x.dtype)


def count_dense(p: DenseParams, xs: tuple[TensorType, ...], _out: TensorType) -> int:
    fan_in = xs[0].shape[-1] or 0
    return fan_in * p.units + (p.units if p.use_bias else 0)


def flops_dense(p: DenseParams, xs: tuple[TensorType, ...], out: TensorType) -> int:
    positions = elems(out) // p.units
    fan_in = xs[0].shape[-1] or 0
    return positions * p.units * (2 * fan_in + int(p.use_bias))


def lower_dense(p: DenseParams, name: str):  # noqa: ANN201
    from keras import layers, regularizers

    return layers.Dense(p.units, activation=p.activation, use_bias=p.use_bias,
                        kernel_initializer=p.kernel_initializer,
                        bias_initializer=p.bias_initializer,
                        kernel_regularizer=regularizers.L2(p.l2) if p.l2 else None,
                        name=name)


# --- flatten / reshape / identity -------------------------------------------------


def infer_flatten(_p: NoParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    if x.rank < 2:
        raise ShapeMismatch(f"flatten needs rank >= 2, found {x}")
    dims = x.shape[1:]
    return TensorType((None, None if None in dims else prod(dims)), x.dtype)  # type: ignore[arg-type]


def lower_flatten(_p: NoParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.Flatten(name=name)


@dataclass(frozen=True)
class ReshapeParams(OpParams):
    target_shape: tuple[int, ...] = param(
        doc="per-example shape (no batch); one entry may be -1 to be computed")

    def problems(self) -> list[tuple[str, str]]:
        if not self.target_shape:
            return [("target_shape", "must name at least one axis")]
        if any(d == 0 or d < -1 for d in self.target_shape):
            found = list(self.target_shape)
            return [("target_shape", f"entries must be >= 1 or -1, found {found}")]
        if self.target_shape.count(-1) > 1:
            return [("target_shape", "at most one entry may be -1")]
        return []


def infer_reshape(p: ReshapeParams, xs: tuple[TensorType, ...]) -> TensorType:
    x, target = xs[0], p.target_shape
    dims = x.shape[1:]
    have = None if None in dims else prod(dims)  # type: ignore[arg-type]
    fixed = prod(d for d in target if d != -1)
    hint = "the element count per example must stay the same; one axis may be -1"
    if -1 in target:
        if have is not None and have % fixed:
            raise ShapeMismatch(f"cannot reshape {x} ({have} elements per example) to "
                                f"{list(target)}: {have} is not a multiple of {fixed}", hint)
        fill = None if have is None else have // fixed
        return TensorType((None, *(fill if d == -1 else d for d in target)), x.dtype)
    if have is not None and have != fixed:
        raise ShapeMismatch(f"cannot reshape {x} ({have} elements per example) to "
                            f"{list(target)} ({fixed} elements)", hint)
    return TensorType((None, *target), x.dtype)


def lower_reshape(p: ReshapeParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.Reshape(p.target_shape, name=name)


def lower_identity(_p: NoParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.Identity(name=name)


# --- global pools -----------------------------------------------------------------


def infer_global_pool2d(_p: NoParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    need_rank(x, 4, "images [batch, height, width, channels]")
    return TensorType((None, x.shape[3]), x.dtype)


def lower_global_avg_pool2d(_p: NoParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.GlobalAveragePooling2D(keepdims=False, name=name)


def lower_global_max_pool2d(_p: NoParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.GlobalMaxPooling2D(keepdims=False, name=name)


def _in_elems(_p: OpParams, xs: tuple[TensorType, ...], _out: TensorType) -> int:
    return elems(xs[0])


BATCH_NORM = OpDef("batch_norm", BatchNormParams, infer_batch_norm, lower_batch_norm,
                   "Batch normalisation over `axis` (Keras BatchNormalization).",
                   count_params=count_batch_norm,
                   flops=lambda _p, xs, _o: 2 * elems(xs[0]), family="core")
DROPOUT = OpDef("dropout", DropoutParams, infer_same, lower_dropout,
                "Training-only noise: bernoulli dropout or multiplicative gaussian noise; "
                "identity at inference.", family="core")
ACTIVATION = OpDef("activation", ActivationParams, infer_same, lower_activation,
                   "Apply a named element-wise activation.", flops=_in_elems, family="core")
DENSE = OpDef("dense", DenseParams, infer_dense, lower_dense,
              "Fully connected layer on the last axis (rank >= 2).",
              count_params=count_dense, flops=flops_dense, family="core")
FLATTEN = OpDef("flatten", NoParams, infer_flatten, lower_flatten,
                "Collapse all per-example axes into one.", family="core")
RESHAPE = OpDef("reshape", ReshapeParams, infer_reshape, lower_reshape,
                "Reshape each example to `target_shape`; the element count must match.",
                family="core")
GLOBAL_AVG_POOL2D = OpDef("global_avg_pool2d", NoParams, infer_global_pool2d,
                          lower_global_avg_pool2d,
                          "Mean over height and width: [B, H, W, C] -> [B, C].",
                          flops=_in_elems, family="core")
GLOBAL_MAX_POOL2D = OpDef("global_max_pool2d", NoParams, infer_global_pool2d,
                          lower_global_max_pool2d,
                          "Max over height and width: [B, H, W, C] -> [B, C].",
                          flops=_in_elems, family="core")
IDENTITY = OpDef("identity", NoParams, infer_same, lower_identity,
                 "Pass the input through unchanged (a named tap point).", family="core")
SOFTMAX = OpDef("softmax", SoftmaxParams, infer_softmax, lower_softmax,
                "Softmax along `axis` (default: last).",
                flops=lambda _p, xs, _o: 3 * elems(xs[0]), family="core")

OPS = (BATCH_NORM, DROPOUT, ACTIVATION, DENSE, FLATTEN, RESHAPE, GLOBAL_AVG_POOL2D,
       GLOBAL_MAX_POOL2D, IDENTITY, SOFTMAX)
