"""`netspec predict`: landmarks for image files or frame folders, with no face detector.

Crop rule. By default the network sees the *whole image*, padded to a square (the short
side is filled with zeros, evenly on both sides) and resized to the network input: the
square crop is centred on the image centre, side = the image's longer side. With
`--box x0,y0,x1,y1` (source pixels) it sees that box made square on its centre, side =
the box's longer side; no margin is added, so give the region the model was trained to
see (for `crop: box` / `crop: landmarks` models: the face box enlarged by the spec's
`data.crop_ratio`). The box must have x1 > x0 and y1 > y0 and overlap every image.
Preprocessing (channels, anti-aliased resampling, normalisation) is the training one
(`runtime.data.pipeline.make_dataset`), and predicted points are mapped back to source
pixels (0-based, pixel centres at integers) by inverting the crop matrix exactly.

Inputs are image files and folders (their images, non-recursively, in natural order:
frame_2 before frame_10). OUT/ receives `<stem>.json` and an overlay `<stem>.png` per
image and `predictions.json` listing them all. With `--video` each folder is one clip:
OUT/`<clip>.json` holds the frames' landmarks in order and OUT/`<clip>/` the overlays;
per-frame models run frame by frame, sequence models (input [T, S, S, C]) on windows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
import math
from pathlib import Path
import re
import sys
import tempfile
from typing import Any

import numpy as np

from compiler.diagnostics import SourceLoc, SpecError
from runtime.atomic import atomic_write_json
from runtime.data import geometry
from runtime.data.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif",
                            ".tiff", ".ppm", ".pgm", ".pnm"})
INDEX = "predictions"  # OUT/predictions.json, so no image or clip may be called that
BATCH_SIZE = 32
MIN_FACE_SIDE = 8  # an image narrower than this cannot hold a face the model could find
# Default of --min-confidence: a face scoring below it is flagged low_confidence. Measured
# on rcn_4branch at 40 px trained 6 x 60 steps: on MTFL, its 20 last (held-out) faces
# score 0.064-0.182 (median 0.132, 18 above 0.1), blank/black/white 0.017-0.032, noise
# 0.05-0.088, 1x1 and 3x3 images 0.038, a transparent image 0.017, two faces side by side
# 0.054; on synthetic faces, held-out faces 0.165-0.41 and noise at most 0.106.
MIN_CONFIDENCE = 0.1
_SCHEMES = {5: "5pt", 68: "68pt"}
_BOX_LOC = SourceLoc("--box")


@dataclass(frozen=True)
class Frame:
    """One input image: where it is, its size and the square crop the network sees."""

    path: Path
    width: int
    height: int
    crop: tuple[float, float, float]  # cx, cy, side in source pixels
    tf_readable: bool  # PNG, gray/RGB JPEG: tf.io decodes them at any channel count; other
    # images (BMP, GIF, WebP, TIFF, CMYK JPEG) reach the pipeline as a lossless PNG copy
    warnings: tuple[str, ...] = ()  # why its landmarks may mean nothing (tiny, transparent)


@dataclass(frozen=True)
class Clip:
    """A run of frames written together: one clip (--video), or one loose image."""

    name: str  # output stem: OUT/<name>.json
    folder: Path | None  # the clip folder (--video)
    frames: tuple[Frame, ...]
    stems: tuple[str, ...]  # overlay stems, unique within the clip
    boxes: tuple[tuple[float, ...], ...] = ()  # --detect: each frame's detector box
    source: Path | None = None  # --detect: the image (its faces are the frames)


# --- inputs ----------------------------------------------------------------------------


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key putting digit runs in numeric order: frame_2 < frame_10 (case-blind)."""
    parts = re.split(r"(\d+)", name)
    return (tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name)


