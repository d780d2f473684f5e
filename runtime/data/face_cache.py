"""Faces decoded once into a compact uint8 array, for augmentation on the accelerator.

Each usable row of a `FaceSet` is decoded once (numpy / PIL, no TensorFlow, so the cache
builds on every Keras backend) and resampled around its crop square into a C x C tile at
the network input's own pixel scale, C = `cache_side(size, augment)`: wide enough that no
jitter the `AugmentConfig` ranges allow (scale, rotation, translation) ever samples outside
it. The device then warps tiles, not source images (runtime/data/device_augment.py).

Convention as runtime/data/geometry.py (pixel centres at integers, 3x3 matrices map source
-> target points). Per row the cache keeps `to_cache` (source -> cache pixels), `crops`
(source -> output without jitter, as the tf.data pipeline's crop matrix), the source size
and the landmarks, so targets are computed from the source points exactly as there.
Resampling is the pipeline's: an integer box filter when the crop shrinks the image more
than 2x (`data.antialias`), then bilinear with zeros outside the image.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import math
import os
from pathlib import Path
import sys
import tempfile

import numpy as np

from runtime.data import geometry
from runtime.data.config import DataConfig, augment_config
from runtime.data.crops import crop_squares, source_name
from runtime.data.formats import images as image_files
from runtime.data.records import FaceSet

CACHE_VERSION = 1  # bump when the cache's contents or layout change
_BILINEAR_REACH = 1.0  # output pixels a bilinear tap reaches beyond its sample point


@dataclass(frozen=True)
class FaceCache:
    """Decoded, cropped faces of one FaceSet + DataConfig (rows = the usable rows)."""

    images: np.ndarray  # uint8 [N, C, C, channels]
    to_cache: np.ndarray  # float32 [N, 3, 3] source pixels -> cache pixels
    crops: np.ndarray  # float32 [N, 3, 3] source pixels -> output pixels (no jitter)
    source_hw: np.ndarray  # int32 [N, 2] height, width of each decoded source image
    landmarks: np.ndarray  # float32 [N, K, 2] source pixels (NaN = absent)
    visible: np.ndarray  # bool [N, K]
    rows: np.ndarray  # int64 [N] row of the FaceSet each cache entry came from
    scheme: str
    size: int  # network input side the crops map to

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def side(self) -> int:
        return int(self.images.shape[1])

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in (self.images, self.to_cache, self.crops,
                                           self.source_hw, self.landmarks, self.visible,
                                           self.rows))


def cache_side(size: int, aug_scale: float, aug_rotation: float, aug_translate: float) -> int:
    """Even tile side C (in output pixels) holding every sample of any allowed jitter.

    An output pixel p samples the crop frame at c + (R S)^-1 (p - c - shift): its offset
    from the centre is at most (size - 1) / 2 + translate * size per axis, a rotation by
    up to r degrees widens a box by cos r + sin r (sqrt 2 from 45 degrees on), the
    smallest zoom 1 - scale divides it, and a bilinear tap reaches one pixel further.
    C is even so that a crop centred on a pixel corner (crop: none) maps to the tile by
    an integer shift, i.e. the tile holds the source pixels themselves.
    """
    r = math.radians(min(aug_rotation, 45.0))
    reach = ((size - 1) / 2 + aug_translate * size) * (math.cos(r) + math.sin(r))
    half = reach / (1.0 - aug_scale) + _BILINEAR_REACH
    side = math.ceil(2 * half + 1)
    return side + side % 2


def config_side(cfg: DataConfig) -> int:
    """`cache_side` for `cfg` (no jitter room when augmentation is off)."""
    aug = augment_config(cfg)
    if not aug.enabled:
        return cache_side(cfg.size, 0.0, 0.0, 0.0)
    return cache_side(cfg.size, aug.scale, aug.rotation, aug.translate)


def _usable(faces: FaceSet, squares: np.ndarray | None, cfg: DataConfig) -> np.ndarray:
    """Rows with a finite crop square; the others raise, or are dropped under on_error: skip."""
    rows = np.arange(len(faces))
    if squares is None:
        return rows
    bad = ~np.isfinite(squares).all(axis=1)
    if not bad.any():
        return rows
    shown = ", ".join(source_name(faces, int(i)) for i in rows[bad][:3])
    what = (f"no usable crop: {cfg.crop} (no visible landmarks or an empty box), "
            f"e.g. {shown}")
    if cfg.on_error == "raise":
        raise ValueError(f"{int(bad.sum())} row(s) of '{faces.name}' have {what}; set "
                         "on_error: skip to drop them")
    print(f"data.on_error: skip: skipped {int(bad.sum()):,} of {rows.size:,} rows of "  # noqa: T201
          f"'{faces.name}' with {what}", file=sys.stderr, flush=True)
    return rows[~bad]


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 [H, W, c] -> [H, W, channels]; RGB -> gray as tf.image.rgb_to_grayscale."""
    have = image.shape[-1]
    if have == channels:
        return image
    if have in (3, 4) and channels == 1:
        rgb = image[..., :3].astype(np.float32) * np.float32(1.0 / 255.0)
        gray = rgb @ np.array([0.2989, 0.5870, 0.1140], np.float32)
        return np.clip(gray * np.float32(255.5), 0, 255).astype(np.uint8)[..., None]
    if have == 4 and channels == 3:
        return image[..., :3]
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=-1)
    raise ValueError(f"cannot turn {have}-channel images into {channels} channels")


