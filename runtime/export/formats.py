"""Writing the artefact of one format with the ecosystem's exporters.

SavedModel: Keras `model.export(format="tf_saved_model")`. TFLite: `tf.lite.TFLiteConverter`
on that SavedModel (float16 weights, or int8 weights and activations calibrated on real
crops, float input/output kept). ONNX: Keras `model.export(format="onnx")`, which runs
tf2onnx on the traced function. Nothing is rewritten by hand: netspec's custom layers are
plain TensorFlow ops once traced (see runtime/export/op_support.py).
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
# TFLite op types kept float in int8 exports (see _convert)
FLOAT_OPS = ["DIV", "SQRT", "RSQRT", "MAXIMUM", "MINIMUM", "MEAN", "EXP", "LOG", "SUM",
             "SOFTMAX", "ARG_MAX", "ONE_HOT", "PAD", "MUL", "SUB", "ADD", "TRANSPOSE",
             "RESHAPE", "SQUARE", "SQUARED_DIFFERENCE", "BATCH_MATMUL"]


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


def write_onnx(model: Any, path: Path) -> None:
    with _quiet():
        model.export(str(path), format="onnx", verbose=False)


def write_tflite(model: Any, path: Path, *, quantize: str | None = None,
                 calibration: np.ndarray | None = None, input_name: str = "image") -> None:
    """TFLite flatbuffer; int8 needs `calibration` raw inputs [N, S, S, C]."""

    try:
        blob = _tflite_blob(model, None, quantize, calibration)
    except Exception:  # noqa: BLE001 - the converter's shape inference, see below
        # With a dynamic batch axis the converter loses static channel counts behind some
        # concat/upsample/crop chains (RCN with skips: "tf.Conv2D is neither a custom op
        # nor a flex op"); traced at batch 1 the same graph converts, and the interpreter
        # runs it one image at a time (runners.py: XNNPack cannot resize it).
        blob = _tflite_blob(model, 1, quantize, calibration)
    path.write_bytes(blob)


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
                   calibration: np.ndarray | None = None) -> None:
    """Write `model` as `fmt` at `path` (replacing what is there)."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    if fmt == "savedmodel":
        write_savedmodel(model, path)
    elif fmt == "onnx":
        write_onnx(model, path)
    elif fmt == "tflite":
        write_tflite(model, path, quantize=quantize, calibration=calibration)
    else:
        raise ValueError(f"unknown export format {fmt!r}")
