"""Training shapes in network-output pixels, without decoding a single image.

Models that learn from shapes alone (RCN's denoising keypoint model) and models whose
graph holds statistics of the training shapes (RAR's representative shapes) need the
landmarks in the frame the image pipeline puts them in: the crop square of each row,
scaled to `size` x `size`. With crop: landmarks or box that frame depends on the
labels (or boxes) only, so it is computed here in numpy, the same matrices as
`runtime.data.augment.crop_matrices` (checked against the TF pipeline in the tests).
"""

from __future__ import annotations

import numpy as np

from runtime.data import geometry
from runtime.data.config import DataConfig
from runtime.data.crops import crop_squares
from runtime.data.records import ABSENT, UNLABELLED, VISIBLE, FaceSet


def crop_shapes(faces: FaceSet, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """(shapes float32 (M, K, 3), rows int64 (M,)): x, y in output pixels and the state of
    runtime.data.records per point, for the M rows that have a crop square.

    A point is VISIBLE when it is labelled, finite and on the output's pixel range
    [0, size - 1], ABSENT when labelled but off it, UNLABELLED otherwise (as the image
    pipeline marks them, except that a point outside its source image stays VISIBLE:
    the image's size is not read here). Raises ValueError for crop: none (the frame
    would need every image's size) and when no row has a crop."""
    if cfg.crop == "none":
        raise ValueError("shapes without images need data.crop: landmarks or box (crop: none "
                         "places points by the image size, which only decoding can tell)")
    squares = crop_squares(faces, cfg)
    if squares is None:  # unreachable: only crop: none has no squares
        raise ValueError("no crop squares")
    rows = np.flatnonzero(np.isfinite(squares).all(axis=1))
    if rows.size == 0:
        raise ValueError(f"no row of '{faces.name}' has a crop for crop: {cfg.crop}")
    sq = squares[rows]
    s = cfg.size / sq[:, 2]
    c = (cfg.size - 1) / 2
    pts = np.asarray(faces.landmarks[rows], np.float64)
    q = (pts - sq[:, None, :2]) * s[:, None, None] + c
    labelled = np.asarray(faces.visible[rows], bool)
    finite = np.isfinite(q).all(axis=-1)
    on_map = geometry.inside(q, cfg.size)
    state = np.where(labelled & finite & on_map, VISIBLE,
                     np.where(labelled, ABSENT, UNLABELLED))
    q = np.where(finite[..., None], q, 0.0)
    return np.concatenate([q, state[..., None]], axis=-1).astype(np.float32), rows
