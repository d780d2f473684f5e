"""Heat maps -> points inside the exported graph, so a TFLite or ONNX user gets landmarks.

The same arithmetic as runtime/evaluate/decode.py (argmax, 3x3 sub-pixel refinement,
map -> input-pixel conversion), written with ops every exporter takes: argmax, one plain
gather of the 3x3 windows and elementwise maths, no gather_nd or dynamic slicing. Tests
compare it with the numpy decoder.
"""

from __future__ import annotations

import tensorflow as tf

_TINY = 1.1754943508222875e-38  # float32's smallest normal: log() of a zero window value


def heatmap_points(maps: tf.Tensor, input_size: int, refine: str) -> tf.Tensor:
    """maps [B, H, W, K] -> points [B, K, 2] (x, y in input-image pixels)."""
    h, w, k = int(maps.shape[1]), int(maps.shape[2]), int(maps.shape[3])
    flat = tf.reshape(tf.transpose(maps, [0, 3, 1, 2]), [-1, h * w])  # [B*K, HW]
    idx = tf.argmax(flat, axis=-1, output_type=tf.int32)  # [B*K]
    px, py = idx % w, idx // w
    fx, fy = tf.cast(px, tf.float32), tf.cast(py, tf.float32)
    if refine == "none":
        dx = dy = tf.zeros_like(fx)
    else:
        # the 3x3 window around each peak, edge-replicated (neighbour indices clipped to the
        # map): one gather of 9 values per map from the flattened maps (a plain Gather in
        # every format; a one-hot product over all H*W pixels per window cell costs ~20x more)
        base = tf.range(tf.shape(flat)[0], dtype=tf.int32) * (h * w)
        rows = tf.stack([base + tf.maximum(py - 1, 0) * w, base + py * w,
                         base + tf.minimum(py + 1, h - 1) * w], axis=-1)  # [B*K, 3]
        cols = tf.stack([tf.maximum(px - 1, 0), px, tf.minimum(px + 1, w - 1)], axis=-1)
        cells = tf.reshape(rows[:, :, None] + cols[:, None, :], [-1, 9])
        vals = tf.gather(tf.reshape(flat, [-1]), cells)  # [B*K, 9]
        win = [[vals[:, 3 * r + c] for c in range(3)] for r in range(3)]
        dx, dy = _offsets(win, refine)
        dx = tf.where((px > 0) & (px < w - 1), dx, 0.0)
        dy = tf.where((py > 0) & (py < h - 1), dy, 0.0)
    x = (fx + dx + 0.5) * (input_size / w) - 0.5
    y = (fy + dy + 0.5) * (input_size / h) - 0.5
    return tf.reshape(tf.stack([x, y], axis=-1), [-1, k, 2])


def coord_points(y: tf.Tensor, input_size: int) -> tf.Tensor:
    """[B, 2K] interleaved x, y / input_size -> [B, K, 2] input-image pixels."""
    return tf.reshape(y, [-1, int(y.shape[1]) // 2, 2]) * float(input_size)


def _offsets(win: list[list[tf.Tensor]], refine: str) -> tuple[tf.Tensor, tf.Tensor]:
    if refine == "com":
        wgt = [[tf.maximum(v, 0.0) for v in row] for row in win]
        total = tf.add_n([v for row in wgt for v in row])
        safe = tf.where(total > 0, total, 1.0)
        cols = [tf.add_n([wgt[r][c] for r in range(3)]) for c in range(3)]
        rows = [tf.add_n(wgt[r]) for r in range(3)]
        dx = (cols[2] - cols[0]) / safe
        dy = (rows[2] - rows[0]) / safe
        return tf.clip_by_value(dx, -0.5, 0.5), tf.clip_by_value(dy, -0.5, 0.5)
    if refine == "log_quadratic":
        win = [[tf.math.log(tf.maximum(v, _TINY)) for v in row] for row in win]
    return _vertex(win[1][0], win[1][1], win[1][2]), _vertex(win[0][1], win[1][1], win[2][1])


def _vertex(left: tf.Tensor, centre: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    curv = left - 2.0 * centre + right
    ok = curv < 0
    off = 0.5 * (left - right) / tf.where(ok, curv, -1.0)
    return tf.where(ok, tf.clip_by_value(off, -0.5, 0.5), 0.0)
