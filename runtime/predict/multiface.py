"""Face-detection-less, multi-face landmark detection (LGCN paper, section 4.3).

The fully-convolutional network runs on an image pyramid (halving until the first level
below the network's input size); the heat-maps are resampled to the original resolution
and combined by a pixel-wise maximum. Local maxima above a threshold are candidate
landmarks; each votes for a face centre (its offset in the mean shape, at the scale of the
pyramid level that produced it), votes are clustered into face hypotheses, and a face is
kept only when the PCA shape model (runtime/shapes/shape_model.py) fits it plausibly.
The search part is numpy; only `keras_predictor` and `predict_multiface_run` touch Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

import numpy as np

from runtime.shapes.shape_model import (
    DEFAULT_WINDOWS,
    REFERENCE_SIZE,
    ShapeModel,
    fit_heatmaps,
    sample_maps,
)

Predictor = Callable[[np.ndarray], np.ndarray]  # image (h, w, C) 0..255 -> maps (h, w, K)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class Face:
    """One accepted face: landmarks in original-image pixels and how it was found."""

    points: np.ndarray  # (K, 2) x, y
    score: float  # mean heat-map support of the fitted landmarks
    level: float  # pyramid level of the hypothesis (face scale = 2**level x training)
    mahalanobis: float  # shape-model plausibility of the raw fit (lower = more typical)


@dataclass(frozen=True)
class DetectOptions:
    """Tuning knobs of the multi-face search (defaults suit heat-maps peaking near 1)."""

    threshold: float = 0.25  # a candidate landmark is a local maximum at least this high
    peak_radius: int = 2  # local-maximum neighbourhood (px, original resolution)
    cluster_radius: float = 0.3  # vote clustering radius, x the face size at that level
    min_landmarks: float = 0.3  # a hypothesis needs this fraction of distinct landmarks
    crop_margin: float = 0.9  # fit window half-side, x the hypothesised face size
    support: float = 0.5  # a fitted landmark is supported above support x threshold ...
    min_support: float = 0.5  # ... and a face needs this fraction of supported landmarks
    min_score: float = 0.35  # ... and this mean heat-map value at its fitted landmarks
    max_mahalanobis: float = 2.0  # x sqrt(components): plausibility limit of the raw fit
    # (min_score and max_mahalanobis were set on 20 HELEN pairs side by side with a
    # CPU-trained LGCN, bench/lgcn_multiface.py; where they cut spurious faces from 50 to 1)
    scale_range: tuple[float, float] = (0.5, 2.0)  # fitted / hypothesised face size
    min_side: int | None = None  # the pyramid stops at the first level whose longer side is
    # below this (None: the network's input size, as the paper's 96)


# --- pyramid ----------------------------------------------------------------------------

def pyramid_factors(height: int, width: int, min_side: int = 96) -> list[int]:
    """Downsampling factors 1, 2, 4, ... up to the first level whose longer side is below
    `min_side` (the paper: 640x480 -> 4 levels, the last 80x60)."""
    if height < 1 or width < 1:
        raise ValueError(f"empty image {height}x{width}")
    factors, f = [], 1
    while True:
        factors.append(f)
        h, w = height // f, width // f
        if max(h, w) < min_side or min(h, w) < 2:
            return factors
        f *= 2


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter (h, w, C) by an integer factor; the last partial rows/columns are dropped."""
    if factor == 1:
        return np.asarray(image, np.float32)
    h, w = image.shape[0] // factor, image.shape[1] // factor
    x = np.asarray(image[:h * factor, :w * factor], np.float32)
    return x.reshape(h, factor, w, factor, -1).mean(axis=(1, 3))


