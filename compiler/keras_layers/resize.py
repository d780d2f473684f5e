"""Custom Keras layers for the resize op family: learned upsampling, crop/pad to a reference."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from compiler.kernels import bilinear_kernel
from compiler.ops.shapes import match_offsets


def _zero_insert(x: Any, r: int) -> Any:
    """[B, H, W, C] -> [B, H*r, W*r, C] with x[j, i] at (j*r, i*r) and zeros elsewhere."""
    shape = ops.shape(x)
    h, w, c = shape[1], shape[2], shape[3]
    # rank-4 pads only (the TFLite converter refuses the rank-6 Pad; netspec export):
    # zeros after every column, then after every row
    z = ops.pad(ops.reshape(x, (-1, h * w, 1, c)), [[0, 0], [0, 0], [0, r - 1], [0, 0]])
    z = ops.reshape(z, (-1, h, 1, w * r * c))
    z = ops.pad(z, [[0, 0], [0, 0], [0, r - 1], [0, 0]])
    return ops.reshape(z, (-1, h * r, w * r, c))


@keras.saving.register_keras_serializable(package="netspec")
class LearnedUpsample2D(keras.layers.Layer):
    """RCN's learned upsampling: a stride-r transposed conv, output exactly H*r x W*r.

    Input pixel (j, i) lands on output (j*r, i*r) and is spread by a (2r-1)^2 kernel
    (bilinear at init), so the transposed conv's r-1 overhang is cropped top/left and
    nothing at the bottom/right; implemented as zero insertion + depthwise conv.
    """

    def __init__(self, size: int, shared: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = int(size)
        self.shared = bool(shared)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        k = 2 * self.size - 1
        init = bilinear_kernel(k)
        shape: tuple[int, ...] = (k, k)
        if not self.shared:
            shape = (k, k, int(input_shape[-1]))
            init = init[:, :, None].repeat(shape[2], axis=2)
        self.kernel = self.add_weight(
            name="kernel", shape=shape,
            initializer=keras.initializers.Constant(init.astype("float32")))

    def call(self, x: Any) -> Any:
        k = self.kernel
        if self.shared:
            k = ops.tile(k[:, :, None], (1, 1, ops.shape(x)[3]))
        # a transposed conv is a correlation with the flipped kernel
        k = ops.flip(ops.cast(k, x.dtype), axis=(0, 1))[:, :, :, None]
        z = _zero_insert(x, self.size)
        return ops.depthwise_conv(z, k, strides=1, padding="same")

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        b, h, w, c = input_shape
        r = self.size
        return (b, None if h is None else h * r, None if w is None else w * r, c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "shared": self.shared}


@keras.saving.register_keras_serializable(package="netspec")
class ResizeToMatch(keras.layers.Layer):
    """Crop or zero-pad x's H and W to ref's (static sizes); channels stay x's."""

    def __init__(self, align: str = "top_left", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if align not in ("top_left", "center"):
            raise ValueError(f"align must be 'top_left' or 'center', found {align!r}")
        self.align = align

    def _offsets(self, x_shape: Any, ref_shape: Any) -> list[tuple[int, int]]:
        return [match_offsets(int(x_shape[a]), int(ref_shape[a]), self.align) for a in (1, 2)]

    def call(self, inputs: list[Any]) -> Any:
        x, ref = inputs
        (top, bottom), (left, right) = self._offsets(x.shape, ref.shape)
        pad = [[0, 0], [max(-top, 0), max(-bottom, 0)], [max(-left, 0), max(-right, 0)], [0, 0]]
        if any(p for pair in pad for p in pair):
            x = ops.pad(x, pad)
        h, w = int(ref.shape[1]), int(ref.shape[2])
        if x.shape[1] == h and x.shape[2] == w:
            # already matching (RCN's x2 levels): a full-range slice would still cost a
            # StridedSliceGrad (zeros + copy) per training step, ~2% of an RCN step on CPU
            return x
        t, lft = max(top, 0), max(left, 0)
        return x[:, t:t + h, lft:lft + w, :]

    def compute_output_shape(self, input_shapes: list[tuple[int | None, ...]]
                             ) -> tuple[int | None, ...]:
        x, ref = input_shapes
        return (x[0], ref[1], ref[2], x[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "align": self.align}
