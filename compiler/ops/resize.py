"""Spatial resizing of NHWC maps: upsampling (fixed or learned), crop, pad, match.

These are the explicit ops that Note [No broadcasting] (compiler/ops/merge.py) asks
for when two maps of different sizes meet, e.g. RCN's ×3 upsample of 2×2 to 6×6
cropped to 5×5 before a concat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compiler.diagnostics import ShapeMismatch
from compiler.ir import Dim, TensorType
from compiler.ops.shapes import need_known, need_rank, pair
from compiler.params import OpParams, param
from compiler.registry import OpDef

Sides = int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]]
_SIDES_DOC = "int (all sides), [h, w] (symmetric) or [[top, bottom], [left, right]]"


def sides(v: Sides) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras Cropping2D/ZeroPadding2D forms -> ((top, bottom), (left, right))."""
    if isinstance(v, int):
        return (v, v), (v, v)
    h, w = v
    if isinstance(h, int) and isinstance(w, int):
        return (h, h), (w, w)
    return (int(h[0]), int(h[1])), (int(w[0]), int(w[1]))  # type: ignore[index]


def _grow(d: Dim, by: int) -> Dim:
    return None if d is None else d + by


def _elems(t: TensorType) -> int:
    n = 1
    for d in t.shape[1:]:
        n *= d or 1
    return n


# --- upsample2d -------------------------------------------------------------------


@dataclass(frozen=True)
class Upsample2DParams(OpParams):
    size: int | tuple[int, int] = param(doc="factor: int or [h, w]", min=1)
    interpolation: Literal["nearest", "bilinear"] = param(
        "nearest", "nearest repeats pixels (RCN's default); bilinear is Keras's resize")


