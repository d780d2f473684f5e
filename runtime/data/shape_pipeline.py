"""Batches of corrupted keypoints for models that learn from shapes alone.

RCN's denoising keypoint model (section 4) never sees an image: it reads the positions
of all keypoints, a random subset of them thrown anywhere on the map, and learns where
the thrown ones belong. The examples are the training shapes in the frame the image
pipeline would crop them to (so a denoiser and an image model trained on the same data
agree on coordinates), jittered like images (scale, rotation, shift, mirror with the
landmark permutation), then corrupted per `data.corrupt`.

Batches are ({input: [B, K, 2] corrupted x, y}, {'landmarks': [B, K, 4]}): the first
three label channels are runtime.data.records' x, y, state of the clean shape; the
fourth (TRAIN_ON) is 1 where the losses train (the corrupted keypoints, or all with
loss_on: all). Losses read it through runtime.train.targets.trained_mask; metrics
ignore it, so validation NME scores every keypoint.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from runtime.data import augment as aug_ops
from runtime.data import geometry
from runtime.data.config import DataConfig, augment_config, corrupt_config
from runtime.data.crops import crop_squares
from runtime.data.pipeline import LABEL_KEY, _training_index_batches
from runtime.data.records import UNLABELLED, FaceSet

TRAIN_ON = 3  # label channel: 1 = the losses train on this keypoint
DROPPED = -1.0e4  # where a dropped (or unlabelled) keypoint goes: off every map, finite
_FAR = 1.0e9  # the source image's size is not read: no point is outside it
_CORRUPT_SALT = 7919  # the corruption's seed differs from the jitter's of the same batch


def corrupt(points: tf.Tensor, state: tf.Tensor, uniforms: tf.Tensor, count: int, size: int,
            mode: str) -> tuple[tf.Tensor, tf.Tensor]:
    """(corrupted points [B, K, 2], chosen [B, K] bool) from clean points [B, K, 2].

    `uniforms` [B, K, 3] in [0, 1): channel 0 ranks the keypoints, so exactly
    min(count, K) of them are chosen per example; channels 1-2 place a chosen one
    uniformly over the size x size pixels (mode uniform) — or it goes off the map
    (mode drop). Unlabelled keypoints go off the map too, so they never show as a peak.
    """
    k = int(points.shape[1])
    n = min(int(count), k)
    ranks = tf.argsort(tf.argsort(uniforms[..., 0], axis=-1), axis=-1)
    chosen = ranks < n
    if mode == "uniform":
        moved = uniforms[..., 1:3] * float(size) - 0.5
    elif mode == "drop":
        moved = tf.fill(tf.shape(points), DROPPED)
    else:
        raise ValueError(f"corrupt mode must be 'uniform' or 'drop', found {mode!r}")
    out = tf.where(chosen[..., None], moved, points)
    out = tf.where((state == UNLABELLED)[..., None] & ~chosen[..., None], DROPPED, out)
    return out, chosen


def shape_rows(faces: FaceSet, cfg: DataConfig) -> np.ndarray:
    """Rows with a crop square and at least one labelled keypoint (the usable shapes)."""
    if cfg.crop == "none":
        raise ValueError("a keypoints input is trained on shapes without images: it needs "
                         "data.crop: landmarks or box (crop: none places points by the image "
                         "size, which only decoding can tell)")
    squares = crop_squares(faces, cfg)
    if squares is None:  # unreachable: only crop: none has no squares
        raise ValueError("no crop squares")
    ok = np.isfinite(squares).all(axis=1) & np.asarray(faces.visible, bool).any(axis=1)
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        raise ValueError(f"no row of '{faces.name}' has a usable crop for crop: {cfg.crop}")
    return rows


def make_shape_dataset(faces: FaceSet, cfg: DataConfig, *, training: bool, batch_size: int,
                       input_name: str = "keypoints", drop_remainder: bool | None = None,
                       passes: int | None = 1, start_batch: int = 0) -> tf.data.Dataset:
    """Corrupted-shape batches (see the module docstring). Training shuffles, jitters and
    draws a new corruption per batch, all from data.seed, the pass and the batch number
    (as `make_dataset`, so `--resume` is exact); otherwise rows keep their order, with
    one fixed corruption per row and no jitter (unless data.val_jitter)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, found {batch_size}")
    aug, corr = augment_config(cfg), corrupt_config(cfg)
    size, k = cfg.size, faces.n_landmarks
    if corr.count > k:
        raise ValueError(f"data.corrupt.count is {corr.count}, but '{faces.name}' has {k} "
                         f"keypoints; use at most {k}")
    rows = shape_rows(faces, cfg)
    drop = training if drop_remainder is None else drop_remainder
    if drop and rows.size < batch_size:
        raise ValueError(f"'{faces.name}' has {rows.size} usable shapes, fewer than one batch "
                         f"of {batch_size}: every batch would be dropped; lower batch_size")
    squares = crop_squares(faces, cfg)
    crop_t = tf.constant(np.nan_to_num(squares).astype(np.float32))
    landmarks = tf.constant(np.asarray(faces.landmarks, np.float32))
    visible = tf.constant(np.asarray(faces.visible, bool))
    jitter = training and aug.enabled
    perm = None
    if jitter and aug.mirror and aug.mirror_prob > 0:
        perm = tf.constant(geometry.mirror_permutation(faces.scheme, k))
    rng = np.random.default_rng(cfg.seed + _CORRUPT_SALT)
    fixed = None if training else tf.constant(rng.random((len(faces), k, 3), np.float32))
    val_table = None
    if not training and cfg.val_jitter:
        table = np.random.default_rng(cfg.seed).random((len(faces), aug_ops.N_UNIFORMS))
        val_table = tf.constant(table.astype(np.float32))

    def make(idx: tf.Tensor, seed: tf.Tensor | None = None
             ) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        n = tf.shape(idx)[0]
        m = aug_ops.crop_matrices(tf.gather(crop_t, idx), size)
        flip = tf.zeros([n], tf.bool)
        if seed is not None:
            j = aug_ops.sample_jitter(seed, n, aug, size)
            m, flip = j.matrix @ m, j.flip
            u = tf.random.stateless_uniform(tf.stack([n, k, 3]),
                                            seed=seed + tf.constant([_CORRUPT_SALT, 0], tf.int64))
        else:
            if val_table is not None:
                j = aug_ops.jitter_from_uniforms(tf.gather(val_table, idx), aug, size,
                                                 geometric_only=True)
                m = j.matrix @ m
            u = tf.gather(fixed, idx)
        hw = tf.fill([n, 2], _FAR)
        y = aug_ops.transform_landmarks(tf.gather(landmarks, idx), tf.gather(visible, idx), m,
                                        size, hw, flip=flip, permutation=perm)
        x, chosen = corrupt(y[..., :2], y[..., 2], u, corr.count, size, corr.mode)
        train_on = chosen if corr.loss_on == "corrupted" else tf.ones_like(chosen)
        label = tf.concat([y, tf.cast(train_on, tf.float32)[..., None]], axis=-1)
        return {input_name: x}, {LABEL_KEY: label}

    if training:
        ds = _training_index_batches(rows, cfg, batch_size, drop, passes, start_batch)
        ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        ds = tf.data.Dataset.from_tensor_slices(rows.astype(np.int64)).batch(
            batch_size, drop_remainder=drop)
        ds = ds.map(lambda idx: make(idx), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
