"""`netspec predict EXPORT_DIR ...`: an exported artefact (runtime/export) predicted with
its own runtime, through the same crop, decoding and outputs as a run.

The export normalises inside its graph, so the pipeline here produces the raw 0..255
crop (`normalize: scale`, times 255) and the artefact does the rest; its raw output
(heat maps or coordinates) is decoded by the same numpy decoder as a run's, so predict
on an export equals predict on the run up to the export's float error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ExportedModel:
    """Keras-like `predict_on_batch` over an export runner (what predict_files calls)."""

    runner: Any
    input_name: str

    def predict_on_batch(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.runner(np.asarray(inputs[self.input_name], np.float32) * np.float32(255.0))


def load_export(export_dir: Path) -> tuple[str, Any, Any, str, str, str, tuple[str, float]]:
    """(model name, ExportedModel, DataConfig for the crop, raw output, kind, refine,
    (training crop rule, crop_ratio))."""
    from runtime.data.config import DataConfig
    from runtime.export.manifest import raw_output, read_manifest
    from runtime.export.runners import load_runner

    man = read_manifest(export_dir)
    inp = man["input"]
    _, size, _, channels = inp["shape"]
    out, kind = raw_output(man)
    refine = "quadratic"
    for o in man["outputs"].values():
        if o.get("kind") == "points":
            refine = o.get("decoding", {}).get("refine", refine)
    crop = man.get("crop", {})
    dcfg = DataConfig(size=int(size), channels=int(channels), scheme=man["landmarks"]["scheme"],
                      crop="box", crop_ratio=1.0, normalize="scale",
                      antialias=bool(crop.get("antialias", True)), val_jitter=False,
                      on_error="raise", deterministic=True, augment={"enabled": False})
    model = ExportedModel(load_runner(export_dir, man), inp["name"])
    trained = (str(crop.get("rule", "none")), float(crop.get("crop_ratio", 1.0)))
    return str(man.get("model")), model, dcfg, out, kind, refine, trained
