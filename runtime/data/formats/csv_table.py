"""CSV landmark tables: a header ``image,x0,y0,...,xK-1,yK-1`` then one face per row.

Coordinates are 0-based pixels (the YouTube-Faces ``frames.csv`` convention). A point
whose x and y are both empty, or both -1, is unlabelled: visible=False. Image names
are resolved against `image_dir`, else the first of: the CSV's folder, a folder named
like the CSV (``frames.csv`` -> ``frames/``), ``images/``, any other sub-folder, that
holds the first row's image.
"""

from __future__ import annotations

from collections.abc import Iterator
import csv
from pathlib import Path
import re

import numpy as np

from compiler.diagnostics import SourceLoc
from runtime.data.errors import BadRow, DataError, RowPolicy
from runtime.data.formats.rows import (
    Row,
    assemble,
    face_row,
    parse_numbers,
    scheme_for,
    with_placeholders,
)
from runtime.data.records import FaceSet

NAME = "csv_table"
DOC = "CSV with header `image,x0,y0,...` (0-based pixels), one face per row"
_COORD = re.compile(r"^(?:[xy]_?\d+|\d+)$", re.IGNORECASE)
_MISSING = ("", "-1", "-1.0")


def sniff(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".csv"


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        for record in reader:
            yield reader.line_num, [c.strip() for c in record]


def check_header(header: list[str], path: Path) -> int:
    """Number of landmarks K announced by the header; a `DataError` if it is not one."""
    coords = header[1:]
    ok = len(coords) >= 2 and len(coords) % 2 == 0 and all(_COORD.match(c) for c in coords)
    if ok and coords[0][:1].lower() == "x":
        ok = all(c[:1].lower() == "xy"[i % 2] for i, c in enumerate(coords))
    if not ok:
        raise DataError.at(
            SourceLoc(str(path), 1),
            f"expected a header `image,x0,y0,x1,y1,...`, found {','.join(header[:5])}...",
            hint="the first column names the image, then x and y columns alternate")
    try:
        scheme_for(len(coords) // 2)
    except BadRow as err:
        raise DataError.at(SourceLoc(str(path), 1), str(err)) from None
    return len(coords) // 2


def parse_cells(cells: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(points, visible) from 2K coordinate cells; empty or -1 pairs are unlabelled."""
    if len(cells) != 2 * k:
        raise BadRow(f"expected {2 * k} coordinate columns ({k} points), found {len(cells)}")
    pairs = list(zip(cells[0::2], cells[1::2], strict=True))
    visible = np.array([not (x in _MISSING and y in _MISSING) for x, y in pairs])
    filled = [c if visible[i // 2] else "0" for i, c in enumerate(cells)]
    values = parse_numbers(filled, first_col=2).reshape(k, 2)
    return with_placeholders(values, visible), visible


def image_root(path: Path, first_image: str, image_dir: str | None) -> Path:
    if image_dir:
        return Path(image_dir)
    here = path.parent
    subdirs = sorted(p for p in here.iterdir() if p.is_dir())
    for cand in [here, here / path.stem, here / "images", *subdirs]:
        if (cand / first_image).is_file():
            return cand
    return here


def read(path: Path, *, policy: RowPolicy, limit: int | None = None,
         verify_images: bool = False, image_dir: str | None = None) -> FaceSet:
    """Reads the table; see the module docstring for where images are looked up."""
    records = _records(path)
    first = next(records, None)
    if first is None:
        raise DataError.at(SourceLoc(str(path)), "the CSV file is empty",
                           hint="expected a header `image,x0,y0,...` and one row per face")
    k = check_header(first[1], path)
    rows: list[Row] = []
    root: Path | None = None
    for lineno, cells in records:
        if limit is not None and len(rows) >= limit:
            break
        if not any(cells):
            continue
        if root is None:
            root = image_root(path, cells[0], image_dir)
        try:
            points, visible = parse_cells(cells[1:], k)
            rows.append(face_row(root / cells[0], points, visible, verify=verify_images))
        except BadRow as err:
            policy.bad(SourceLoc(str(path), lineno), err)
    return assemble(NAME, rows, policy, path)