def list_images(folder: Path) -> list[Path]:
    """The images directly inside `folder` (by suffix), in natural order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not p.name.startswith(".")]
    if not files:
        subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir())
        hint = f"images are read by suffix ({', '.join(sorted(IMAGE_SUFFIXES))})"
        if subdirs:
            hint += f"; subfolders are not searched (it has {', '.join(subdirs[:3])}" + \
                    (", ..." if len(subdirs) > 3 else "") + "): pass them instead"
        raise DataError.at(SourceLoc(str(folder)), "no images in this folder", hint=hint)
    return sorted(files, key=lambda p: natural_key(p.name))


def unique_stems(paths: Sequence[Path], *, folders: bool = False,
                 reserved: Sequence[str] = ()) -> list[str]:
    """Output stems for `paths` that never collide (case-blind, nor with `reserved`).

    Clashing names get their parent folder's name as a prefix (a/x.png, b/x.png ->
    a_x, b_x), or their suffix when they share the folder (x.png, x.bmp -> x_png,
    x_bmp); whatever still clashes gets a numeric suffix (_2, _3, ...).
    """
    base = [p.name if folders else p.stem for p in paths]
    taken = {r.casefold() for r in reserved}
    groups: dict[str, list[int]] = {}
    for i, b in enumerate(base):
        groups.setdefault(b.casefold(), []).append(i)
    names = list(base)
    for key, idx in groups.items():
        if len(idx) == 1 and key not in taken:
            continue
        parents = {_parent(paths[i]).casefold() for i in idx}
        by_parent = len(parents) == len(idx) or folders or len(idx) == 1
        for i in idx:
            p = paths[i]
            names[i] = f"{_parent(p)}_{base[i]}" if by_parent \
                else f"{base[i]}_{p.suffix.lower().lstrip('.')}"
    out: list[str] = []
    for name in names:
        candidate, n = name, 2
        while candidate.casefold() in taken:
            candidate, n = f"{name}_{n}", n + 1
        taken.add(candidate.casefold())
        out.append(candidate)
    return out


def _parent(path: Path) -> str:
    return path.parent.name or path.resolve().parent.name or "root"


def collect_inputs(paths: Sequence[Path], *, video: bool, out_dir: Path | None = None
                   ) -> list[tuple[Path | None, list[Path]]]:
    """[(clip folder, frames)] with --video, else one (None, all images) group.

    Files are taken as given; folders contribute their images in natural order. A file
    named twice (directly and through its folder) is read once.
    """
    if not paths:
        raise DataError.at(SourceLoc("<predict>"), "no images given",
                           hint="pass image files or folders")
    groups: list[tuple[Path | None, list[Path]]] = []
    seen: set[Path] = set()
    for p in paths:
        if not p.exists():
            raise DataError.at(SourceLoc(str(p)), "no such file or folder")
        if out_dir is not None and p.is_dir() and p.resolve() == out_dir.resolve():
            raise DataError.at(SourceLoc(str(p)), "this folder is also the output folder",
                               hint="write the predictions elsewhere with -o")
        if video and not p.is_dir():
            raise DataError.at(SourceLoc(str(p)), "with --video every input must be a "
                                                  "folder of frames (one clip)",
                               hint="put the frames in a folder and pass the folder")
        files = list_images(p) if p.is_dir() else [p]
        fresh = [f for f in files if f.resolve() not in seen]
        seen.update(f.resolve() for f in fresh)
        if video:
            groups.append((p, fresh))
        elif groups:
            groups[0][1].extend(fresh)
        else:
            groups.append((None, fresh))
    return [g for g in groups if g[1]]


def parse_box(text: str | None) -> np.ndarray | None:
    """--box 'x0,y0,x1,y1' -> float64 [4], or a SpecError saying what is wrong."""
    if text is None:
        return None
    parts = [t.strip() for t in str(text).replace(" ", ",").split(",") if t.strip()]
    hint = "give four numbers in source pixels, e.g. --box 40,30,200,190 (x0,y0,x1,y1)"
    if len(parts) != 4:
        raise SpecError.at(_BOX_LOC, f"expected 4 numbers x0,y0,x1,y1, found {len(parts)} in "
                                     f"{text!r}", hint=hint)
    try:
        box = np.array([float(t) for t in parts])
    except ValueError:
        raise SpecError.at(_BOX_LOC, f"{text!r} is not four numbers", hint=hint) from None
    if not np.isfinite(box).all():
        raise SpecError.at(_BOX_LOC, f"{text!r} has a non-finite value", hint=hint)
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        axis = "x1 > x0" if x1 <= x0 else "y1 > y0"
        raise SpecError.at(_BOX_LOC, f"empty box {text!r}: need {axis}",
                           hint="the order is left, top, right, bottom")
    return box


def source_crop(width: int, height: int, box: np.ndarray | None, where: str = "<image>"
                ) -> tuple[float, float, float]:
    """The square (cx, cy, side) the network sees; see the module docstring."""
    if box is None:
        return geometry.image_crop(width, height)
    x0, y0, x1, y1 = box
    if x1 <= -0.5 or y1 <= -0.5 or x0 >= width - 0.5 or y0 >= height - 0.5:
        raise DataError.at(SourceLoc(where), f"--box {','.join(f'{v:g}' for v in box)} lies "
                                             f"outside this {width}x{height} image",
                           hint="boxes are x0,y0,x1,y1 in this image's pixels and must "
                                "overlap it")
    cx, cy, side = geometry.square_crops(box[None], 1.0)[0]
    return float(cx), float(cy), float(side)


def network_to_source(points: np.ndarray, crop: Sequence[float], size: int) -> np.ndarray:
    """Points (..., 2) in the size x size network frame -> source pixels (exact inverse)."""
    cx, cy, side = crop
    return geometry.apply(np.linalg.inv(geometry.crop_matrix(cx, cy, side, size)), points)


def read_frame(path: Path, box: np.ndarray | None) -> Frame:
    """Size and format of an image file (header, plus the end-marker check of
    runtime/data/formats/images.py), or a DataError naming it; `Frame.warnings` says
    when the image cannot hold a face (tiny, or fully transparent)."""
    from runtime.data.errors import BadRow
    from runtime.data.formats import images

    where = SourceLoc(str(path))
    if path.is_dir():
        raise DataError.at(where, "is a folder")
    try:
        info = images.read_header(path)
        images.check_complete(info)
    except BadRow as e:
        raise DataError.at(where, str(e), hint=e.hint) from None
    tf_readable = info.format == "PNG" or (info.format == "JPEG" and info.mode in ("L", "RGB"))
    crop = source_crop(info.width, info.height, box, str(path))
    return Frame(path, info.width, info.height, crop, tf_readable,
                 tuple(_image_warnings(path, info)))


def _image_warnings(path: Path, info: Any) -> list[str]:
    out = []
    if min(info.width, info.height) < MIN_FACE_SIDE:
        out.append(f"the image is {info.width}x{info.height} pixels, too small to hold a face "
                   f"(under {MIN_FACE_SIDE} px): its landmarks mean nothing")
    if _fully_transparent(path):
        out.append("the image is fully transparent: the network sees a blank square, "
                   "so its landmarks mean nothing")
    return out


def _fully_transparent(path: Path) -> bool:
    """Whether every pixel has alpha 0 (only images with an alpha channel are decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if "A" not in img.mode and "transparency" not in img.info:
                return False
            img.seek(0)
            alpha = img.convert("RGBA").getchannel("A")
            return alpha.getextrema()[1] == 0
    except (OSError, ValueError):
        return False  # decoding problems are reported when the image is predicted


# --- prediction ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    keras: Any
    input_name: str
    output: str
    kind: str  # per-frame decoding: 'coords' or 'heatmap'
    size: int
    refine: str
    sequence: bool = False  # input [T, S, S, C]: runs on windows of a clip's frames
    steps: int | None = None  # T (None = any length)
    per_step: bool = False  # the sequence output has a time axis (else one per window)


def _model(spec: Any, keras_model: Any, dcfg: Any) -> _Model:
    from runtime.evaluate.eval_config import decoded_output, eval_config

    ecfg = eval_config(spec.section("eval"), spec.section("eval").loc)
    out_name, kind = decoded_output(spec, ecfg)
    inp = spec.graph.inputs[0]
    base = _Model(keras_model, inp.name, out_name, kind, dcfg.size,
                  ecfg.refine)
    if inp.out is None or inp.out.rank == 4:
        return base
    loc = SourceLoc(spec.file)
    if inp.out.rank != 5:
        raise SpecError.at(loc, f"input '{inp.name}' is {inp.out}; predict takes images "
                                "[S, S, C] or frame sequences [T, S, S, C]")
    steps, side, channels = inp.out.shape[1], inp.out.shape[2], inp.out.shape[4]
    if (side, channels) != (dcfg.size, dcfg.channels):
        raise SpecError.at(loc, f"data produces {dcfg.size}x{dcfg.size}x{dcfg.channels} "
                                f"frames but input '{inp.name}' is {inp.out}",
                           hint="set data.size / data.channels to match the input")
    out = next(o for o in spec.graph.outputs if o.name == out_name)
    out_rank = spec.graph.types()[out.source].rank
    if out_rank not in (2, 3, 4, 5):
        raise SpecError.at(out.loc, f"output '{out_name}' of rank {out_rank} cannot be decoded "
                                    "to landmarks")
    per_step = out_rank in (3, 5)  # [B, T, 2K] or [B, T, H, W, K]
    if steps is None and not per_step:
        raise SpecError.at(out.loc, f"output '{out_name}' gives one prediction per sequence "
                                    "of unknown length",
                           hint="give the input a fixed number of frames [T, S, S, C]")
    return replace(base, kind="coords" if out_rank in (2, 3) else "heatmap", sequence=True,
                   steps=steps, per_step=per_step)


def _decode(m: _Model, out: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(points [B, K, 2] in the network frame, face scores [B] or None for coords)."""
    from runtime.evaluate.decode import decode, face_scores

    y = np.asarray(out)
    points = decode(m.kind, y, m.size, refine=m.refine)  # type: ignore[arg-type]
    return points, face_scores(m.kind, y)


class _Failures:
    """Images that could not be predicted: (path, reason), reported at the end."""

    def __init__(self) -> None:
        self.items: list[tuple[Path, str]] = []
        self.paths: set[Path] = set()

    def add(self, path: Path, err: DataError) -> None:
        diag = err.diagnostics[0]
        self.items.append((path, diag.message))
        self.paths.add(path)


def _sources(frames: Sequence[Frame], workdir: Path, failures: _Failures) -> list[str | None]:
    out: list[str | None] = []
    for i, f in enumerate(frames):
        try:
            out.append(str(f.path) if f.tf_readable else str(_png_copy(f.path,
                                                                       workdir / f"{i}.png")))
        except DataError as e:
            failures.add(f.path, e)
            out.append(None)
    return out


def _network_images(frames: Sequence[Frame], sources: Sequence[str], dcfg: Any,
                    input_name: str) -> Iterator[np.ndarray]:
    """Network inputs [b, S, S, C] for `frames` (read from `sources`), in order,
    preprocessed as in training; a tf.errors.OpError when one fails to decode."""
    from runtime.data.pipeline import make_dataset

    faces = _crop_faceset(frames, sources, dcfg)
    ds = make_dataset(faces, dcfg, training=False, batch_size=BATCH_SIZE, input_name=input_name)
    for x, _ in ds:
        yield x[input_name].numpy()


def _crop_faceset(frames: Sequence[Frame], sources: Sequence[str], dcfg: Any) -> Any:
    """A FaceSet of `frames` (read from `sources`) whose boxes are their square crops, so
    the training crop rule reproduces each frame's crop; no landmarks."""
    from runtime.data.records import FaceSet

    crops = np.array([f.crop for f in frames], np.float64)
    half = crops[:, 2:] / 2
    boxes = np.concatenate([crops[:, :2] - half, crops[:, :2] + half], axis=1)
    n = len(frames)
    return FaceSet("predict", dcfg.scheme or "5pt", np.zeros((n, 1, 2), np.float32),
                   np.zeros((n, 1), bool), paths=tuple(sources), boxes=boxes.astype(np.float32))


def _frame_images(frames: Sequence[Frame], dcfg: Any, input_name: str, workdir: Path,
                  failures: _Failures) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, network input [S, S, C]) for every frame that decodes, in order; the
    others go to `failures`. A batch that fails to decode is searched with PIL for its bad
    images, which are dropped, and the pipeline restarts after the batch's good ones."""
    import tensorflow as tf

    sources = _sources(frames, workdir, failures)
    todo = [i for i, s in enumerate(sources) if s is not None]
    while todo:
        done = 0
        try:
            for x in _network_images([frames[i] for i in todo], [sources[i] for i in todo],
                                     dcfg, input_name):
                for img in x:
                    yield todo[done], img
                    done += 1
            return
        except tf.errors.OpError as e:
            batch = todo[done:done + BATCH_SIZE]
            bad = _undecodable([frames[i] for i in batch], e)
            for f, err in bad:
                failures.add(f.path, err)
            if not bad:  # PIL reads them all: fall back to one image at a time
                if len(batch) == 1:
                    failures.add(frames[batch[0]].path,
                                 _decode_error([], e, frames[batch[0]].path))
                    bad_idx = {batch[0]}
                else:
                    yield from _one_by_one(frames, sources, batch, dcfg, input_name, failures)
                    bad_idx = set(batch)
            else:
                bad_idx = {i for i in batch if frames[i].path in {f.path for f, _ in bad}}
            todo = [i for i in todo[done:] if i not in bad_idx]


def _frame_images_on_device(frames: Sequence[Frame], dcfg: Any, failures: _Failures
                            ) -> Iterator[tuple[int, np.ndarray]]:
    """`_frame_images` on a backend without tf.data: every frame PIL decodes is cropped by
    the device feed (runtime/data/device_feed.py), in order; the others go to `failures`."""
    from runtime.data.device_feed import make_feed, split_batches

    bad = {f.path: e for f, e in _undecodable(frames, ValueError())}
    for path, err in bad.items():
        failures.add(path, err)
    keep = [i for i, f in enumerate(frames) if f.path not in bad]
    if not keep:
        return
    good = [frames[i] for i in keep]  # PIL decodes every format: the original files
    feed = make_feed(_crop_faceset(good, [str(f.path) for f in good], dcfg), dcfg,
                     training=False)
    rows = iter(feed.cache.rows)
    for x, _ in split_batches(feed, BATCH_SIZE):
        for img in x:
            yield keep[int(next(rows))], img


def _one_by_one(frames: Sequence[Frame], sources: Sequence[str | None], batch: list[int],
                dcfg: Any, input_name: str, failures: _Failures
                ) -> Iterator[tuple[int, np.ndarray]]:
    import tensorflow as tf

    for i in batch:
        try:
            x = next(_network_images([frames[i]], [str(sources[i])], dcfg, input_name))
        except tf.errors.OpError as e:
            failures.add(frames[i].path, _decode_error([], e, frames[i].path))
            continue
        yield i, x[0]


def _png_copy(path: Path, dest: Path) -> Path:
    """A lossless PNG of the first frame of an image TF cannot decode at any channel count."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.seek(0)
            keep = img.mode in ("L", "LA", "RGB", "RGBA")
            has_alpha = img.mode in ("PA", "RGBa") or "transparency" in img.info
            (img if keep else img.convert("RGBA" if has_alpha else "RGB")).save(dest, "PNG")
    except OSError as e:
        raise DataError.at(SourceLoc(str(path)), f"cannot read the image: {e}") from None
    return dest


def _undecodable(frames: Sequence[Frame], err: Exception) -> list[tuple[Frame, DataError]]:
    """The frames of a batch that PIL cannot decode either, each with its error."""
    from PIL import Image

    out = []
    for f in frames:
        try:
            with Image.open(f.path) as img:
                img.load()
        except (OSError, ValueError, SyntaxError) as e:
            out.append((f, DataError.at(SourceLoc(str(f.path)), f"cannot decode the image: {e}",
                                        hint="the file is damaged or truncated; re-save or "
                                             "remove it")))
    return out


def _decode_error(frames: Sequence[Frame], err: Exception, path: Path | None = None
                  ) -> DataError:
    """A DataError for a decode failure: the first frame PIL cannot decode, else TF's
    message at `path` (or the batch's first .. last file)."""
    bad = _undecodable(frames, err)
    if bad:
        return bad[0][1]
    names = str(path) if path else (f"{frames[0].path} .. {frames[-1].path}" if frames
                                    else "<images>")
    first = str(getattr(err, "message", err)).strip().splitlines()
    return DataError.at(SourceLoc(names), "TensorFlow cannot decode the image: "
                                          f"{first[0][:200] if first else type(err).__name__}",
                        hint="re-save it as PNG or JPEG")


_Result = tuple[int, np.ndarray, float | None]  # frame index, network-frame points, score


def _frame_points(m: _Model, clips: Sequence[Clip], dcfg: Any, workdir: Path,
                  failures: _Failures) -> Iterator[_Result]:
    """(frame index, network-frame points [K, 2], score) of every frame of every clip that
    can be read, in order; failed frames go to `failures` (per-frame models only: a
    sequence model needs every frame of its clip, so a failure there is an error)."""
    import keras

    frames = [f for c in clips for f in c.frames]
    if not m.sequence:
        pending: list[tuple[int, np.ndarray]] = []
        images = (_frame_images(frames, dcfg, m.input_name, workdir, failures)
                  if keras.backend.backend() == "tensorflow"
                  else _frame_images_on_device(frames, dcfg, failures))
        for item in images:
            pending.append(item)
            if len(pending) == BATCH_SIZE:
                yield from _predict_batch(m, pending)
                pending = []
        if pending:
            yield from _predict_batch(m, pending)
        return
    from runtime.backend import require_tensorflow

    require_tensorflow("predict with a sequence (clip) model", SourceLoc(str(frames[0].path)))
    loose = _Failures()
    sources = _sources(frames, workdir, loose)
    if loose.items:
        path, why = loose.items[0]
        raise DataError.at(SourceLoc(str(path)), why)
    import tensorflow as tf

    images = _network_images(frames, sources, dcfg, m.input_name)  # type: ignore[arg-type]
    buf = np.zeros((0, dcfg.size, dcfg.size, dcfg.channels), np.float32)
    start = 0
    try:
        for clip in clips:
            n = len(clip.frames)
            while len(buf) < n:
                buf = np.concatenate([buf, next(images)])
            for k, (pts, score) in enumerate(_sequence_points(m, buf[:n])):
                yield start + k, pts, score
            buf, start = buf[n:], start + n
    except tf.errors.OpError as e:
        raise _decode_error(frames[start:start + BATCH_SIZE], e) from None


def _predict_batch(m: _Model, items: list[tuple[int, np.ndarray]]) -> Iterator[_Result]:
    x = np.stack([img for _, img in items])
    pts, scores = _decode(m, m.keras.predict_on_batch({m.input_name: x})[m.output])
    for k, (i, _) in enumerate(items):
        yield i, pts[k], None if scores is None else float(scores[k])


def _sequence_points(m: _Model, x: np.ndarray
                     ) -> Iterator[tuple[np.ndarray, float | None]]:
    """Per-frame (points, score) of one clip through a sequence model.

    Per-step outputs: consecutive windows of T frames (the last padded by repeating the
    final frame; T unknown = the whole clip). One output per window: the window of the
    T frames ending at each frame (the clip start padded with its first frame).
    """
    n = len(x)
    t = m.steps or n
    if m.per_step:
        windows = np.minimum(np.arange(0, n, t)[:, None] + np.arange(t)[None], n - 1)
    else:
        windows = np.maximum(np.arange(n)[:, None] + np.arange(1 - t, 1)[None], 0)
    done = 0
    per_batch = max(1, BATCH_SIZE // t)
    for b in range(0, len(windows), per_batch):
        w = windows[b:b + per_batch]
        out = np.asarray(m.keras.predict_on_batch({m.input_name: x[w]})[m.output])
        if m.per_step:
            pts, scores = _decode(m, out.reshape(-1, *out.shape[2:]))
            pts = pts.reshape(len(w), t, -1, 2)
            sc = None if scores is None else scores.reshape(len(w), t)
            for r, row in enumerate(pts):
                keep = min(t, n - done)
                for s in range(keep):
                    yield row[s], None if sc is None else float(sc[r, s])
                done += keep
        else:
            pts, scores = _decode(m, out)
            for r in range(len(pts)):
                yield pts[r], None if scores is None else float(scores[r])


# --- outputs ---------------------------------------------------------------------------


def _record(frame: Frame, points: np.ndarray, scheme: str | None, score: float | None,
            min_confidence: float) -> dict[str, Any]:
    warnings = list(frame.warnings)
    low = score is not None and score < min_confidence
    if low:
        warnings.append(f"low confidence: score {score:.3f} < {min_confidence:g} "
                        "(--min-confidence): probably no face, or one the model cannot find")
    return {"image": str(frame.path), "width": frame.width, "height": frame.height,
            "crop": [round(float(v), 6) for v in frame.crop],
            "landmarks": [[_num(x), _num(y)] for x, y in points], "scheme": scheme,
            "score": None if score is None else round(score, 4),
            "low_confidence": bool(low or frame.warnings), "warnings": warnings}


def _num(v: float) -> float | None:
    return round(float(v), 4) if math.isfinite(v) else None


def _read_frames(paths: Sequence[Path], box: np.ndarray | None, failures: _Failures
                 ) -> list[tuple[Path, Frame]]:
    out = []
    for p in paths:
        try:
            out.append((p, read_frame(p, box)))
        except DataError as e:
            failures.add(p, e)
    return out


def _clips(groups: list[tuple[Path | None, list[Path]]], box: np.ndarray | None,
           video: bool, failures: _Failures) -> list[Clip]:
    """The clips to predict; images that cannot be read go to `failures` (a clip keeps its
    readable frames)."""
    if video:
        folders = [g[0] for g in groups]
        names = unique_stems(folders, folders=True, reserved=(INDEX,))  # type: ignore[arg-type]
        clips = []
        for name, (folder, paths) in zip(names, groups, strict=True):
            stems = dict(zip(paths, unique_stems(paths), strict=True))
            frames = _read_frames(paths, box, failures)
            if frames:
                clips.append(Clip(name, folder, tuple(f for _, f in frames),
                                  tuple(stems[p] for p, _ in frames)))
        return clips
    paths = [p for _, ps in groups for p in ps]
    names = dict(zip(paths, unique_stems(paths, reserved=(INDEX,)), strict=True))
    return [Clip(names[p], None, (f,), (names[p],)) for p, f in _read_frames(paths, box,
                                                                             failures)]


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # noqa: T201 - per-image warnings


def _write_faces(out_dir: Path, clip: Clip, records: list[dict[str, Any]],
                 entries: list[dict[str, Any]], save_overlay: Any) -> None:
    """--detect: OUT/<stem>.json with every face of one image, and one overlay of them all."""
    for rec, b in zip(records, clip.boxes, strict=False):
        rec["detector_box"] = [round(v, 2) for v in b]
    path = clip.source
    if not records:
        _say(f"{path}: warning: no face found (OpenCV frontal-face cascade)")
    overlay = f"{clip.name}.png"
    pts = [np.array(r["landmarks"], np.float64) for r in records]
    if path is not None:
        save_overlay(path, np.concatenate(pts) if pts else np.zeros((0, 2)), out_dir / overlay)
    doc = {"image": str(path), "faces": records, "overlay": overlay}
    atomic_write_json(out_dir / f"{clip.name}.json", doc)
    entries.append({"image": doc["image"], "json": f"{clip.name}.json", "faces": len(records),
                    "low_confidence": sum(r["low_confidence"] for r in records)})


def predict_run(run_dir: Path, paths: Sequence[Path], out_dir: Path, *, box: str | None = None,
                video: bool = False, min_confidence: float = MIN_CONFIDENCE,
                detect: bool = False) -> dict[str, Any]:
    """Predict landmarks for `paths` with the run's best model; see the module docstring.

    Images that cannot be read are skipped, named on stderr at the end and listed under
    "errors" (image, error) in the index. Each record has a "score" (heat-map outputs:
    runtime.evaluate.decode.face_scores) and "low_confidence" (score below `min_confidence`, or an
    image too small or transparent to hold a face; "warnings" says which).
    `run_dir` may also be a `netspec export` folder (runtime/predict/exported.py). With
    `detect`, every face OpenCV's cascade finds is predicted in its training crop
    (runtime/predict/detect.py) and OUT/<stem>.json lists them under "faces".
    Returns the contents of OUT/predictions.json.
    """
    from runtime.datasets import spec_data_config
    from runtime.predict.overlay import save_overlay
    from runtime.progress import Bar
    from runtime.run_dir import load_run, read_state

    box_xyxy = parse_box(box)
    failures = _Failures()
    clips = _clips(collect_inputs(list(paths), video=video, out_dir=out_dir), box_xyxy, video,
                   failures)
    from runtime.export.manifest import is_export_dir

    if is_export_dir(run_dir):  # `netspec export` output: its artefact, its runtime
        from runtime.predict.exported import load_export

        model_name, exported, dcfg, out_name, kind, refine, trained_crop = \
            load_export(run_dir)
        m = _Model(exported, exported.input_name, out_name, kind, dcfg.size, refine)
    else:
        spec, keras_model = load_run(run_dir)
        model_name = spec.name
        state = read_state(run_dir)
        if state is None or state["epoch"] < 1:
            _say(f"{run_dir}: warning: this model was never trained (no state.json with a "
                 "finished epoch, e.g. a `netspec compile` output): its landmarks come from "
                 "random weights")
        dcfg = spec_data_config(spec)
        trained_crop = (dcfg.crop, float(dcfg.crop_ratio))
        dcfg = replace(dcfg, crop="box", crop_ratio=1.0, val_jitter=False, on_error="raise",
                       deterministic=True, augment={**dict(dcfg.augment or {}), "enabled": False})
        m = _model(spec, keras_model, dcfg)
    if m.sequence and not video:
        raise SpecError.at(SourceLoc(str(run_dir)), f"model '{model_name}' takes sequences of "
                                                    "frames", hint="pass clip folders with --video")
    if detect:
        from runtime.predict.detect import detect_clips

        if video or box_xyxy is not None:
            raise SpecError.at(SourceLoc("--detect"), "--detect finds the faces itself: it "
                                                      "takes neither --box nor --video")
        clips = detect_clips(clips, trained_crop[0], trained_crop[1], dcfg.scheme)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = Bar(sum(len(c.frames) for c in clips), "predict", "img")
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="netspec_predict_") as tmp:
        results = _frame_points(m, clips, dcfg, Path(tmp), failures)
        pending = next(results, None)
        g = 0
        for clip in clips:
            records = []
            for frame, stem in zip(clip.frames, clip.stems, strict=True):
                g += 1
                if pending is None or pending[0] != g - 1:  # it failed to decode
                    continue
                _, net, score = pending
                pending = next(results, None)
                src = network_to_source(net, frame.crop, dcfg.size)
                rec = _record(frame, src, dcfg.scheme or _SCHEMES.get(len(src)), score,
                              min_confidence)
                overlay = f"{clip.name}/{stem}.png" if video else f"{clip.name}.png" \
                    if detect else f"{stem}.png"
                try:
                    if not detect:  # --detect: one overlay with every face, below
                        save_overlay(frame.path, src, out_dir / overlay)
                except OSError as e:
                    failures.add(frame.path, DataError.at(SourceLoc(str(frame.path)),
                                                          f"cannot read the image: {e}"))
                    continue
                for w in rec["warnings"]:
                    _say(f"{frame.path}: warning: {w}")
                rec["overlay"] = overlay
                records.append(rec)
                progress.update()
            if detect:
                _write_faces(out_dir, clip, records, entries, save_overlay)
                continue
            if not records:
                continue
            if video:
                atomic_write_json(out_dir / f"{clip.name}.json",
                                  {"clip": clip.name, "folder": str(clip.folder),
                                   "scheme": records[0]["scheme"], "frames": records})
                entries.append({"clip": clip.name, "folder": str(clip.folder),
                                "json": f"{clip.name}.json", "frames": len(records),
                                "low_confidence": sum(r["low_confidence"] for r in records)})
            else:
                atomic_write_json(out_dir / f"{clip.name}.json", records[0])
                entries.append({**records[0], "json": f"{clip.name}.json"})
    progress.close()
    index = {"run": str(run_dir), "model": model_name, "output": m.output,
             "input_size": dcfg.size,
             "crop_rule": "detect" if detect else "box" if box_xyxy is not None
             else "whole_image",
             "box": None if box_xyxy is None else [float(v) for v in box_xyxy],
             "min_confidence": min_confidence,
             "video": video, "clips" if video else "images": entries,
             "errors": [{"image": str(p), "error": why} for p, why in failures.items]}
    atomic_write_json(out_dir / f"{INDEX}.json", index)
    return index
