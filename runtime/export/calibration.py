"""Raw network inputs (crops at 0..255, before normalisation) from a data set: the int8
calibration set of `netspec export`, and the inputs the benches and tests feed exports.

They come from the training pipeline itself (crop, warp, channels) with `normalize:
scale` undone, so an exported graph (which normalises inside) sees what training saw.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

CALIBRATION_IMAGES = 200


def raw_inputs(faces: Any, dcfg: Any, *, limit: int | None = None) -> np.ndarray:
    """[N, S, S, C] float32 0..255 for the first `limit` usable rows of `faces`."""
    return raw_inputs_and_labels(faces, dcfg, limit=limit)[0]


def raw_inputs_and_labels(faces: Any, dcfg: Any, *, limit: int | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(raw inputs as `raw_inputs`, labels [N, K, 3]: x, y in input pixels and state)."""
    from runtime.data.pipeline import make_dataset

    cfg = replace(dcfg, normalize="scale", val_jitter=False, deterministic=True,
                  augment={**dict(dcfg.augment or {}), "enabled": False})
    if limit is not None and limit < len(faces):
        faces = faces.subset(slice(0, limit))
    ds = make_dataset(faces, cfg, training=False, batch_size=64, input_name="x")
    xs, ys = [], []
    for x, y in ds:
        xs.append(x["x"].numpy())
        ys.append(y["landmarks"].numpy())
    return np.concatenate(xs) * np.float32(255.0), np.concatenate(ys)


def calibration_inputs(spec: Any, data: str, *, limit: int = CALIBRATION_IMAGES) -> np.ndarray:
    """Raw inputs from the training split of `data` (a data-set path or 'synthetic')."""
    from runtime.datasets import load_faces, spec_data_config, split

    dcfg = spec_data_config(spec, data)
    train, _ = split(load_faces(spec, dcfg), dcfg)
    return raw_inputs(train, dcfg, limit=limit)
