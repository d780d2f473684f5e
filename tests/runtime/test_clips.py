"""Clip data for specs with a time axis: windows never mix clips and keep frame order,
one geometric transform per clip, validation held out by person, smooth synthetic clips,
and losses on [B, T, ...] outputs as the mean of the per-frame losses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from compiler.losses import check_loss
from runtime.data.clips import ClipSource, split_clips, windows_of
from runtime.data.config import data_config
from runtime.data.formats import video
from runtime.data.records import FaceSet
from runtime.data.synthetic import synthetic_clips


def _video_faces(names: list[str], k: int = 5) -> FaceSet:
    """A path-only FaceSet named like YouTube-Faces frames (no images are read)."""
    n = len(names)
    return FaceSet("video", "5pt", np.zeros((n, k, 2), np.float32), np.ones((n, k), bool),
                   paths=tuple(f"/frames/{p}" for p in names))


def _source(faces: FaceSet) -> ClipSource:
    clips, frames = video.clip_ids(faces)
    return ClipSource(faces, clips, frames, video.person_ids(faces))


# 4 people, 2 clips each of 2-5 frames, rows shuffled (readers need not give clip order)
_NAMES = [f"{p}_{c}{f}.jpg" for p, clips in (("Ann_Lee", (4, 3)), ("Bo", (5, 2)),
                                             ("Cy_Di", (3, 3)), ("Ed", (4, 4)))
          for c, n in enumerate(clips) for f in range(n)]
_ORDER = np.random.default_rng(0).permutation(len(_NAMES))
FACES = _video_faces([_NAMES[i] for i in _ORDER])


@pytest.mark.parametrize("tile", [False, True])
def test_windows_stay_in_one_clip_in_frame_order(tile: bool) -> None:
    clips, frames = video.clip_ids(FACES)
    win, score = windows_of(clips, frames, 3, tile=tile)
    assert len(win)
    for w in win:
        assert len(set(clips[w])) == 1  # one clip
        assert np.array_equal(np.diff(frames[w]), [1, 1])  # successive frames, in order
    if tile:  # scoring: every frame of every clip of >= 3 frames counted exactly once
        counted = np.bincount(win[score], minlength=len(FACES))
        long_clip = np.array([(clips == c).sum() >= 3 for c in clips])
        assert np.array_equal(counted, long_clip.astype(int))
    else:  # training: every run of 3 (a 4-frame clip gives 2, a 2-frame clip none)
        assert len(win) == sum(max(0, n - 2) for n in (4, 3, 5, 2, 3, 3, 4, 4))


def test_validation_holds_out_whole_people() -> None:
    source = _source(FACES)
    cfg = data_config({"val_split": 5})  # 5 frames: rounds up to the last whole person
    train, val = split_clips(source, cfg, 3)
    assert set(val.groups) == {"Ed"} and "Ed" not in set(train.groups)
    assert not set(train.windows.ravel()) & set(val.windows.ravel())
    people = video.person_ids(FACES)
    assert set(people[val.windows.ravel()]) == {"Ed"}
    train, val = split_clips(source, data_config({"val_split": 0.5}), 3)
    assert set(train.groups) == {"Ann_Lee", "Bo"} and set(val.groups) == {"Cy_Di", "Ed"}


def test_video_clip_and_person_ids() -> None:
    faces = _video_faces(["Al_Gore_3_00012_7.jpg", "Valerie_Harper_31.jpg", "001/annot/17.jpg"])
    clips, frames = video.clip_ids(faces)
    assert list(clips) == ["Al_Gore_3_00012", "Valerie_Harper_3", "001"]
    assert list(frames) == [7, 1, 17]
    assert list(video.person_ids(faces)) == ["Al_Gore", "Valerie_Harper", "001"]


def test_synthetic_clips_move_smoothly() -> None:
    n, t, size = 12, 5, 48
    clips = synthetic_clips(n, t, scheme="68pt", size=size, seed=3)
    pts = clips.landmarks.reshape(n, t, 68, 2)
    step = np.linalg.norm(np.diff(pts, axis=1), axis=-1)  # per point, frame to frame
    assert step.mean() > 0.05 and step.max() < 0.06 * size  # moves, a little
    accel = np.linalg.norm(np.diff(pts, 2, axis=1), axis=-1)
    assert accel.mean() < 0.5 * step.mean()  # smooth drift, not a jump every frame
    assert ((pts >= 0) & (pts <= size - 1)).all()
    img = clips.images.reshape(n, t, -1).astype(np.float32)
    within = np.abs(img[:, 1:] - img[:, :-1]).mean()
    across = np.abs(img[1:, 0] - img[:-1, 0]).mean()
    assert 0 < within < 0.5 * across  # one face per clip, other clips are other faces
    again = synthetic_clips(4, t, scheme="68pt", size=size, seed=3)  # prefix-stable
    np.testing.assert_array_equal(again.images, clips.images[:4 * t])


def _static_clips(n: int, t: int, size: int) -> tuple[FaceSet, np.ndarray]:
    """n clips of t identical frames (a still face repeated) and their windows."""
    from runtime.data.synthetic import synthetic_faceset

    still = synthetic_faceset(n, size=size, seed=1)
    rows = np.repeat(np.arange(n), t)
    return still.subset(rows), np.arange(n * t).reshape(n, t)


@pytest.mark.keras
def test_one_transform_per_clip() -> None:
    from runtime.data.pipeline import make_dataset, make_window_dataset

    n, t, size = 8, 3, 32
    faces, windows = _static_clips(n, t, size)
    cfg = replace(data_config({"size": size, "normalize": "scale", "seed": 5}),
                  augment={"rotation": 40.0, "mirror": True, "occlusion": True})
    ds, usable = make_window_dataset(faces, windows, cfg, training=True, batch_size=4,
                                     input_name="clip", passes=1)
    assert list(usable) == list(range(n))
    plain = replace(cfg, augment={"enabled": False})
    ref, _ = make_window_dataset(faces, windows, plain, training=False, batch_size=n)
    x0 = next(iter(ref))[0]["clip"].numpy()
    seen = 0
    for x, y in ds:
        x, y = x["clip"].numpy(), y["landmarks"].numpy()
        assert x.shape == (4, t, size, size, 1) and y.shape == (4, t, 5, 3)
        for clip_x, clip_y in zip(x, y, strict=True):  # still frames, one matrix: equal
            for k in range(1, t):
                np.testing.assert_array_equal(clip_x[k], clip_x[0])
                np.testing.assert_array_equal(clip_y[k], clip_y[0])
        seen += len(x)
    assert seen == n
    # the same rows as images are jittered one by one: frames of a "clip" then differ
    images = make_dataset(faces, cfg, training=True, batch_size=n * t)
    xi = next(iter(images))[0]["image"].numpy().reshape(n, t, size, size, 1)
    assert np.abs(xi[:, 1] - xi[:, 0]).max() > 0.1
    assert not np.allclose(x0[:, 0], xi[:, 0])  # and augmentation did change the frames


@pytest.mark.keras
def test_window_labels_move_with_the_frames() -> None:
    """A moving synthetic clip: without jitter, labels in the clip's one crop frame keep
    the source motion (a per-frame crop around each face would cancel it)."""
    from runtime.data.pipeline import make_window_dataset, window_crops

    n, t, size = 4, 3, 48
    clips = synthetic_clips(n, t, size=size, seed=2)
    windows = np.arange(n * t).reshape(n, t)
    cfg = replace(data_config({"size": size, "normalize": "scale"}), augment={"enabled": False})
    ds, _ = make_window_dataset(clips, windows, cfg, training=False, batch_size=n)
    y = next(iter(ds))[1]["landmarks"].numpy()[..., :2]
    crops = window_crops(clips, windows, cfg)
    scale = size / crops[:, 2]  # source px -> network px, one per clip
    src = clips.landmarks.reshape(n, t, 5, 2)
    np.testing.assert_allclose(y[:, 1:] - y[:, :-1],
                               (src[:, 1:] - src[:, :-1]) * scale[:, None, None, None],
                               atol=1e-3)


@pytest.mark.keras
@pytest.mark.parametrize(("name", "frame_shape", "args"), [
    ("sigmoid_xent", (8, 8, 3), {}), ("lgcn_weighted_l2", (8, 8, 3), {"kernel_size": 5}),
    ("heatmap_l2", (8, 8, 1), {}), ("coord_l2", (6,), {"normalize": "visible"})])
def test_time_axis_loss_is_the_mean_of_frame_losses(name: str, frame_shape: tuple,
                                                    args: dict) -> None:
    from runtime.train.landmark_loss import LandmarkLoss
    from runtime.train.losses import make_loss

    rng = np.random.default_rng(1)
    b, t, k = 2, 3, frame_shape[-1] if len(frame_shape) == 3 else 3
    pred = rng.normal(size=(b, t, *frame_shape)).astype("float32")
    y = np.concatenate([rng.uniform(0, 15, (b, t, k, 2)), np.ones((b, t, k, 1))], -1)
    y[0, 1, 0, 2] = 0.0  # a masked point in one frame only
    y = y.astype("float32")
    clip_loss = make_loss(name, input_size=16, out_shape=(None, t, *frame_shape), **args)
    frame_loss = make_loss(name, input_size=16, out_shape=(None, *frame_shape), **args)
    want = np.stack([np.asarray(frame_loss(y[:, i], pred[:, i])) for i in range(t)], 1)
    np.testing.assert_allclose(np.asarray(clip_loss(y, pred)), want.mean(1), rtol=1e-5)
    saved = LandmarkLoss(name, 16, [None, t, *frame_shape], args)  # model.keras round trip
    again = LandmarkLoss.from_config(saved.get_config())
    np.testing.assert_allclose(float(again(y, pred)), want.mean(), rtol=1e-5)


def test_check_accepts_a_time_axis_on_maps_and_coords() -> None:
    assert check_loss("spatial_softmax_nll", {}, (None, 3, 32, 32, 5), 5) == []
    assert check_loss("coord_l2", {}, (None, 3, 10), 5) == []
    (msg,) = check_loss("heatmap_l2", {}, (None, 3, 32, 32, 7), 5)
    assert "has 7 channels, but the data has 5 landmarks" in msg
    (msg,) = check_loss("coord_l2", {}, (None, 2, 3, 10), 5)
    assert "found rank 4" in msg
