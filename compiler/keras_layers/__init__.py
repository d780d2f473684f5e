"""Custom Keras layers that netspec lowers to, registered for `.keras` loading.

Importing this package imports TensorFlow/Keras; the compiler core never does so at
module level. Each op family that needs a custom layer has one module here.
"""

from __future__ import annotations

from compiler.keras_layers import (  # noqa: F401
    core,
    modules,
    points,
    pool,
    refine,
    resize,
    robust_shape,
    sequence,
    weighting,
)
