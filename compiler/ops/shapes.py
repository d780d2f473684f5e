"""Pure shape arithmetic shared by op families (no TensorFlow)."""

from __future__ import annotations

from compiler.diagnostics import ShapeMismatch
from compiler.ir import Dim, TensorType


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    """Keras accepts an int or an (h, w) pair for sizes and strides."""
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv_out(size: Dim, kernel: int, stride: int, padding: str, dilation: int = 1) -> Dim:
    """Output length of a conv/pool window along one axis (Keras semantics)."""
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    span = dilation * (kernel - 1) + 1
    return (size - span) // stride + 1 if size >= span else 0


def need_rank(x: TensorType, rank: int, what: str, index: int = 0) -> None:
    if x.rank != rank:
        raise ShapeMismatch(
            f"input {index} must have rank {rank} ({what}), found rank {x.rank} {x}",
            hint="images are [batch, height, width, channels]; sequences add a time axis",
        )


def need_known(x: TensorType, axes: tuple[int, ...], what: str) -> None:
    for a in axes:
        if x.shape[a] is None:
            raise ShapeMismatch(f"{what} needs a known size on axis {a % x.rank}, found {x}")


def positive_spatial(out: TensorType, x: TensorType, layer_kind: str) -> TensorType:
    """Reject windows that shrink a map to nothing (e.g. a 3x3 valid conv on 2x2)."""
    if any(d == 0 for d in out.shape[1:]):
        raise ShapeMismatch(
            f"{layer_kind} shrinks {x} to {out}",
            hint="use padding: same, a smaller kernel or stride, or fewer pooling stages",
        )
    return out


def axis_index(axis: int, x: TensorType) -> int:
    """`axis` normalised for `x`; the batch axis and out-of-range axes are refused."""
    if not -x.rank <= axis < x.rank or axis % x.rank == 0:
        raise ShapeMismatch(f"axis {axis} is out of range for {x} (axis 0 is the batch)",
                            hint=f"use 1..{x.rank - 1}, or -1 for the last axis")
    return axis % x.rank


def match_offsets(size: int, target: int, align: str) -> tuple[int, int]:
    """(before, after) rows to remove (> 0) or add (< 0) so `size` becomes `target`."""
    diff = size - target
    if align == "top_left":
        return 0, diff
    sign = 1 if diff >= 0 else -1
    before = sign * (abs(diff) // 2)
    return before, diff - before
