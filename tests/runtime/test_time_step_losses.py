"""Losses on outputs with a time axis ([B, T, H, W, K] maps, [B, T, 2K] coords, labels
[B, T, K, 3]) are the mean over time steps of the per-frame loss."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.keras

from runtime.train.losses import make_loss  # noqa: E402


@pytest.mark.parametrize(("name", "frame_shape"), [("spatial_softmax_nll", (8, 8, 3)),
                                                   ("heatmap_l2", (8, 8, 3)),
                                                   ("coord_l2", (6,))])
def test_time_axis_loss_is_the_mean_of_frame_losses(name: str, frame_shape: tuple) -> None:
    rng = np.random.default_rng(0)
    b, t = 2, 4
    pred = rng.random((b, t, *frame_shape)).astype("float32")
    if name == "spatial_softmax_nll":
        pred /= pred.sum(axis=(2, 3), keepdims=True)
    y = np.concatenate([rng.uniform(0, 15, (b, t, 3, 2)), np.ones((b, t, 3, 1))], -1)
    y = y.astype("float32")
    clip_loss = make_loss(name, input_size=16, out_shape=(None, t, *frame_shape))
    frame_loss = make_loss(name, input_size=16, out_shape=(None, *frame_shape))
    got = np.asarray(clip_loss(y, pred))
    want = np.stack([np.asarray(frame_loss(y[:, i], pred[:, i])) for i in range(t)], 1).mean(1)
    assert got.shape == (b,)
    np.testing.assert_allclose(got, want, rtol=1e-5)
