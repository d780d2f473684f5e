"""Pixel normalisation of network inputs, applied to whole batches after augmentation.

Inputs are float images with raw 0..255 values, shaped [B, H, W, C] (or [H, W, C]).
Each method is a pure function of one image, so results never depend on the batch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

METHODS = ("per_image", "lcn", "scale", "lgcn")
LCN_SIZE = 9
LCN_SIGMA = 1.591  # pixels: RCN passes sigma = 1.591 / 9 relative to the 9-tap kernel
_STD_FLOOR = 1.0  # grey levels: a flat image is not blown up into noise by per_image


def gaussian_1d(size: int = LCN_SIZE, sigma: float = LCN_SIGMA) -> np.ndarray:
    """Normalised 1-D taps; RCN's 2-D window is their outer product (it is separable)."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_kernel(size: int = LCN_SIZE, sigma: float = LCN_SIGMA) -> np.ndarray:
    """RCN's LCN window: a `size` x `size` Gaussian of `sigma` pixels, summing to 1."""
    g = gaussian_1d(size, sigma)
    return np.outer(g, g).astype(np.float32)


def blur_matrix(n: int, size: int = LCN_SIZE, sigma: float = LCN_SIGMA) -> np.ndarray:
    """[n, n] banded matrix B: B @ column == 1-D 'same' convolution with zero padding."""
    g = gaussian_1d(size, sigma)
    half = size // 2
    out = np.zeros((n, n), np.float64)
    for d in range(-half, size - half):
        out += np.eye(n, k=d) * g[d + half]
    return out.astype(np.float32)


def lcn(images: tf.Tensor, size: int = LCN_SIZE, sigma: float = LCN_SIGMA) -> tf.Tensor:
    """RCN local contrast normalisation, per channel.

    v = x - G*x; out = v / max(sqrt(G*v^2), mean of that std over the image); then
    (out + 2.5) / 5. G is a zero-padded Gaussian blur, as RCN's 'full' conv + centre
    crop. RCN took the mean std over the whole batch and summed G over channels; here
    it is per image and per channel, so an image's input never depends on its batch.
    The blur runs as banded matmuls (B_h @ x @ B_w^T), which on CPU is ~20x faster than a
    9x9 depthwise convolution; see `_blur_rows` for why every matmul is rank 2.
    """
    x = tf.convert_to_tensor(images, tf.float32)
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        raise ValueError("lcn needs static image height and width")
    rows = tf.constant(blur_matrix(h, size, sigma))
    cols = tf.constant(blur_matrix(w, size, sigma))

    def blur(t: tf.Tensor) -> tf.Tensor:  # [B, C, H, W]
        along_w = _blur_rows(t, cols)
        along_h = _blur_rows(tf.transpose(along_w, [0, 1, 3, 2]), rows)
        return tf.transpose(along_h, [0, 1, 3, 2])

    xt = tf.transpose(x, [0, 3, 1, 2])
    v = xt - blur(xt)
    std = tf.sqrt(tf.maximum(blur(tf.square(v)), 0.0))
    mean_std = tf.reduce_mean(std, axis=[1, 2, 3], keepdims=True)
    out = v / tf.maximum(tf.maximum(std, mean_std), 1e-6)
    return tf.transpose((out + 2.5) / 5.0, [0, 2, 3, 1])


def _blur_rows(t: tf.Tensor, band: tf.Tensor) -> tf.Tensor:
    """t [..., n] @ band^T along the last axis, as ONE rank-2 matmul [rows, n] @ [n, n].

    Not `tf.matmul(t, band)` on the rank-4 tensor: TensorFlow 2.19-2.21 send a broadcast
    batch matmul with a unit batch dim to oneDNN 3.7's brg_matmul:avx512_core kernel,
    which on AVX-512 CPUs returns wrong values and then writes out of bounds (TF issues
    117700, 123109; oneDNN 4396). tests/numerics checks every pipeline op against numpy.
    """
    n = band.shape[0]
    flat = tf.reshape(t, [-1, n])
    return tf.reshape(tf.matmul(flat, band, transpose_b=True), tf.shape(t))


def per_image(images: tf.Tensor) -> tf.Tensor:
    """Global contrast normalisation: (x - mean) / std over each whole image."""
    x = tf.convert_to_tensor(images, tf.float32)
    mean, var = tf.nn.moments(x, axes=[1, 2, 3], keepdims=True)
    return (x - mean) / tf.maximum(tf.sqrt(var), _STD_FLOOR)


def normalize(images: tf.Tensor, method: str) -> tf.Tensor:
    """Normalise raw 0..255 images by `method`, one of `METHODS`."""
    x = tf.convert_to_tensor(images, tf.float32)
    single = x.shape.rank == 3
    if single:
        x = x[None]
    if method == "lcn":
        out = lcn(x)
    elif method == "per_image":
        out = per_image(x)
    elif method == "scale":
        out = x / 255.0
    elif method == "lgcn":
        out = (x / 128.0 - 1.0) * 0.1
    else:
        raise ValueError(f"unknown normalisation '{method}' (one of {', '.join(METHODS)})")
    return out[0] if single else out
