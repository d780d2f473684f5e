"""Sequence ops on [batch, time, ...] tensors: LSTMs, per-step wrapping, time slicing.

`time_distributed` wraps any one-input op from the default registry, so a spec can
run e.g. a conv2d on every frame without a dedicated per-frame op for each kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from compiler.diagnostics import UNKNOWN_LOC, ShapeMismatch, did_you_mean
from compiler.ir import TensorType
from compiler.ops.activations import activation_problem
from compiler.ops.shapes import conv_out, need_rank, pair, positive_spatial
from compiler.params import OpParams, coerce_params, param
from compiler.registry import OpDef

_RATE = {"min": 0.0, "max": 1.0, "max_exclusive": True}


def _activation_problems(p: OpParams, *keys: str) -> list[tuple[str, str]]:
    return [(k, msg) for k in keys if (msg := activation_problem(getattr(p, k)))]


def _known_features(x: TensorType, op: str) -> None:
    if x.shape[-1] is None:
        raise ShapeMismatch(f"{op} needs a known last axis (features/channels), found {x}")


def _steps(x: TensorType) -> int:
    """Time steps for FLOP estimates; an unknown length counts as 1."""
    return x.shape[1] or 1


# --- lstm -------------------------------------------------------------------------


@dataclass(frozen=True)
class LSTMParams(OpParams):
    units: int = param(doc="hidden state size", min=1)
    return_sequences: bool = param(False, "output every step [B, T, units], not only the last")
    activation: str = param("tanh", "cell and output activation")
    recurrent_activation: str = param("sigmoid", "gate activation")
    dropout: float = param(0.0, "dropout on the inputs (training only)", **_RATE)
    recurrent_dropout: float = param(0.0, "dropout on the recurrent state (training only)",
                                     **_RATE)
    go_backwards: bool = param(False, "process the sequence in reverse")
    l2: float = param(0.0, "L2 penalty on the input and recurrent kernels (0: none)", min=0.0)
    bidirectional: bool = param(
        False, "also run a second LSTM (own weights) backwards in time and concatenate: "
               "2*units features, twice the params (Keras Bidirectional, merge_mode concat)")

    def problems(self) -> list[tuple[str, str]]:
        out = _activation_problems(self, "activation", "recurrent_activation")
        if self.bidirectional and self.go_backwards:
            out.append(("go_backwards", "bidirectional already runs one direction backwards; "
                                        "drop go_backwards"))
        return out


def _directions(p: LSTMParams) -> int:
    return 2 if p.bidirectional else 1


def infer_lstm(p: LSTMParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    need_rank(x, 3, "sequences [batch, time, features]")
    _known_features(x, "lstm")
    units = _directions(p) * p.units
    if p.return_sequences:
        return TensorType((None, x.shape[1], units), x.dtype)
    return TensorType((None, units), x.dtype)


def count_lstm(p: LSTMParams, xs: tuple[TensorType, ...], _out: TensorType) -> int:
    """Four gates, each with an input kernel, a recurrent kernel and a bias (per direction)."""
    features = xs[0].shape[-1] or 0
    return _directions(p) * 4 * p.units * (features + p.units + 1)


def flops_lstm(p: LSTMParams, xs: tuple[TensorType, ...], _out: TensorType) -> int:
    """Per step: gate matmuls and biases, plus the cell/state update (activations not counted)."""
    features, u = xs[0].shape[-1] or 0, p.units
    return _directions(p) * _steps(xs[0]) * (8 * u * (features + u) + 4 * u + 4 * u)


def lower_lstm(p: LSTMParams, name: str):  # noqa: ANN201 - Keras layer
    from keras import layers, regularizers

    reg = regularizers.L2(p.l2) if p.l2 else None
    lstm = layers.LSTM(p.units, activation=p.activation,
                       recurrent_activation=p.recurrent_activation, dropout=p.dropout,
                       recurrent_dropout=p.recurrent_dropout,
                       return_sequences=p.return_sequences, go_backwards=p.go_backwards,
                       kernel_regularizer=reg, recurrent_regularizer=reg,
                       name=f"{name}_lstm" if p.bidirectional else name)
    if p.bidirectional:
        return layers.Bidirectional(lstm, merge_mode="concat", name=name)
    return lstm


# --- conv_lstm2d ------------------------------------------------------------------


@dataclass(frozen=True)
class ConvLSTM2DParams(OpParams):
    filters: int = param(doc="state channels", min=1)
    kernel_size: int | tuple[int, int] = param(doc="window size, int or [h, w]", min=1)
    strides: int | tuple[int, int] = param(1, "input-conv stride", min=1)
    padding: Literal["same", "valid"] = param(
        "same", "input-conv padding; netspec's default is 'same', Keras' is 'valid'")
    dilation_rate: int | tuple[int, int] = param(1, "input-conv dilation", min=1)
    return_sequences: bool = param(False, "output every step, not only the last")
    activation: str = param("tanh", "cell and output activation")
    recurrent_activation: str = param("sigmoid", "gate activation")
    dropout: float = param(0.0, "dropout on the inputs (training only)", **_RATE)

    def problems(self) -> list[tuple[str, str]]:
        out = _activation_problems(self, "activation", "recurrent_activation")
        if max(pair(self.strides)) > 1 and max(pair(self.dilation_rate)) > 1:
            out.append(("dilation_rate", "cannot combine strides > 1 with dilation_rate > 1"))
        return out


def infer_conv_lstm2d(p: ConvLSTM2DParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    need_rank(x, 5, "frame sequences [batch, time, height, width, channels]")
    _known_features(x, "conv_lstm2d")
    (kh, kw), (sh, sw), (dh, dw) = pair(p.kernel_size), pair(p.strides), pair(p.dilation_rate)
    h = conv_out(x.shape[2], kh, sh, p.padding, dh)
    w = conv_out(x.shape[3], kw, sw, p.padding, dw)
    out = TensorType((None, x.shape[1], h, w, p.filters), x.dtype)
    positive_spatial(out, x, "conv_lstm2d")
    if p.return_sequences:
        return out
    return TensorType((None, h, w, p.filters), x.dtype)


def count_conv_lstm2d(p: ConvLSTM2DParams, xs: tuple[TensorType, ...], _out: TensorType) -> int:
    kh, kw = pair(p.kernel_size)
    channels = xs[0].shape[-1] or 0
    return 4 * p.filters * (kh * kw * (channels + p.filters) + 1)


def flops_conv_lstm2d(p: ConvLSTM2DParams, xs: tuple[TensorType, ...], out: TensorType) -> int:
    kh, kw = pair(p.kernel_size)
    channels, f = xs[0].shape[-1] or 0, p.filters
    positions = (out.shape[-3] or 1) * (out.shape[-2] or 1)
    return _steps(xs[0]) * positions * (8 * f * kh * kw * (channels + f) + 8 * f)


def lower_conv_lstm2d(p: ConvLSTM2DParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.ConvLSTM2D(p.filters, pair(p.kernel_size), strides=pair(p.strides),
                             padding=p.padding, dilation_rate=pair(p.dilation_rate),
                             activation=p.activation,
                             recurrent_activation=p.recurrent_activation, dropout=p.dropout,
                             return_sequences=p.return_sequences, name=name)


# --- time_distributed -------------------------------------------------------------


@dataclass(frozen=True)
class TimeDistributedParams(OpParams):
    # hash=False: a dict is unhashable; equal params still hash equal (eq compares it).
    layer: Mapping[str, Any] = field(hash=False, metadata={
        "doc": "the op applied to every step: {op: NAME, ...its params}",
        "min": None, "max": None, "max_exclusive": False})

    def problems(self) -> list[tuple[str, str]]:
        try:
            resolve_inner(self.layer)
        except ShapeMismatch as e:
            return [("layer", str(e) + (f" ({e.hint})" if e.hint else ""))]
        return []


def resolve_inner(layer: Mapping[str, Any]) -> tuple[OpDef, OpParams]:
    """The inner op and its checked params; ShapeMismatch names what is wrong."""
    from compiler.ops import DEFAULT_OPS  # lazy: compiler.ops imports this module

    raw = dict(layer)
    name = raw.pop("op", None)
    if not isinstance(name, str):
        raise ShapeMismatch("the inner layer needs an 'op' key naming the op to apply",
                            hint="e.g. layer: {op: dense, units: 16}")
    opdef = DEFAULT_OPS.get(name)
    if opdef is None:
        raise ShapeMismatch(f"unknown inner op '{name}'",
                            hint=did_you_mean(name, DEFAULT_OPS.names(), "known ops"))
    if opdef.min_inputs != 1 or opdef.max_inputs != 1:
        raise ShapeMismatch(f"inner op '{name}' takes {opdef.arity_text()}; "
                            "time_distributed needs a one-input op")
    params, errors = coerce_params(opdef.params, raw, UNKNOWN_LOC, op=name)
    if params is None:
        hints = [e.hint for e in errors if e.hint]
        raise ShapeMismatch(f"inner op '{name}': " + "; ".join(e.message for e in errors),
                            hint=hints[0] if hints else None)
    return opdef, params


def _step_type(x: TensorType) -> TensorType:
    if x.rank < 3:
        raise ShapeMismatch(f"time_distributed needs [batch, time, ...] (rank >= 3), found {x}")
    return TensorType((None, *x.shape[2:]), x.dtype)


def infer_time_distributed(p: TimeDistributedParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    step = _step_type(x)
    opdef, inner = resolve_inner(p.layer)
    try:
        y = opdef.infer(inner, (step,))
    except ShapeMismatch as e:
        raise ShapeMismatch(f"inner {opdef.name} on each step {step}: {e}", e.hint) from None
    return TensorType((None, x.shape[1], *y.shape[1:]), y.dtype)


def count_time_distributed(p: TimeDistributedParams, xs: tuple[TensorType, ...],
                           _out: TensorType) -> int:
    """The inner op's weights, shared by every step."""
    opdef, inner = resolve_inner(p.layer)
    step = _step_type(xs[0])
    return opdef.count_params(inner, (step,), opdef.infer(inner, (step,)))


