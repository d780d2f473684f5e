"""Convolution ops: conv2d, conv2d_transpose, depthwise_conv2d (NHWC, Keras semantics).

Params use the Keras argument names; names that Keras would reject at lowering
time (activations, initializers, strides with dilation) are caught in `problems`.
One default differs from Keras: `padding` is 'same' (Keras: 'valid'), as the RCN-style
specs keep map sizes; `netspec ops` lists it (compiler/opdoc.py KERAS_DEFAULTS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from compiler.diagnostics import ShapeMismatch, did_you_mean
from compiler.ir import Dim, TensorType
from compiler.ops.activations import activation_problem
from compiler.ops.shapes import conv_out, need_known, need_rank, pair, positive_spatial
from compiler.params import OpParams, param
from compiler.registry import OpDef

IntPair = int | tuple[int, int]
Padding = Literal["valid", "same"]

# Initializer names Keras 3 resolves with keras.initializers.get (checked in
# tests/keras/test_conv_pool_lowering.py). Activations: compiler/ops/activations.py.
INITIALIZERS = ("zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform",
                "he_normal", "lecun_uniform", "lecun_normal", "orthogonal",
                "random_normal", "random_uniform", "truncated_normal", "variance_scaling")

# Field factories: every conv op documents a shared param the same way.


def _kernel_size() -> Any:
    return param(doc="window size: int or [height, width]", min=1)


def _strides() -> Any:
    return param(1, "step between windows: int or [height, width]", min=1)


def _padding() -> Any:
    # Note: Keras' default is 'valid'; netspec's is 'same' (compiler/opdoc.py says so).
    return param("same", "'same' keeps ceil(size / strides); 'valid' uses no padding. "
                         "netspec's default is 'same', Keras' is 'valid'")


def _dilation() -> Any:
    return param(1, "gap between kernel taps (atrous); > 1 needs strides 1", min=1)


def _activation() -> Any:
    return param(None, "applied after the bias (see compiler/ops/activations.py); null = linear")


def _use_bias() -> Any:
    return param(True, "add a learned bias per output channel")


def _kernel_init() -> Any:
    return param("glorot_uniform", "Keras initializer name for the kernel")


def _bias_init() -> Any:
    return param("zeros", "Keras initializer name for the bias")


def _l2() -> Any:
    return param(0.0, "L2 regularisation weight on the kernel (0 = none)", min=0)


def _yaml(v: IntPair) -> str:
    return str(v) if isinstance(v, int) else f"[{v[0]}, {v[1]}]"


@dataclass(frozen=True)
class _ConvParams(OpParams):
    """Shared cross-field checks of the conv params below."""

    def problems(self) -> list[tuple[str, str]]:
        p: Any = self
        out: list[tuple[str, str]] = []
        if max(pair(p.strides)) > 1 and max(pair(p.dilation_rate)) > 1:
            out.append(("dilation_rate", f"dilation_rate {_yaml(p.dilation_rate)} needs "
                        f"strides 1, found strides {_yaml(p.strides)} (Keras cannot do both)"))
        if p.activation is not None and (msg := activation_problem(p.activation)):
            out.append(("activation", msg))
        for key in ("kernel_initializer", "bias_initializer"):
            name = getattr(p, key)
            if name not in INITIALIZERS:
                out.append((key, f"unknown initializer '{name}'; "
                            + did_you_mean(name, INITIALIZERS, "initializers")))
        return out


@dataclass(frozen=True)
class Conv2DParams(_ConvParams):
    filters: int = param(doc="number of output channels", min=1)
    kernel_size: IntPair = _kernel_size()
    strides: IntPair = _strides()
    padding: Padding = _padding()
    dilation_rate: IntPair = _dilation()
    groups: int = param(1, "split channels into this many independent convs; "
                           "must divide filters and the input channels", min=1)
    activation: str | None = _activation()
    use_bias: bool = _use_bias()
    kernel_initializer: str = _kernel_init()
    bias_initializer: str = _bias_init()
    l2: float = _l2()

    def problems(self) -> list[tuple[str, str]]:
        out = super().problems()
        if self.filters % self.groups:
            out.append(("groups", f"groups {self.groups} must divide filters {self.filters}"))
        return out


@dataclass(frozen=True)
class Conv2DTransposeParams(_ConvParams):
    filters: int = param(doc="number of output channels", min=1)
    kernel_size: IntPair = _kernel_size()
    strides: IntPair = _strides()
    padding: Padding = _padding()
    dilation_rate: IntPair = param(1, "kept for Keras parity; only 1 is supported", min=1)
    activation: str | None = _activation()
    use_bias: bool = _use_bias()
    kernel_initializer: str = _kernel_init()
    bias_initializer: str = _bias_init()
    l2: float = _l2()

    def problems(self) -> list[tuple[str, str]]:
        out = super().problems()
        if max(pair(self.dilation_rate)) > 1 and not any(k == "dilation_rate" for k, _ in out):
            out.append(("dilation_rate", "conv2d_transpose supports only dilation_rate 1 "
                        "(TensorFlow has no dilated transposed convolution on CPU)"))
        return out


@dataclass(frozen=True)
class DepthwiseConv2DParams(_ConvParams):
    kernel_size: IntPair = _kernel_size()
    strides: IntPair = _strides()
    padding: Padding = _padding()
    depth_multiplier: int = param(1, "output channels per input channel", min=1)
    dilation_rate: IntPair = _dilation()
    activation: str | None = _activation()
    use_bias: bool = _use_bias()
    kernel_initializer: str = _kernel_init()
    bias_initializer: str = _bias_init()
    l2: float = _l2()


# --- shape rules -------------------------------------------------------------------


def _image(xs: tuple[TensorType, ...], what: str) -> tuple[TensorType, int]:
    """The single NHWC input and its (required, known) channel count."""
    x = xs[0]
    need_rank(x, 4, "an NHWC image")
    need_known(x, (3,), what)
    return x, x.shape[3]  # type: ignore[return-value]


def _windowed(x: TensorType, p: Any, channels: int, what: str) -> TensorType:
    (kh, kw), (sh, sw), (dh, dw) = pair(p.kernel_size), pair(p.strides), pair(p.dilation_rate)
    out = TensorType((x.shape[0], conv_out(x.shape[1], kh, sh, p.padding, dh),
                      conv_out(x.shape[2], kw, sw, p.padding, dw), channels), x.dtype)
    return positive_spatial(out, x, what)


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def infer_conv2d(p: Conv2DParams, xs: tuple[TensorType, ...]) -> TensorType:
    x, c = _image(xs, "conv2d")
    for what, n in (("input channels", c), ("filters", p.filters)):
        if n % p.groups:
            raise ShapeMismatch(f"groups {p.groups} does not divide the {what} ({n})",
                                hint=f"groups must divide both the input channels ({c}) and "
                                     f"filters ({p.filters}); divisors of {n}: {_divisors(n)}")
    kernel = "x".join(map(str, pair(p.kernel_size)))
    return _windowed(x, p, p.filters, f"a {kernel} {p.padding} conv2d")


def _deconv_len(size: Dim, kernel: int, stride: int, padding: str, dilation: int) -> Dim:
    """Keras Conv2DTranspose length with output_padding None."""
    if size is None:
        return None
    span = dilation * (kernel - 1) + 1
    return size * stride + (max(span - stride, 0) if padding == "valid" else 0)


def infer_conv2d_transpose(p: Conv2DTransposeParams, xs: tuple[TensorType, ...]) -> TensorType:
    x, _c = _image(xs, "conv2d_transpose")
    (kh, kw), (sh, sw), (dh, dw) = pair(p.kernel_size), pair(p.strides), pair(p.dilation_rate)
    return TensorType((x.shape[0], _deconv_len(x.shape[1], kh, sh, p.padding, dh),
                       _deconv_len(x.shape[2], kw, sw, p.padding, dw), p.filters), x.dtype)


def infer_depthwise_conv2d(p: DepthwiseConv2DParams, xs: tuple[TensorType, ...]) -> TensorType:
    x, c = _image(xs, "depthwise_conv2d")
    kernel = "x".join(map(str, pair(p.kernel_size)))
    return _windowed(x, p, c * p.depth_multiplier, f"a {kernel} {p.padding} depthwise_conv2d")


# --- counts --------------------------------------------------------------------------
# FLOPs convention: 2 per multiply-add of the kernel (bias and activation ignored), per
# example; an unknown spatial size counts as 1.


def _area(kernel: IntPair) -> int:
    kh, kw = pair(kernel)
    return kh * kw


def _pixels(t: TensorType) -> int:
    return (t.shape[1] or 1) * (t.shape[2] or 1)


def _channels(ins: tuple[TensorType, ...]) -> int:
    return ins[0].shape[3] or 0


def params_conv2d(p: Conv2DParams, ins: tuple[TensorType, ...], _out: TensorType) -> int:
    kernel = _area(p.kernel_size) * (_channels(ins) // p.groups) * p.filters
    return kernel + (p.filters if p.use_bias else 0)


def flops_conv2d(p: Conv2DParams, ins: tuple[TensorType, ...], out: TensorType) -> int:
    return 2 * _pixels(out) * p.filters * _area(p.kernel_size) * (_channels(ins) // p.groups)


def params_conv2d_transpose(p: Conv2DTransposeParams, ins: tuple[TensorType, ...],
                            _out: TensorType) -> int:
    kernel = _area(p.kernel_size) * _channels(ins) * p.filters
    return kernel + (p.filters if p.use_bias else 0)


def flops_conv2d_transpose(p: Conv2DTransposeParams, ins: tuple[TensorType, ...],
                           _out: TensorType) -> int:
    # Every input pixel scatters one kernel-sized patch per output channel.
    return 2 * _pixels(ins[0]) * _channels(ins) * _area(p.kernel_size) * p.filters


def params_depthwise(p: DepthwiseConv2DParams, ins: tuple[TensorType, ...],
                     _out: TensorType) -> int:
    outc = _channels(ins) * p.depth_multiplier
    return _area(p.kernel_size) * outc + (outc if p.use_bias else 0)


def flops_depthwise(p: DepthwiseConv2DParams, ins: tuple[TensorType, ...],
                    out: TensorType) -> int:
    return 2 * _pixels(out) * _channels(ins) * p.depth_multiplier * _area(p.kernel_size)


# --- lowering ------------------------------------------------------------------------


def _keras_common(p: Any) -> dict[str, Any]:
    return {"kernel_size": p.kernel_size, "strides": p.strides, "padding": p.padding,
            "dilation_rate": p.dilation_rate, "activation": p.activation,
            "use_bias": p.use_bias, "bias_initializer": p.bias_initializer}


def _l2_reg(l2: float) -> Any:
    from keras import regularizers

    return regularizers.L2(l2) if l2 > 0 else None


def lower_conv2d(p: Conv2DParams, name: str):  # noqa: ANN201 - Keras layer
    from keras import layers

    return layers.Conv2D(p.filters, groups=p.groups, kernel_initializer=p.kernel_initializer,
                         kernel_regularizer=_l2_reg(p.l2), name=name, **_keras_common(p))


def lower_conv2d_transpose(p: Conv2DTransposeParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.Conv2DTranspose(p.filters, kernel_initializer=p.kernel_initializer,
                                  kernel_regularizer=_l2_reg(p.l2), name=name,
                                  **_keras_common(p))


def lower_depthwise_conv2d(p: DepthwiseConv2DParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.DepthwiseConv2D(depth_multiplier=p.depth_multiplier,
                                  depthwise_initializer=p.kernel_initializer,
                                  depthwise_regularizer=_l2_reg(p.l2), name=name,
                                  **_keras_common(p))


CONV2D = OpDef(
    "conv2d", Conv2DParams, infer_conv2d, lower_conv2d,
    "2-D convolution of an NHWC image (Keras Conv2D). Output [batch, H', W', filters] with "
    "H' = ceil(H / strides) for padding 'same', else (H - dilation*(k-1) - 1) // strides + 1. "
    "`groups` splits input channels and filters into independent convolutions; `l2` adds "
    "a kernel L2 penalty. A valid conv that shrinks the map to nothing is an error.",
    family="conv", count_params=params_conv2d, flops=flops_conv2d)
CONV2D_TRANSPOSE = OpDef(
    "conv2d_transpose", Conv2DTransposeParams, infer_conv2d_transpose, lower_conv2d_transpose,
    "Transposed ('deconvolution') 2-D convolution (Keras Conv2DTranspose, no "
    "output_padding): learned upsampling. Output H' = H * strides for padding 'same', "
    "H * strides + max(k - strides, 0) for 'valid'; channels = filters. dilation_rate "
    "must be 1 (TensorFlow's CPU kernel has none).",
    family="conv", count_params=params_conv2d_transpose, flops=flops_conv2d_transpose)
DEPTHWISE_CONV2D = OpDef(
    "depthwise_conv2d", DepthwiseConv2DParams, infer_depthwise_conv2d, lower_depthwise_conv2d,
    "Depthwise 2-D convolution (Keras DepthwiseConv2D): each input channel is convolved "
    "on its own with `depth_multiplier` kernels, giving channels * depth_multiplier "
    "outputs; spatial sizes follow conv2d. `kernel_initializer`/`l2` apply to the "
    "depthwise kernel.",
    family="conv", count_params=params_depthwise, flops=flops_depthwise)

OPS = (CONV2D, CONV2D_TRANSPOSE, DEPTHWISE_CONV2D)
