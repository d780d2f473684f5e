"""One parsed face (`Row`), the checks every format applies to it, and assembly of
rows into a `FaceSet`: finite coordinates, a known scheme, an image that exists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import math
import os
from pathlib import Path

import numpy as np

from compiler.diagnostics import SourceLoc
from runtime.data.errors import BadRow, DataError, RowPolicy
from runtime.data.formats import images
from runtime.data.formats.images import ImageInfo
from runtime.data.records import FaceSet

SCHEMES = {5: "5pt", 68: "68pt"}  # point count -> landmark scheme (MTFL / iBUG order)
FAR_OUTSIDE = 1.0  # a landmark this many image sizes beyond the border is a data error
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Row:
    """One face: its image file and K landmarks (0-based pixel x, y)."""

    path: str
    points: np.ndarray  # float32 (K, 2)
    visible: np.ndarray  # bool (K,)
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1
    image_kind: str = ""  # PIL format/mode, e.g. "JPEG/L" (picks the pipeline's decoder)


def parse_numbers(tokens: Sequence[str], first_col: int = 1) -> np.ndarray:
    """Float64 values of `tokens`; non-numeric text, NaN and infinity are `BadRow`s.

    `first_col` numbers the tokens in messages (1-based column of tokens[0]).
    """
    out = np.empty(len(tokens), np.float64)
    for i, tok in enumerate(tokens):
        try:
            value = float(tok)
        except ValueError:
            raise BadRow(f"expected a number in column {first_col + i}, found {tok!r}",
                         hint="landmark coordinates must be plain decimal numbers") from None
        if not math.isfinite(value):
            raise BadRow(f"column {first_col + i} is {tok!r}; expected a finite coordinate",
                         hint="mark a missing point as invisible instead of NaN")
        out[i] = value
    return out


def scheme_for(k: int) -> str:
    """The landmark scheme for a point count, or a `BadRow` naming the supported ones."""
    if k not in SCHEMES:
        known = ", ".join(f"{n} ({s})" for n, s in SCHEMES.items())
        raise BadRow(f"found {k} landmarks per face; supported counts are {known}")
    return SCHEMES[k]


def expect_count(found: int, expected: int, what: str = "landmarks") -> None:
    if found != expected:
        raise BadRow(f"expected {expected} {what}, found {found}")


def with_placeholders(points: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Invisible points get the centroid of the visible ones (finite, harmless in crops)."""
    if visible.all():
        return points.astype(np.float32)
    if not visible.any():
        raise BadRow("every landmark of this face is marked invisible",
                     hint="drop the face, it cannot be used for training")
    out = points.astype(np.float32).copy()
    out[~visible] = points[visible].mean(axis=0)
    return out


def check_image(path: str | Path, verify: bool = False) -> ImageInfo:
    """An existing, readable image file (see runtime/data/formats/images.py); with
    `verify`, also decoded fully."""
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        if os.path.islink(full):
            raise BadRow(f"image {full} is a broken or looping symbolic link",
                         hint="point the link at an image file, or list the file itself")
        what = "is a folder, not an image file" if os.path.isdir(full) else "not found"
        raise BadRow(f"image file {what}: {full}" if what == "not found"
                     else f"image {full} {what}",
                     hint="check the path (relative to the list file) or the image folder")
    info = images.read_header(full)
    if verify:
        images.decode_fully(full)
    else:
        images.check_complete(info)
    return info


def check_on_image(points: np.ndarray, visible: np.ndarray, info: ImageInfo) -> None:
    """A `BadRow` for a visible landmark more than `FAR_OUTSIDE` image sizes beyond the
    image border: such a point is a data error (wrong column order, units or image), not an
    annotation near the border or an occluded point, which stay accepted."""
    w, h = info.width, info.height
    lo = np.array([-FAR_OUTSIDE * w, -FAR_OUTSIDE * h])
    hi = np.array([w - 1 + FAR_OUTSIDE * w, h - 1 + FAR_OUTSIDE * h])
    far = visible & ((points < lo) | (points > hi)).any(axis=1)
    if not far.any():
        return
    i = int(np.flatnonzero(far)[0])
    x, y = (float(v) for v in points[i])
    more = f" ({int(far.sum())} of {len(points)} such points)" if far.sum() > 1 else ""
    raise BadRow(f"landmark {i + 1} at ({x:g}, {y:g}) lies far outside its {w}x{h} image "
                 f"{info.path}{more}",
                 hint="coordinates are pixels of this image (0-based; 1-based for .pts): "
                      "check the column order, that they are not for a resized copy, and "
                      "that the row names the right image")


def face_row(image: str | Path, points: np.ndarray, visible: np.ndarray,
             box: tuple[float, float, float, float] | None = None,
             verify: bool = False) -> Row:
    """A `Row` whose image passes `check_image` and whose points lie on or near it."""
    info = check_image(image, verify)
    check_on_image(points, visible, info)
    return Row(info.path, points, visible, box, info.kind)


def find_image(folder: Path, stem: str) -> Path | None:
    """The image named `stem` + any known extension in `folder` (either case), if any."""
    for ext in IMAGE_EXTS:
        for cand in (folder / (stem + ext), folder / (stem + ext.upper())):
            if cand.is_file():
                return cand
    return None


def assemble(name: str, rows: Iterable[Row], policy: RowPolicy, source: Path) -> FaceSet:
    """Stacks rows into a `FaceSet`; an empty result is a `DataError`."""
    rows = list(rows)
    if not rows:
        why = f"; {len(policy.skipped)} rows were skipped, e.g. {policy.skipped[0][0]}: " \
              f"{policy.skipped[0][1]}" if policy.skipped else ""
        raise DataError.at(SourceLoc(str(source)), f"no usable faces found{why}",
                           hint="check the path and --format")
    k = rows[0].points.shape[0]
    boxes = None
    if all(r.box is not None for r in rows):
        boxes = np.asarray([r.box for r in rows], np.float32).reshape(len(rows), 4)
    return FaceSet(
        name=name,
        scheme=SCHEMES[k],
        landmarks=np.stack([r.points for r in rows]).astype(np.float32).reshape(-1, k, 2),
        visible=np.stack([r.visible for r in rows]).astype(bool).reshape(-1, k),
        paths=tuple(r.path for r in rows),
        image_kinds=tuple(r.image_kind for r in rows) if all(r.image_kind for r in rows)
        else (),
        boxes=boxes,
        skipped=policy.skipped,
    )