def flops_time_distributed(p: TimeDistributedParams, xs: tuple[TensorType, ...],
                           _out: TensorType) -> int:
    opdef, inner = resolve_inner(p.layer)
    step = _step_type(xs[0])
    return _steps(xs[0]) * opdef.flops(inner, (step,), opdef.infer(inner, (step,)))


def lower_time_distributed(p: TimeDistributedParams, name: str):  # noqa: ANN201
    from keras import layers

    opdef, inner = resolve_inner(p.layer)
    return layers.TimeDistributed(opdef.lower(inner, f"{name}_inner"), name=name)


# --- time_slice -------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSliceParams(OpParams):
    index: int = param(doc="time step to keep; negative counts from the end (-1: last)")


def infer_time_slice(p: TimeSliceParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    if x.rank < 3:
        raise ShapeMismatch(f"time_slice needs [batch, time, ...] (rank >= 3), found {x}")
    steps = x.shape[1]
    if steps is not None and not -steps <= p.index < steps:
        raise ShapeMismatch(f"index {p.index} is out of range for {steps} time steps in {x}",
                            hint=f"use 0..{steps - 1}, or -1 for the last step")
    return TensorType((None, *x.shape[2:]), x.dtype)


def lower_time_slice(p: TimeSliceParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.sequence import TimeSlice

    return TimeSlice(p.index, name=name)


LSTM = OpDef("lstm", LSTMParams, infer_lstm, lower_lstm,
             "LSTM over [B, T, F]; returns the last state [B, units] or every step "
             "(bidirectional: both directions concatenated, 2*units).",
             count_params=count_lstm, flops=flops_lstm, family="sequence")
CONV_LSTM2D = OpDef("conv_lstm2d", ConvLSTM2DParams, infer_conv_lstm2d, lower_conv_lstm2d,
                    "Convolutional LSTM over frame sequences [B, T, H, W, C].",
                    count_params=count_conv_lstm2d, flops=flops_conv_lstm2d,
                    family="sequence")
TIME_DISTRIBUTED = OpDef("time_distributed", TimeDistributedParams, infer_time_distributed,
                         lower_time_distributed,
                         "Apply one inner op (`layer: {op: ..., ...}`) to every time step "
                         "of [B, T, ...], sharing its weights.",
                         count_params=count_time_distributed, flops=flops_time_distributed,
                         family="sequence")
TIME_SLICE = OpDef("time_slice", TimeSliceParams, infer_time_slice, lower_time_slice,
                   "Pick one time step: [B, T, ...] -> [B, ...].", family="sequence")

OPS = (LSTM, CONV_LSTM2D, TIME_DISTRIBUTED, TIME_SLICE)