def infer_upsample2d(p: Upsample2DParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    need_rank(x, 4, "NHWC image")
    fh, fw = pair(p.size)
    b, h, w, c = x.shape
    return TensorType((b, None if h is None else h * fh, None if w is None else w * fw, c),
                      x.dtype)


def lower_upsample2d(p: Upsample2DParams, name: str):  # noqa: ANN201 - Keras layer
    from keras import layers

    return layers.UpSampling2D(size=pair(p.size), interpolation=p.interpolation, name=name)


def _upsample_flops(p: Upsample2DParams, _ins: tuple[TensorType, ...], out: TensorType) -> int:
    # bilinear: 4 multiplies + 3 adds per output value; nearest only copies
    return 7 * _elems(out) if p.interpolation == "bilinear" else 0


# --- learned_upsample2d ------------------------------------------------------------


@dataclass(frozen=True)
class LearnedUpsample2DParams(OpParams):
    size: int = param(doc="integer factor r; the kernel is (2r-1)x(2r-1)", min=2)
    shared: bool = param(True, "one kernel for all channels (RCN); false: one per channel")
    trainable: bool = param(True, "false keeps the bilinear kernel fixed (RCN --bilinear)")


def infer_learned_upsample2d(p: LearnedUpsample2DParams,
                             xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    need_rank(x, 4, "NHWC image")
    if not p.shared:
        need_known(x, (3,), "a per-channel learned_upsample2d")
    b, h, w, c = x.shape
    r = p.size
    return TensorType((b, None if h is None else h * r, None if w is None else w * r, c),
                      x.dtype)


def lower_learned_upsample2d(p: LearnedUpsample2DParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.resize import LearnedUpsample2D

    return LearnedUpsample2D(p.size, shared=p.shared, trainable=p.trainable, name=name)


def _learned_upsample_params(p: LearnedUpsample2DParams, ins: tuple[TensorType, ...],
                             _out: TensorType) -> int:
    # Every Keras weight counts, frozen ones too (as batch_norm's moving statistics).
    k = (2 * p.size - 1) ** 2
    return k if p.shared else k * (ins[0].shape[3] or 0)


def _learned_upsample_flops(p: LearnedUpsample2DParams, ins: tuple[TensorType, ...],
                            _out: TensorType) -> int:
    # a transposed conv: every input value is spread over a (2r-1)^2 window (mul + add)
    return 2 * (2 * p.size - 1) ** 2 * _elems(ins[0])


# --- crop2d / pad2d -----------------------------------------------------------------


@dataclass(frozen=True)
class Crop2DParams(OpParams):
    cropping: Sides = param(doc=f"rows/cols removed: {_SIDES_DOC}", min=0)


@dataclass(frozen=True)
class Pad2DParams(OpParams):
    padding: Sides = param(doc=f"zero rows/cols added: {_SIDES_DOC}", min=0)


def infer_crop2d(p: Crop2DParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    need_rank(x, 4, "NHWC image")
    (t, b_), (left, right) = sides(p.cropping)
    b, h, w, c = x.shape
    out = TensorType((b, _grow(h, -(t + b_)), _grow(w, -(left + right)), c), x.dtype)
    if any(d is not None and d <= 0 for d in out.shape[1:3]):
        raise ShapeMismatch(f"cropping {p.cropping} removes all of {x}",
                            hint="crop fewer rows/columns than the map has")
    return out


def infer_pad2d(p: Pad2DParams, xs: tuple[TensorType, ...]) -> TensorType:
    x = xs[0]
    need_rank(x, 4, "NHWC image")
    (t, b_), (left, right) = sides(p.padding)
    b, h, w, c = x.shape
    return TensorType((b, _grow(h, t + b_), _grow(w, left + right), c), x.dtype)


def lower_crop2d(p: Crop2DParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.Cropping2D(cropping=sides(p.cropping), name=name)


def lower_pad2d(p: Pad2DParams, name: str):  # noqa: ANN201
    from keras import layers

    return layers.ZeroPadding2D(padding=sides(p.padding), name=name)


# --- resize_to_match ----------------------------------------------------------------


@dataclass(frozen=True)
class ResizeToMatchParams(OpParams):
    align: Literal["top_left", "center"] = param(
        "top_left", "top_left crops/pads at the bottom and right (RCN's [:-1, :-1]); "
        "center splits the difference, the extra row/column going to the bottom/right")


def infer_resize_to_match(_p: ResizeToMatchParams, xs: tuple[TensorType, ...]) -> TensorType:
    x, ref = xs
    need_rank(x, 4, "NHWC image", 0)
    need_rank(ref, 4, "NHWC reference image", 1)
    need_known(x, (1, 2), "resize_to_match (input 0)")
    need_known(ref, (1, 2), "resize_to_match (input 1, the reference)")
    return TensorType((x.shape[0], ref.shape[1], ref.shape[2], x.shape[3]), x.dtype)


def lower_resize_to_match(p: ResizeToMatchParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.resize import ResizeToMatch

    return ResizeToMatch(align=p.align, name=name)


UPSAMPLE2D = OpDef(
    "upsample2d", Upsample2DParams, infer_upsample2d, lower_upsample2d,
    "Upsample H and W by an integer factor (nearest = pixel repeat, or bilinear).",
    flops=_upsample_flops, family="resize")
LEARNED_UPSAMPLE2D = OpDef(
    "learned_upsample2d", LearnedUpsample2DParams, infer_learned_upsample2d,
    lower_learned_upsample2d,
    "RCN --learn_upsampling: stride-r transposed conv with a (2r-1)^2 kernel shared by all "
    "channels (or one per channel), initialised bilinear; output exactly H*r x W*r.",
    count_params=_learned_upsample_params, flops=_learned_upsample_flops, family="resize")
CROP2D = OpDef(
    "crop2d", Crop2DParams, infer_crop2d, lower_crop2d,
    "Remove rows/columns from the borders (Keras Cropping2D).", family="resize")
PAD2D = OpDef("pad2d", Pad2DParams, infer_pad2d, lower_pad2d,
              "Add zero rows/columns at the borders (Keras ZeroPadding2D).", family="resize")
RESIZE_TO_MATCH = OpDef(
    "resize_to_match", ResizeToMatchParams, infer_resize_to_match, lower_resize_to_match,
    "Crop or zero-pad input 0 spatially to input 1's H x W; channels stay input 0's.",
    min_inputs=2, max_inputs=2, family="resize")

OPS = (UPSAMPLE2D, LEARNED_UPSAMPLE2D, CROP2D, PAD2D, RESIZE_TO_MATCH)
