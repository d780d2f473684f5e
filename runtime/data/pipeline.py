"""tf.data input pipelines: a `FaceSet` + `DataConfig` -> batches ready for `model.fit`.

Per image (parallel map) only read + decode (or take the in-memory array) and one affine
warp for crop, resize and jitter; the matrices, the landmarks (same matrix), the occluder
and normalisation are vectorised per batch. Only row indices are shuffled (cheap buffer).
Clip specs (`make_window_dataset`) run the same stages on windows of T frames: one crop and
one jitter draw per window, repeated over its frames, and batches reshaped to [B, T, ...].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
import sys

import numpy as np
import tensorflow as tf

from runtime.data import augment as aug_ops
from runtime.data import geometry
from runtime.data.config import DataConfig, augment_config
from runtime.data.crops import crop_squares, face_boxes, source_name
from runtime.data.formats import images as image_files
from runtime.data.normalize import normalize
from runtime.data.records import IDENTITY_KEY, LABEL_KEY, FaceSet


def _usable_rows(faces: FaceSet, crops: np.ndarray | None, cfg: DataConfig,
                 report: bool = False) -> np.ndarray:
    """Rows with a usable crop; under on_error: skip the others are dropped (and counted on
    stderr when `report`), else they are an error."""
    return _usable(faces, crops, cfg, lambda i: int(i), "row", "no visible landmarks or an "
                   "empty box", report)


def _usable_windows(faces: FaceSet, windows: np.ndarray, crops: np.ndarray | None,
                    cfg: DataConfig) -> np.ndarray:
    """Window ids with a usable crop (`_usable_rows` for clips, named by first frame)."""
    return _usable(faces, crops, cfg, lambda i: int(windows[i, 0]), "clip",
                   "no visible landmarks in any frame", True, n=len(windows))


def _usable(faces: FaceSet, crops: np.ndarray | None, cfg: DataConfig,
            row_of: Callable[[int], int],
            unit: str, why: str, report: bool, n: int | None = None) -> np.ndarray:
    """Ids (0..n-1) whose crop is finite: the others raise, or are dropped under
    on_error: skip (counted on stderr when `report`, naming up to three by their row)."""
    ids = np.arange(len(faces) if n is None else n)
    if crops is None:
        return ids
    bad = ~np.isfinite(crops).all(axis=1)
    if not bad.any():
        return ids
    shown = ", ".join(source_name(faces, row_of(i)) for i in ids[bad][:3])
    what = f"no usable crop: {cfg.crop} ({why}), e.g. {'from ' if unit == 'clip' else ''}{shown}"
    if cfg.on_error == "raise":
        raise ValueError(f"{int(bad.sum())} {unit}(s) of '{faces.name}' have {what}; set "
                         "on_error: skip to drop them")
    if report:
        print(f"data.on_error: skip: skipped {int(bad.sum()):,} of {len(ids):,} {unit}s of "  # noqa: T201
              f"'{faces.name}' with {what}", file=sys.stderr, flush=True)
    return ids[~bad]


def _to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Statically shaped [H, W, C] uint8 -> [H, W, channels] (gray = BT.601 luma)."""
    have = image.shape[-1]
    if have == channels:
        return image
    if have in (3, 4) and channels == 1:
        return tf.image.rgb_to_grayscale(image[..., :3])
    if have == 4 and channels == 3:
        return image[..., :3]
    if have == 1 and channels == 3:
        return tf.tile(image, [1, 1, 3])
    raise ValueError(f"cannot turn {have}-channel images into {channels} channels")


