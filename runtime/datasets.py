"""From a spec's `data:` section (plus `--data`) to train/validation FaceSets."""

from __future__ import annotations

from dataclasses import replace
import sys
from typing import TYPE_CHECKING

import numpy as np

from compiler.api import Spec
from compiler.diagnostics import SourceLoc, SpecError
from compiler.ir import Graph
from runtime.data.config import DataConfig, data_config_for_graph
from runtime.data.records import FaceSet

if TYPE_CHECKING:
    from runtime.data.clips import ClipSet, ClipSource

SYNTHETIC = "synthetic"
SYNTHETIC_FACES = 3000  # embedded set: 2000 train + the spec's 1000 validation rows


def spec_data_config(spec: Spec, data: str | None = None, data_format: str | None = None
                     ) -> DataConfig:
    """The validated data section; `--data`/`--format` replace dataset/format, and
    size/channels default to the spec's image input (an explicit mismatch is an error
    at the value's line or `--set`)."""
    section = spec.section("data")
    overrides = {}
    if data is not None:
        overrides["dataset"] = data
        if data_format is None and data != section.get("dataset"):
            overrides["format"] = None
    if data_format is not None:
        overrides["format"] = data_format
    return data_config_for_graph(section, spec.graph, loc=section.loc, **overrides)


def clip_length(graph: Graph) -> int | None:
    """T when the first input is a clip [T, S, S, C] (batch [B, T, S, S, C]), else None."""
    first = graph.inputs[0] if graph.inputs else None
    if first is None or first.out is None or first.out.rank != 5:
        return None
    steps = first.out.shape[1]
    if steps is None:
        raise SpecError.at(first.loc, f"input '{first.name}' is {first.out}: clips of an "
                                      "unknown number of frames cannot be batched",
                           hint="give the clip input a fixed length [T, S, S, C], e.g. "
                                "[$frames, 32, 32, 1] with a spec param")
    return int(steps)


def n_landmarks(spec: Spec) -> int | None:
    value = spec.params.get("n_landmarks")
    return value if isinstance(value, int) else None


def load_faces(spec: Spec, cfg: DataConfig) -> FaceSet:
    """Read the data set (or draw the embedded synthetic faces) and check its scheme;
    rows skipped under `on_error: skip` are summed up on stderr."""
    k = n_landmarks(spec)
    if cfg.dataset == SYNTHETIC:
        from runtime.data.synthetic import synthetic_faceset

        scheme = cfg.scheme or ("68pt" if k == 68 else "5pt")
        if k is not None:
            _check_scheme(cfg, k, f"the spec predicts n_landmarks = {k} (the synthetic faces "
                                  "are drawn to match it)")
        faces = synthetic_faceset(SYNTHETIC_FACES, scheme=scheme, size=cfg.size, seed=cfg.seed)
    else:
        from runtime.data.readers import load_faceset

        faces = load_faceset(cfg.dataset, cfg.format, on_error=cfg.on_error)
        _check_landmark_count(faces, k, cfg)  # before the scheme: it names the spec to use
        _check_scheme(cfg, faces.n_landmarks,
                      f"the data ({faces.name}) has {faces.n_landmarks}")
        if faces.skipped:
            from runtime.data.errors import skip_summary

            print(skip_summary(faces.skipped, len(faces) + len(faces.skipped),  # noqa: T201
                               str(cfg.dataset)), file=sys.stderr, flush=True)
        if cfg.scheme and faces.scheme != cfg.scheme:
            faces = replace(faces, scheme=cfg.scheme)
    _check_landmark_count(faces, k, cfg)
    return faces


def _check_landmark_count(faces: FaceSet, k: int | None, cfg: DataConfig) -> None:
    if k is not None and faces.n_landmarks != k:
        raise SpecError.at(SourceLoc(str(cfg.dataset)),
                           f"the data has {faces.n_landmarks} landmarks per face but the "
                           f"spec predicts n_landmarks = {k}",
                           hint="use a spec for this landmark scheme (e.g. rcn_300w for 68 "
                                "points) or --set n_landmarks=...")


