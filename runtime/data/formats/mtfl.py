"""MTFL list files: ``relpath x1..x5 y1..y5`` per line (5 points, MTFL order).

Coordinates are taken as 0-based pixel positions and are not shifted. Evidence (from
``../shared/data/mtfl/train.txt``, all 10,000 rows): averaging bilinear 13x13 patches
of the grey image centred on each annotated eye and finding the darkest point (the
pupil) with a sub-pixel parabola fit, the pupil sits dx = -0.27/-0.05 px (LFW, left/
right eye) and -0.45/-0.28 px (web images) from the annotation, dy = -0.4..-0.65
(upper-lid shading); mouth corners average dx = -0.2/-0.4. A 1-based list would put
those features a full pixel up-left of the annotation. The residual of about a third
of a pixel matches the 250->80 px rescale of the original list (``x * 0.32``), which
is below annotation noise. Optional trailing attribute columns (gender, smile,
glasses, pose: the original MTFL layout) are accepted and ignored. Paths may use
backslashes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.diagnostics import SourceLoc
from runtime.data.errors import BadRow, RowPolicy
from runtime.data.formats.rows import Row, assemble, face_row, parse_numbers
from runtime.data.records import FaceSet

NAME = "mtfl"
DOC = "MTFL list file: `relpath x1..x5 y1..y5` per line, paths relative to the file"
N_POINTS = 5
_FIELDS = (1 + 2 * N_POINTS, 1 + 2 * N_POINTS + 4)  # plain, and with MTFL attributes


def _is_row(tokens: list[str]) -> bool:
    if len(tokens) not in _FIELDS:
        return False
    try:
        [float(t) for t in tokens[1:]]
    except ValueError:
        return False
    return True


def sniff(path: Path) -> bool:
    """A list file (see `_sniff_file`), or a folder holding exactly one (e.g. mtfl/train.txt)."""
    return _sniff_file(path) or (path.is_dir() and _list_in(path) is not None)


def _list_in(folder: Path) -> Path | None:
    found = [p for p in sorted(folder.glob("*.txt")) if _sniff_file(p)]
    return found[0] if len(found) == 1 else None


def _sniff_file(path: Path) -> bool:
    """A text file whose first data rows are mostly a path plus 10 (or 14) numbers."""
    if not path.is_file() or path.suffix.lower() not in (".txt", ".lst", ".list", ""):
        return False
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            rows = [ln.split() for ln, _ in zip(f, range(50), strict=False)]
    except OSError:
        return False
    rows = [r for r in rows if r and not r[0].startswith("#")][:20]
    good = sum(map(_is_row, rows))
    return good > 0 and 2 * good >= len(rows)  # tolerant: bad rows are reported later


def parse_row(tokens: list[str], root: Path, verify: bool) -> Row:
    if len(tokens) not in _FIELDS:
        raise BadRow(f"expected an image path and {2 * N_POINTS} numbers "
                     f"(x1..x5 y1..y5), found {len(tokens)} fields",
                     hint="each line is `relpath x1 x2 x3 x4 x5 y1 y2 y3 y4 y5`")
    values = parse_numbers(tokens[1:1 + 2 * N_POINTS], first_col=2)
    points = np.stack([values[:N_POINTS], values[N_POINTS:]], axis=1).astype(np.float32)
    return face_row(root / tokens[0].replace("\\", "/"), points, np.ones(N_POINTS, bool),
                    verify=verify)


def read(path: Path, *, policy: RowPolicy, limit: int | None = None,
         verify_images: bool = False, image_dir: str | None = None) -> FaceSet:
    """Reads an MTFL list; images are relative to `image_dir` or the list's folder."""
    if path.is_dir():
        path = _list_in(path) or path
    root = Path(image_dir) if image_dir else path.parent
    rows: list[Row] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            if limit is not None and len(rows) >= limit:
                break
            tokens = line.split()
            if not tokens or tokens[0].startswith("#"):
                continue
            try:
                rows.append(parse_row(tokens, root, verify_images))
            except BadRow as err:
                policy.bad(SourceLoc(str(path), lineno), err)
    return assemble(NAME, rows, policy, path)
