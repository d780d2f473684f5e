"""Device setup for training: seeds, GPU memory growth, mixed precision, strategies.

Called once per command (fit, search trial); library code never touches global
TensorFlow state elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)


def configure(seed: int, strategy: str = "default") -> Any:
    """Seed everything, let GPUs grow memory, and return the tf.distribute strategy."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError):  # already initialised: harmless
            tf.config.experimental.set_memory_growth(gpu, True)
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def describe_devices() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    names = []
    for g in gpus:
        details = tf.config.experimental.get_device_details(g)
        names.append(details.get("device_name", g.name))
    return f"{len(gpus)} GPU: " + ", ".join(names)
