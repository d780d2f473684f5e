"""Point ops without TensorFlow: shape tables, located errors, param checks, counts."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.api import load_spec_text
from compiler.diagnostics import ShapeMismatch, SpecError
from compiler.ir import TensorType
from compiler.opdoc import describe_op, list_ops
from compiler.ops import DEFAULT_OPS
from compiler.ops.points import to_input, to_map
from tests.unit.ops.op_params import make_params as params
from tests.unit.ops.op_params import param_errors as errors

N = None
POINT_OPS = ["sample_at_points", "points_to_maps", "soft_argmax", "argmax_points",
             "stop_gradient", "split", "gather_points", "fill", "channel_affine"]


def infer(op: str, raw: dict[str, Any], *shapes: tuple[int | None, ...]) -> TensorType:
    return DEFAULT_OPS.get(op).infer(params(op, raw), tuple(TensorType(s) for s in shapes))


def counts(op: str, raw: dict[str, Any], *shapes: tuple[int | None, ...]) -> tuple[int, int]:
    opdef, p = DEFAULT_OPS.get(op), params(op, raw)
    ins = tuple(TensorType(s) for s in shapes)
    out = opdef.infer(p, ins)
    return opdef.count_params(p, ins, out), opdef.flops(p, ins, out)


SHAPES = [
    ("sample_at_points", {}, [(N, 20, 20, 64), (N, 68, 2)], (N, 68, 64)),
    ("sample_at_points", {"input_size": 80}, [(N, 10, 10, 3), (N, 5, 2)], (N, 5, 3)),
    ("sample_at_points", {}, [(N, N, N, 8), (N, N, 2)], (N, N, 8)),
    ("points_to_maps", {"height": 40, "width": 40}, [(N, 68, 2)], (N, 40, 40, 68)),
    ("points_to_maps", {"height": 8, "width": 6, "mode": "gaussian", "sigma": 1.5,
                        "input_size": [16, 12]}, [(N, 5, 2)], (N, 8, 6, 5)),
    ("soft_argmax", {}, [(N, 40, 40, 68)], (N, 68, 2)),
    ("soft_argmax", {"from_logits": False, "input_size": 80}, [(N, 40, 30, 5)], (N, 5, 2)),
    ("soft_argmax", {"temperature": 0.1}, [(N, 4, 4, N)], (N, N, 2)),
    ("argmax_points", {"input_size": 80}, [(N, 40, 40, 7)], (N, 7, 2)),
    ("stop_gradient", {}, [(N, 5, 2)], (N, 5, 2)),
    ("stop_gradient", {}, [(N, 8, 8, 3)], (N, 8, 8, 3)),
    ("split", {"start": 0, "size": 256}, [(N, 4, 4, 512)], (N, 4, 4, 256)),
    ("split", {"start": 256, "size": 256}, [(N, 4, 4, 512)], (N, 4, 4, 256)),
    ("split", {"start": 2, "size": 1}, [(N, 3)], (N, 1)),
    ("split", {"start": 1, "size": 2}, [(N, N, 4)], (N, N, 2)),
    ("gather_points", {"indices": [36, 39, 42, 45, 30, 48, 54]}, [(N, 68, 2)], (N, 7, 2)),
    ("gather_points", {"indices": [0, 0, 1]}, [(N, 5, 7)], (N, 3, 7)),
    ("gather_points", {"indices": [3, 1], "axis": -1}, [(N, 8, 8, 5)], (N, 8, 8, 2)),
    ("fill", {"channels": 7}, [(N, 40, 40, 1)], (N, 40, 40, 7)),
    ("fill", {"channels": 16, "value": 1.0}, [(N, 256)], (N, 16)),
    ("fill", {"channels": 2}, [(N, 5, 3)], (N, 5, 2)),
    ("fill", {"channels": 2}, [(N, N, N, 3)], (N, N, N, 2)),
    ("channel_affine", {}, [(N, 8, 8, 6)], (N, 8, 8, 6)),
    ("channel_affine", {}, [(N, 6)], (N, 6)),
]


@pytest.mark.parametrize(("op", "raw", "shapes", "expected"), SHAPES,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(SHAPES)])
def test_shape_table(op: str, raw: dict[str, Any], shapes: list[tuple], expected: tuple) -> None:
    assert infer(op, raw, *shapes).shape == expected


def test_family_arity_and_docs() -> None:
    for name in POINT_OPS:
        op = DEFAULT_OPS.get(name)
        assert op is not None and op.family == "points" and op.doc, name
        assert (op.min_inputs, op.max_inputs) == ((2, 2) if name == "sample_at_points"
                                                  else (1, 1)), name
    listing = list_ops(DEFAULT_OPS)
    assert "points:" in listing.splitlines()
    assert "  sample_at_points " in listing
    assert "two split layers" in describe_op(DEFAULT_OPS.get("split"))


def test_coordinate_convention_matches_runtime_decode() -> None:
    from runtime.evaluate.decode import image_to_map, map_to_image  # numpy only: no TensorFlow

    for v in (-0.5, 0.0, 3.25, 79.0):
        assert to_map(v, 80, 20) == pytest.approx(image_to_map(v, 80, 20))
        assert to_input(v, 80, 20) == pytest.approx(map_to_image(v, 80, 20))
    assert to_map(-0.5, 80, 20) == -0.5  # the input's left edge is the map's left edge
    assert to_input(to_map(13.7, 96, 48), 96, 48) == pytest.approx(13.7)


# --- shape errors -----------------------------------------------------------------


@pytest.mark.parametrize(("op", "raw", "shapes", "pattern"), [
    ("sample_at_points", {}, [(N, 8, 8), (N, 5, 2)], r"input 0 must have rank 4 \(features"),
    ("sample_at_points", {}, [(N, 8, 8, 3), (N, 10)], r"input 1 must have rank 3 \(points"),
    ("sample_at_points", {}, [(N, 8, 8, 3), (N, 5, 3)],
     r"input 1 must be points \[batch, K, 2\].* found 3 values per point"),
    ("sample_at_points", {}, [(N, 8, 8, 3), (N, 8, 8, 3)], "input 1 must have rank 3"),
    ("sample_at_points", {"input_size": 32}, [(N, N, N, 3), (N, 5, 2)],
     "with input_size .* needs a known size on axis 1"),
    ("points_to_maps", {"height": 4, "width": 4}, [(N, 4, 4, 5)], "input 0 must have rank 3"),
    ("points_to_maps", {"height": 4, "width": 4}, [(N, 5, 1)], "found 1 values per point"),
    ("points_to_maps", {"height": 4, "width": 4}, [(N, N, 2)], "known number of points K"),
    ("soft_argmax", {}, [(N, 5, 2)], r"input 0 must have rank 4 \(maps"),
    ("soft_argmax", {}, [(N, N, 8, 5)], "soft_argmax needs a known size on axis 1"),
    ("argmax_points", {}, [(N, 8, N, 5)], "argmax_points needs a known size on axis 2"),
    ("split", {"start": 2, "size": 3}, [(N, 4, 4, 4)],
     r"channels \[2, 5\) are beyond the 4 channels"),
    ("split", {"start": 4, "size": 1}, [(N, 4)], "beyond the 4 channels"),
    ("split", {"start": 0, "size": 1}, [(N, 4, N)], "known last axis"),
    ("split", {"start": 0, "size": 1}, [(N,)], "rank >= 2"),
    ("gather_points", {"indices": [0, 68]}, [(N, 68, 2)],
     r"indices \[68\] are out of range for 68 entries on axis 1"),
    ("gather_points", {"indices": [5], "axis": -1}, [(N, 8, 8, 5)], "out of range for 5"),
    ("gather_points", {"indices": [0]}, [(N, N, 2)], "known size on axis 1"),
    ("gather_points", {"indices": [0], "axis": 0}, [(N, 5, 2)], "axis 0 is the batch"),
    ("gather_points", {"indices": [0], "axis": 3}, [(N, 5, 2)], "axis 3 is out of range"),
    ("fill", {"channels": 2}, [(N,)], "rank >= 2"),
    ("channel_affine", {}, [(N, 4, N)], "known last axis"),
])
def test_shape_errors(op: str, raw: dict[str, Any], shapes: list[tuple], pattern: str) -> None:
    with pytest.raises(ShapeMismatch, match=pattern):
        infer(op, raw, *shapes)


def test_errors_carry_a_hint() -> None:
    with pytest.raises(ShapeMismatch) as e:
        infer("gather_points", {"indices": [7]}, (N, 5, 2))
    assert e.value.hint == "indices are 0-based: use 0..4"
    with pytest.raises(ShapeMismatch) as e:
        infer("sample_at_points", {}, (N, 8, 8, 3), (N, 5, 3))
    assert "soft_argmax" in e.value.hint
    with pytest.raises(ShapeMismatch) as e:
        infer("split", {"start": 3, "size": 2}, (N, 4))
    assert e.value.hint == "start + size must be <= 4"


# --- located errors through the whole front end -----------------------------------

HEAD = ("version: 1\ninputs:\n  image: {shape: [16, 16, 3]}\n  shape: {shape: [5, 2]}\n"
        "layers:\n")
TAIL = "outputs:\n  out: {from: last}\n"


def spec_errors(layers: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec_text(HEAD + layers + TAIL, "p.yaml")
    return [str(d) for d in info.value.diagnostics]


def test_located_errors_name_file_line_layer_and_inputs() -> None:
    (msg,) = spec_errors("  - {name: pick, op: gather_points, in: [shape], indices: [1, 5]}\n"
                         "  - {name: last, op: identity, in: [pick]}\n")
    assert msg.startswith("p.yaml:6:")
    assert ("error: layer 'pick' (gather_points): indices [5] are out of range for 5 "
            "entries on axis 1 of float32[?, 5, 2]") in msg
    assert "input 0: shape float32[?, 5, 2]" in msg
    assert "hint: indices are 0-based: use 0..4" in msg
    (msg,) = spec_errors("  - {name: feat, op: sample_at_points, in: [image, image]}\n"
                         "  - {name: last, op: identity, in: [feat]}\n")
    assert msg.startswith("p.yaml:6:") and "layer 'feat' (sample_at_points): input 1" in msg
    (msg,) = spec_errors("  - {name: last, op: split, in: [image], start: 2, size: 2}\n")
    assert "layer 'last' (split): channels [2, 4) are beyond the 3 channels" in msg


def test_located_arity_error_for_sample_at_points() -> None:
    (msg,) = spec_errors("  - {name: last, op: sample_at_points, in: [image]}\n")
    assert msg.startswith("p.yaml:6:") and "exactly 2 inputs" in msg


def test_a_good_points_graph_types() -> None:
    layers = ("  - {name: maps, op: conv2d, in: [image], filters: 5, kernel_size: 1}\n"
              "  - {name: pts, op: soft_argmax, in: [maps], input_size: 16}\n"
              "  - {name: sg, op: stop_gradient, in: [pts]}\n"
              "  - {name: feat, op: sample_at_points, in: [image, sg], input_size: 16}\n"
              "  - {name: fb, op: points_to_maps, in: [sg], height: 16, width: 16, "
              "input_size: 16}\n"
              "  - {name: z0, op: fill, in: [image], channels: 5}\n"
              "  - {name: last, op: split, in: [fb], start: 0, size: 2}\n")
    g = load_spec_text(HEAD + layers + TAIL, "p.yaml").graph
    assert g.node("feat").out.shape == (None, 5, 3)
    assert g.node("fb").out.shape == (None, 16, 16, 5)
    assert g.node("z0").out.shape == (None, 16, 16, 5)
    assert g.node("last").out.shape == (None, 16, 16, 2)


# --- param errors -----------------------------------------------------------------


@pytest.mark.parametrize(("op", "raw", "message"), [
    ("points_to_maps", {"height": 4}, "missing required param 'width'"),
    ("points_to_maps", {"height": 0, "width": 4}, "param 'height' must be >= 1"),
    ("points_to_maps", {"height": 4, "width": 4, "mode": "gaussian"},
     "param 'sigma': mode: gaussian needs sigma"),
    ("points_to_maps", {"height": 4, "width": 4, "mode": "gaussian", "sigma": 0.0},
     "param 'sigma': must be > 0"),
    ("points_to_maps", {"height": 4, "width": 4, "sigma": 1.0},
     "only mode: gaussian uses sigma"),
    ("points_to_maps", {"height": 4, "width": 4, "mode": "disk"},
     "expected one of one_hot, gaussian"),
    ("sample_at_points", {"input_size": 0}, "param 'input_size' must be >= 1"),
    ("sample_at_points", {"input_size": [8, -1]}, "param 'input_size' must be >= 1"),
    ("sample_at_points", {"scale": 2}, "unknown param 'scale'"),
    ("soft_argmax", {"temperature": 0.0}, "param 'temperature': must be > 0"),
    ("soft_argmax", {"from_logits": False, "temperature": 0.5},
     "param 'temperature': only applies with from_logits: true"),
    ("soft_argmax", {"beta": 2.0}, "unknown param 'beta'"),
    ("argmax_points", {"input_size": "80"}, "expected int or [int, int] or null"),
    ("split", {"start": -1, "size": 2}, "param 'start' must be >= 0"),
    ("split", {"start": 0, "size": 0}, "param 'size' must be >= 1"),
    ("split", {"size": 2}, "missing required param 'start'"),
    ("gather_points", {"indices": []}, "param 'indices': must name at least one entry"),
    ("gather_points", {"indices": [0, -1]}, "param 'indices' must be >= 0"),
    ("gather_points", {"indices": [0.5]}, "expected [int, ...]"),
    ("fill", {}, "missing required param 'channels'"),
    ("fill", {"channels": 0}, "param 'channels' must be >= 1"),
    ("channel_affine", {"units": 3}, "unknown param 'units'"),
])
def test_param_errors(op: str, raw: dict[str, Any], message: str) -> None:
    assert message in errors(op, raw)


# --- counts -----------------------------------------------------------------------


@pytest.mark.parametrize(("op", "raw", "shapes", "n_params", "n_flops"), [
    ("channel_affine", {}, [(N, 8, 8, 6)], 12, 2 * 8 * 8 * 6),
    ("sample_at_points", {}, [(N, 20, 20, 64), (N, 68, 2)], 0, 8 * 68 * 64),
    ("points_to_maps", {"height": 4, "width": 5}, [(N, 3, 2)], 0, 0),
    ("points_to_maps", {"height": 4, "width": 5, "mode": "gaussian", "sigma": 1.0},
     [(N, 3, 2)], 0, 6 * 60),
    ("soft_argmax", {}, [(N, 4, 5, 3)], 0, 9 * 60),
    ("soft_argmax", {"from_logits": False}, [(N, 4, 5, 3)], 0, 6 * 60),
    ("argmax_points", {}, [(N, 4, 5, 3)], 0, 60),
    ("split", {"start": 0, "size": 2}, [(N, 4, 4)], 0, 0),
    ("fill", {"channels": 4}, [(N, 4, 4, 1)], 0, 0),
])
def test_counts(op: str, raw: dict[str, Any], shapes: list[tuple], n_params: int,
                n_flops: int) -> None:
    assert counts(op, raw, *shapes) == (n_params, n_flops)
