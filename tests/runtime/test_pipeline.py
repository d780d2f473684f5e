"""make_dataset end to end: shapes, conventions, determinism, splits, error policy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from runtime.data.config import data_config  # noqa: E402
from runtime.data.pipeline import make_dataset  # noqa: E402
from runtime.data.records import ABSENT, FaceSet  # noqa: E402
from runtime.datasets import split_faceset  # noqa: E402

pytestmark = pytest.mark.keras


def _mtfl(root: Path, n: int) -> FaceSet:
    """The first n rows of MTFL train.txt (`relpath x1..x5 y1..y5`), parsed here."""
    rows = [line.split() for line in (root / "mtfl" / "train.txt").read_text().splitlines()[:n]]
    vals = np.array([[float(v) for v in r[1:11]] for r in rows], np.float32)
    pts = np.stack([vals[:, :5], vals[:, 5:]], axis=-1)
    return FaceSet("mtfl", "5pt", pts, np.ones((n, 5), bool),
                   paths=tuple(str(root / "mtfl" / r[0]) for r in rows))


def _random_faces(n: int = 12, h: int = 64, w: int = 64, c: int = 3) -> FaceSet:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    pts = rng.uniform(15, min(h, w) - 15, (n, 5, 2)).astype(np.float32)
    return FaceSet("synthetic5", "5pt", pts, np.ones((n, 5), bool), images=images)


def _first(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    x, y = next(iter(ds))
    return x["image"].numpy(), y["landmarks"].numpy()


@pytest.fixture(scope="module")
def mtfl64(shared_data: Path) -> FaceSet:
    return _mtfl(shared_data, 64)


@pytest.mark.data
def test_mtfl_training_batches(mtfl64: FaceSet) -> None:
    cfg = data_config(crop="none", seed=1)
    ds = make_dataset(mtfl64, cfg, training=True, batch_size=16)
    spec_x, spec_y = ds.element_spec
    assert spec_x["image"].shape.as_list() == [16, 80, 80, 1]
    assert spec_y["landmarks"].shape.as_list() == [16, 5, 3]
    batches = list(ds)
    assert len(batches) == 4
    for x, y in batches:
        img, lm = x["image"].numpy(), y["landmarks"].numpy()
        assert img.dtype == np.float32 and lm.dtype == np.float32
        assert np.isfinite(img).all() and np.isfinite(lm).all()
        assert set(np.unique(lm[..., 2])) <= {-1.0, 0.0, 1.0}
        assert (lm[..., 2] > 0.5).mean() > 0.8  # +-10% jitter keeps nearly every point inside
        inside = lm[..., 2] > 0
        assert (lm[..., :2][inside] >= 0).all() and (lm[..., :2][inside] <= 79).all()
        assert abs(img.mean() - 0.5) < 0.1  # LCN centres at 0.5 after (x + 2.5) / 5


@pytest.mark.data
def test_mtfl_rgb_landmark_crop_and_names(mtfl64: FaceSet) -> None:
    cfg = data_config(crop="landmarks", crop_ratio=4.4, channels=3, size=64,
                      normalize="per_image")
    ds = make_dataset(mtfl64, cfg, training=False, batch_size=10, input_name="face")
    sizes = [int(x["face"].shape[0]) for x, _ in ds]
    assert sizes == [10] * 6 + [4]  # validation keeps every row
    x, y = _first(ds.map(lambda a, b: ({"image": a["face"]}, b)))
    assert x.shape == (10, 64, 64, 3)
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    # eyes stay left/right and above the mouth in the centred square crop
    assert (y[:, 0, 0] < y[:, 1, 0]).all() and (y[:, 0, 1] < y[:, 3, 1]).all()
    assert abs(y[:, :, :2].mean() - 31.5) < 6


@pytest.mark.data
def test_same_seed_same_batches_new_epoch_new_jitter(mtfl64: FaceSet) -> None:
    cfg = data_config(crop="none", seed=7)
    a = make_dataset(mtfl64, cfg, training=True, batch_size=32, passes=2)
    b = make_dataset(mtfl64, cfg, training=True, batch_size=32, passes=2)
    batches_a, batches_b = list(a), list(b)
    assert len(batches_a) == 4  # 64 rows, 2 per pass
    for (xa, ya), (xb, yb) in zip(batches_a, batches_b, strict=True):
        np.testing.assert_array_equal(xa["image"], xb["image"])
        np.testing.assert_array_equal(ya["landmarks"], yb["landmarks"])
    xa = batches_a[0][0]["image"].numpy()
    assert not np.array_equal(xa, batches_a[2][0]["image"])  # pass 2: reshuffled, re-jittered
    xc, _ = _first(make_dataset(mtfl64, data_config(crop="none", seed=8), training=True,
                                batch_size=32))
    assert not np.array_equal(xa, xc)


@pytest.mark.data
def test_a_stream_started_mid_way_continues_the_unbroken_one(mtfl64: FaceSet) -> None:
    """What --resume relies on: starting at batch 3 gives batches 3.. of the full stream."""
    cfg = data_config(crop="none", seed=3, size=32)
    full = [y["landmarks"].numpy() for _, y in
            make_dataset(mtfl64, cfg, training=True, batch_size=16, passes=3)]
    late = [y["landmarks"].numpy() for _, y in
            make_dataset(mtfl64, cfg, training=True, batch_size=16, passes=3, start_batch=5)]
    assert len(full) == 12 and len(late) == 7
    for got, want in zip(late, full[5:], strict=True):
        np.testing.assert_array_equal(got, want)


def test_validation_without_jitter_is_exact_and_ordered() -> None:
    """crop: none at the source size is the identity: pixels and points pass unchanged."""
    faces = _random_faces()
    cfg = data_config(crop="none", size=64, channels=3, normalize="scale")
    x, y = _first(make_dataset(faces, cfg, training=False, batch_size=12))
    np.testing.assert_allclose(x * 255.0, faces.images.astype(np.float32), atol=1e-3)
    np.testing.assert_allclose(y[..., :2], faces.landmarks, atol=1e-4)
    assert (y[..., 2] == 1).all()


def test_gray_conversion_and_nonsquare_whole_image() -> None:
    faces = _random_faces(4, h=40, w=80, c=3)
    cfg = data_config(crop="none", size=80, channels=1, normalize="scale")
    x, y = _first(make_dataset(faces, cfg, training=False, batch_size=4))
    gray = faces.images.astype(np.float32) @ np.array([0.2989, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(x[:, 20:60, :, 0] * 255, gray, atol=1.5)  # letterboxed
    assert (x[:, :19] == 0).all() and (x[:, 61:] == 0).all()
    np.testing.assert_allclose(y[..., 1], faces.landmarks[..., 1] + 20, atol=1e-4)


def test_val_jitter_is_fixed_per_row() -> None:
    faces = _random_faces()
    cfg = data_config(crop="none", size=64, channels=3, normalize="scale", val_jitter=True)
    ds = make_dataset(faces, cfg, training=False, batch_size=12)
    (x1, y1), (x2, y2) = _first(ds), _first(ds)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert np.abs(y1[..., :2] - faces.landmarks).max() > 1.0  # it did move
    assert (x1 > 0).mean() > 0.8  # geometric only: no occluder


def test_box_crop_masks_points_outside_the_box() -> None:
    faces = _random_faces(2)
    boxes = np.array([[10, 10, 40, 40], [0, 0, 64, 64]], np.float32)
    pts = faces.landmarks.copy()
    pts[0, 0] = (55.0, 55.0)  # outside the first box: lands past the output edge
    faces = FaceSet(faces.name, faces.scheme, pts, faces.visible, images=faces.images,
                    boxes=boxes)
    cfg = data_config(crop="box", crop_ratio=1.0, size=30, normalize="scale", channels=3)
    _, y = _first(make_dataset(faces, cfg, training=False, batch_size=2))
    assert y[0, 0, 2] == ABSENT and y[0, 0, 0] > 29  # labelled, but not in the crop
    assert (y[1, :, 2] == 1).all()


def test_split_faceset() -> None:
    faces = _random_faces(20)
    train, val = split_faceset(faces, data_config(val_split=5))
    assert (len(train), len(val)) == (15, 5)
    np.testing.assert_array_equal(val.landmarks, faces.landmarks[15:])
    train, val = split_faceset(faces, data_config(val_split=0.25, limit=4))
    assert (len(train), len(val)) == (4, 4)
    np.testing.assert_array_equal(val.landmarks, faces.landmarks[15:19])
    with pytest.raises(ValueError, match="leaves no training rows"):
        split_faceset(faces, data_config())  # default 1000 > 20 rows


def test_error_policy_for_rows_and_files(tmp_path: Path) -> None:
    faces = _random_faces(4)
    vis = faces.visible.copy()
    vis[2] = False
    hidden = FaceSet(faces.name, faces.scheme, faces.landmarks, vis, images=faces.images)
    with pytest.raises(ValueError, match="no usable crop"):
        make_dataset(hidden, data_config(channels=3), training=False, batch_size=4)
    _, y = _first(make_dataset(hidden, data_config(channels=3, on_error="skip"),
                               training=False, batch_size=4))
    assert y.shape[0] == 3

    good = tmp_path / "a.png"
    good.write_bytes(tf.io.encode_png(faces.images[0]).numpy())
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    files = FaceSet("files", "5pt", faces.landmarks[:3], faces.visible[:3],
                    paths=(str(good), str(tmp_path / "bad.jpg"), str(tmp_path / "gone.jpg")))
    with pytest.raises(tf.errors.OpError):
        list(make_dataset(files, data_config(), training=False, batch_size=3))
    x, _ = _first(make_dataset(files, data_config(on_error="skip"), training=False,
                               batch_size=3))
    assert x.shape[0] == 1


def test_mirror_needs_a_known_scheme() -> None:
    faces = _random_faces(4)
    odd = FaceSet("odd", "7pt", faces.landmarks, faces.visible, images=faces.images)
    with pytest.raises(ValueError, match="no mirror permutation"):
        make_dataset(odd, data_config(channels=3), training=True, batch_size=2)
    x, _ = _first(make_dataset(odd, data_config(channels=3, augment={"mirror": False}),
                               training=True, batch_size=2))
    assert x.shape == (2, 80, 80, 3)


def test_too_few_rows_for_a_training_batch() -> None:
    faces = _random_faces(4)
    with pytest.raises(ValueError, match="fewer than one batch of 8"):
        make_dataset(faces, data_config(channels=3), training=True, batch_size=8)
    _, y = _first(make_dataset(faces, data_config(channels=3), training=True, batch_size=8,
                               drop_remainder=False))
    assert y.shape == (4, 5, 3)
