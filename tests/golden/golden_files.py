"""Compare text against a golden file, or rewrite it under `pytest --update-goldens`."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest


def check_golden(path: Path, actual: str, update: bool) -> None:
    """Assert `actual` equals the file's text; with `update`, write it instead."""
    if update:
        if not path.exists() or path.read_text(encoding="utf-8") != actual:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; run `pytest --update-goldens` "
                    "and review the new file")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=f"{path} (golden)", tofile="actual"))
        pytest.fail(f"output differs from {path.name}; if the change is intended, run "
                    f"`pytest --update-goldens` and review the diff:\n{diff}")


def remove_stale(folder: Path, pattern: str, keep: set[str], update: bool) -> list[str]:
    """Golden files in `folder` (and below) with no case left; deleted under --update-goldens."""
    stale = sorted(p.relative_to(folder).as_posix() for p in folder.rglob(pattern)
                   if p.relative_to(folder).as_posix() not in keep)
    if update:
        for name in stale:
            (folder / name).unlink()
        return []
    return stale
