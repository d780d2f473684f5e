"""Point ops: landmarks as tensors [B, K, 2] (x, y) next to maps [B, H, W, C].

What recurrent and refining landmark networks need between their maps and their points:
RAR's shape-indexed features (`sample_at_points`), RED-Net's fed-back response maps and
RCN's denoiser input (`points_to_maps`), maps back to points (`soft_argmax`,
`argmax_points`), and the plumbing of a recurrence (`fill` for the initial state,
`stop_gradient`, `split`, `gather_points`, `channel_affine` for recurrent batch norm).

Coordinates follow runtime/evaluate/decode.py: pixel centres at integers, 0-based, x along the
width. With `input_size: S` points are in pixels of an S x S input and the map of side M
covers the same area: x_map = (x + 0.5)·M/S − 0.5 (`to_map`), and back (`to_input`);
x uses the map's width, y its height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compiler.diagnostics import ShapeMismatch
from compiler.ir import TensorType
from compiler.ops.shapes import axis_index, need_known, need_rank, pair
from compiler.params import NoParams, OpParams, param
from compiler.registry import OpDef

InputSize = int | tuple[int, int] | None
_INPUT_SIZE_DOC = ("side S (or [height, width]) of the input image the points are given in; "
                   "null: the points are already in the map's pixels")
_OUTPUT_SIZE_DOC = ("give the points in pixels of an input of side S (or [height, width]); "
                    "null: map pixels")
_POINTS_HINT = "points are [batch, K, 2] (x, y): e.g. a soft_argmax or argmax_points output"


def to_map(v: float, input_side: float, map_side: float) -> float:
    """An input-pixel coordinate in map pixels (both pixel-centre, 0-based)."""
    return (v + 0.5) * (map_side / input_side) - 0.5


def to_input(v: float, input_side: float, map_side: float) -> float:
    """A map-pixel coordinate in input pixels (the inverse of `to_map`)."""
    return (v + 0.5) * (input_side / map_side) - 0.5


def input_sides(input_size: InputSize) -> tuple[int, int] | None:
    """(height, width) of the input the points refer to, or None for map pixels."""
    return None if input_size is None else pair(input_size)


def _elems(t: TensorType) -> int:
    n = 1
    for d in t.shape[1:]:
        n *= d or 1
    return n


def need_points(x: TensorType, index: int) -> None:
    """`x` must be points [batch, K, 2]."""
    if x.rank != 3:
        raise ShapeMismatch(f"input {index} must have rank 3 (points [batch, K, 2]), found rank "
                            f"{x.rank} {x}", hint=_POINTS_HINT)
    if x.shape[2] != 2:
        raise ShapeMismatch(f"input {index} must be points [batch, K, 2] with (x, y) on the last "
                            f"axis, found {x.shape[2]} values per point in {x}",
                            hint=_POINTS_HINT)





# --- sample_at_points -------------------------------------------------------------


@dataclass(frozen=True)
class SampleAtPointsParams(OpParams):
    input_size: InputSize = param(None, _INPUT_SIZE_DOC, min=1)


def infer_sample_at_points(p: SampleAtPointsParams, xs: tuple[TensorType, ...]) -> TensorType:
    feats, pts = xs
    need_rank(feats, 4, "features [batch, height, width, channels]", 0)
    need_points(pts, 1)
    if p.input_size is not None:
        need_known(feats, (1, 2), "sample_at_points with input_size (input 0)")
    return TensorType((None, pts.shape[1], feats.shape[3]), feats.dtype)


def lower_sample_at_points(p: SampleAtPointsParams, name: str):  # noqa: ANN201 - Keras layer
    from compiler.keras_layers.points import SampleAtPoints

    return SampleAtPoints(input_size=input_sides(p.input_size), name=name)


# --- points_to_maps ---------------------------------------------------------------


@dataclass(frozen=True)
class PointsToMapsParams(OpParams):
    height: int = param(doc="map height in pixels", min=1)
    width: int = param(doc="map width in pixels", min=1)
    mode: Literal["one_hot", "gaussian"] = param(
        "one_hot", "one_hot: 1 at the nearest pixel (round half up), 0 elsewhere and for "
                   "points off the map, no gradient; gaussian: exp(-d^2 / 2 sigma^2) around "
                   "the sub-pixel point, peak 1, differentiable in the points")
    sigma: float | None = param(None, "Gaussian standard deviation in map pixels "
                                      "(mode: gaussian only)")
    input_size: InputSize = param(None, _INPUT_SIZE_DOC, min=1)

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.mode == "gaussian" and self.sigma is None:
            out.append(("sigma", "mode: gaussian needs sigma (in map pixels)"))
        elif self.mode == "gaussian" and self.sigma is not None and self.sigma <= 0:
            out.append(("sigma", f"must be > 0, found {self.sigma}"))
        elif self.mode == "one_hot" and self.sigma is not None:
            out.append(("sigma", "only mode: gaussian uses sigma, not one_hot"))
        return out


def infer_points_to_maps(p: PointsToMapsParams, xs: tuple[TensorType, ...]) -> TensorType:
    (pts,) = xs
    need_points(pts, 0)
    if pts.shape[1] is None:
        raise ShapeMismatch(f"points_to_maps needs a known number of points K (one map per "
                            f"point), found {pts}")
    return TensorType((None, p.height, p.width, pts.shape[1]), pts.dtype)


def lower_points_to_maps(p: PointsToMapsParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.points import PointsToMaps

    return PointsToMaps(p.height, p.width, mode=p.mode, sigma=p.sigma,
                        input_size=input_sides(p.input_size), name=name)


# --- soft_argmax / argmax_points ----------------------------------------------------


@dataclass(frozen=True)
class SoftArgmaxParams(OpParams):
    from_logits: bool = param(
        True, "true: softmax over each map's H x W first; false: the maps are already "
              "non-negative weights (e.g. a spatial_softmax output), normalised to sum 1")
    temperature: float = param(1.0, "logits are divided by this before the softmax "
                                    "(1/beta; small: closer to the hard argmax)")
    input_size: InputSize = param(None, _OUTPUT_SIZE_DOC, min=1)

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.temperature <= 0:
            out.append(("temperature", f"must be > 0, found {self.temperature}"))
        elif not self.from_logits and self.temperature != 1.0:
            out.append(("temperature", "only applies with from_logits: true"))
        return out


@dataclass(frozen=True)
class ArgmaxPointsParams(OpParams):
    input_size: InputSize = param(None, _OUTPUT_SIZE_DOC, min=1)


def infer_maps_to_points(p: OpParams, xs: tuple[TensorType, ...]) -> TensorType:
    (maps,) = xs
    op = "soft_argmax" if isinstance(p, SoftArgmaxParams) else "argmax_points"
    need_rank(maps, 4, "maps [batch, height, width, K]", 0)
    need_known(maps, (1, 2), op)
    return TensorType((None, maps.shape[3], 2), "float32")


def lower_soft_argmax(p: SoftArgmaxParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.points import SoftArgmax

    return SoftArgmax(from_logits=p.from_logits, temperature=p.temperature,
                      input_size=input_sides(p.input_size), name=name)


def lower_argmax_points(p: ArgmaxPointsParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.points import ArgmaxPoints

    return ArgmaxPoints(input_size=input_sides(p.input_size), name=name)


# --- stop_gradient / split / gather_points / fill -----------------------------------


def infer_same(_p: OpParams, xs: tuple[TensorType, ...]) -> TensorType:
    return xs[0]


def lower_stop_gradient(_p: NoParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.points import StopGradient

    return StopGradient(name=name)


@dataclass(frozen=True)
class SplitParams(OpParams):
    start: int = param(doc="first channel kept (0-based)", min=0)
    size: int = param(doc="number of channels kept: [start, start + size)", min=1)


def infer_split(p: SplitParams, xs: tuple[TensorType, ...]) -> TensorType:
    (x,) = xs
    if x.rank < 2:
        raise ShapeMismatch(f"split needs rank >= 2 [batch, ..., channels], found {x}")
    channels = x.shape[-1]
    if channels is None:
        raise ShapeMismatch(f"split needs a known last axis (channels), found {x}")
    if p.start + p.size > channels:
        raise ShapeMismatch(
            f"channels [{p.start}, {p.start + p.size}) are beyond the {channels} channels of {x}",
            hint=f"start + size must be <= {channels}")
    return TensorType((*x.shape[:-1], p.size), x.dtype)


def lower_split(p: SplitParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.points import ChannelSlice

    return ChannelSlice(p.start, p.size, name=name)


@dataclass(frozen=True)
class GatherPointsParams(OpParams):
    indices: tuple[int, ...] = param(doc="entries kept, in this order (0-based; repeats "
                                         "allowed)", min=0)
    axis: int = param(1, "axis gathered: 1 for points [B, K, D]; -1 for channels, e.g. 7 of "
                         "68 maps")

    def problems(self) -> list[tuple[str, str]]:
        return [] if self.indices else [("indices", "must name at least one entry")]


def infer_gather_points(p: GatherPointsParams, xs: tuple[TensorType, ...]) -> TensorType:
    (x,) = xs
    axis = axis_index(p.axis, x)
    size = x.shape[axis]
    if size is None:
        raise ShapeMismatch(f"gather_points needs a known size on axis {axis} to check the "
                            f"indices, found {x}")
    bad = [i for i in p.indices if i >= size]
    if bad:
        raise ShapeMismatch(f"indices {bad} are out of range for {size} entries on axis {axis} "
                            f"of {x}", hint=f"indices are 0-based: use 0..{size - 1}")
    return TensorType((*x.shape[:axis], len(p.indices), *x.shape[axis + 1:]), x.dtype)


def lower_gather_points(p: GatherPointsParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.points import Gather

    return Gather(list(p.indices), axis=p.axis, name=name)


@dataclass(frozen=True)
class FillParams(OpParams):
    channels: int = param(doc="size of the output's last axis", min=1)
    value: float = param(0.0, "the constant every element gets")


def infer_fill(p: FillParams, xs: tuple[TensorType, ...]) -> TensorType:
    (ref,) = xs
    if ref.rank < 2:
        raise ShapeMismatch(f"fill needs a reference of rank >= 2 [batch, ..., channels], "
                            f"found {ref}", hint="give it the tensor whose size the state takes")
    return TensorType((*ref.shape[:-1], p.channels), ref.dtype)


def lower_fill(p: FillParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.points import Fill

    return Fill(p.channels, value=p.value, name=name)


# --- channel_affine -----------------------------------------------------------------


def infer_channel_affine(_p: NoParams, xs: tuple[TensorType, ...]) -> TensorType:
    (x,) = xs
    if x.rank < 2 or x.shape[-1] is None:
        raise ShapeMismatch(f"channel_affine needs a known last axis (channels), found {x}")
    return x


def lower_channel_affine(_p: NoParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.points import ChannelAffine

    return ChannelAffine(name=name)


SAMPLE_AT_POINTS = OpDef(
    "sample_at_points", SampleAtPointsParams, infer_sample_at_points, lower_sample_at_points,
    "Bilinear features at sub-pixel points: [features [B, H, W, C], points [B, K, 2]] -> "
    "[B, K, C] (RAR's shape-indexed features); zero outside the map, gradients reach the "
    "features and the points.",
    min_inputs=2, max_inputs=2, flops=lambda _p, _ins, out: 8 * _elems(out), family="points")
POINTS_TO_MAPS = OpDef(
    "points_to_maps", PointsToMapsParams, infer_points_to_maps, lower_points_to_maps,
    "Points [B, K, 2] -> one map per point [B, height, width, K]: one-hot at the nearest "
    "pixel (no gradient) or a sub-pixel Gaussian (RCN's denoiser input, RED-Net's feedback).",
    flops=lambda p, _ins, out: 6 * _elems(out) if p.mode == "gaussian" else 0,
    family="points")
SOFT_ARGMAX = OpDef(
    "soft_argmax", SoftArgmaxParams, infer_maps_to_points, lower_soft_argmax,
    "Maps [B, H, W, K] -> expected (x, y) [B, K, 2] under each map's softmax over pixels; "
    "differentiable, in float32.",
    flops=lambda p, ins, _out: (9 if p.from_logits else 6) * _elems(ins[0]), family="points")
ARGMAX_POINTS = OpDef(
    "argmax_points", ArgmaxPointsParams, infer_maps_to_points, lower_argmax_points,
    "Maps [B, H, W, K] -> (x, y) [B, K, 2] of each map's maximum (first in row-major order "
    "on ties); no gradient.",
    flops=lambda _p, ins, _out: _elems(ins[0]), family="points")
STOP_GRADIENT = OpDef(
    "stop_gradient", NoParams, infer_same, lower_stop_gradient,
    "Identity whose gradient is zero: nothing flows back through it.", family="points")
SPLIT = OpDef(
    "split", SplitParams, infer_split, lower_split,
    "Channels [start, start + size) of [..., C]. One layer gives one tensor, so splitting "
    "into two groups is two split layers on the same input.", family="points")
GATHER_POINTS = OpDef(
    "gather_points", GatherPointsParams, infer_gather_points, lower_gather_points,
    "A subset of landmarks by index: [B, K, D] -> [B, len(indices), D] (`axis: -1` picks "
    "channels of maps instead); indices are checked against K.", family="points")
FILL = OpDef(
    "fill", FillParams, infer_fill, lower_fill,
    "A constant tensor with the batch and spatial size of the reference and `channels` "
    "channels: [B, ..., C_ref] -> [B, ..., channels] (a recurrence's initial state); "
    "no gradient.", family="points")
CHANNEL_AFFINE = OpDef(
    "channel_affine", NoParams, infer_channel_affine, lower_channel_affine,
    "Learned per-channel scale (init 1) and bias (init 0) on [..., C]: the shared affine of "
    "recurrent batch norm after a batch_norm with center and scale false.",
    count_params=lambda _p, ins, _out: 2 * (ins[0].shape[-1] or 0),
    flops=lambda _p, ins, _out: 2 * _elems(ins[0]), family="points")

OPS = (SAMPLE_AT_POINTS, POINTS_TO_MAPS, SOFT_ARGMAX, ARGMAX_POINTS, STOP_GRADIENT, SPLIT,
       GATHER_POINTS, FILL, CHANNEL_AFFINE)
