"""300-W style folders: one image plus one iBUG ``.pts`` file per face.

A ``.pts`` file lists ``x y`` per line, 1-based (the iBUG/Matlab convention), either
bare or wrapped in the ``version: 1`` / ``n_points: 68`` / ``{ ... }`` header; both are
accepted and converted to 0-based pixels (x - 1, y - 1). The folder is searched
recursively (300-W keeps afw/, helen/, lfpw/, ibug/ side by side).
"""

from __future__ import annotations

from collections.abc import Sequence
import os
from pathlib import Path
import re

import numpy as np

from compiler.diagnostics import SourceLoc
from runtime.data.errors import BadRow, RowPolicy
from runtime.data.formats.rows import (
    IMAGE_EXTS,
    Row,
    assemble,
    expect_count,
    face_row,
    find_image,
    parse_numbers,
)
from runtime.data.records import FaceSet

NAME = "pts"
DOC = "folder of images with iBUG .pts files beside them (300-W, HELEN, LFPW, AFW, ...)"
_HEADER_KEY = re.compile(r"^([A-Za-z_][\w ]*?)\s*:\s*(.*)$")


def parse_pts(path: Path, n_points: int = 68) -> np.ndarray:
    """0-based float32 (K, 2) points of one .pts file, with or without its header."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise BadRow(f"cannot read {path} ({exc.strerror or exc})") from None
    declared: int | None = None
    in_braces = closed = False
    values: list[np.ndarray] = []
    last = 0
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        last = lineno
        if closed:
            raise BadRow(f"unexpected text after the closing '}}': {line[:40]!r}", line=lineno)
        if line == "{" and not in_braces and not values:
            in_braces = True
            continue
        if line == "}" and in_braces:
            closed = True
            continue
        match = _HEADER_KEY.match(line)
        if match and not in_braces and not values:
            if match.group(1).strip() == "n_points":
                try:
                    declared = int(match.group(2))
                except ValueError:
                    raise BadRow(f"n_points must be an integer, found {match.group(2)!r}",
                                 line=lineno) from None
            continue
        tokens = line.split()
        if len(tokens) != 2:
            raise BadRow(f"expected 2 numbers (x y) on a point line, found {len(tokens)} "
                         f"fields: {line[:40]!r}", line=lineno)
        try:
            values.append(parse_numbers(tokens))
        except BadRow as err:
            raise BadRow(str(err), hint=err.hint, line=lineno) from None
    if in_braces and not closed:
        raise BadRow("the '{' block is never closed with '}'", line=last or 1)
    if declared is not None and declared != len(values):
        raise BadRow(f"header says n_points: {declared} but {len(values)} points follow",
                     line=last or 1)
    try:
        expect_count(len(values), n_points, "points")
    except BadRow as err:
        raise BadRow(str(err), hint="an iBUG 300-W .pts file has 68 `x y` lines",
                     line=last or 1) from None
    return (np.asarray(values, np.float64) - 1.0).astype(np.float32)


def sniff(path: Path) -> bool:
    """A single .pts file, or a folder with .pts files in it or below it."""
    if path.is_file():
        return path.suffix.lower() == ".pts"
    return path.is_dir() and first_pts(path) is not None


def first_pts(folder: Path) -> Path | None:
    """Some .pts file under `folder` (a sorted, early-exit walk), or None."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(".pts"):
                return Path(root) / name
    return None


def read_pts_row(pts: Path, folders: Sequence[Path], n_points: int, verify: bool) -> Row:
    """One face: the .pts points and the first image of the same stem in `folders`."""
    points = parse_pts(pts, n_points)
    image = next((im for f in folders if (im := find_image(f, pts.stem))), None)
    if image is None:
        where = ", ".join(str(f) for f in folders)
        raise BadRow(f"no image for {pts.name}: looked for {pts.stem}"
                     f"{{{','.join(IMAGE_EXTS)}}} in {where}",
                     hint="put the image beside its .pts file with the same name")
    return face_row(image, points, np.ones(n_points, bool), verify=verify)


def read(path: Path, *, policy: RowPolicy, limit: int | None = None,
         verify_images: bool = False, n_points: int = 68,
         image_dir: str | None = None) -> FaceSet:
    """Reads every .pts under `path` (sorted) with the image of the same name beside it."""
    files = [path] if path.is_file() else sorted(path.rglob("*.pts"))
    rows: list[Row] = []
    for pts in files:
        if limit is not None and len(rows) >= limit:
            break
        folder = Path(image_dir) if image_dir else pts.parent
        try:
            rows.append(read_pts_row(pts, [folder], n_points, verify_images))
        except BadRow as err:
            policy.bad(SourceLoc(str(pts)), err)
    return assemble(NAME, rows, policy, path)
