"""Clips for specs whose input has a time axis ([T, S, S, C]): windows of T consecutive
frames of one clip, grouped by person, split into training and held-out people.

A `ClipSet` is a FaceSet of frames plus windows (M, T) of its row indices. Training
windows are every run of T successive frames of a clip (stride 1); scoring windows tile
each clip (stride T, the last one aligned to the clip's end) with a mask that counts
every frame exactly once, so NME over them is NME over the frames. A window never spans
two clips, and frames keep their order. Validation holds out whole groups (people for
video sets, clips for the synthetic set), never frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.data.config import DataConfig
from runtime.data.records import FaceSet


@dataclass(frozen=True)
class ClipSet:
    faces: FaceSet  # the frames
    windows: np.ndarray  # int64 (M, T) row indices of `faces`, in frame order
    score: np.ndarray  # bool (M, T): the frames a scoring pass counts (each frame once)
    groups: np.ndarray  # str (M,): the person (or clip) of each window

    def __len__(self) -> int:
        return int(self.windows.shape[0])

    @property
    def length(self) -> int:
        return int(self.windows.shape[1])

    @property
    def n_frames(self) -> int:
        """Frames scored (each once); for training windows, frames used."""
        return int(np.unique(self.windows[self.score]).size)

    def compact(self) -> ClipSet:
        """The same windows over only the frames they use (smaller in-memory images)."""
        used, inverse = np.unique(self.windows, return_inverse=True)
        return ClipSet(self.faces.subset(used), inverse.reshape(self.windows.shape),
                       self.score, self.groups)


def _runs(clips: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """Row indices of each clip, in frame order (clips in sorted id order)."""
    order = np.lexsort((frames, clips))
    cut = np.flatnonzero(clips[order][1:] != clips[order][:-1]) + 1
    return np.split(order, cut) if order.size else []


def windows_of(clips: np.ndarray, frames: np.ndarray, length: int, *, tile: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    """(windows (M, length), score (M, length)) over rows labelled by clip id and frame
    number: every run of `length` successive frames (stride 1, all scored), or with
    `tile` windows at stride `length` plus one aligned to the clip's end, scoring only
    frames no earlier window covered. Clips shorter than `length` give none."""
    wins: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    for run in _runs(np.asarray(clips), np.asarray(frames)):
        n = run.size
        if n < length:
            continue
        if not tile:
            starts = range(n - length + 1)
        else:
            starts = list(range(0, n - length + 1, length))
            if starts[-1] + length < n:
                starts.append(n - length)
        covered = 0
        for s in starts:
            wins.append(run[s:s + length])
            marks.append(np.arange(s, s + length) >= covered if tile else
                         np.ones(length, bool))
            covered = s + length
    if not wins:
        return np.zeros((0, length), np.int64), np.zeros((0, length), bool)
    return np.stack(wins).astype(np.int64), np.stack(marks)


@dataclass(frozen=True)
class ClipSource:
    """Frames labelled with clip, frame number and group, before windows are cut."""

    faces: FaceSet
    clips: np.ndarray  # str (N,)
    frames: np.ndarray  # int (N,)
    groups: np.ndarray  # str (N,): person, or clip

    def clipset(self, rows: np.ndarray, length: int, *, tile: bool) -> ClipSet:
        win, score = windows_of(self.clips[rows], self.frames[rows], length, tile=tile)
        win = rows[win] if win.size else win
        return ClipSet(self.faces, win, score, self.groups[win[:, 0]] if len(win) else
                       np.zeros(0, str))

    def group_order(self) -> np.ndarray:
        """Groups in the order of the data (sorted clip order, as the readers give it)."""
        order = np.lexsort((self.frames, self.clips))
        _, first = np.unique(self.groups[order], return_index=True)
        return self.groups[order][np.sort(first)]


def held_out_groups(source: ClipSource, cfg: DataConfig) -> np.ndarray:
    """The last groups whose frames make up at least `val_split` (an int: frames; a float:
    that fraction of the frames): whole people or clips, never part of one."""
    groups = source.group_order()
    n = len(source.faces)
    split = cfg.val_split
    want = int(round(n * split)) if isinstance(split, float) else int(split)
    if want <= 0:
        return groups[:0]
    sizes = np.array([(source.groups == g).sum() for g in groups[::-1]])
    k = int(np.searchsorted(np.cumsum(sizes), want)) + 1
    return groups[::-1][:k][::-1]


def split_clips(source: ClipSource, cfg: DataConfig, length: int
                ) -> tuple[ClipSet, ClipSet]:
    """(training windows, held-out scoring windows); `limit` caps the windows of each."""
    val_groups = held_out_groups(source, cfg)
    held = np.isin(source.groups, val_groups)
    if held.all():
        raise ValueError(f"val_split {cfg.val_split} holds out every one of the "
                         f"{len(np.unique(source.groups))} people/clips of "
                         f"'{source.faces.name}'; lower val_split")
    train = source.clipset(np.flatnonzero(~held), length, tile=False)
    val = source.clipset(np.flatnonzero(held), length, tile=True)
    if cfg.limit is not None:
        train, val = limited(train, cfg.limit), limited(val, cfg.limit)
    return train, val


def limited(clips: ClipSet, limit: int) -> ClipSet:
    return ClipSet(clips.faces, clips.windows[:limit], clips.score[:limit],
                   clips.groups[:limit])


def split_rows(source: ClipSource, cfg: DataConfig, split: str) -> np.ndarray:
    """Rows of `split` ('val': held-out groups, 'train': the others, 'all')."""
    held = np.isin(source.groups, held_out_groups(source, cfg))
    if split == "val":
        return np.flatnonzero(held)
    if split == "train":
        return np.flatnonzero(~held)
    return np.arange(len(source.faces))
