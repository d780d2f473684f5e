"""Running an exported artefact with its own runtime (TF SavedModel, the TFLite
interpreter, ONNX Runtime): one callable per export, raw inputs in, named outputs out.
Used by `netspec predict EXPORT_DIR`, the parity tests and bench/export_latency.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compiler.diagnostics import SourceLoc, SpecError

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


def load_runner(export_dir: Path, manifest: dict[str, Any], *, threads: int | None = None,
                batch: int | None = None) -> Runner:
    """A callable x [B, S, S, C] float32 0..255 -> {output name: array}; `threads` caps the
    intra-op threads of TFLite and ONNX Runtime (TensorFlow's are process-wide). `batch`
    promises that every call has that batch size: ONNX Runtime then fixes the graph's
    batch axis and folds the shape arithmetic at load time (~0.2 ms a call at batch 1)."""
    fmt = manifest["format"]
    path = Path(export_dir) / manifest["artefact"]
    name = manifest["input"]["name"]
    try:
        if fmt == "savedmodel":
            return _savedmodel(path, name)
        if fmt == "tflite":
            return _tflite(path, name, threads)
        return _onnx(path, name, threads, batch)
    except ImportError as e:
        raise SpecError.at(SourceLoc(str(path)), f"cannot run a {fmt} export: {e}",
                           hint='install the export engines: pip install -e ".[export]"') from None


def _savedmodel(path: Path, name: str) -> Runner:
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures["serving_default"]

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in fn(**{name: tf.constant(x, tf.float32)}).items()}

    return run


def _tflite(path: Path, name: str, threads: int | None) -> Runner:
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice (ai_edge_litert)
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    sig = interp.get_signature_runner("serving_default")  # resizes to each batch itself
    fixed = int(sig.get_input_details()[name]["shape_signature"][0]) == 1  # batch-1 graph

    def one(x: np.ndarray) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in sig(**{name: np.asarray(x, np.float32)}).items()}

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        if not fixed or len(x) == 1:
            return one(x)
        parts = [one(x[i:i + 1]) for i in range(len(x))]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    return run


def _onnx(path: Path, name: str, threads: int | None, batch: int | None = None) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if batch is not None:
        import onnx

        dim = onnx.load(str(path), load_external_data=False).graph.input[0]
        axis = dim.type.tensor_type.shape.dim[0]
        if axis.dim_param:
            opts.add_free_dimension_override_by_name(axis.dim_param, batch)
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        out = sess.run(None, {name: np.asarray(x, np.float32)})
        return dict(zip(names, out, strict=True))

    return run
