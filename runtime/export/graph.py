"""The graph that is exported: raw pixels in, the model's output and decoded points out.

The run's model expects normalised inputs (LCN, per-image, scale, lgcn) and emits heat
maps or scaled coordinates. Deployment code should not have to re-implement either, so
the exported graph is `normalise -> model -> decode`, built as a Keras functional model
around the trained one and traced by the ecosystem exporters. Its input is the square
crop, resized to the network side, with raw 0..255 values (the manifest says how to crop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

INPUT_NAME = "image"
POINTS_NAME = "points"


@dataclass(frozen=True)
class ExportGraph:
    """The wrapped model and what its inputs and outputs mean."""

    model: Any  # keras.Model: {INPUT_NAME: [B, S, S, C] float32 0..255}
    size: int
    channels: int
    normalize: str
    output: str  # the raw decoded output's name (as in the spec)
    kind: str  # 'heatmap' or 'coords'
    points: str | None  # name of the points output, None when not decoded
    refine: str
    output_shape: tuple[int, ...]  # without the batch axis


class _Normalize(keras.layers.Layer):
    """The training pipeline's normalisation (runtime/data/normalize.py), in the graph."""

    def __init__(self, method: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method = method

    def call(self, x: Any) -> Any:
        from runtime.data.normalize import normalize

        return normalize(x, self.method)


class _DecodePoints(keras.layers.Layer):
    """Heat maps or coordinates -> [B, K, 2] points in input pixels (decode_tf)."""

    def __init__(self, kind: str, size: int, refine: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind, self.size, self.refine = kind, size, refine

    def call(self, y: Any) -> Any:
        from runtime.export import decode_tf

        if self.kind == "coords":
            return decode_tf.coord_points(y, self.size)
        return decode_tf.heatmap_points(y, self.size, self.refine)

    def compute_output_shape(self, shape: tuple[Any, ...]) -> tuple[Any, ...]:
        k = shape[-1] // 2 if self.kind == "coords" else shape[-1]
        return (shape[0], k, 2)


def build_export_graph(spec: Any, keras_model: Any, *, points: bool = True) -> ExportGraph:
    """The exportable wrapper of a run's model; a SpecError for models export cannot take."""
    from compiler.diagnostics import SourceLoc, SpecError
    from runtime.datasets import spec_data_config
    from runtime.evaluate.eval_config import decoded_output, eval_config

    inp = spec.graph.inputs[0]
    loc = SourceLoc(spec.file)
    if len(spec.graph.inputs) != 1 or inp.out is None or inp.out.rank != 4:
        raise SpecError.at(loc, f"export takes models with one image input [S, S, C]; "
                                f"'{spec.name}' has {len(spec.graph.inputs)} input(s), the "
                                f"first {inp.out}",
                           hint="sequence models ([T, S, S, C]) are not exported yet")
    dcfg = spec_data_config(spec)
    ecfg = eval_config(spec.section("eval"), spec.section("eval").loc)
    out_name, kind = decoded_output(spec, ecfg)
    x = keras.Input((dcfg.size, dcfg.size, dcfg.channels), name=INPUT_NAME, dtype="float32")
    normed = _Normalize(dcfg.normalize, name="netspec_normalize")(x)
    raw = keras_model({inp.name: normed})[out_name]
    outputs = {out_name: raw}
    points_name = None
    if points:
        points_name = POINTS_NAME if out_name != POINTS_NAME else f"{POINTS_NAME}_decoded"
        outputs[points_name] = _DecodePoints(kind, dcfg.size, ecfg.refine,
                                             name="netspec_decode")(raw)
    model = keras.Model({INPUT_NAME: x}, outputs, name=f"{spec.name}_export")
    return ExportGraph(model, dcfg.size, dcfg.channels, dcfg.normalize, out_name, kind,
                       points_name, ecfg.refine, tuple(int(d) for d in raw.shape[1:]))