def _decode(faces: FaceSet, i: int, channels: int) -> np.ndarray:
    if faces.images is not None:
        return to_channels(np.asarray(faces.images[i], np.uint8), channels)
    return image_files.pil_decode(faces.paths[i], channels)


def _shrink(image: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks (TF's area resize by an integer factor), float64."""
    h, w = image.shape[0] // f, image.shape[1] // f
    blocks = image[: h * f, : w * f].astype(np.float64).reshape(h, f, w, f, -1)
    return blocks.mean(axis=(1, 3))


def _taps(n_out: int, scale: float, offset: float, n_in: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i0, w0, i1, w1) [n_out]: bilinear taps of target pixels u sampling x = (u - offset)
    / scale; a tap outside 0..n_in - 1 gets weight 0 (the pipeline's zero fill)."""
    x = (np.arange(n_out, dtype=np.float64) - offset) / scale
    x0 = np.floor(x)
    frac = x - x0
    out = []
    for xi, wt in ((x0, 1.0 - frac), (x0 + 1.0, frac)):
        ok = (xi >= 0) & (xi <= n_in - 1)
        out += [np.clip(xi, 0, n_in - 1).astype(np.int64), np.where(ok, wt, 0.0)]
    return out[0], out[1], out[2], out[3]


def resample(image: np.ndarray, to_target: np.ndarray, side: int, *,
             antialias: bool = True) -> np.ndarray:
    """float32 [side, side, C] of uint8 [H, W, C] `image` under the axis-aligned source ->
    target matrix `to_target` (a crop: scale and shift), as the tf.data pipeline's warp:
    an f x f box pre-filter when it shrinks by f >= 2, then bilinear, zero outside. Being
    axis-aligned, bilinear is separable: two passes of two taps each."""
    m = np.asarray(to_target, np.float64)
    if m[0, 1] != 0 or m[1, 0] != 0:
        raise ValueError("resample takes axis-aligned crop matrices (no rotation)")
    sx, sy, tx, ty = m[0, 0], m[1, 1], m[0, 2], m[1, 2]
    src = image.astype(np.float64)
    f = max(int(math.floor(1.0 / math.sqrt(abs(sx * sy)))), 1) if antialias else 1
    f = min(f, *image.shape[:2])
    if f > 1:  # sample the block means, whose centres sit at x' = (x + 0.5) / f - 0.5
        src = _shrink(image, f)
        tx, ty = tx + sx * (0.5 * f - 0.5), ty + sy * (0.5 * f - 0.5)
        sx, sy = sx * f, sy * f
    h, w = src.shape[:2]
    i0, w0, i1, w1 = _taps(side, sy, ty, h)
    tmp = w0[:, None, None] * src[i0] + w1[:, None, None] * src[i1]  # [side, w, C]
    j0, v0, j1, v1 = _taps(side, sx, tx, w)
    out = v0[None, :, None] * tmp[:, j0] + v1[None, :, None] * tmp[:, j1]
    return out.astype(np.float32)


def cache_key(faces: FaceSet, cfg: DataConfig) -> str:
    """Digest of everything the cache depends on: the rows' images (bytes in memory, or
    each file's path, size and mtime), landmarks, boxes, and the crop/size/jitter settings."""
    h = hashlib.sha256()
    aug = augment_config(cfg)
    h.update(repr((CACHE_VERSION, faces.name, faces.scheme, cfg.size, cfg.channels, cfg.crop,
                   cfg.crop_ratio, cfg.antialias, cfg.on_error, aug.enabled, aug.scale,
                   aug.rotation, aug.translate)).encode())
    for arr in (faces.landmarks, faces.visible, faces.boxes):
        if arr is not None:
            h.update(np.ascontiguousarray(arr).tobytes())
    if faces.images is not None:
        h.update(np.ascontiguousarray(faces.images).tobytes())
    for p in faces.paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def build_face_cache(faces: FaceSet, cfg: DataConfig, *, cache_dir: str | Path | None = None,
                     side: int | None = None) -> FaceCache:
    """Decode and crop every usable row of `faces` once (see the module docstring).

    `cache_dir`: load `facecache-<key>.npz` from there when present, else build and save
    it (the key covers the data and the settings, so a stale file is never read). `side`
    overrides `config_side(cfg)` (tests).
    """
    if len(faces) == 0:
        raise ValueError(f"'{faces.name}' has no rows")
    side = config_side(cfg) if side is None else side
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / f"facecache-{cache_key(faces, cfg)}-{side}.npz"
        if target.is_file():
            return load_face_cache(target)
    cache = _build(faces, cfg, side)
    if target is not None:
        save_face_cache(cache, target)
    return cache


def _build(faces: FaceSet, cfg: DataConfig, side: int) -> FaceCache:
    size, channels = cfg.size, cfg.channels
    squares = crop_squares(faces, cfg)
    rows = _usable(faces, squares, cfg)
    out = np.zeros((rows.size, side, side, channels), np.uint8)
    to_cache = np.zeros((rows.size, 3, 3), np.float32)
    crops = np.zeros((rows.size, 3, 3), np.float32)
    hw = np.zeros((rows.size, 2), np.int32)
    kept = np.ones(rows.size, bool)
    for j, i in enumerate(rows):
        try:
            image = _decode(faces, int(i), channels)
        except (OSError, ValueError, SyntaxError) as exc:
            if cfg.on_error == "raise":
                raise ValueError(f"cannot decode image {source_name(faces, int(i))} ({exc}); "
                                 "set on_error: skip to drop it") from None
            print(f"data.on_error: skip: skipped {source_name(faces, int(i))}: cannot "  # noqa: T201
                  f"decode it ({exc})", file=sys.stderr, flush=True)
            kept[j] = False
            continue
        h, w = image.shape[:2]
        cx, cy, s = (geometry.image_crop(w, h) if squares is None else squares[i])
        crops[j] = geometry.crop_matrix(cx, cy, s, size)
        m = geometry.crop_matrix(cx, cy, s * side / size, side)
        to_cache[j] = m
        hw[j] = (h, w)
        out[j] = np.clip(np.rint(resample(image, m, side, antialias=cfg.antialias)), 0, 255)
    if not kept.any():
        raise ValueError(f"no decodable usable rows in '{faces.name}'")
    rows = rows[kept]
    return FaceCache(images=out[kept], to_cache=to_cache[kept], crops=crops[kept],
                     source_hw=hw[kept],
                     landmarks=np.asarray(faces.landmarks, np.float32)[rows],
                     visible=np.asarray(faces.visible, bool)[rows], rows=rows.astype(np.int64),
                     scheme=faces.scheme, size=size)


_ARRAYS = ("images", "to_cache", "crops", "source_hw", "landmarks", "visible", "rows")


def save_face_cache(cache: FaceCache, path: Path) -> None:
    """Write `cache` as an uncompressed npz, atomically (a killed write leaves no file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, scheme=np.array(cache.scheme), size=np.array(cache.size),
                     **{k: getattr(cache, k) for k in _ARRAYS})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_face_cache(path: Path) -> FaceCache:
    """A cache written by `save_face_cache`; a damaged file is an error naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return FaceCache(scheme=str(z["scheme"]), size=int(z["size"]),
                             **{k: z[k] for k in _ARRAYS})
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"face cache {path} is damaged ({exc}); delete it to rebuild") from None
