"""Custom Keras layers for the points op family (see compiler/ops/points.py).

Coordinate arithmetic runs in float32 (float64 when the inputs are float64, for gradient
checks) and these layers do not autocast, so mixed precision never rounds a landmark to
float16's 1/8-pixel steps at 256 px.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from compiler.ops.points import to_input, to_map

Sides = tuple[int, int] | None


def _sides(input_size: Any) -> Sides:
    if input_size is None:
        return None
    if isinstance(input_size, int):
        return (input_size, input_size)
    return (int(input_size[0]), int(input_size[1]))


def _coord_dtype(x: Any) -> str:
    return "float64" if keras.backend.standardize_dtype(x.dtype) == "float64" else "float32"


def _grid_sizes(x: Any) -> tuple[int, int]:
    """Static (H, W) of maps [B, H, W, C] (the shape rule requires them known)."""
    return int(x.shape[1]), int(x.shape[2])


class _PointsLayer(keras.layers.Layer):
    """Base: holds `input_size` ((height, width) of the input image, or None)."""

    def __init__(self, input_size: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.input_size = _sides(input_size)

    def _to_map(self, x: Any, y: Any, h: int, w: int) -> tuple[Any, Any]:
        if self.input_size is None:
            return x, y
        sh, sw = self.input_size
        return to_map(x, sw, w), to_map(y, sh, h)

    def _to_input(self, x: Any, y: Any, h: int, w: int) -> tuple[Any, Any]:
        if self.input_size is None:
            return x, y
        sh, sw = self.input_size
        return to_input(x, sw, w), to_input(y, sh, h)

    def get_config(self) -> dict[str, Any]:
        size = None if self.input_size is None else list(self.input_size)
        return {**super().get_config(), "input_size": size}


@keras.saving.register_keras_serializable(package="netspec")
class SampleAtPoints(_PointsLayer):
    """Bilinear features at points: [feats [B, H, W, C], points [B, K, 2]] -> [B, K, C].

    Each of the four neighbouring pixel centres off the map contributes zero (zero
    padding), so a point half a pixel outside gets half the border pixel, one a pixel or
    more outside gets 0. Gradients reach the features (a gather) and the points (through
    the interpolation weights; one-sided at integer positions).
    """

    def call(self, inputs: list[Any]) -> Any:
        feats, pts = inputs
        shape = ops.shape(feats)
        h, w, c = shape[1], shape[2], shape[3]
        cdt = _coord_dtype(feats)
        pts = ops.cast(pts, cdt)
        x, y = pts[..., 0], pts[..., 1]
        if self.input_size is not None:
            x, y = self._to_map(x, y, *_grid_sizes(feats))
        x0, y0 = ops.floor(x), ops.floor(y)
        fx, fy = x - x0, y - y0
        flat = ops.reshape(feats, (-1, c))  # [B*H*W, C]
        base = ops.expand_dims(ops.arange(ops.shape(feats)[0], dtype="int32") * (h * w), 1)
        out = None
        for dy, wy in ((0.0, 1.0 - fy), (1.0, fy)):
            for dx, wx in ((0.0, 1.0 - fx), (1.0, fx)):
                xi, yi = x0 + dx, y0 + dy
                inside = ops.logical_and(
                    ops.logical_and(xi >= 0, xi <= ops.cast(w - 1, cdt)),
                    ops.logical_and(yi >= 0, yi <= ops.cast(h - 1, cdt)))
                col = ops.cast(ops.clip(xi, 0, ops.cast(w - 1, cdt)), "int32")
                row = ops.cast(ops.clip(yi, 0, ops.cast(h - 1, cdt)), "int32")
                vals = ops.take(flat, base + row * w + col, axis=0)  # [B, K, C]
                weight = ops.where(inside, wx * wy, ops.zeros_like(wx))
                term = vals * ops.expand_dims(ops.cast(weight, feats.dtype), -1)
                out = term if out is None else out + term
        return out

    def compute_output_shape(self, input_shapes: list[tuple[int | None, ...]]
                             ) -> tuple[int | None, ...]:
        feats, pts = input_shapes
        return (feats[0], pts[1], feats[3])


@keras.saving.register_keras_serializable(package="netspec")
class PointsToMaps(_PointsLayer):
    """Points [B, K, 2] -> maps [B, height, width, K], one-hot or Gaussian (peak 1)."""

    def __init__(self, height: int, width: int, mode: str = "one_hot",
                 sigma: float | None = None, input_size: Any = None, **kwargs: Any) -> None:
        super().__init__(input_size=input_size, **kwargs)
        if mode not in ("one_hot", "gaussian"):
            raise ValueError(f"mode must be 'one_hot' or 'gaussian', found {mode!r}")
        if mode == "gaussian" and (sigma is None or sigma <= 0):
            raise ValueError(f"mode 'gaussian' needs sigma > 0, found {sigma!r}")
        self.height, self.width, self.mode = int(height), int(width), mode
        self.sigma = None if sigma is None else float(sigma)

    def call(self, pts: Any) -> Any:
        cdt = _coord_dtype(pts)
        pts = ops.cast(pts, cdt)
        x, y = self._to_map(pts[..., 0], pts[..., 1], self.height, self.width)
        x, y = x[:, None, None, :], y[:, None, None, :]  # [B, 1, 1, K]
        cols = ops.reshape(ops.arange(self.width, dtype=cdt), (1, 1, self.width, 1))
        rows = ops.reshape(ops.arange(self.height, dtype=cdt), (1, self.height, 1, 1))
        if self.mode == "one_hot":
            hit = ops.logical_and(ops.equal(cols, ops.floor(x + 0.5)),
                                  ops.equal(rows, ops.floor(y + 0.5)))
            return ops.stop_gradient(ops.cast(hit, cdt))
        d2 = ops.square(cols - x) + ops.square(rows - y)
        return ops.exp(-d2 / (2.0 * self.sigma ** 2))  # type: ignore[operator]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return (input_shape[0], self.height, self.width, input_shape[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width,
                "mode": self.mode, "sigma": self.sigma}


def _pixel_grids(h: int, w: int, dtype: str) -> tuple[Any, Any]:
    """x and y of each row-major flattened pixel, shaped [1, H*W, 1]."""
    flat = ops.arange(h * w, dtype="int32")
    xs = ops.cast(flat % w, dtype)
    ys = ops.cast(flat // w, dtype)
    return ops.reshape(xs, (1, h * w, 1)), ops.reshape(ys, (1, h * w, 1))


@keras.saving.register_keras_serializable(package="netspec")
class SoftArgmax(_PointsLayer):
    """Maps [B, H, W, K] -> expected (x, y) [B, K, 2] under each map's distribution."""

    def __init__(self, from_logits: bool = True, temperature: float = 1.0,
                 input_size: Any = None, **kwargs: Any) -> None:
        super().__init__(input_size=input_size, **kwargs)
        self.from_logits = bool(from_logits)
        self.temperature = float(temperature)

    def call(self, maps: Any) -> Any:
        h, w = _grid_sizes(maps)
        cdt = _coord_dtype(maps)
        flat = ops.reshape(ops.cast(maps, cdt), (-1, h * w, ops.shape(maps)[3]))
        if self.from_logits:
            prob = ops.softmax(flat / self.temperature, axis=1)
        else:
            prob = flat / ops.sum(flat, axis=1, keepdims=True)
        xs, ys = _pixel_grids(h, w, cdt)
        x, y = self._to_input(ops.sum(prob * xs, axis=1), ops.sum(prob * ys, axis=1), h, w)
        return ops.stack([x, y], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[3], 2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="netspec")