def _loader(faces: FaceSet, channels: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """index -> uint8 [H, W, channels] image, from memory or by reading and decoding a file."""
    if faces.images is not None:
        if faces.images.ndim != 4:
            raise ValueError(f"in-memory images must be (N, H, W, C), found {faces.images.shape}")
        images = tf.constant(np.asarray(faces.images, np.uint8))

        def take(i: tf.Tensor) -> tf.Tensor:
            return _to_channels(tf.gather(images, i), channels)

        return take
    if not faces.paths:
        raise ValueError(f"'{faces.name}' has neither image paths nor in-memory images")
    paths = tf.constant(list(faces.paths))
    decoders = _decoders(faces, channels)

    def tf_decode(path: tf.Tensor, c: int) -> tf.Tensor:
        img = tf.io.decode_image(tf.io.read_file(path), channels=c, expand_animations=False)
        img.set_shape([None, None, c])
        return img

    def pil_decode(path: tf.Tensor) -> tf.Tensor:
        img = tf.numpy_function(lambda p: image_files.pil_decode(p.decode(), channels), [path],
                                tf.uint8, stateful=False)
        img.set_shape([None, None, channels])
        return img

    if (decoders == image_files.NATIVE).all():  # the usual case: one decoder, no branching
        return lambda i: tf_decode(tf.gather(paths, i), channels)
    decoders_t = tf.constant(decoders)

    def load(i: tf.Tensor) -> tf.Tensor:
        path = tf.gather(paths, i)
        img = tf.switch_case(tf.gather(decoders_t, i), [
            lambda: tf_decode(path, channels),
            lambda: _to_channels(tf_decode(path, 3), channels),
            lambda: pil_decode(path)])
        img.set_shape([None, None, channels])
        return img

    return load


def _decoders(faces: FaceSet, channels: int) -> np.ndarray:
    """Per path, how to decode it (runtime/data/formats/images.py `pipeline_decoder`)."""
    if faces.image_kinds:
        return np.array([image_files.pipeline_decoder(k, channels) for k in faces.image_kinds],
                        np.int32)
    return np.array([image_files.decoder_for_suffix(p, channels) for p in faces.paths], np.int32)


class DecodeSkips:
    """Under on_error: skip, the rows whose image tf.data failed to decode although the
    readers' up-front checks passed it (corrupt inside): each is named once on stderr as
    it is met, with a running count; `rows` holds them."""

    def __init__(self, faces: FaceSet) -> None:
        self.faces, self.rows = faces, set()

    def note(self, index: np.ndarray) -> np.bool_:
        i = int(index)
        if i not in self.rows:
            self.rows.add(i)
            name = source_name(self.faces, i)
            print(f"data.on_error: skip: skipped {name}: TensorFlow "  # noqa: T201
                  f"cannot decode it ({len(self.rows)} image(s) of '{self.faces.name}' "
                  "skipped by the input pipeline)", file=sys.stderr, flush=True)
        return np.bool_(False)


Element = dict[str, tf.Tensor]


def _skipping(ds: tf.data.Dataset, per_image: Callable[[Element], Element],
              skips: DecodeSkips, deterministic: bool) -> tf.data.Dataset:
    """`ds.map(per_image)` that drops elements whose decoding fails and tells `skips` which
    (`ignore_errors` alone drops them without a word): each element runs as a one-element
    dataset followed by a flagged placeholder, and the first of the two is kept."""
    def one(el: dict[str, tf.Tensor]) -> tf.data.Dataset:
        ok = tf.data.Dataset.from_tensors(el).map(per_image).ignore_errors()
        spec = ok.element_spec
        blank = {k: tf.zeros([d or 1 for d in s.shape], s.dtype) for k, s in spec.items()}
        blank["index"] = el["index"]
        bad = tf.data.Dataset.from_tensors((blank, False))
        return ok.map(lambda e: (e, True)).concatenate(bad).take(1)

    def keep(el: dict[str, tf.Tensor], ok: tf.Tensor) -> tf.Tensor:
        return tf.cond(ok, lambda: tf.constant(True), lambda: tf.numpy_function(
            skips.note, [el["index"]], tf.bool, stateful=True))

    return (ds.interleave(one, cycle_length=16, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)
            .filter(keep).map(lambda el, ok: el))


def batches_per_pass(n_rows: int, batch_size: int, drop_remainder: bool) -> int:
    return n_rows // batch_size if drop_remainder else -(-n_rows // batch_size)


def _training_index_batches(rows: np.ndarray, cfg: DataConfig, batch_size: int, drop: bool,
                            passes: int | None, start_batch: int) -> tf.data.Dataset:
    """(row indices [b], jitter seed [2]) per batch; pass p is a permutation keyed by
    (seed, p) and batch i of it jitters with seed (seed, p * 2^32 + i), so the stream is a
    pure function of the seed and can start at any batch (`start_batch`, for resuming)."""
    per_pass = batches_per_pass(rows.size, batch_size, drop)
    first, skip = divmod(start_batch, per_pass)
    rows_t = tf.constant(rows.astype(np.int64))
    seed = tf.constant(cfg.seed, tf.int64)

    def one_pass(p: tf.Tensor) -> tf.data.Dataset:
        idx = rows_t
        if cfg.shuffle:
            idx = tf.random.experimental.stateless_shuffle(rows_t, seed=tf.stack([seed, -1 - p]))
        batches = tf.data.Dataset.from_tensor_slices(idx).batch(batch_size, drop_remainder=drop)
        seeds = tf.data.Dataset.range(per_pass).map(
            lambda i: tf.stack([seed, p * 2**32 + i]))
        return tf.data.Dataset.zip((batches, seeds))

    counter = (tf.data.Dataset.counter(first) if passes is None
               else tf.data.Dataset.range(first, passes))
    return counter.flat_map(one_pass).skip(skip)


def make_dataset(faces: FaceSet, cfg: DataConfig, *, training: bool, batch_size: int,
                 input_name: str = "image", drop_remainder: bool | None = None,
                 passes: int | None = 1, start_batch: int = 0) -> tf.data.Dataset:
    """Batches ({input_name: float32 [B, S, S, C]}, {'landmarks': float32 [B, K, 3]}).

    landmarks[..., :2] are x, y in output pixels (0-based, pixel centres at integers);
    landmarks[..., 2] is the state of runtime.data.records: 1 for a visible point inside the
    crop, -1 for a labelled one outside it (or a background row's), 0 unlabelled. Training draws
    new jitter each epoch (reproducible from `cfg.seed`) and shuffles; otherwise rows
    keep their order and only `cfg.val_jitter` adds a fixed per-row geometric jitter.
    `drop_remainder` defaults to `training` (static batch shape while fitting). Training
    streams `passes` passes over the rows (None: endless) from batch `start_batch` on;
    the same seed gives the same stream, however it is cut into runs.

    Stages: index batches -> jitter and matrices, vectorised -> per image (parallel):
    decode + one warp -> batches -> landmarks, occluder and normalisation, vectorised.
    """
    return _dataset(faces, None, cfg, training=training, batch_size=batch_size,
                    input_name=input_name, drop_remainder=drop_remainder, passes=passes,
                    start_batch=start_batch)


def make_window_dataset(faces: FaceSet, windows: np.ndarray, cfg: DataConfig, *,
                        training: bool, batch_size: int, input_name: str = "clip",
                        drop_remainder: bool | None = None, passes: int | None = 1,
                        start_batch: int = 0, row_labels: np.ndarray | None = None
                        ) -> tuple[tf.data.Dataset, np.ndarray]:
    """Clip batches ({input_name: [B, T, S, S, C]}, {'landmarks': [B, T, K, 3]}) of the
    windows (M, T) of row indices of `faces`, frames in window order: `make_dataset`
    with one crop square (around the union of the frames' boxes) and ONE jitter draw per
    window, so every frame of a clip gets the same matrix and the motion stays real; the
    landmarks go through that matrix too. Shuffling, seeds, `passes` and `start_batch`
    count windows as `make_dataset` counts rows. Also returns the usable window ids (in
    the order a non-training stream yields them). Frames that only TensorFlow fails to
    decode stop the run (a clip cannot lose a frame), whatever `on_error` says.
    `row_labels` (int (N,), one per row of `faces`) adds {'identity': int32 [B, T]}
    to the labels: RED-Net's identity classes (runtime/data/identities.py).
    """
    windows = np.asarray(windows, np.int64)
    if windows.ndim != 2 or windows.shape[1] < 1:
        raise ValueError(f"windows must be (M, T) row indices, found shape {windows.shape}")
    units: list[np.ndarray] = []
    ds = _dataset(faces, windows, cfg, training=training, batch_size=batch_size,
                  input_name=input_name, drop_remainder=drop_remainder, passes=passes,
                  start_batch=start_batch, usable_out=units, row_labels=row_labels)
    return ds, units[0]


def window_crops(faces: FaceSet, windows: np.ndarray, cfg: DataConfig) -> np.ndarray | None:
    """(M, 3) one source square per window: `crop_squares` of the union of its frames'
    boxes (NaN when no frame has one); None for crop: none."""
    boxes = face_boxes(faces, cfg)
    if boxes is None:
        return None
    b = boxes[windows]  # (M, T, 4)
    ok = np.isfinite(b).all(axis=-1).any(axis=1)
    union = np.full((len(windows), 4), np.nan)
    if ok.any():
        with np.errstate(all="ignore"):
            lo = np.nanmin(b[ok][..., :2], axis=1)
            hi = np.nanmax(b[ok][..., 2:], axis=1)
        union[ok] = np.concatenate([lo, hi], axis=1)
    return geometry.square_crops(union, cfg.crop_ratio)


def _dataset(faces: FaceSet, windows: np.ndarray | None, cfg: DataConfig, *, training: bool,
             batch_size: int, input_name: str, drop_remainder: bool | None,
             passes: int | None, start_batch: int,
             usable_out: list[np.ndarray] | None = None,
             row_labels: np.ndarray | None = None) -> tf.data.Dataset:
    """`make_dataset` over units: rows (`windows` None) or windows of T rows each."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, found {batch_size}")
    if len(faces) == 0:
        raise ValueError(f"'{faces.name}' has no rows")
    aug = augment_config(cfg)
    size, channels, antialias = cfg.size, cfg.channels, cfg.antialias
    steps = 1 if windows is None else int(windows.shape[1])  # frames per unit
    unit = "rows" if windows is None else "clips"
    if windows is None:
        crops = crop_squares(faces, cfg)
        rows = _usable_rows(faces, crops, cfg, report=True)
    else:
        crops = window_crops(faces, windows, cfg)
        rows = _usable_windows(faces, windows, crops, cfg)
    if usable_out is not None:
        usable_out.append(rows)
    if rows.size == 0:
        raise ValueError(f"no usable {unit} in '{faces.name}' for crop: {cfg.crop}")
    drop = training if drop_remainder is None else drop_remainder
    if drop and rows.size < batch_size:
        raise ValueError(f"'{faces.name}' has {rows.size} usable {unit}, fewer than one batch "
                         f"of {batch_size}: every batch would be dropped; lower batch_size")
    train_jitter = training and aug.enabled
    val_table = None
    n_units = len(faces) if windows is None else len(windows)
    if not training and cfg.val_jitter:  # one fixed draw per unit, the same every epoch
        rng = np.random.default_rng(cfg.seed)
        val_table = tf.constant(rng.random((n_units, aug_ops.N_UNIFORMS), np.float32))
    perm = None
    if train_jitter and aug.mirror and aug.mirror_prob > 0:
        perm = tf.constant(geometry.mirror_permutation(faces.scheme, faces.n_landmarks))
    occluding = train_jitter and aug.occlusion
    load = _loader(faces, channels)
    landmarks = tf.constant(np.asarray(faces.landmarks, np.float32))
    visible = tf.constant(np.asarray(faces.visible, bool))
    crop_t = None if crops is None else tf.constant(np.nan_to_num(crops).astype(np.float32))
    window_t = None if windows is None else tf.constant(windows)
    labels_t = None if row_labels is None else tf.constant(np.asarray(row_labels, np.int32))

    def plan(idx: tf.Tensor, seed: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        el = _plan_units(idx, seed)
        if window_t is None:
            return el
        # one unit = one window: its single draw and matrix go to each of its frames
        el = {k: tf.repeat(v, steps, axis=0) for k, v in el.items()}
        el["index"] = tf.reshape(tf.gather(window_t, idx), [-1])
        return el

    def _plan_units(idx: tf.Tensor, seed: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        n = tf.shape(idx)[0]
        el = {"index": idx, "flip": tf.zeros([n], tf.bool), "occluder": tf.zeros([n, 4])}
        if seed is not None:
            j = aug_ops.sample_jitter(seed, n, aug, size)
        elif val_table is not None:
            j = aug_ops.jitter_from_uniforms(tf.gather(val_table, idx), aug, size,
                                             geometric_only=True)
        else:
            j = None
        if j is not None:
            el.update(jitter=j.matrix, flip=j.flip, occluder=j.occluder)
        if crop_t is not None:
            m = aug_ops.crop_matrices(tf.gather(crop_t, idx), size)
            m = m if j is None else j.matrix @ m
            t, f = aug_ops.warp_transforms(m, antialias=antialias)
            el.update(matrix=m, transform=t, factor=f)
        return el

    def per_image(el: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        img = tf.cast(load(el["index"]), tf.float32)
        hw = tf.shape(img)[:2]
        if crop_t is None:  # whole image: the crop needs the decoded size
            m = aug_ops.crop_matrices(aug_ops.image_crops(hw[None]), size)
            m = m if "jitter" not in el else el["jitter"][None] @ m
            t, f = aug_ops.warp_transforms(m, antialias=antialias)
            m, t, f = m[0], t[0], f[0]
        else:
            m, t, f = el["matrix"], el["transform"], el["factor"]
        out = aug_ops.warp(img, t, f, size)
        out.set_shape([size, size, channels])
        return {"image": out, "matrix": m, "hw": hw, "index": el["index"],
                "flip": el["flip"], "occluder": el["occluder"]}

    def finish(el: dict[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        x = el["image"]
        if occluding:
            x = aug_ops.occlude(x, el["occluder"])
        idx = el["index"]
        y = aug_ops.transform_landmarks(tf.gather(landmarks, idx), tf.gather(visible, idx),
                                        el["matrix"], size, el["hw"], flip=el["flip"],
                                        permutation=perm)
        x = normalize(x, cfg.normalize)
        labels = {}
        if labels_t is not None:
            labels[IDENTITY_KEY] = tf.gather(labels_t, idx)
        if windows is not None:  # the frames of each window -> [B, T, ...]
            x = tf.reshape(x, tf.concat([[-1, steps], tf.shape(x)[1:]], 0))
            y = tf.reshape(y, tf.concat([[-1, steps], tf.shape(y)[1:]], 0))
            labels = {k: tf.reshape(v, [-1, steps]) for k, v in labels.items()}
        return {input_name: x}, {LABEL_KEY: y, **labels}

    autotune = tf.data.AUTOTUNE
    if training:
        ds = _training_index_batches(rows, cfg, batch_size, drop, passes, start_batch)
        if not train_jitter:
            ds = ds.map(lambda idx, _seed: idx)
    else:
        ds = tf.data.Dataset.from_tensor_slices(rows.astype(np.int64)).batch(batch_size)
    ds = ds.map(plan, num_parallel_calls=autotune, deterministic=cfg.deterministic).unbatch()
    if cfg.on_error == "skip" and faces.images is None and windows is None:
        ds = _skipping(ds, per_image, DecodeSkips(faces), cfg.deterministic)
    else:
        ds = ds.map(per_image, num_parallel_calls=autotune, deterministic=cfg.deterministic)
    ds = ds.batch(batch_size * steps, drop_remainder=drop)
    ds = ds.map(finish, num_parallel_calls=autotune, deterministic=cfg.deterministic)
    options = tf.data.Options()
    options.deterministic = cfg.deterministic
    return ds.with_options(options).prefetch(autotune)


def make_training_dataset(faces: FaceSet, cfg: DataConfig, *, batch_size: int,
                          input_name: str = "image", backgrounds: FaceSet | None = None,
                          background_fraction: float = 0.0, passes: int | None = 1,
                          start_epoch: int = 0, steps_per_epoch: int | None = None
                          ) -> tuple[tf.data.Dataset, int]:
    """`make_dataset(training=True)`, with `background_fraction` of every batch (at least
    one row) replaced by background crops (runtime/data/negatives.py) when `backgrounds`
    is given. Faces come first in a batch; the background stream is endless, so `passes`
    counts passes over the faces. An epoch is `steps_per_epoch` batches (None: one pass);
    the stream starts after `start_epoch` of them. Returns (dataset, batches per epoch)."""
    n_bg = 0
    if backgrounds is not None and background_fraction > 0.0:
        n_bg = min(max(1, int(round(batch_size * background_fraction))), batch_size - 1)
        if n_bg < 1:
            raise ValueError(f"batch_size {batch_size} leaves no room for background crops; "
                             "raise train.batch_size or drop data.negatives")
    usable = _usable_rows(faces, crop_squares(faces, cfg), cfg).size  # make_dataset reports
    steps = steps_per_epoch or batches_per_pass(usable, batch_size - n_bg, True)
    start_batch = start_epoch * steps
    if n_bg == 0:
        return make_dataset(faces, cfg, training=True, batch_size=batch_size,
                            input_name=input_name, passes=passes,
                            start_batch=start_batch), steps
    face_ds = make_dataset(faces, cfg, training=True, batch_size=batch_size - n_bg,
                           input_name=input_name, passes=passes, start_batch=start_batch)
    bg_cfg = replace(cfg, crop="box", seed=cfg.seed + 1)  # its squares are its boxes
    bg_ds = make_dataset(backgrounds, bg_cfg, training=True, batch_size=n_bg,
                         input_name=input_name, drop_remainder=True, passes=None,
                         start_batch=start_batch)

    def join(a: tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]],
             b: tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]
             ) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        return tuple({k: tf.concat([x[k], y[k]], 0) for k in x}  # type: ignore[return-value]
                     for x, y in zip(a, b, strict=True))

    options = tf.data.Options()
    options.deterministic = cfg.deterministic
    return (tf.data.Dataset.zip((face_ds, bg_ds)).map(join).with_options(options)
            .prefetch(tf.data.AUTOTUNE)), steps
