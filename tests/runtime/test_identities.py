"""RED-Net's identity labels: class ids are the sorted training people (stable across
runs), held-out people are masked (-1), every frame of a window carries its person's
id through the training stream's shuffling, and the loss matches a numpy reference."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from runtime.data.clips import ClipSet
from runtime.data.identities import UNKNOWN, identity_table, row_identities
from runtime.data.records import FaceSet


def _clipset(people: list[str], t: int = 3) -> ClipSet:
    n = len(people) * t
    faces = FaceSet("video", "5pt", np.zeros((n, 5, 2), np.float32), np.ones((n, 5), bool))
    windows = np.arange(n).reshape(len(people), t)
    return ClipSet(faces, windows, np.ones_like(windows, bool), np.array(people))


def test_class_ids_are_the_sorted_training_people() -> None:
    train = _clipset(["Cy", "Ann", "Bo", "Ann"])
    assert identity_table(train) == ["Ann", "Bo", "Cy"]
    assert identity_table(_clipset(["Ann", "Bo", "Ann", "Cy"])) == ["Ann", "Bo", "Cy"]
    ids = row_identities(train, identity_table(train))
    np.testing.assert_array_equal(ids, np.repeat([2, 0, 1, 0], 3))
    held_out = row_identities(_clipset(["Dee", "Bo"]), identity_table(train))
    np.testing.assert_array_equal(held_out, [UNKNOWN] * 3 + [1] * 3)


@pytest.mark.keras
def test_every_frame_of_a_shuffled_window_carries_its_persons_id() -> None:
    from runtime.data.config import data_config
    from runtime.data.pipeline import IDENTITY_KEY, make_window_dataset
    from runtime.data.synthetic import synthetic_clips

    n, t, size = 8, 3, 32
    faces = synthetic_clips(n, t, size=size, seed=2)
    people = np.array([f"p{i % 3}" for i in range(n)])
    clips = ClipSet(faces, np.arange(n * t).reshape(n, t), np.ones((n, t), bool), people)
    ids = row_identities(clips, identity_table(clips))
    cfg = replace(data_config({"size": size}), augment={"rotation": 10.0})
    ds, _ = make_window_dataset(faces, clips.windows, cfg, training=True, batch_size=4,
                                row_labels=ids, passes=1)
    seen = []
    for x, y in ds:
        got = y[IDENTITY_KEY].numpy()
        assert got.shape == (4, t) and (got == got[:, :1]).all()  # one person per window
        seen.extend(int(p) for p in got[:, 0])
        assert x["clip"].shape == (4, t, size, size, 1)
    assert sorted(seen) == sorted(ids[clips.windows[:, 0]].tolist())  # each window once


@pytest.mark.keras
def test_identity_loss_matches_numpy_and_masks_unknown_people() -> None:
    from scipy.special import log_softmax

    from runtime.train.losses import make_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3, 6)).astype(np.float32)
    ids = np.array([[0, 5, 2], [UNKNOWN] * 3, [1, UNKNOWN, 1], [3, 3, 3]])
    got = make_loss("identity_xent", input_size=32, out_shape=(None, 3, 6))(ids, logits)
    nll = -np.take_along_axis(log_softmax(logits, -1), np.maximum(ids, 0)[..., None], -1)[..., 0]
    known = ids >= 0
    want = np.where(known, nll, 0).sum(1) / np.maximum(known.sum(1), 1)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)
    assert got.numpy()[1] == 0.0  # a held-out person's clip adds nothing
    smooth = make_loss("identity_xent", input_size=32, out_shape=(None, 6),
                       label_smoothing=0.1)(ids[:, 0], logits[:, 0]).numpy()
    lp = log_softmax(logits[:, 0], -1)
    target = np.full((4, 6), 0.1 / 6)
    target[np.arange(4), np.maximum(ids[:, 0], 0)] += 0.9
    np.testing.assert_allclose(smooth, np.where(ids[:, 0] >= 0, -(target * lp).sum(1), 0),
                               rtol=1e-5)
