"""Custom Keras layers for the refine op family (see compiler/ops/refine.py).

Shapes, weights and choices run in float32 and these layers do not autocast (as the
points layers), so mixed precision never rounds a landmark or a weight Gamma.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="netspec")
class LSTMCellStep(keras.layers.Layer):
    """One LSTM step on [x [B, F], state [B, 2u] = (h, c)] -> new (h, c) [B, 2u].

    Keras LSTMCell's arithmetic (gates i, f, c, o; glorot-uniform kernel, orthogonal
    recurrent kernel, forget-gate bias 1), written as one layer so that the state is a
    plain tensor a recurrent module can feed back.
    """

    def __init__(self, units: int, activation: str = "tanh",
                 recurrent_activation: str = "sigmoid", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation_name, self.recurrent_name = activation, recurrent_activation
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)

    def build(self, input_shapes: list[tuple[int | None, ...]]) -> None:
        features, u = int(input_shapes[0][-1]), self.units
        self.kernel = self.add_weight(name="kernel", shape=(features, 4 * u),
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(u, 4 * u),
                                                initializer="orthogonal")

        def bias_init(shape: Any, dtype: Any = None) -> Any:
            return ops.concatenate([ops.zeros((u,), dtype), ops.ones((u,), dtype),
                                    ops.zeros((2 * u,), dtype)])

        self.bias = self.add_weight(name="bias", shape=(4 * u,), initializer=bias_init)

    def call(self, inputs: list[Any]) -> Any:
        x, state = inputs
        u = self.units
        h, c = state[:, :u], state[:, u:]
        z = (ops.matmul(x, ops.cast(self.kernel, x.dtype))
             + ops.matmul(ops.cast(h, x.dtype), ops.cast(self.recurrent_kernel, x.dtype))
             + ops.cast(self.bias, x.dtype))
        i = self.recurrent_activation(z[:, :u])
        f = self.recurrent_activation(z[:, u:2 * u])
        g = self.activation(z[:, 2 * u:3 * u])
        o = self.recurrent_activation(z[:, 3 * u:])
        c_new = f * ops.cast(c, x.dtype) + i * g
        return ops.concatenate([o * self.activation(c_new), c_new], axis=-1)

    def compute_output_shape(self, input_shapes: list[tuple[int | None, ...]]
                             ) -> tuple[int | None, ...]:
        return (input_shapes[0][0], 2 * self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "activation": self.activation_name,
                "recurrent_activation": self.recurrent_name}


@keras.saving.register_keras_serializable(package="netspec")
class AttentionChoice(keras.layers.Layer):
    """Logits [B, K] -> one-hot c* [B, K]: a softmax draw in training (mode 'sample'),
    else the argmax (first on ties). No gradient: REINFORCE and the surrogate loss train
    the logits through the losses, never through this choice."""

    def __init__(self, mode: str = "sample", seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if mode not in ("sample", "argmax"):
            raise ValueError(f"mode must be 'sample' or 'argmax', found {mode!r}")
        self.mode, self.seed = mode, int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, logits: Any, training: bool | None = None) -> Any:
        logits = ops.cast(ops.stop_gradient(logits), "float32")
        k = ops.shape(logits)[-1]
        if self.mode == "sample" and training:
            index = keras.random.categorical(logits, 1, seed=self.seed_generator)[:, 0]
        else:
            index = ops.argmax(logits, axis=-1)
        return ops.stop_gradient(ops.one_hot(index, k, dtype="float32"))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode, "seed": self.seed}


@keras.saving.register_keras_serializable(package="netspec")
class AttentionWeights(keras.layers.Layer):
    """[points [B, K, 2](, one-hot choice [B, K])] -> gamma [B, K].

    gamma_l = kappa exp(-|S_l - S_c|^2 / (4 D^2)) with D = radius * sqrt(w h) of the
    points' bounding box (D^2 floored at 1e-12 so a collapsed shape gives 1 at c*, not
    NaN); mode 'uniform' gives kappa everywhere. No gradient flows to the points.
    """

    def __init__(self, mode: str = "gaussian", kappa: float = 1.0, radius: float = 0.1,
                 **kwargs: Any) -> None:
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if mode not in ("gaussian", "uniform"):
            raise ValueError(f"mode must be 'gaussian' or 'uniform', found {mode!r}")
        self.mode, self.kappa, self.radius = mode, float(kappa), float(radius)

    def call(self, inputs: Any) -> Any:
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        pts = ops.cast(ops.stop_gradient(inputs[0]), "float32")
        if self.mode == "uniform":
            return ops.ones_like(pts[..., 0]) * self.kappa
        choice = ops.cast(ops.stop_gradient(inputs[1]), "float32")
        centre = ops.sum(pts * choice[..., None], axis=1, keepdims=True)  # [B, 1, 2]
        d2 = ops.sum(ops.square(pts - centre), axis=-1)  # [B, K]
        extent = ops.max(pts, axis=1) - ops.min(pts, axis=1)  # [B, 2]
        size2 = extent[:, 0] * extent[:, 1]  # (sqrt(w h))^2
        d_sq = ops.maximum(self.radius ** 2 * size2, 1e-12)[:, None]
        return self.kappa * ops.exp(-d2 / (4.0 * d_sq))

    def compute_output_shape(self, input_shapes: Any) -> tuple[int | None, ...]:
        pts = input_shapes[0] if isinstance(input_shapes[0], (list, tuple)) else input_shapes
        return (pts[0], pts[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode, "kappa": self.kappa,
                "radius": self.radius}


@keras.saving.register_keras_serializable(package="netspec")
class WeightPoints(keras.layers.Layer):
    """[x [B, K, C], w [B, K]] -> x * w[..., None]."""

    def call(self, inputs: list[Any]) -> Any:
        x, w = inputs
        return x * ops.cast(w, x.dtype)[..., None]

    def compute_output_shape(self, input_shapes: list[tuple[int | None, ...]]
                             ) -> tuple[int | None, ...]:
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="netspec")
class PackStep(keras.layers.Layer):
    """[s_in, s_out [B, K, 2], gamma [B, K](, logits, choice [B, K])] -> [B, K, 7]."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)

    def call(self, inputs: list[Any]) -> Any:
        s_in, s_out, *rest = (ops.cast(x, "float32") for x in inputs)
        if len(rest) == 1:
            rest = [rest[0], ops.zeros_like(rest[0]), ops.zeros_like(rest[0])]
        return ops.concatenate([s_in, s_out, *(r[..., None] for r in rest)], axis=-1)

    def compute_output_shape(self, input_shapes: list[tuple[int | None, ...]]
                             ) -> tuple[int | None, ...]:
        return (input_shapes[0][0], input_shapes[0][1], 7)


@keras.saving.register_keras_serializable(package="netspec")
class StackSteps(keras.layers.Layer):
    """[x_1, ..., x_T] of one shape [B, ...] -> [B, T, ...]."""

    def call(self, inputs: Any) -> Any:
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        return ops.stack(list(inputs), axis=1)

    def compute_output_shape(self, input_shapes: Any) -> tuple[int | None, ...]:
        shapes = input_shapes if isinstance(input_shapes[0], (list, tuple)) else [input_shapes]
        return (shapes[0][0], len(shapes), *shapes[0][1:])
