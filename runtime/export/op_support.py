"""Which export formats take which ops: the table `netspec ops` prints and export errors cite.

Every netspec op lowers to plain TensorFlow ops (the custom layers of compiler/keras_layers
are written with keras.ops: no py_function, no gather_nd on dynamic indices), so they all
trace into SavedModel, the TFLite builtin op set and ONNX (opset 13+ via tf2onnx). The
exceptions below were found by exporting every op (tests/export) and are checked there.
Spec-only: no TensorFlow import.
"""

from __future__ import annotations

from typing import Any

FORMATS = ("savedmodel", "tflite", "onnx")

# op -> {format: why it cannot be exported}; ops absent here export to every format.
UNSUPPORTED: dict[str, dict[str, str]] = {
    # found by exporting a trained specs/rar.yaml run (SavedModel matched Keras to 2.4e-7)
    "robust_init_shape": {
        "tflite": "its RANSAC tie-break packs scores with bitwise ops (BitwiseAnd), which "
                  "the TFLite builtin op set lacks",
        "onnx": "its RANSAC tie-break bit-casts float scores (Bitcast), which ONNX lacks",
    },
}
# Ops that tests/export exports to every format with outputs matching Keras (the specs in
# specs/ and tests/export/export_zoo.yaml); the test fails when this list drifts.
VERIFIED = frozenset({
    "activation", "add", "argmax_points", "avg_pool2d", "batch_norm", "channel_affine", "concat",
    "conv2d", "conv2d_transpose", "crop2d", "dense", "depthwise_conv2d", "dropout", "fill",
    "flatten", "gather_points", "global_avg_pool2d", "global_max_pool2d", "identity",
    "kernel_conv", "learned_upsample2d", "max_pool2d", "module_input", "pad2d", "points_to_maps",
    "resize_to_match", "sample_at_points", "scale", "soft_argmax", "softmax", "spatial_softmax",
    "split", "unpool_with_indices", "upsample2d", "weighted_sum",
})


def formats_for(op: str) -> tuple[str, ...]:
    """The export formats an op can be exported to."""
    bad = UNSUPPORTED.get(op, {})
    return tuple(f for f in FORMATS if f not in bad)


def unsupported_ops(spec: Any, fmt: str) -> list[str]:
    """The ops of `spec`'s graph that `fmt` cannot take (with the reason)."""
    ops = sorted({str(getattr(n, "op", "")) for n in spec.graph.nodes})
    return [f"{o}: {UNSUPPORTED[o][fmt]}" for o in ops if fmt in UNSUPPORTED.get(o, {})]


def support_line(op: str) -> str:
    """'export: savedmodel, tflite, onnx' (or the formats it lacks, with why)."""
    bad = UNSUPPORTED.get(op, {})
    line = "export: " + ", ".join(formats_for(op))
    line += " (verified)" if op in VERIFIED else " (not yet exported by the tests)"
    if bad:
        line += "; not " + "; ".join(f"{f} ({why})" for f, why in bad.items())
    return line


def export_summary(ops: Any) -> str:
    """The closing paragraph of `netspec ops`: which formats take which ops."""
    names = sorted(ops)
    bad = [o for o in names if UNSUPPORTED.get(o)]
    untested = [o for o in names if o not in VERIFIED and not UNSUPPORTED.get(o)]
    lines = [f"\nexport (netspec export --format {'|'.join(FORMATS)}, image models [S, S, C]): "
             f"{len([o for o in names if o in VERIFIED])} ops are exported to all three by the "
             "tests, outputs checked against Keras" + (", except:" if bad else "")]
    lines += [f"  {o}: {support_line(o)}" for o in bad]
    if untested:
        lines.append("  not yet exported by the tests: " + ", ".join(untested))
    return "\n".join(lines)
