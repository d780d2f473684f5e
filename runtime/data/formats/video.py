"""Video landmark sets, ordered by clip then frame so that sequences can be formed.

Two layouts: 300-VW style folders (``<clip>/annot/<frame>.pts`` with the frame image
in ``<clip>/imgs``, ``frames``, ``images`` or beside the .pts; coordinates as in
`pts`), and a YouTube-Faces ``frames.csv`` (see `csv_table`) whose file names encode
the clip: ``<Person>_<video>_<n>_<frame>.jpg``, or the compact ``<Person>_<v><f>.jpg``
(two digits: clip digit, frame digit) of the shared ytf68 set. `clip_ids` recovers
(clip, frame) from paths, so it also works on subsets; `person_ids` the person (the clip
id without its video/clip numbers), by which clip training splits validation.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from compiler.diagnostics import SourceLoc
from runtime.data.errors import BadRow, RowPolicy
from runtime.data.formats import csv_table
from runtime.data.formats.pts import first_pts, read_pts_row
from runtime.data.formats.rows import Row, assemble
from runtime.data.records import FaceSet

NAME = "video"
DOC = ("video frames: 300-VW clip folders (<clip>/annot/<frame>.pts + frame images) "
       "or a YouTube-Faces frames.csv")
_SIDE = ("annot", "annotations", "imgs", "images", "frames", "img")


def clip_key(path: str) -> tuple[str, int]:
    """(clip id, frame number) encoded in an image path; see the module docstring."""
    p = Path(path)
    if p.stem.isdigit():
        folder = p.parent.parent if p.parent.name.lower() in _SIDE else p.parent
        return folder.name, int(p.stem)
    tokens = p.stem.split("_")
    if len(tokens) > 1 and tokens[-1].isdigit():
        last = tokens[-1]
        if len(last) == 2 and not tokens[-2].isdigit():  # compact <Person>_<v><f>
            return "_".join([*tokens[:-1], last[0]]), int(last[1])
        return "_".join(tokens[:-1]), int(last)
    return p.stem, 0


def clip_ids(faces: FaceSet) -> tuple[np.ndarray, np.ndarray]:
    """Per-row clip ids (str array) and frame numbers (int array) from `faces.paths`."""
    keys = [clip_key(p) for p in faces.paths]
    return (np.array([k[0] for k in keys], dtype=str),
            np.array([k[1] for k in keys], dtype=np.int64))


def person_key(clip: str) -> str:
    """The person of a clip id: the id without its trailing numeric `_` tokens
    (``Valerie_Harper_3`` -> ``Valerie_Harper``, ``Al_Gore_2_1`` -> ``Al_Gore``); an all-numeric
    id (a 300-VW clip folder such as ``001``) is its own person."""
    tokens = clip.split("_")
    while len(tokens) > 1 and tokens[-1].isdigit():
        tokens.pop()
    return "_".join(tokens)


def person_ids(faces: FaceSet) -> np.ndarray:
    """Per-row person ids (str array): validation splits by them, never by frame."""
    return np.array([person_key(c) for c in clip_ids(faces)[0]], dtype=str)


def sequences(faces: FaceSet, length: int, max_gap: int | None = None) -> np.ndarray:
    """Row indices (M, length) of every run of `length` successive frames of one clip.

    Frames are successive in frame-number order; with `max_gap`, neighbours further
    apart than that many frame numbers break a run.
    """
    clips, frames = clip_ids(faces)
    order = np.lexsort((frames, clips))
    out: list[np.ndarray] = []
    for clip in np.unique(clips):
        idx = order[clips[order] == clip]
        for s in range(len(idx) - length + 1):
            win = idx[s:s + length]
            if max_gap is None or np.all(np.diff(frames[win]) <= max_gap):
                out.append(win)
    return np.stack(out) if out else np.zeros((0, length), np.int64)


def in_clip_order(faces: FaceSet) -> FaceSet:
    clips, frames = clip_ids(faces)
    return dataclasses.replace(faces.subset(np.lexsort((frames, clips))), name=NAME)


def _table(path: Path) -> Path | None:
    if path.is_file() and path.suffix.lower() == ".csv":
        return path
    if path.is_dir() and (path / "frames.csv").is_file():
        return path / "frames.csv"
    return None


def sniff(path: Path) -> bool:
    """A folder with frames.csv, or clip folders of frame-numbered .pts files."""
    if not path.is_dir():
        return False
    if _table(path) is not None:
        return True
    pts = first_pts(path)
    return pts is not None and pts.stem.isdigit() and pts.parent != path


def _image_folders(pts: Path, image_dir: str | None) -> list[Path]:
    if image_dir:
        return [Path(image_dir)]
    clip = pts.parent.parent if pts.parent.name.lower() in _SIDE else pts.parent
    cands = [clip / d for d in ("imgs", "frames", "images", "img")] + [pts.parent, clip]
    return [f for f in cands if f.is_dir()]


def read(path: Path, *, policy: RowPolicy, limit: int | None = None,
         verify_images: bool = False, n_points: int = 68,
         image_dir: str | None = None) -> FaceSet:
    """Reads a frames.csv or 300-VW clip folders; rows come ordered by (clip, frame)."""
    table = _table(path)
    if table is not None:
        faces = csv_table.read(table, policy=policy, limit=limit,
                               verify_images=verify_images, image_dir=image_dir)
        return in_clip_order(faces)
    files = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        files += [Path(root) / n for n in sorted(names) if n.lower().endswith(".pts")]
    files.sort(key=lambda f: clip_key(str(f)))
    rows: list[Row] = []
    for pts in files:
        if limit is not None and len(rows) >= limit:
            break
        try:
            folders = _image_folders(pts, image_dir)
            rows.append(read_pts_row(pts, folders, n_points, verify_images))
        except BadRow as err:
            policy.bad(SourceLoc(str(pts)), err)
    return in_clip_order(assemble(NAME, rows, policy, path))
