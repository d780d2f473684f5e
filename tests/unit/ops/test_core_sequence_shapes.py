"""Core and sequence ops without TensorFlow: shape tables, param checks, counts."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
from typing import Any

import pytest

from compiler.diagnostics import ShapeMismatch
from compiler.ir import TensorType
from compiler.ops import DEFAULT_OPS
from compiler.ops.activations import ACTIVATIONS, activation_problem
from tests.unit.ops.op_params import make_params as params
from tests.unit.ops.op_params import param_errors as errors

N = None


def infer(op: str, raw: dict[str, Any], shape: tuple[int | None, ...]) -> TensorType:
    return DEFAULT_OPS.get(op).infer(params(op, raw), (TensorType(shape),))


def counts(op: str, raw: dict[str, Any], shape: tuple[int | None, ...]) -> tuple[int, int]:
    opdef, p, x = DEFAULT_OPS.get(op), params(op, raw), TensorType(shape)
    out = opdef.infer(p, (x,))
    return opdef.count_params(p, (x,), out), opdef.flops(p, (x,), out)


SHAPES = [
    ("batch_norm", {}, (N, 8, 8, 6), (N, 8, 8, 6)),
    ("batch_norm", {"axis": 1}, (N, 4, 7), (N, 4, 7)),
    ("dropout", {"rate": 0.1}, (N, 5, 5, 3), (N, 5, 5, 3)),
    ("dropout", {"rate": 0.5, "noise": "gaussian"}, (N, 9), (N, 9)),
    ("activation", {"activation": "leaky_relu"}, (N, 3, 3, 2), (N, 3, 3, 2)),
    ("dense", {"units": 7}, (N, 12), (N, 7)),
    ("dense", {"units": 4}, (N, 5, 12), (N, 5, 4)),
    ("dense", {"units": 4}, (N, N, 12), (N, N, 4)),
    ("flatten", {}, (N, 4, 5, 3), (N, 60)),
    ("flatten", {}, (N, N, 3), (N, N)),
    ("reshape", {"target_shape": [6, 10]}, (N, 4, 5, 3), (N, 6, 10)),
    ("reshape", {"target_shape": [-1, 2]}, (N, 4, 5, 3), (N, 30, 2)),
    ("reshape", {"target_shape": [3, -1]}, (N, N, 3), (N, 3, N)),
    ("global_avg_pool2d", {}, (N, 7, 9, 5), (N, 5)),
    ("global_max_pool2d", {}, (N, 7, 9, 5), (N, 5)),
    ("identity", {}, (N, 2, 3), (N, 2, 3)),
    ("softmax", {}, (N, 4, 4, 5), (N, 4, 4, 5)),
    ("softmax", {"axis": 1}, (N, 6, 2), (N, 6, 2)),
    ("lstm", {"units": 8}, (N, 10, 3), (N, 8)),
    ("lstm", {"units": 8, "return_sequences": True}, (N, 10, 3), (N, 10, 8)),
    ("lstm", {"units": 2}, (N, N, 3), (N, 2)),
    ("lstm", {"units": 4, "bidirectional": True}, (N, 10, 3), (N, 8)),
    ("lstm", {"units": 128, "bidirectional": True, "return_sequences": True}, (N, 3, 256),
     (N, 3, 256)),
    ("conv_lstm2d", {"filters": 4, "kernel_size": 3}, (N, 5, 9, 9, 2), (N, 9, 9, 4)),
    ("conv_lstm2d", {"filters": 4, "kernel_size": [3, 1], "padding": "valid", "strides": 2,
                     "return_sequences": True}, (N, 5, 9, 9, 2), (N, 5, 4, 5, 4)),
    ("conv_lstm2d", {"filters": 1, "kernel_size": 3, "padding": "valid", "dilation_rate": 2},
     (N, 3, 9, 9, 2), (N, 5, 5, 1)),
    ("time_distributed", {"layer": {"op": "dense", "units": 6}}, (N, 4, 3), (N, 4, 6)),
    ("time_distributed", {"layer": {"op": "global_avg_pool2d"}}, (N, 4, 8, 8, 3), (N, 4, 3)),
    ("time_distributed", {"layer": {"op": "flatten"}}, (N, N, 2, 3), (N, N, 6)),
    ("time_distributed", {"layer": {"op": "time_distributed",
                                    "layer": {"op": "dense", "units": 2}}},
     (N, 3, 4, 5), (N, 3, 4, 2)),
    ("time_slice", {"index": 0}, (N, 4, 3), (N, 3)),
    ("time_slice", {"index": -1}, (N, 4, 6, 6, 2), (N, 6, 6, 2)),
    ("time_slice", {"index": -3}, (N, N, 5), (N, 5)),
]


@pytest.mark.parametrize(("op", "raw", "shape", "expected"), SHAPES,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(SHAPES)])
def test_shape_table(op: str, raw: dict[str, Any], shape: tuple, expected: tuple) -> None:
    assert infer(op, raw, shape).shape == expected


def test_family_and_docs() -> None:
    names = ["batch_norm", "dropout", "activation", "dense", "flatten", "reshape",
             "global_avg_pool2d", "global_max_pool2d", "identity", "softmax",
             "lstm", "conv_lstm2d", "time_distributed", "time_slice"]
    for name in names:
        op = DEFAULT_OPS.get(name)
        assert op is not None and op.doc, name
        assert op.family == ("sequence" if name in names[10:] else "core")


# --- shape errors -----------------------------------------------------------------


def test_reshape_element_mismatch() -> None:
    with pytest.raises(ShapeMismatch, match=r"cannot reshape float32\[\?, 4, 5, 3\] "
                       r"\(60 elements per example\) to \[7, 8\] \(56 elements\)") as e:
        infer("reshape", {"target_shape": [7, 8]}, (N, 4, 5, 3))
    assert "-1" in e.value.hint


def test_reshape_wildcard_not_divisible() -> None:
    with pytest.raises(ShapeMismatch, match="60 is not a multiple of 7"):
        infer("reshape", {"target_shape": [-1, 7]}, (N, 4, 5, 3))


@pytest.mark.parametrize(("target", "message"), [
    ([-1, -1], "at most one entry may be -1"),
    ([0, 4], "entries must be >= 1 or -1"),
    ([], "must name at least one axis"),
])
def test_reshape_bad_target(target: list[int], message: str) -> None:
    assert message in errors("reshape", {"target_shape": target})


def test_lstm_on_rank4_input() -> None:
    with pytest.raises(ShapeMismatch, match=r"must have rank 3 .*found rank 4"):
        infer("lstm", {"units": 4}, (N, 5, 6, 7))


def test_bidirectional_lstm_is_documented() -> None:
    from compiler.opdoc import describe_op

    text = describe_op(DEFAULT_OPS.get("lstm"))
    assert "  bidirectional: bool (default False)" in text and "2*units" in text


def test_lstm_needs_known_features() -> None:
    with pytest.raises(ShapeMismatch, match="known last axis"):
        infer("lstm", {"units": 4}, (N, 5, N))


def test_conv_lstm_needs_rank5_and_positive_output() -> None:
    with pytest.raises(ShapeMismatch, match="must have rank 5"):
        infer("conv_lstm2d", {"filters": 2, "kernel_size": 3}, (N, 8, 8, 3))
    with pytest.raises(ShapeMismatch, match="shrinks"):
        infer("conv_lstm2d", {"filters": 2, "kernel_size": 5, "padding": "valid"},
              (N, 2, 3, 3, 1))


def test_conv_lstm_strides_with_dilation() -> None:
    msg = errors("conv_lstm2d", {"filters": 2, "kernel_size": 3, "strides": 2,
                                 "dilation_rate": 2})
    assert "cannot combine strides > 1 with dilation_rate > 1" in msg


@pytest.mark.parametrize(("op", "raw", "shape", "pattern"), [
    ("batch_norm", {"axis": 0}, (N, 4), "axis 0 is out of range"),
    ("batch_norm", {"axis": 3}, (N, 4, 4), "axis 3 is out of range"),
    ("batch_norm", {}, (N, 4, N), "known size on axis 2"),
    ("softmax", {"axis": -3}, (N, 4), "out of range"),
    ("dense", {"units": 2}, (N,), "rank >= 2"),
    ("dense", {"units": 2}, (N, 3, N), "known last axis"),
    ("global_avg_pool2d", {}, (N, 4, 4), "must have rank 4"),
    ("flatten", {}, (N,), "rank >= 2"),
    ("time_slice", {"index": 4}, (N, 4, 2), "index 4 is out of range for 4 time steps"),
    ("time_slice", {"index": -5}, (N, 4, 2), "index -5 is out of range"),
    ("time_slice", {"index": 0}, (N, 4), "rank >= 3"),
    ("time_distributed", {"layer": {"op": "dense", "units": 2}}, (N, 4), "rank >= 3"),
])
def test_shape_errors(op: str, raw: dict[str, Any], shape: tuple, pattern: str) -> None:
    with pytest.raises(ShapeMismatch, match=pattern):
        infer(op, raw, shape)


def test_time_distributed_inner_shape_error_names_inner_op() -> None:
    with pytest.raises(ShapeMismatch, match=r"inner lstm on each step float32\[\?, 3, 4, 5\]: "
                       r"input 0 must have rank 3"):
        infer("time_distributed", {"layer": {"op": "lstm", "units": 2}}, (N, 2, 3, 4, 5))


# --- param errors -----------------------------------------------------------------


def test_time_distributed_unknown_inner_op() -> None:
    msg = errors("time_distributed", {"layer": {"op": "dens", "units": 2}})
    assert "param 'layer': unknown inner op 'dens' (did you mean 'dense'?)" in msg


def test_time_distributed_bad_inner_param() -> None:
    msg = errors("time_distributed", {"layer": {"op": "dense", "unit": 2}})
    assert "inner op 'dense': unknown param 'unit'" in msg
    assert "did you mean 'units'?" in msg
    assert "missing required param 'units'" not in msg  # the did-you-mean already says it
    msg = errors("time_distributed", {"layer": {"op": "dense", "units": "four"}})
    assert "param 'units': expected int, found string 'four'" in msg


def test_time_distributed_inner_needs_op_and_one_input() -> None:
    assert "needs an 'op' key" in errors("time_distributed", {"layer": {"units": 2}})
    assert "time_distributed needs a one-input op" in errors(
        "time_distributed", {"layer": {"op": "add"}})
    assert "expected mapping" in errors("time_distributed", {"layer": "dense"})


def test_time_distributed_params_are_hashable_and_comparable() -> None:
    a = params("time_distributed", {"layer": {"op": "dense", "units": 2}})
    b = params("time_distributed", {"layer": {"op": "dense", "units": 2}})
    c = params("time_distributed", {"layer": {"op": "dense", "units": 3}})
    assert a == b and hash(a) == hash(b) and a != c


@pytest.mark.parametrize(("op", "raw", "message"), [
    ("dropout", {}, "missing required param 'rate'"),
    ("dropout", {"rate": 1.0}, "param 'rate' must be < 1.0"),
    ("dropout", {"rate": -0.1}, "param 'rate' must be >= 0.0"),
    ("dropout", {"rate": 0.1, "noise": "uniform"}, "expected one of bernoulli, gaussian"),
    ("activation", {"activation": "rleu"}, "unknown activation 'rleu'; did you mean 'relu'?"),
    ("dense", {"units": 3, "activation": "sigmod"}, "did you mean 'sigmoid'?"),
    ("dense", {"units": 3, "kernel_initializer": "he_normall"}, "did you mean 'he_normal'?"),
    ("dense", {"units": 0}, "param 'units' must be >= 1"),
    ("batch_norm", {"epsilon": 0.0}, "param 'epsilon': must be > 0"),
    ("lstm", {"units": 4, "recurrent_activation": "hard_sigmod"},
     "did you mean 'hard_sigmoid'?"),
    ("lstm", {"units": 4, "return_sequences": "yes"}, "expected bool"),
    ("time_slice", {"index": 1.5}, "expected int"),
    ("lstm", {"units": 2, "bidirectional": True, "go_backwards": True},
     "param 'go_backwards': bidirectional already runs one direction backwards"),
    ("lstm", {"units": 2, "bidirectional": "yes"}, "expected bool"),
])
def test_param_errors(op: str, raw: dict[str, Any], message: str) -> None:
    assert message in errors(op, raw)


def test_activation_list() -> None:
    assert len(set(ACTIVATIONS)) == len(ACTIVATIONS) == 15
    assert all(activation_problem(a) is None for a in ACTIVATIONS)
    assert "did you mean 'gelu'" in activation_problem("gleu")
    assert "activations: " in activation_problem("qqqqqq")  # nothing close: lists all


# --- counts -----------------------------------------------------------------------


@pytest.mark.parametrize(("op", "raw", "shape", "n_params", "n_flops"), [
    ("dense", {"units": 7}, (N, 12), 12 * 7 + 7, 7 * (2 * 12 + 1)),
    ("dense", {"units": 4, "use_bias": False}, (N, 5, 12), 48, 5 * 4 * 24),
    ("batch_norm", {}, (N, 8, 8, 6), 4 * 6, 2 * 8 * 8 * 6),
    ("batch_norm", {"center": False}, (N, 8, 8, 6), 3 * 6, 2 * 8 * 8 * 6),
    ("lstm", {"units": 8}, (N, 10, 3), 4 * 8 * (3 + 8 + 1), 10 * (8 * 8 * 11 + 64)),
    ("lstm", {"units": 8, "bidirectional": True}, (N, 10, 3), 2 * 4 * 8 * (3 + 8 + 1),
     2 * 10 * (8 * 8 * 11 + 64)),
    ("conv_lstm2d", {"filters": 4, "kernel_size": 3}, (N, 5, 9, 9, 2),
     4 * 4 * (9 * (2 + 4) + 1), 5 * 81 * (8 * 4 * 9 * 6 + 32)),
    ("time_distributed", {"layer": {"op": "dense", "units": 6}}, (N, 4, 3),
     3 * 6 + 6, 4 * 6 * 7),
    ("dropout", {"rate": 0.3}, (N, 10), 0, 0),
    ("identity", {}, (N, 10), 0, 0),
])
def test_counts(op: str, raw: dict[str, Any], shape: tuple, n_params: int,
                n_flops: int) -> None:
    assert counts(op, raw, shape) == (n_params, n_flops)


def test_ops_import_no_tensorflow(repo: Path) -> None:
    code = ("import sys; from compiler.ops import DEFAULT_OPS;"
            "from compiler.params import coerce_params;"
            "from compiler.diagnostics import UNKNOWN_LOC;"
            "op = DEFAULT_OPS.get('time_distributed');"
            "p, _ = coerce_params(op.params, {'layer': {'op': 'dense', 'units': 2}}, UNKNOWN_LOC);"
            "op.infer(p, (__import__('compiler.ir').ir.TensorType((None, 3, 4)),));"
            "sys.exit(int(bool({'tensorflow', 'keras'} & set(sys.modules))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, check=False)
    assert done.returncode == 0
