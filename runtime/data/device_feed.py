"""Training and validation batches of still faces, augmented on the device: fit's input on
every backend but TensorFlow.

The faces are decoded once into a FaceCache (runtime/data/face_cache.py) and moved to the
device; each batch is one compiled call of DeviceAugment (runtime/data/device_augment.py:
warp, mirror, occluder, landmarks, normalisation) on the batch's cache indices and key,
so the host hands over only int32 indices and two uint32 words. Batch `step` of the
stream (pass = step // batches_per_pass) is a pure function of (data.seed, step), so a
resumed run trains on exactly the batches an unbroken one would.

On TensorFlow, fit keeps the tf.data pipeline (runtime/data/pipeline.py): there it is
faster than this path (bench/device_augment.py: 0.86-0.93x on tf.function, 1.48x on
jax.jit, on the 2-core CPU), and it also serves clips, shapes and background crops,
which this feed does not do yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
import itertools
from typing import Any

import numpy as np

from runtime.data import device_augment as da
from runtime.data.config import DataConfig, augment_config
from runtime.data.face_cache import FaceCache, build_face_cache
from runtime.data.records import FaceSet


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` compiled by the active backend (jax.jit, tf.function); eager on torch."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    return fn


@dataclass
class DeviceFeed:
    """The augmenting call of one split, with the cache it reads."""

    cache: FaceCache
    augment: da.DeviceAugment
    seed: int
    call: Callable[..., Any]

    @property
    def n(self) -> int:
        return len(self.cache)


def make_feed(faces: FaceSet, cfg: DataConfig, *, training: bool,
              cache_dir: str | None = None) -> DeviceFeed:
    """Decode `faces` into a cache on the device and compile its augmenting call."""
    cache = build_face_cache(faces, cfg, cache_dir=cache_dir)
    val_uniforms = None
    if not training and cfg.val_jitter:  # the tf.data pipeline's fixed per-row draw
        table = np.random.default_rng(cfg.seed).random((len(faces), da.N_UNIFORMS),
                                                       np.float32)
        val_uniforms = table[cache.rows]
    augment = da.DeviceAugment(da.device_faces(cache), augment_config(cfg), cfg.normalize,
                               training=training, val_uniforms=val_uniforms)
    return DeviceFeed(cache, augment, cfg.seed, compiled(augment.__call__))


def batches_per_pass(feed: DeviceFeed, batch_size: int) -> int:
    """Full training batches per pass over the cache (the last partial one is dropped)."""
    return max(1, feed.n // batch_size)


def training_batches(feed: DeviceFeed, batch_size: int, start_step: int,
                     pack: Callable[[Any, Any], tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
    """Endless stream from batch `start_step`: `pack(images, landmarks)` of each batch."""
    per_pass = batches_per_pass(feed, batch_size)
    order, order_pass = None, -1
    for step in itertools.count(start_step):
        pass_, b = divmod(step, per_pass)
        if pass_ != order_pass:  # one permutation per pass (index_batch's), not per batch
            order, order_pass = da.index_batch(feed.n, feed.seed, pass_, 0, feed.n), pass_
        index = order[b * batch_size:(b + 1) * batch_size]
        images, landmarks = feed.call(index, da.batch_key(feed.seed, step))
        yield pack(images, landmarks)


def split_batches(feed: DeviceFeed, batch_size: int, limit: int | None = None
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images, landmarks [b, K, 3]) batches of the split in cache order (first `limit`
    rows), as numpy: the tf.data pipeline's `make_dataset(training=False)`."""
    import keras

    n = feed.n if limit is None else min(feed.n, limit)
    key = da.batch_key(feed.seed, 0)  # unused without training jitter
    for lo in range(0, n, batch_size):
        index = np.arange(lo, min(n, lo + batch_size), dtype=np.int32)
        images, landmarks = feed.call(index, key)
        yield keras.ops.convert_to_numpy(images), keras.ops.convert_to_numpy(landmarks)


def validation_arrays(feed: DeviceFeed, batch_size: int, limit: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(images, landmarks [N, K, 3]) of the whole split (first `limit` rows)."""
    xs, ys = zip(*split_batches(feed, batch_size, limit), strict=True)
    return np.concatenate(xs), np.concatenate(ys)
