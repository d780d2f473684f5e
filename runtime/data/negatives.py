"""Background (non-face) training crops as a `FaceSet` the ordinary pipeline can read.

LGCN's detector-free mode (section 4.3) needs a network that stays silent off faces; the
paper added 30,000 non-face images. Each row here is one square of background: its
`boxes` entry is the square (so `crop: box` with the same `crop_ratio` cuts exactly it)
and every landmark is labelled but has no coordinates, which the pipeline turns into the
ABSENT state (runtime.data.records): an empty target that eq. 3 still weighs by 1/10.

Squares come from the training images themselves, clear of each face's landmark box
(`source: train`, no extra data), or from anywhere in a folder of face-free images.
`face_parts` adds squares inside the faces, zoomed in far past the training scale: in an
octave pyramid a face is found at one level, and at finer levels its parts must not
look like faces (not in the paper; it keeps `predict --multi-face` from seeing faces in
faces).
They are drawn once, in numpy, from the data seed; the usual training jitter (scale,
rotation, shift, mirror) varies them from epoch to epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.diagnostics import SourceLoc
from runtime.data import geometry
from runtime.data.config import NegativesConfig
from runtime.data.errors import DataError
from runtime.data.records import FaceSet

TRAIN_SOURCE = "train"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
TRIES = 6  # candidate positions per wanted square before a crowded image gives up on it


def background_faceset(train: FaceSet, neg: NegativesConfig, *, size: int, crop_ratio: float,
                       seed: int, loc: SourceLoc | None = None) -> FaceSet:
    """`neg.per_image` background squares per source image; a `DataError` (at `loc`, the
    spec's data section, or the folder) when none fits, e.g. faces filling every image of
    `source: train`."""
    if neg.source == TRAIN_SOURCE:
        paths, images = train.paths, train.images
        sizes = _sizes(train)
        keep_out = geometry.landmark_boxes(train.landmarks, train.visible)
        name = f"{train.name}-background"
    else:
        paths, images, keep_out = _folder_images(neg.source), None, None
        sizes = _file_sizes(paths)
        name = f"{Path(neg.source).name}-background"
    rng = np.random.default_rng(seed)
    rows, squares = sample_squares(sizes, keep_out, neg, size, rng)
    if keep_out is not None and neg.face_parts > 0:
        crop_sides = geometry.square_crops(keep_out, crop_ratio)[:, 2]
        part_rows, parts = face_part_squares(keep_out, crop_sides,
                                             int(round(neg.face_parts * neg.per_image)),
                                             neg.part_zoom, rng)
        rows, squares = np.concatenate([rows, part_rows]), np.concatenate([squares, parts])
    if rows.size == 0:
        from_train = neg.source == TRAIN_SOURCE
        where = "the training images clear of the faces" if from_train else neg.source
        at = (loc or SourceLoc("<data>")) if from_train else SourceLoc(neg.source)
        raise DataError.at(at, f"data.negatives: no background square of "
                               f"{neg.min_scale * size:.0f} px or more fits in {where}",
                           hint="lower negatives.min_scale or negatives.margin, or give a "
                                "folder of face-free images as negatives.source")
    half = squares[:, 2] / (2.0 * crop_ratio)  # square_crops(box, crop_ratio) == square
    boxes = np.stack([squares[:, 0] - half, squares[:, 1] - half,
                      squares[:, 0] + half, squares[:, 1] + half], axis=1)
    k = train.n_landmarks
    return FaceSet(
        name=name, scheme=train.scheme,
        landmarks=np.full((rows.size, k, 2), np.nan, np.float32),
        visible=np.ones((rows.size, k), bool),  # labelled, and nowhere: ABSENT
        paths=tuple(paths[i] for i in rows) if images is None else (),
        image_kinds=tuple(train.image_kinds[i] for i in rows)
        if neg.source == TRAIN_SOURCE and train.image_kinds and images is None else (),
        images=None if images is None else images[rows],
        boxes=boxes.astype(np.float32))


def sample_squares(sizes: np.ndarray, keep_out: np.ndarray | None, neg: NegativesConfig,
                   size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rows [M], squares [M, 3] cx, cy, side) inside images of `sizes` [N, 2] (h, w),
    sides log-uniform in size x [min_scale, max_scale] (capped by the image), avoiding
    `keep_out` boxes [N, 4] grown by `margin` box sides (NaN box = nothing to avoid)."""
    n = sizes.shape[0]
    want = n * neg.per_image * TRIES
    img = np.repeat(np.arange(n), neg.per_image * TRIES)
    h, w = sizes[img, 0].astype(np.float64), sizes[img, 1].astype(np.float64)
    lo, hi = np.log(neg.min_scale * size), np.log(neg.max_scale * size)
    side = np.minimum(np.exp(rng.uniform(lo, hi, want)), np.minimum(h, w))
    fits = side >= neg.min_scale * size - 1e-6
    # pixel centres at integers: an image spans [-0.5, W - 0.5]
    cx = -0.5 + side / 2 + rng.random(want) * np.maximum(w - side, 0.0)
    cy = -0.5 + side / 2 + rng.random(want) * np.maximum(h - side, 0.0)
    if keep_out is not None:
        box = keep_out[img]
        grow = neg.margin * np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
        clear = ((cx + side / 2 < box[:, 0] - grow) | (cx - side / 2 > box[:, 2] + grow)
                 | (cy + side / 2 < box[:, 1] - grow) | (cy - side / 2 > box[:, 3] + grow))
        fits &= clear | ~np.isfinite(box).all(axis=1)
    chosen = np.zeros(want, bool)
    for i in range(n):  # the first per_image fitting candidates of each image
        ok = np.flatnonzero(fits[i * neg.per_image * TRIES:(i + 1) * neg.per_image * TRIES])
        chosen[i * neg.per_image * TRIES + ok[:neg.per_image]] = True
    return img[chosen], np.stack([cx, cy, side], axis=1)[chosen]


def face_part_squares(boxes: np.ndarray, crop_sides: np.ndarray, per_image: int,
                      zoom: tuple[float, float], rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(rows, squares): `per_image` squares per face centred uniformly in its landmark box
    [N, 4], side = its training crop side / z, z log-uniform in `zoom` (faces without a
    box are skipped)."""
    ok = np.flatnonzero(np.isfinite(boxes).all(axis=1) & np.isfinite(crop_sides))
    img = np.repeat(ok, per_image)
    b = boxes[img]
    z = np.exp(rng.uniform(np.log(zoom[0]), np.log(zoom[1]), img.size))
    cx = b[:, 0] + rng.random(img.size) * (b[:, 2] - b[:, 0])
    cy = b[:, 1] + rng.random(img.size) * (b[:, 3] - b[:, 1])
    return img, np.stack([cx, cy, crop_sides[img] / z], axis=1)


def _sizes(faces: FaceSet) -> np.ndarray:
    if faces.images is not None:
        return np.tile(np.asarray(faces.images.shape[1:3]), (len(faces), 1))
    return _file_sizes(faces.paths)


def _file_sizes(paths: tuple[str, ...]) -> np.ndarray:
    """(N, 2) heights, widths from the image headers (no decoding)."""
    from PIL import Image, UnidentifiedImageError

    out = np.zeros((len(paths), 2), np.int64)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                out[i] = im.size[1], im.size[0]
        except (OSError, UnidentifiedImageError) as e:
            raise DataError.at(SourceLoc(p), f"cannot read the image header: {e}",
                               hint="fix or remove the file") from None
    return out


def _folder_images(folder: str) -> tuple[str, ...]:
    root = Path(folder)
    if not root.is_dir():
        raise DataError.at(SourceLoc(folder), "negatives.source is neither 'train' nor a "
                                              "folder", hint="give a folder of images without "
                                                             "faces, or 'train'")
    files = tuple(str(p) for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError.at(SourceLoc(folder), "no images (.jpg, .png, ...) in the "
                                              "negatives folder",
                           hint="put face-free images there, or use source: train")
    return files
