"""Shapes-only batches (RCN's denoiser): the corruption touches exactly the chosen
subset, the frame is the image pipeline's, and the losses honour the training mask."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from runtime.data.config import data_config  # noqa: E402
from runtime.data.pipeline import make_dataset  # noqa: E402
from runtime.data.shape_pipeline import DROPPED, TRAIN_ON, make_shape_dataset  # noqa: E402
from runtime.data.shape_source import crop_shapes  # noqa: E402
from runtime.data.synthetic import synthetic_faceset  # noqa: E402
from runtime.train.losses import make_loss  # noqa: E402

SIZE = 40


@pytest.fixture(scope="module")
def faces():
    return synthetic_faceset(48, scheme="68pt", size=64, seed=3)


def _cfg(**corrupt):
    return data_config({"size": SIZE, "crop": "landmarks", "crop_ratio": 1.3,
                        "corrupt": corrupt or None})


def _first(ds):
    x, y = next(iter(ds))
    return x["keypoints"].numpy(), y["landmarks"].numpy()


def test_corruption_moves_exactly_the_chosen_keypoints(faces):
    x, y = _first(make_shape_dataset(faces, _cfg(count=35), training=True, batch_size=16))
    chosen = y[..., TRAIN_ON] > 0.5
    assert y.shape == (16, 68, 4) and x.shape == (16, 68, 2)
    np.testing.assert_array_equal(chosen.sum(axis=1), 35)  # exactly count per example
    np.testing.assert_array_equal(x[~chosen], y[..., :2][~chosen])  # the others untouched
    moved = np.linalg.norm(x[chosen] - y[..., :2][chosen], axis=-1)
    assert (moved > 1e-3).mean() > 0.95  # thrown elsewhere ...
    assert x[chosen].min() >= -0.5 and x[chosen].max() <= SIZE - 0.5  # ... but on the map
    assert chosen.any(axis=0).sum() > 60  # a new random subset per example, not one fixed set


def test_drop_mode_and_loss_on_all(faces):
    x, y = _first(make_shape_dataset(faces, _cfg(count=10, mode="drop", loss_on="all"),
                                     training=True, batch_size=8))
    dropped = (x == DROPPED).all(axis=-1)
    np.testing.assert_array_equal(dropped.sum(axis=1), 10)
    np.testing.assert_array_equal(y[..., TRAIN_ON], 1.0)


def test_training_is_a_function_of_the_seed_and_validation_is_fixed(faces):
    a = _first(make_shape_dataset(faces, _cfg(), training=True, batch_size=8))
    b = _first(make_shape_dataset(faces, _cfg(), training=True, batch_size=8))
    np.testing.assert_array_equal(a[0], b[0])
    other = _first(make_shape_dataset(faces, data_config(
        {"size": SIZE, "crop": "landmarks", "crop_ratio": 1.3, "seed": 1}),
        training=True, batch_size=8))
    assert not np.array_equal(a[0], other[0])
    ds = make_shape_dataset(faces, _cfg(), training=False, batch_size=8)
    np.testing.assert_array_equal(_first(ds)[0], _first(ds)[0])


def test_clean_shapes_are_the_image_pipelines_landmarks(faces):
    cfg = data_config({"size": SIZE, "crop": "landmarks", "crop_ratio": 1.3,
                       "augment": {"enabled": False}})
    _, y_shape = _first(make_shape_dataset(faces, cfg, training=False, batch_size=48))
    _, y_img = next(iter(make_dataset(faces, cfg, training=False, batch_size=48)))
    np.testing.assert_allclose(y_shape[..., :3], y_img["landmarks"].numpy(), atol=1e-4)
    shapes, rows = crop_shapes(faces, cfg)
    np.testing.assert_array_equal(rows, np.arange(48))
    np.testing.assert_allclose(shapes, y_shape[..., :3], atol=1e-4)


def test_losses_train_only_where_the_mask_is_set():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 10, 10, 4)).astype(np.float32)
    pts = rng.uniform(0, 9, size=(2, 4, 2)).astype(np.float32)
    labels = np.concatenate([pts, np.ones((2, 4, 1), np.float32)], axis=-1)
    mask = np.array([[1, 0, 1, 0], [0, 0, 0, 1]], np.float32)
    for name in ("spatial_softmax_nll", "coord_l2", "heatmap_l2"):
        shape = (None, 8) if name == "coord_l2" else (None, 10, 10, 4)
        pred = pts.reshape(2, 8) / 10 + 0.01 if name == "coord_l2" else maps
        loss = make_loss(name, input_size=10, out_shape=shape)
        masked = loss(np.concatenate([labels, mask[..., None]], -1), pred).numpy()
        hidden = labels.copy()
        hidden[..., 2] = mask  # the same points as invisible ones
        np.testing.assert_allclose(masked, loss(hidden, pred).numpy(), rtol=1e-6)
        assert not np.allclose(masked, loss(labels, pred).numpy())
