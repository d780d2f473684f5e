"""TF-free shape, param, count and FLOP tables for the resize and weighting op families."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from compiler.diagnostics import ShapeMismatch
from compiler.ir import TensorType
from compiler.kernels import KERNEL_NAMES
from compiler.ops import DEFAULT_OPS
from compiler.ops.resize import sides
from compiler.ops.shapes import match_offsets
from compiler.ops.weighting import KernelName
from tests.unit.ops.op_params import make_params as params
from tests.unit.ops.op_params import param_errors

RESIZE_OPS = ("upsample2d", "learned_upsample2d", "crop2d", "pad2d", "resize_to_match")
WEIGHTING_OPS = ("scale", "weighted_sum", "kernel_conv", "spatial_softmax")


def infer(op: str, raw: dict[str, Any], shapes: list[tuple[int | None, ...]]) -> TensorType:
    ins = tuple(TensorType((None, *s)) for s in shapes)
    return DEFAULT_OPS.get(op).infer(params(op, raw), ins)


SHAPES = [
    ("upsample2d", {"size": 2}, [(5, 5, 64)], (10, 10, 64)),
    ("upsample2d", {"size": 3}, [(2, 2, 64)], (6, 6, 64)),
    ("upsample2d", {"size": [2, 3], "interpolation": "bilinear"}, [(4, 5, 3)], (8, 15, 3)),
    ("upsample2d", {"size": 1}, [(4, 5, 3)], (4, 5, 3)),
    ("upsample2d", {"size": 16}, [(5, 5, 68)], (80, 80, 68)),
    ("upsample2d", {"size": 2}, [(None, 7, 3)], (None, 14, 3)),
    ("learned_upsample2d", {"size": 2}, [(40, 40, 64)], (80, 80, 64)),
    ("learned_upsample2d", {"size": 3}, [(2, 2, 64)], (6, 6, 64)),
    ("learned_upsample2d", {"size": 3, "shared": False}, [(2, 3, 8)], (6, 9, 8)),
    ("learned_upsample2d", {"size": 2, "trainable": False}, [(None, None, 8)], (None, None, 8)),
    ("crop2d", {"cropping": [[0, 1], [0, 1]]}, [(6, 6, 128)], (5, 5, 128)),
    ("crop2d", {"cropping": 2}, [(10, 12, 3)], (6, 8, 3)),
    ("crop2d", {"cropping": [1, 2]}, [(10, 12, 3)], (8, 8, 3)),
    ("crop2d", {"cropping": 0}, [(10, 12, 3)], (10, 12, 3)),
    ("crop2d", {"cropping": 1}, [(None, 12, 3)], (None, 10, 3)),
    ("pad2d", {"padding": 1}, [(5, 5, 3)], (7, 7, 3)),
    ("pad2d", {"padding": [[0, 1], [2, 0]]}, [(5, 5, 3)], (6, 7, 3)),
    ("pad2d", {"padding": [1, 3]}, [(None, 5, 3)], (None, 11, 3)),
    ("resize_to_match", {}, [(6, 6, 128), (5, 5, 64)], (5, 5, 128)),  # RCN [:-1, :-1]
    ("resize_to_match", {"align": "center"}, [(6, 6, 4), (9, 3, 4)], (9, 3, 4)),
    ("resize_to_match", {}, [(4, 4, 7), (4, 4, 1)], (4, 4, 7)),  # channels are input 0's
    ("scale", {"value": 0.25}, [(8, 8, 68)], (8, 8, 68)),
    ("scale", {}, [(10, 3)], (10, 3)),  # any rank
    ("weighted_sum", {}, [(80, 80, 68)] * 5, (80, 80, 68)),
    ("weighted_sum", {"per_channel": False, "initial": [0.5, 0.5]}, [(4, 4, 2)] * 2, (4, 4, 2)),
    ("kernel_conv", {"kernel": "lgcn"}, [(96, 96, 68)], (96, 96, 68)),
    ("kernel_conv", {"kernel": "gaussian", "size": 7, "sigma": 1.5}, [(5, 5, 2)], (5, 5, 2)),
    ("spatial_softmax", {}, [(80, 80, 68)], (80, 80, 68)),
    ("spatial_softmax", {"temperature": 0.5}, [(None, None, 5)], (None, None, 5)),
]


@pytest.mark.parametrize(("op", "raw", "shapes", "expected"), SHAPES,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(SHAPES)])
def test_infer_shape(op: str, raw: dict[str, Any], shapes: list[tuple[int, ...]],
                     expected: tuple[int | None, ...]) -> None:
    out = infer(op, raw, shapes)
    assert out.shape == (None, *expected)
    assert out.dtype == "float32"


def test_rcn_upsample_by_3_then_crop_to_5() -> None:
    up = infer("upsample2d", {"size": 3}, [(2, 2, 64)])
    crop = DEFAULT_OPS.get("crop2d").infer(params("crop2d", {"cropping": [[0, 1], [0, 1]]}),
                                          (up,))
    assert crop.shape == (None, 5, 5, 64)
    matched = infer("resize_to_match", {}, [(6, 6, 64), (5, 5, 64)])
    assert matched.shape == crop.shape


ERRORS = [
    ("upsample2d", {"size": 2}, [(5, 5)], r"must have rank 4"),
    ("learned_upsample2d", {"size": 2}, [(5, 5, 3, 1)], r"must have rank 4"),
    ("learned_upsample2d", {"size": 2, "shared": False}, [(5, 5, None)],
     r"per-channel learned_upsample2d needs a known size on axis 3"),
    ("crop2d", {"cropping": [[0, 6], [0, 0]]}, [(6, 6, 3)], r"removes all of"),
    ("crop2d", {"cropping": 3}, [(6, 9, 3)], r"removes all of"),
    ("pad2d", {"padding": 1}, [(5, 3)], r"must have rank 4"),
    ("resize_to_match", {}, [(6, 6, 3), (5, 5)], r"input 1 must have rank 4"),
    ("resize_to_match", {}, [(None, 6, 3), (5, 5, 3)], r"needs a known size on axis 1"),
    ("resize_to_match", {}, [(6, 6, 3), (5, None, 3)], r"reference.*axis 2"),
    ("weighted_sum", {}, [(5, 5, 3), (5, 5, 4)], r"differ on axis 3 \(3 vs 4\)"),
    ("weighted_sum", {}, [(5, 5, 3), (4, 4, 3)], r"differ on axis 1 \(5 vs 4\)"),
    ("weighted_sum", {}, [(5, 5, 3), (5, 5)], r"rank"),
    ("weighted_sum", {"initial": [1.0, 2.0, 3.0]}, [(5, 5, 3)] * 2, r"3 values for 2 inputs"),
    ("weighted_sum", {}, [(5, 5, None)] * 2, r"per-channel weighted_sum needs a known size"),
    ("kernel_conv", {"kernel": "lgcn"}, [(5, 5)], r"must have rank 4"),
    ("spatial_softmax", {}, [(25, 3)], r"must have rank 4"),
]


@pytest.mark.parametrize(("op", "raw", "shapes", "pattern"), ERRORS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ERRORS)])
def test_infer_rejects(op: str, raw: dict[str, Any], shapes: list[tuple[int | None, ...]],
                       pattern: str) -> None:
    with pytest.raises(ShapeMismatch, match=pattern):
        infer(op, raw, shapes)


def test_crop_error_has_hint() -> None:
    with pytest.raises(ShapeMismatch) as err:
        infer("crop2d", {"cropping": 5}, [(6, 6, 3)])
    assert err.value.hint and "crop fewer" in err.value.hint


PARAM_ERRORS = [
    ("upsample2d", {}, r"missing required param 'size'"),
    ("upsample2d", {"size": 0}, r"'size' must be >= 1"),
    ("upsample2d", {"size": 2, "interpolation": "bicubic"}, r"one of nearest, bilinear"),
    ("upsample2d", {"size": 2.0}, r"expected int or \[int, int\], found float 2.0"),
    ("learned_upsample2d", {"size": 2.0}, r"hint: write a whole number"),
    ("learned_upsample2d", {"size": 1}, r"'size' must be >= 2"),
    ("learned_upsample2d", {"size": [2, 2]}, r"expected int"),
    ("crop2d", {"cropping": -1}, r"must be >= 0"),
    ("crop2d", {"cropping": [[0, -1], [0, 0]]}, r"must be >= 0"),
    ("crop2d", {"cropping": [1, 2, 3]}, r"expected int or \[int, int\]"),
    ("pad2d", {"padding": True}, r"YAML reads on/off"),
    ("resize_to_match", {"align": "centre"}, r"one of top_left, center"),
    ("scale", {"value": -0.5, "constraint": "non_neg"}, r"violates constraint non_neg"),
    ("scale", {"value": 1.5, "constraint": "unit_interval"}, r"violates constraint unit_interval"),
    ("scale", {"valu": 1.0}, r"did you mean 'value'"),
    ("weighted_sum", {"l2": -1.0}, r"must be >= 0"),
    ("weighted_sum", {"initial": "uniform"}, r"expected float or \[float, ...\]"),
    ("kernel_conv", {}, r"missing required param 'kernel'"),
    ("kernel_conv", {"kernel": "lgcm"}, r"one of lgcn, lgcn_code, gaussian, bilinear"),
    ("kernel_conv", {"kernel": "lgcn", "size": 44}, r"must be odd"),
    ("kernel_conv", {"kernel": "gaussian", "size": 7}, r"needs sigma"),
    ("kernel_conv", {"kernel": "gaussian", "sigma": 0.0}, r"'sigma': must be > 0"),
    ("kernel_conv", {"kernel": "lgcn", "sigma": 2.0}, r"only kernel: gaussian uses sigma"),
    ("spatial_softmax", {"temperature": 0.0}, r"must be > 0"),
]


@pytest.mark.parametrize(("op", "raw", "pattern"), PARAM_ERRORS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(PARAM_ERRORS)])
def test_param_errors(op: str, raw: dict[str, Any], pattern: str) -> None:
    assert re.search(pattern, param_errors(op, raw))


COUNTS = [  # (op, raw, input shapes, weights incl. frozen ones (as Keras), flops per example)
    ("upsample2d", {"size": 2}, [(5, 5, 4)], 0, 0),
    ("upsample2d", {"size": 2, "interpolation": "bilinear"}, [(5, 5, 4)], 0, 7 * 400),
    ("learned_upsample2d", {"size": 2}, [(5, 5, 4)], 9, 2 * 9 * 100),
    ("learned_upsample2d", {"size": 3, "shared": False}, [(5, 5, 4)], 25 * 4, 2 * 25 * 100),
    ("learned_upsample2d", {"size": 3, "trainable": False}, [(5, 5, 4)], 25, 2 * 25 * 100),
    ("crop2d", {"cropping": 1}, [(5, 5, 4)], 0, 0),
    ("pad2d", {"padding": 1}, [(5, 5, 4)], 0, 0),
    ("resize_to_match", {}, [(6, 6, 4), (5, 5, 1)], 0, 0),
    ("scale", {"value": 0.5}, [(5, 5, 4)], 0, 100),
    ("scale", {"trainable": True}, [(5, 5, 4)], 1, 100),
    ("weighted_sum", {}, [(5, 5, 4)] * 3, 12, 5 * 100),
    ("weighted_sum", {"per_channel": False}, [(5, 5, 4)] * 3, 3, 5 * 100),
    ("weighted_sum", {"trainable": False}, [(5, 5, 4)] * 3, 12, 5 * 100),
    ("kernel_conv", {"kernel": "lgcn"}, [(5, 5, 4)], 0, 2 * 45 * 45 * 100),
    ("spatial_softmax", {}, [(5, 5, 4)], 0, 5 * 100),
]


@pytest.mark.parametrize(("op", "raw", "shapes", "n_params", "flops"), COUNTS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(COUNTS)])
def test_counts(op: str, raw: dict[str, Any], shapes: list[tuple[int, ...]], n_params: int,
                flops: int) -> None:
    opdef = DEFAULT_OPS.get(op)
    p = params(op, raw)
    ins = tuple(TensorType((None, *s)) for s in shapes)
    out = opdef.infer(p, ins)
    assert opdef.count_params(p, ins, out) == n_params
    assert opdef.flops(p, ins, out) == flops


@pytest.mark.parametrize("op", RESIZE_OPS + WEIGHTING_OPS)
def test_registered_with_doc_and_family(op: str) -> None:
    opdef = DEFAULT_OPS.get(op)
    assert opdef is not None
    assert opdef.doc and opdef.family == ("resize" if op in RESIZE_OPS else "weighting")


def test_arity() -> None:
    assert DEFAULT_OPS.get("resize_to_match").arity_text() == "exactly 2 inputs"
    assert DEFAULT_OPS.get("weighted_sum").arity_text() == "at least 2 inputs"
    assert DEFAULT_OPS.get("kernel_conv").arity_text() == "exactly 1 input"


def test_kernel_literal_matches_kernel_table() -> None:
    from typing import get_args

    assert get_args(KernelName) == KERNEL_NAMES


@pytest.mark.parametrize(("value", "expected"), [
    (1, ((1, 1), (1, 1))),
    ((1, 2), ((1, 1), (2, 2))),
    (((0, 1), (2, 3)), ((0, 1), (2, 3))),
])
def test_sides(value: Any, expected: tuple[tuple[int, int], tuple[int, int]]) -> None:
    assert sides(value) == expected


@pytest.mark.parametrize(("size", "target", "align", "expected"), [
    (6, 5, "top_left", (0, 1)),
    (6, 5, "center", (0, 1)),
    (9, 5, "center", (2, 2)),
    (4, 7, "top_left", (0, -3)),
    (4, 7, "center", (-1, -2)),
    (5, 5, "center", (0, 0)),
])
def test_match_offsets(size: int, target: int, align: str, expected: tuple[int, int]) -> None:
    assert match_offsets(size, target, align) == expected


def test_ops_modules_do_not_import_tensorflow() -> None:
    code = ("import sys, compiler.ops.resize, compiler.ops.weighting, compiler.kernels;"
            "sys.exit(bool({'tensorflow', 'keras'} & set(sys.modules)))")
    subprocess.run([sys.executable, "-c", code], check=True)