def upsample(maps: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """Bilinear resampling of (h, w, K) level maps to (height, width, K): output pixel x
    reads level coordinate (x + 0.5) / factor - 0.5 (the decode.py pixel convention),
    clamped at the borders."""
    if factor == 1 and maps.shape[:2] == (height, width):
        return np.asarray(maps, np.float32)

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.clip((np.arange(n_out) + 0.5) / factor - 0.5, 0.0, n_in - 1.0)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, fy = axis(height, maps.shape[0])
    x0, x1, fx = axis(width, maps.shape[1])
    rows = maps[y0] * (1 - fy)[:, None, None] + maps[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


@dataclass(frozen=True)
class Pyramid:
    """Per-level heat-maps and their combination at the original resolution."""

    factors: tuple[int, ...]  # downsampling factor of each level (1, 2, 4, ...)
    maps: tuple[np.ndarray, ...]  # (h_l, w_l, K) per level, at the level's resolution
    combined: np.ndarray  # (H, W, K) pixel-wise max of the levels resampled to H x W
    level: np.ndarray  # (H, W, K) int8: which level gave the maximum

    @classmethod
    def single(cls, maps: np.ndarray) -> Pyramid:
        """One level at the original resolution (heat-maps from elsewhere)."""
        m = np.asarray(maps, np.float32)
        return cls((1,), (m,), m, np.zeros(m.shape, np.int8))


def heatmap_pyramid(predict: Predictor, image: np.ndarray, min_side: int = 96) -> Pyramid:
    """Run `predict` on every pyramid level and combine the maps by a pixel-wise max."""
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    height, width = img.shape[:2]
    factors = pyramid_factors(height, width, min_side)
    level_maps, combined, level = [], None, None
    for i, f in enumerate(factors):
        maps = np.asarray(predict(downsample(img, f)), np.float32)
        level_maps.append(maps)
        up = upsample(maps, f, height, width)
        if combined is None:
            combined, level = up, np.zeros(up.shape, np.int8)
        else:
            better = up > combined
            combined = np.where(better, up, combined)
            level = np.where(better, np.int8(i), level)
    return Pyramid(tuple(factors), tuple(level_maps), combined, level)  # type: ignore[arg-type]


# --- candidates, votes, hypotheses --------------------------------------------------------

def local_maxima(maps: np.ndarray, threshold: float, radius: int = 2
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel local maxima >= threshold in a (2r+1)^2 window: (x, y, channel, value)."""
    h, w, _ = maps.shape
    pad = np.pad(maps, ((radius, radius), (radius, radius), (0, 0)), constant_values=-np.inf)
    rowmax = pad[:, 0:w].copy()
    for d in range(1, 2 * radius + 1):
        np.maximum(rowmax, pad[:, d:d + w], out=rowmax)
    neigh = rowmax[0:h].copy()
    for d in range(1, 2 * radius + 1):
        np.maximum(neigh, rowmax[d:d + h], out=neigh)
    y, x, k = np.nonzero((maps >= neigh) & (maps >= threshold))
    return x.astype(np.float64), y.astype(np.float64), k, maps[y, x, k].astype(np.float64)


@dataclass(frozen=True)
class Hypothesis:
    centre: np.ndarray  # (2,) face centre (mean-shape centroid) in original pixels
    level: float  # value-weighted mean pyramid level of its votes
    n_landmarks: int  # distinct landmarks voting
    weight: float  # summed candidate values


def face_hypotheses(pyr: Pyramid, model: ShapeModel, scale0: float, opts: DetectOptions
                    ) -> list[Hypothesis]:
    """Cluster the candidates' face-centre votes; `scale0` is the mean shape's scale
    (pixels per aligned unit) of a face of the training size at the level's resolution."""
    x, y, k, v = local_maxima(pyr.combined, opts.threshold, opts.peak_radius)
    if x.size == 0:
        return []
    lvl = pyr.level[y.astype(int), x.astype(int), k].astype(np.float64)
    factor = np.asarray(pyr.factors, np.float64)[lvl.astype(int)]
    votes = np.stack([x, y], 1) - (scale0 * factor)[:, None] * model.mean[k]
    extent = float(np.ptp(model.mean, axis=0).max()) * scale0  # face size at level 0
    radius = opts.cluster_radius * extent * factor
    order = np.argsort(-v)
    free = np.ones(len(v), bool)
    out = []
    for seed in order:
        if not free[seed]:
            continue
        centre = votes[seed]
        near = np.zeros_like(free)
        near[seed] = True
        for _ in range(2):  # seed -> members -> their weighted centre -> members again
            around = free & (np.linalg.norm(votes - centre, axis=1) <= radius[seed])
            if not around.any():
                break
            near = around
            centre = np.average(votes[near], axis=0, weights=v[near])
        free &= ~near
        distinct = len(np.unique(k[near]))
        if distinct >= opts.min_landmarks * model.n_landmarks:
            out.append(Hypothesis(centre, float(np.average(lvl[near], weights=v[near])),
                                  distinct, float(v[near].sum())))
    return out


def verify(pyr: Pyramid, hyp: Hypothesis, model: ShapeModel, scale0: float,
           opts: DetectOptions, windows: Sequence[float] = DEFAULT_WINDOWS,
           window_scale: float = 1.0) -> Face | None:
    """Fit the shape model around a hypothesis on the maps of the pyramid levels next to
    its votes' mean level (where the face has about the training size, so the 20 / 7 px
    windows apply as trained): the best-supported plausible face in original pixels, or
    None. A face between two levels votes from both; the one nearer the training scale
    gives the sharper maps, and the fit, not the vote, tells which that is."""
    top = len(pyr.factors) - 1
    levels = sorted({int(np.clip(np.floor(hyp.level), 0, top)),
                     int(np.clip(np.ceil(hyp.level), 0, top))})
    faces = [face for index in levels
             if (face := _verify_at(pyr, index, hyp, model, scale0, opts, windows,
                                    window_scale))]
    return max(faces, key=lambda face: face.score, default=None)


def _verify_at(pyr: Pyramid, index: int, hyp: Hypothesis, model: ShapeModel, scale0: float,
               opts: DetectOptions, windows: Sequence[float], window_scale: float
               ) -> Face | None:
    f, maps = float(pyr.factors[index]), pyr.maps[index]
    h, w, _ = maps.shape
    cx, cy = (hyp.centre + 0.5) / f - 0.5
    half = opts.crop_margin * float(np.ptp(model.mean, axis=0).max()) * scale0
    x0, y0 = int(max(np.floor(cx - half), 0)), int(max(np.floor(cy - half), 0))
    x1, y1 = int(min(np.ceil(cx + half) + 1, w)), int(min(np.ceil(cy + half) + 1, h))
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    crop = maps[y0:y1, x0:x1]
    fit = fit_heatmaps(model, crop, windows=[wd * window_scale for wd in windows])
    ratio = fit.scale / scale0
    # support where the shape model puts the landmarks (before the blend towards peaks)
    support = sample_maps(crop, fit.model_points)
    supported = support >= opts.support * opts.threshold
    limit = opts.max_mahalanobis * np.sqrt(max(model.n_components, 1))
    if (supported.mean() < opts.min_support or support.mean() < opts.min_score
            or fit.mahalanobis > limit or not opts.scale_range[0] <= ratio <= opts.scale_range[1]):
        return None
    points = (fit.points + [x0, y0] + 0.5) * f - 0.5
    return Face(points, float(support.mean()), float(np.log2(f)), fit.mahalanobis)


def _suppress(faces: list[Face], model: ShapeModel, scale0: float) -> list[Face]:
    """Drop faces whose centre lies within half a face (the larger) of a better one."""
    kept: list[Face] = []
    unit = float(np.ptp(model.mean, axis=0).max()) * scale0
    for face in sorted(faces, key=lambda f: -f.score):
        c = face.points.mean(axis=0)
        if all(np.linalg.norm(c - o.points.mean(axis=0))
               > 0.5 * unit * 2.0**max(face.level, o.level) for o in kept):
            kept.append(face)
    return kept


def faces_from_heatmaps(pyr: Pyramid, model: ShapeModel, face_size: float,
                        opts: DetectOptions | None = None, window_scale: float = 1.0
                        ) -> list[Face]:
    """Faces in a heat-map pyramid, best first.

    `face_size`: the longer side of a face's landmark box in network-input pixels as
    trained (e.g. size / crop_ratio): a vote from level l assumes a face of that size at
    the level's resolution. `window_scale` multiplies the shape model's local windows
    (20, 7 px at the training resolution).
    """
    opts = opts or DetectOptions()
    if pyr.combined.ndim != 3 or pyr.combined.shape[2] != model.n_landmarks:
        raise ValueError(f"heat-maps must be (H, W, {model.n_landmarks}), found "
                         f"{pyr.combined.shape}")
    scale0 = face_size / float(np.ptp(model.mean, axis=0).max())
    faces = [f for h in face_hypotheses(pyr, model, scale0, opts)
             if (f := verify(pyr, h, model, scale0, opts, window_scale=window_scale))]
    return _suppress(faces, model, scale0)


# --- the network side ---------------------------------------------------------------------

def spec_face_size(spec: Any) -> float:
    """Landmark-box side (network-input px) of the training crops of `spec`."""
    from runtime.datasets import spec_data_config

    dcfg = spec_data_config(spec)
    return dcfg.size / dcfg.crop_ratio if dcfg.crop == "landmarks" else 0.6 * dcfg.size


def spec_input_size(spec: Any) -> int:
    """Side of the network input the spec was trained on (scales the fit windows)."""
    from runtime.datasets import spec_data_config

    return spec_data_config(spec).size


def keras_predictor(model: Any, spec: Any) -> Predictor:
    """image (h, w, C) 0..255 -> the decoded output's maps (h, w, K), from a copy of the
    trained `model` rebuilt for each new input size (the network is fully convolutional)."""
    from compiler.api import expanded_document, load_spec_text
    from compiler.dump import dump_spec
    from compiler.lower_keras import lower_to_keras
    from runtime.data.normalize import normalize
    from runtime.datasets import spec_data_config
    from runtime.evaluate.eval_config import decoded_output, eval_config

    dcfg = spec_data_config(spec)
    out_name, _ = decoded_output(spec, eval_config(spec.section("eval"),
                                                   spec.section("eval").loc))
    text = dump_spec(expanded_document(spec))
    inp = spec.graph.inputs[0].name
    cache: dict[tuple[int, int], Any] = {}

    def build(h: int, w: int) -> Any:
        if (h, w) not in cache:
            sized = load_spec_text(text, spec.file,
                                   [f"inputs.{inp}.shape=[{h}, {w}, {dcfg.channels}]"])
            net = lower_to_keras(sized.graph)
            for layer in net.layers:
                if layer.weights:
                    layer.set_weights(model.get_layer(layer.name).get_weights())
            cache[(h, w)] = net
        return cache[(h, w)]

    def predict(image: np.ndarray) -> np.ndarray:
        x = to_channels(image, dcfg.channels)
        net = build(*x.shape[:2])
        batch = np.asarray(normalize(x[None], dcfg.normalize))
        return np.asarray(net({inp: batch}, training=False)[out_name])[0]

    return predict


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(h, w, C) float32 with `channels` channels (gray = BT.601 luma, as the pipeline)."""
    x = np.asarray(image, np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[-1] == 4:
        x = x[..., :3]
    if channels == 1 and x.shape[-1] == 3:
        x = x @ np.array([0.2989, 0.5870, 0.1140], np.float32)[:, None]
    elif channels == 3 and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x


def detect_faces(model: Any, spec: Any, image: np.ndarray, shape_model: ShapeModel,
                 opts: DetectOptions | None = None, predict: Predictor | None = None,
                 face_size: float | None = None) -> list[np.ndarray]:
    """Landmarks (K, 2) in image pixels of every face found in `image` (h, w[, C], 0..255),
    best first. `predict` replaces the Keras model (e.g. a cached keras_predictor)."""
    return [f.points for f in detect_face_records(model, spec, image, shape_model, opts,
                                                  predict, face_size)]


def detect_face_records(model: Any, spec: Any, image: np.ndarray, shape_model: ShapeModel,
                        opts: DetectOptions | None = None, predict: Predictor | None = None,
                        face_size: float | None = None) -> list[Face]:
    """As `detect_faces`, with scores and levels."""
    opts = opts or DetectOptions()
    predict = predict or keras_predictor(model, spec)
    size = face_size if face_size is not None else spec_face_size(spec)
    side = spec_input_size(spec)
    pyr = heatmap_pyramid(predict, image, opts.min_side or side)
    return faces_from_heatmaps(pyr, shape_model, size, opts,
                               window_scale=side / REFERENCE_SIZE)


# --- `netspec predict --multi-face` -------------------------------------------------------

def _image_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(p)
    return files


def write_faces(out_dir: Path, image_path: Path, image: np.ndarray, faces: list[Face]) -> Path:
    """OUT/<stem>.faces.json (every face's landmarks and score) and an overlay PNG."""
    from PIL import Image, ImageDraw

    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"image": str(image_path), "faces": [
        {"landmarks": np.round(f.points, 2).tolist(), "score": round(f.score, 4),
         "level": round(f.level, 2), "mahalanobis": round(f.mahalanobis, 3)} for f in faces]}
    json_path = out_dir / f"{image_path.stem}.faces.json"
    json_path.write_text(json.dumps(record, indent=1))
    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8).squeeze()).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    r = max(1.0, min(canvas.size) / 200)
    colours = ((255, 64, 64), (64, 255, 64), (64, 160, 255), (255, 220, 0))
    for i, f in enumerate(faces):
        for x, y in f.points:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colours[i % len(colours)])
    canvas.save(out_dir / f"{image_path.stem}.faces.png")
    return json_path


