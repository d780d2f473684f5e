"""Silencing TensorFlow's false "retracing" warning when one process trains many models.

Keras wraps each model's train/predict step in a new `tf.function`. TensorFlow counts
tracings per Python code object, not per function object, so the fifth model built
in one process (the fifth in-process search trial) makes it warn "5 out of the last 5
calls to ...one_step_on_data_distributed triggered tf.function retracing", as if one
function were retraced in a loop. Each trace is a new model's first and only one:
nothing can be reused across trials (the searched params are baked into the model),
so the warning is dropped rather than the tracing avoided. Only that message is
filtered, only while a trial runs; TF-free (it filters the 'tensorflow' logger).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import logging

RETRACING = "triggered tf.function retracing"


class _DropRetracing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return RETRACING not in record.getMessage()


@contextlib.contextmanager
def retracing_silenced() -> Iterator[None]:
    """Drop TF's frequent-retracing warning inside the block (other messages pass)."""
    logger = logging.getLogger("tensorflow")
    drop = _DropRetracing()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)
