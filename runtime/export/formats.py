"""Writing the artefact of one format with the ecosystem's exporters.

SavedModel: Keras `model.export(format="tf_saved_model")`. TFLite: `tf.lite.TFLiteConverter`
on that SavedModel (float16 weights, or int8 weights and activations calibrated on real
crops, float input/output kept). ONNX: Keras `model.export(format="onnx")`, which runs
tf2onnx on the traced function; int8 ONNX is ONNX Runtime's static QDQ quantisation of that
file (`onnxruntime.quantization.quantize_static`: uint8 activations, per-channel int8
weights, calibrated on the same crops as TFLite). Nothing is rewritten by hand: netspec's
custom layers are plain TensorFlow ops once traced (see runtime/export/op_support.py).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
import shutil
import tempfile
from typing import Any

import numpy as np

QUANTIZE = ("float16", "int8")
# --quantize values each format takes
FORMAT_QUANTIZE = {"savedmodel": (), "tflite": QUANTIZE, "onnx": ("int8",)}
# TFLite op types kept float in int8 exports (see _convert)
FLOAT_OPS = ["DIV", "SQRT", "RSQRT", "MAXIMUM", "MINIMUM", "MEAN", "EXP", "LOG", "SUM",
             "SOFTMAX", "ARG_MAX", "ONE_HOT", "PAD", "MUL", "SUB", "ADD", "TRANSPOSE",
             "RESHAPE", "SQUARE", "SQUARED_DIFFERENCE", "BATCH_MATMUL", "GATHER"]
# ONNX int8 (QDQ): the model body's op types that run in int8 (data-movement ops only when
# their input already is); everything in the normalisation and decoding layers, the
# softmax (Exp / ReduceSum / Div are not listed) and the head convolution stay float.
ONNX_INT8_OPS = ["Conv", "MaxPool", "Relu", "Concat", "Transpose", "Reshape", "Unsqueeze",
                 "Squeeze", "Tile", "Slice"]
ONNX_FLOAT_SCOPES = ("netspec_normalize", "netspec_decode")  # graph.py's layer names
# Percentile (99.99 %) calibration: the smallest NME change of MinMax, Percentile and
# Entropy on two MTFL runs (bench/export_latency.py variants; MinMax +0.26 / +0.54 pt)
ONNX_CALIBRATION = "percentile"


@contextlib.contextmanager
def _quiet() -> Any:
    """Exporters print progress and warnings to stdout/stderr; netspec reports its own."""
    import logging
    import warnings

    level = logging.getLogger("tf2onnx").level
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logging.getLogger("tf2onnx").setLevel(level)


def write_savedmodel(model: Any, path: Path, *, batch: int | None = None) -> None:
    """`batch` fixes the batch axis of the serving signature (None: any batch)."""
    import tensorflow as tf

    sig = None
    if batch is not None:
        sig = [{k: tf.TensorSpec([batch, *t.shape[1:]], tf.float32, name=k)
                for k, t in model.input.items()}]
    with _quiet():
        model.export(str(path), format="tf_saved_model", verbose=False, input_signature=sig)


def write_onnx(model: Any, path: Path, *, quantize: str | None = None,
               calibration: np.ndarray | None = None) -> dict[str, Any] | None:
    """ONNX file; int8 (QDQ) needs `calibration` raw inputs [N, S, S, C] and returns what
    was quantised (for the manifest)."""
    if quantize is None:
        with _quiet():
            model.export(str(path), format="onnx", verbose=False)
        return None
    if quantize != "int8":
        raise ValueError(f"ONNX export quantises to int8 only, not {quantize!r}")
    if calibration is None or len(calibration) == 0:
        raise ValueError("int8 quantisation needs calibration inputs")
    with tempfile.TemporaryDirectory(prefix="netspec_export_") as tmp:
        fp32 = Path(tmp) / "model_fp32.onnx"
        with _quiet():
            model.export(str(fp32), format="onnx", verbose=False)
        return quantize_onnx_int8(fp32, path, calibration)


def quantize_onnx_int8(src: Path, dst: Path, calibration: np.ndarray, *,
                       method: str = ONNX_CALIBRATION, keep_head_float: bool = True,
                       keep_first_float: bool = False, activations: str = "uint8",
                       per_channel: bool = True) -> dict[str, Any]:
    """ONNX Runtime static QDQ quantisation of the float ONNX export `src` into `dst`.

    The keyword arguments are the variants bench/export_latency.py compares; the defaults
    are the measured choice. Returns the manifest's `quantization` record."""
    import logging

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    graph = onnx.load(str(src)).graph
    name = graph.input[0].name
    data = np.asarray(calibration, np.float32)

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.i >= len(data):
                return None
            self.i += 1
            return {name: data[self.i - 1:self.i]}

        def rewind(self) -> None:
            self.i = 0

    float_nodes = [n.name for n in graph.node if any(s in n.name for s in ONNX_FLOAT_SCOPES)]
    convs = [n.name for n in graph.node if n.op_type == "Conv"
             and not any(s in n.name for s in ONNX_FLOAT_SCOPES)]
    kept = []
    if keep_head_float and convs:
        kept.append(convs[-1])
    if keep_first_float and convs:
        kept.append(convs[0])
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "please consider pre-processing" and calibration notes
    try:
        with _quiet():
            quantize_static(
                str(src), str(dst), _Reader(), quant_format=QuantFormat.QDQ,
                op_types_to_quantize=ONNX_INT8_OPS, per_channel=per_channel,
                activation_type=QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8,
                weight_type=QuantType.QInt8, nodes_to_exclude=float_nodes + kept,
                calibrate_method=methods[method],
                extra_options={"CalibPercentile": 99.99} if method == "percentile" else None)
    finally:
        root.setLevel(level)
    return {"engine": "onnxruntime.quantization.quantize_static", "format": "QDQ",
            "activations": activations, "weights": "int8 per-channel" if per_channel
            else "int8 per-tensor", "calibration": method, "calibration_images": len(data),
            "int8_op_types": list(ONNX_INT8_OPS), "float_layers": list(ONNX_FLOAT_SCOPES)
            + ["softmax"] + (["head convolution"] if keep_head_float else [])
            + (["first convolution"] if keep_first_float else [])}