def _check_scheme(cfg: DataConfig, k: int, found: str) -> None:
    """`data.scheme` must name a known scheme with `k` points (`found` says whose)."""
    if not cfg.scheme:
        return
    from runtime.data.formats.rows import SCHEMES

    points = {s: n for n, s in SCHEMES.items()}
    known = ", ".join(f"'{s}' ({n} points)" for s, n in points.items())
    loc = SourceLoc(f"data.scheme={cfg.scheme}")
    if cfg.scheme not in points:
        raise SpecError.at(loc, f"unknown landmark scheme '{cfg.scheme}'",
                           hint=f"use one of {known}, or null to take it from the data")
    if points[cfg.scheme] != k:
        right = SCHEMES.get(k)
        raise SpecError.at(loc, f"scheme '{cfg.scheme}' expects {points[cfg.scheme]} landmarks "
                                f"per face, but {found}",
                           hint=(f"set data.scheme: {right} or null (taken from the data)"
                                 if right else f"use one of {known}"))


def explain_pipeline_error(cfg: DataConfig, err: BaseException) -> None:
    """After tf.data failed (`err`): raise the reader's DataError (file:line) for the first
    image that cannot be decoded, if that is the cause; else return (caller re-raises).

    Images are decoded lazily by the pipeline, so an image that passed the readers' cheap
    checks (runtime/data/formats/images.py) yet is corrupt inside only shows up mid-run as
    a TensorFlow InvalidArgumentError that names no file; re-reading the list with image
    verification finds the row (cost paid only on failure). When PIL decodes every image,
    the TensorFlow message is reported as a data error naming the data set.
    """
    if cfg.dataset == SYNTHETIC or type(err).__name__ != "InvalidArgumentError":
        return
    from runtime.data.errors import DataError
    from runtime.data.readers import load_faceset

    load_faceset(cfg.dataset, cfg.format, on_error=cfg.on_error, verify_images=True)
    first = str(getattr(err, "message", err)).strip().splitlines()
    if not any(w in "".join(first[:3]).lower() for w in ("decode", "jpeg", "png", "image")):
        return  # not about an image: a genuine failure elsewhere
    raise DataError.at(SourceLoc(str(cfg.dataset)),
                       "TensorFlow could not decode an image of this data set "
                       f"({first[0][:200] if first else type(err).__name__})",
                       hint="convert the images to PNG or JPEG, or set data.on_error: skip "
                            "to skip the ones that fail") from None


def backgrounds(train: FaceSet, cfg: DataConfig, loc: SourceLoc | None = None
                ) -> FaceSet | None:
    """The background crops of `data.negatives` for `train` (None when it is off); `loc`
    (the spec's data section) places errors."""
    from runtime.data.config import negatives_config

    neg = negatives_config(cfg)
    if neg is None or neg.fraction <= 0.0:
        return None
    from runtime.data.negatives import background_faceset

    return background_faceset(train, neg, size=cfg.size, crop_ratio=cfg.crop_ratio,
                              seed=cfg.seed, loc=loc)


def check_clip_outputs(spec: Spec, length: int) -> None:
    """Clip training scores every frame: each trained output must keep the time axis,
    [B, T, H, W, K] maps or [B, T, 2K] coordinates."""
    from compiler.losses import CLASSES, COORDS, LOSSES

    types = spec.graph.types()
    for o in spec.graph.outputs:
        if o.loss is None or o.loss not in LOSSES:
            continue
        t = types[o.source]
        kind = LOSSES[o.loss].kind
        rank = 3 if kind in (COORDS, CLASSES) else 5
        if t is None or (t.rank == rank and t.shape[1] == length):
            continue
        want = {COORDS: "[batch, T, 2K]", CLASSES: "[batch, T, N]"}.get(kind,
                                                                       "[batch, T, H, W, K]")
        raise SpecError.at(o.loc, f"output '{o.name}' is {t}, but the input is a clip of "
                                  f"{length} frames and loss '{o.loss}' is scored per frame: "
                                  f"it needs {want} with T = {length}",
                           hint="keep the time axis up to the output (time_distributed "
                                "layers, lstm with return_sequences: true)")


