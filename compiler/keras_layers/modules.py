"""Custom Keras layers for per-frame modules: folding the time axis into the batch."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="netspec")
class FoldTime(keras.layers.Layer):
    """[B, T, ...] -> [B*T, ...] (frames of clip b are rows b*T .. b*T + T - 1)."""

    def call(self, x: Any) -> Any:
        return ops.reshape(x, (-1, *x.shape[2:]))

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return (None, *input_shape[2:])


@keras.saving.register_keras_serializable(package="netspec")
class UnfoldTime(keras.layers.Layer):
    """[[B*T, ...], ref [B, T, ...]] -> [B, T, ...], inverting FoldTime of ref."""

    def call(self, inputs: Any) -> Any:
        x, ref = inputs
        return ops.reshape(x, (-1, ref.shape[1], *x.shape[1:]))

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        x, ref = input_shape
        return (None, ref[1], *x[1:])
