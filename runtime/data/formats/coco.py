"""COCO-style keypoint json: ``images`` (id, file_name) + ``annotations`` (image_id,
keypoints [x, y, v] * K, optional bbox). One annotation is one face.

COCO coordinates are 0-based pixels; ``v == 0`` marks an unlabelled point (visible=
False, placeholder coordinates). Note: mmpose's 300-W / 300-VW jsons copy the 1-based
``.pts`` values verbatim; read those with ``one_based=True`` to get 0-based pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from compiler.diagnostics import SourceLoc
from runtime.data.errors import BadRow, DataError, RowPolicy
from runtime.data.formats.rows import (
    Row,
    assemble,
    expect_count,
    face_row,
    parse_numbers,
    scheme_for,
    with_placeholders,
)
from runtime.data.records import FaceSet

NAME = "coco"
DOC = "COCO-style keypoint json (`images` + `annotations` with `keypoints`)"
_KEYPOINTS = re.compile(r'"keypoints"\s*:\s*\[')


def sniff(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() != ".json":
        return False
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 20)
    except OSError:
        return False
    return '"annotations"' in head or '"keypoints"' in head


def annotation_lines(text: str, n: int) -> list[int]:
    """Best-effort 1-based line of each annotation's "keypoints" (0 when unknown)."""
    start = text.find('"annotations"')
    if start < 0:
        return [0] * n
    lines, line, pos = [], 1 + text.count("\n", 0, start), start
    for match in _KEYPOINTS.finditer(text, start):
        line += text.count("\n", pos, match.start())
        pos = match.start()
        lines.append(line)
        if len(lines) == n:
            return lines
    return [0] * n


def _load(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError.at(SourceLoc(str(path), exc.lineno, exc.colno),
                           f"invalid JSON: {exc.msg}", hint="fix the JSON syntax") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
            or not isinstance(data.get("images"), list):
        raise DataError.at(SourceLoc(str(path)),
                           "expected a COCO object with `images` and `annotations` lists",
                           hint="see https://cocodataset.org/#format-data (keypoints)")
    return data, text


def _point_count(data: dict[str, Any]) -> int:
    for cat in data.get("categories") or []:
        names = cat.get("keypoints") if isinstance(cat, dict) else None
        if names:
            return len(names)
    for ann in data["annotations"]:
        kps = ann.get("keypoints") if isinstance(ann, dict) else None
        if isinstance(kps, list) and kps:
            return len(kps) // 3
    return 0


def parse_annotation(ann: Any, k: int, files: dict[Any, str], root: Path,
                     one_based: bool, verify: bool) -> Row:
    if not isinstance(ann, dict) or not isinstance(ann.get("keypoints"), list):
        raise BadRow("annotation has no `keypoints` list")
    if ann.get("image_id") not in files:
        raise BadRow(f"annotation refers to image_id {ann.get('image_id')!r}, "
                     "which is not in `images`")
    kps = ann["keypoints"]
    expect_count(len(kps), 3 * k, f"keypoint values ({k} points x [x, y, v])")
    values = parse_numbers([str(v) for v in kps]).reshape(k, 3)
    visible = values[:, 2] > 0
    points = values[:, :2] - (1.0 if one_based else 0.0)
    box = None
    bbox = ann.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4:
        x, y, w, h = parse_numbers([str(v) for v in bbox])
        box = (x, y, x + w, y + h)
    return face_row(root / files[ann["image_id"]], with_placeholders(points, visible), visible,
                    box, verify)


def read(path: Path, *, policy: RowPolicy, limit: int | None = None,
         verify_images: bool = False, image_dir: str | None = None,
         one_based: bool = False) -> FaceSet:
    """Reads one face per annotation, in file order."""
    data, text = _load(path)
    files = {im.get("id"): str(im.get("file_name", "")) for im in data["images"]
             if isinstance(im, dict)}
    k = _point_count(data)
    try:
        scheme_for(k)
    except BadRow as err:
        raise DataError.at(SourceLoc(str(path)), str(err)) from None
    root = Path(image_dir) if image_dir else path.parent
    if not image_dir:
        first = next(iter(files.values()), "")
        root = next((c for c in (path.parent, path.parent / "images",
                                 path.parent.parent / "images") if (c / first).is_file()),
                    path.parent)
    anns = data["annotations"]
    lines = annotation_lines(text, len(anns))
    rows: list[Row] = []
    for ann, line in zip(anns, lines, strict=True):
        if limit is not None and len(rows) >= limit:
            break
        try:
            rows.append(parse_annotation(ann, k, files, root, one_based, verify_images))
        except BadRow as err:
            policy.bad(SourceLoc(str(path), line), err)
    return assemble(NAME, rows, policy, path)