def write_tflite(model: Any, path: Path, *, quantize: str | None = None,
                 calibration: np.ndarray | None = None, input_name: str = "image"
                 ) -> tuple[int | None, dict[str, Any] | None]:
    """TFLite flatbuffer; int8 needs `calibration` raw inputs [N, S, S, C]. Returns (the
    graph's fixed batch size, None when any batch; the quantisation record)."""

    batch = None
    try:
        blob = _tflite_blob(model, None, quantize, calibration)
    except Exception:  # noqa: BLE001 - the converter's shape inference, see below
        # With a dynamic batch axis the converter loses static channel counts behind some
        # concat/upsample/crop chains (RCN with skips: "tf.Conv2D is neither a custom op
        # nor a flex op"); traced at batch 1 the same graph converts, and the interpreter
        # runs it one image at a time (runners.py: XNNPack cannot resize it).
        batch = 1
        blob = _tflite_blob(model, batch, quantize, calibration)
    path.write_bytes(blob)
    record = None
    if quantize == "float16":
        record = {"engine": "tf.lite.TFLiteConverter", "weights": "float16",
                  "activations": "float32"}
    elif quantize == "int8":
        record = {"engine": "tf.lite.TFLiteConverter + QuantizationDebugger",
                  "activations": "int8", "weights": "int8 per-channel",
                  "calibration": "minmax",
                  "calibration_images": 0 if calibration is None else len(calibration),
                  "float_op_types": list(FLOAT_OPS)}
    return batch, record


def _tflite_blob(model: Any, batch: int | None, quantize: str | None,
                 calibration: np.ndarray | None) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="netspec_export_") as tmp:
        write_savedmodel(model, Path(tmp) / "sm", batch=batch)
        conv = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "sm"))
        return _convert(conv, quantize, calibration)


def _convert(conv: Any, quantize: str | None, calibration: np.ndarray | None) -> bytes:
    import tensorflow as tf

    with _quiet():
        if quantize == "float16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            if calibration is None or len(calibration) == 0:
                raise ValueError("int8 quantisation needs calibration inputs")
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            data = np.asarray(calibration, np.float32)

            def representative() -> Any:
                for i in range(len(data)):
                    yield [data[i:i + 1]]

            conv.representative_dataset = representative
            # Convolutions and dense layers in int8; the in-graph normalisation, the softmax
            # and the decoding stay float: quantised, LCN's and the softmax's divisors round
            # to 0 on some crops (the interpreter then fails: "div.cc data[i] != 0").
            opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=FLOAT_OPS)
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=lambda: ([data[i:i + 1]] for i in range(2)),
                debug_options=opts)
            return debugger.get_nondebug_quantized_model()
        return conv.convert()


def write_artefact(fmt: str, model: Any, path: Path, *, quantize: str | None = None,
                   calibration: np.ndarray | None = None) -> tuple[int | None, dict | None]:
    """Write `model` as `fmt` at `path` (replacing what is there); (the artefact's fixed
    batch size, None when it takes any batch; what was quantised, None for float32)."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    if fmt == "savedmodel":
        write_savedmodel(model, path)
        return None, None
    if fmt == "onnx":
        return None, write_onnx(model, path, quantize=quantize, calibration=calibration)
    if fmt == "tflite":
        return write_tflite(model, path, quantize=quantize, calibration=calibration)
    raise ValueError(f"unknown export format {fmt!r}")