def predict_multiface_run(run_dir: Path, images: Sequence[Path], out_dir: Path,
                          opts: DetectOptions | None = None) -> list[tuple[Path, int]]:
    """Detect every face in each image with a trained run (needs RUN/shape_model.npz);
    returns (image, number of faces) per image."""
    from PIL import Image

    from compiler.diagnostics import SourceLoc, SpecError
    from runtime.run_dir import load_run
    from runtime.shapes.shape_model import SHAPE_MODEL_FILE

    sm_path = run_dir / SHAPE_MODEL_FILE
    if not sm_path.exists():
        raise SpecError.at(SourceLoc(str(run_dir)), "the run has no shape model, which "
                                                    "--multi-face needs to accept faces",
                           hint="train with eval.shape_model: true (--set "
                                "eval.shape_model=true)")
    spec, model = load_run(run_dir)
    shape_model = ShapeModel.load(sm_path)
    shape_model = shape_model.truncated(min(shape_model.n_components, _components(spec)))
    predict = keras_predictor(model, spec)
    size = spec_face_size(spec)
    done = []
    for path in _image_files(images):
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"), np.float32)
        faces = detect_face_records(model, spec, image, shape_model, opts, predict, size)
        write_faces(out_dir, path, image, faces)
        done.append((path, len(faces)))
    return done


def _components(spec: Any) -> int:
    from runtime.evaluate.eval_config import eval_config

    return eval_config(spec.section("eval"), spec.section("eval").loc).shape_model_components
