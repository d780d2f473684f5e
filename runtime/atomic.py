"""Crash-safe writes: write to a temp file in the same folder, fsync, then rename.

A reader (or a resumed run) therefore sees either the old file or the new one,
never a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import tempfile
from typing import Any


def _replace_from_temp(path: Path, write) -> None:  # noqa: ANN001 - callable(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_file(path: Path, write) -> None:  # noqa: ANN001 - callable(tmp_path)
    """`write(tmp)` fills a temp file beside `path`, which then replaces `path`."""
    _replace_from_temp(Path(path), write)


def atomic_write_text(path: Path, text: str) -> None:
    _replace_from_temp(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def atomic_save_model(model: Any, path: Path) -> None:
    """model.save() to a temp `.keras` beside `path`, then rename over it."""
    _replace_from_temp(Path(path), lambda tmp: model.save(tmp))


def atomic_save_weights(model: Any, path: Path) -> None:
    _replace_from_temp(Path(path), lambda tmp: model.save_weights(tmp))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync, so a crash loses at most the line being written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
