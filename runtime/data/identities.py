"""Identity labels of clip sets: RED-Net's identity head classifies each frame's person.

A person's class id is their position in the sorted list of training people, so the
same training split gives the same ids in every run (and on every machine); the list
is stored in RUN/identities.json. Validation holds out whole people, who have no
training class: their frames get id -1, which the identity loss masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.atomic import atomic_write_json
from runtime.data.clips import ClipSet

IDENTITIES_FILE = "identities.json"
UNKNOWN = -1  # a frame whose person is not a training class


def identity_table(train: ClipSet) -> list[str]:
    """The training people, sorted: index = class id."""
    return sorted({str(g) for g in train.groups})


def row_identities(clips: ClipSet, table: list[str]) -> np.ndarray:
    """int32 (N,) class id of every row of `clips.faces` (its window's person), UNKNOWN
    for people not in `table` and for rows no window uses."""
    ids = {name: i for i, name in enumerate(table)}
    out = np.full(len(clips.faces), UNKNOWN, np.int32)
    for window, group in zip(clips.windows, clips.groups, strict=True):
        out[window] = ids.get(str(group), UNKNOWN)
    return out


def save_identities(run_dir: Path, table: list[str]) -> None:
    atomic_write_json(Path(run_dir) / IDENTITIES_FILE, {"classes": table})