def load_clip_source(spec: Spec, cfg: DataConfig, length: int) -> ClipSource:
    """Frames labelled by clip, frame number and group (person): the embedded synthetic
    clips (each its own person), or a video data set read by the usual readers."""
    from runtime.data.clips import ClipSource

    if cfg.dataset == SYNTHETIC:
        from runtime.data.synthetic import synthetic_clips

        k = n_landmarks(spec)
        scheme = cfg.scheme or ("68pt" if k == 68 else "5pt")
        if k is not None:
            _check_scheme(cfg, k, f"the spec predicts n_landmarks = {k} (the synthetic faces "
                                  "are drawn to match it)")
        n = max(1, SYNTHETIC_FACES // length)
        faces = synthetic_clips(n, length, scheme=scheme, size=cfg.size, seed=cfg.seed)
        _check_landmark_count(faces, k, cfg)
        clip = np.repeat(np.array([f"synthetic_{i:05d}" for i in range(n)]), length)
        return ClipSource(faces, clip, np.tile(np.arange(length), n), clip)
    from runtime.data.formats import video

    faces = load_faces(spec, cfg)
    if faces.name != video.NAME or not faces.paths:  # still photos: no frame order to keep
        raise SpecError.at(SourceLoc(str(cfg.dataset)), f"the input is a clip of {length} "
                           f"frames, but this is a set of still images ({faces.name}), not "
                           "video frames grouped into clips",
                           hint="use a video set (300-VW clip folders or a YouTube-Faces "
                                "frames.csv, --format video) or --data synthetic")
    clips, frames = video.clip_ids(faces)
    return ClipSource(faces, clips, frames, video.person_ids(faces))


def split_clips(source: ClipSource, cfg: DataConfig, length: int) -> tuple[ClipSet, ClipSet]:
    """(training, held-out) windows, by person; an error naming the data when either is
    empty (e.g. still images, whose file names encode no clips)."""
    from runtime.data import clips

    try:
        train, val = clips.split_clips(source, cfg, length)
    except ValueError as e:
        raise SpecError.at(SourceLoc("data.val_split"), str(e)) from None
    for part, what in ((train, "training"), (val, "held-out")):
        if len(part) == 0:
            n_clips = len(np.unique(source.clips))
            raise SpecError.at(SourceLoc(str(cfg.dataset)),
                               f"no {what} clip of {length} consecutive frames in "
                               f"'{source.faces.name}' ({len(source.faces)} frames in "
                               f"{n_clips} clips)",
                               hint=("clip specs need video frames: 300-VW clip folders or a "
                                     "YouTube-Faces frames.csv (<Person>_<clip><frame>.jpg)"
                                     if n_clips == len(source.faces) else
                                     "lower the clip length T or data.val_split"))
    return train, val


def split(faces: FaceSet, cfg: DataConfig) -> tuple[FaceSet, FaceSet]:
    try:
        return split_faceset(faces, cfg)
    except ValueError as e:
        raise SpecError.at(SourceLoc("data.val_split"), str(e)) from None


def split_faceset(faces: FaceSet, cfg: DataConfig) -> tuple[FaceSet, FaceSet]:
    """(train, validation): validation is the last `val_split` rows; `limit` caps both."""
    n = len(faces)
    split = cfg.val_split
    n_val = int(round(n * split)) if isinstance(split, float) else int(split)
    if n_val >= n:
        raise ValueError(f"val_split {split} leaves no training rows in '{faces.name}' "
                         f"({n} rows); lower val_split")
    train, val = faces.subset(slice(0, n - n_val)), faces.subset(slice(n - n_val, n))
    if cfg.limit is not None:
        train, val = train.subset(slice(0, cfg.limit)), val.subset(slice(0, cfg.limit))
    return train, val
