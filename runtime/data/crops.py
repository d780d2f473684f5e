"""Crop squares of a FaceSet's rows, in numpy (no TensorFlow): shared by the tf.data
pipeline, the shapes-only pipeline and the device face cache, so all three crop a face
exactly alike."""

from __future__ import annotations

import numpy as np

from runtime.data import geometry
from runtime.data.config import DataConfig
from runtime.data.records import FaceSet


def crop_squares(faces: FaceSet, cfg: DataConfig) -> np.ndarray | None:
    """(N, 3) source crops cx, cy, side per row (NaN = unusable); None for crop: none."""
    boxes = face_boxes(faces, cfg)
    return None if boxes is None else geometry.square_crops(boxes, cfg.crop_ratio)


def face_boxes(faces: FaceSet, cfg: DataConfig) -> np.ndarray | None:
    """(N, 4) float64 box per row that data.crop centres on: the data set's face boxes
    (crop: box) or the visible landmarks' extent (crop: landmarks); None for crop: none."""
    if cfg.crop == "none":
        return None
    if cfg.crop == "box":
        if faces.boxes is None:
            raise ValueError(f"crop: box, but '{faces.name}' has no face boxes; "
                             "use crop: landmarks or crop: none")
        return np.asarray(faces.boxes, np.float64)
    return geometry.landmark_boxes(faces.landmarks, faces.visible)


def source_name(faces: FaceSet, i: int) -> str:
    return faces.paths[i] if faces.paths else f"{faces.name}[{i}]"