class ArgmaxPoints(_PointsLayer):
    """Maps [B, H, W, K] -> (x, y) [B, K, 2] of each map's maximum; no gradient."""

    def call(self, maps: Any) -> Any:
        h, w = _grid_sizes(maps)
        cdt = _coord_dtype(maps)
        flat = ops.reshape(maps, (-1, h * w, ops.shape(maps)[3]))
        # first maximum on ties, as an integer min over the hits: ops.argmax on floats
        # adds a signbit (Bitcast) test that ONNX cannot take (netspec export)
        hit = ops.equal(flat, ops.max(flat, axis=1, keepdims=True))
        pos = ops.reshape(ops.arange(h * w, dtype="int32"), (1, h * w, 1))
        idx = ops.min(ops.where(hit, pos, h * w), axis=1)
        x = ops.cast(idx % w, cdt)
        y = ops.cast(idx // w, cdt)
        x, y = self._to_input(x, y, h, w)
        return ops.stop_gradient(ops.stack([x, y], axis=-1))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[3], 2)


@keras.saving.register_keras_serializable(package="netspec")
class StopGradient(keras.layers.Layer):
    """Identity forward, zero gradient backward."""

    def call(self, x: Any) -> Any:
        return ops.stop_gradient(x)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return input_shape


@keras.saving.register_keras_serializable(package="netspec")
class ChannelSlice(keras.layers.Layer):
    """x[..., start:start + size]."""

    def __init__(self, start: int, size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start, self.size = int(start), int(size)

    def call(self, x: Any) -> Any:
        return x[..., self.start:self.start + self.size]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.size)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "size": self.size}


@keras.saving.register_keras_serializable(package="netspec")
class Gather(keras.layers.Layer):
    """Entries `indices` of `axis`, in that order (static, checked by the shape rule)."""

    def __init__(self, indices: list[int], axis: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.indices = [int(i) for i in indices]
        self.axis = int(axis)

    def call(self, x: Any) -> Any:
        return ops.take(x, ops.convert_to_tensor(self.indices, dtype="int32"), axis=self.axis)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        shape = list(input_shape)
        shape[self.axis] = len(self.indices)
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "indices": self.indices, "axis": self.axis}


@keras.saving.register_keras_serializable(package="netspec")
class Fill(keras.layers.Layer):
    """A constant [B, ..., channels] with the reference's leading sizes; no gradient."""

    def __init__(self, channels: int, value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channels, self.value = int(channels), float(value)

    def call(self, ref: Any) -> Any:
        base = ops.zeros_like(ops.stop_gradient(ref[..., :1]))  # [B, ..., 1]
        reps = [1] * (len(ref.shape) - 1) + [self.channels]
        return ops.tile(base, reps) + ops.cast(self.value, base.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "channels": self.channels, "value": self.value}


@keras.saving.register_keras_serializable(package="netspec")
class ChannelAffine(keras.layers.Layer):
    """x * gamma + beta, one (gamma, beta) per channel (init 1 and 0)."""

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x: Any) -> Any:
        return x * ops.cast(self.gamma, x.dtype) + ops.cast(self.beta, x.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]
                             ) -> tuple[int | None, ...]:
        return input_shape
