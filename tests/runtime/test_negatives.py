"""Background crops (runtime/data/negatives.py) and their place in training batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.diagnostics import SpecError
from runtime.data import geometry
from runtime.data.config import NegativesConfig, data_config, negatives_config
from runtime.data.errors import DataError
from runtime.data.negatives import background_faceset, face_part_squares, sample_squares
from runtime.data.records import ABSENT, FaceSet

SIZE = 24


def bright_faces(n: int = 12, side: int = 120) -> FaceSet:
    """Black images with a white 5-point landmark box [50, 70]^2 (nothing else is bright)."""
    rng = np.random.default_rng(0)
    pts = 50 + 20 * rng.random((n, 5, 2))
    pts[:, 0] = 50
    pts[:, 1] = 70
    images = np.zeros((n, side, side, 1), np.uint8)
    images[:, 50:71, 50:71] = 255
    return FaceSet("bright", "5pt", pts.astype(np.float32), np.ones((n, 5), bool),
                   images=images)


def test_squares_fit_the_image_have_their_sizes_and_avoid_the_faces() -> None:
    neg = NegativesConfig(min_scale=1.0, max_scale=2.0, per_image=6, margin=0.25)
    sizes = np.array([[120, 160], [120, 120], [30, 30]])
    boxes = np.array([[50, 50, 70, 70], [np.nan] * 4, [0, 0, 29, 29]], float)
    rows, sq = sample_squares(sizes, boxes, neg, SIZE, np.random.default_rng(1))
    assert set(rows.tolist()) == {0, 1}  # the third image has no face-free room
    assert np.bincount(rows).max() <= 6
    h, w = sizes[rows, 0], sizes[rows, 1]
    half = sq[:, 2] / 2
    assert (sq[:, 0] - half >= -0.5 - 1e-9).all() and (sq[:, 0] + half <= w - 0.5 + 1e-9).all()
    assert (sq[:, 1] - half >= -0.5 - 1e-9).all() and (sq[:, 1] + half <= h - 0.5 + 1e-9).all()
    assert (sq[:, 2] >= SIZE - 1e-6).all() and (sq[:, 2] <= 2 * SIZE + 1e-6).all()
    on0 = sq[rows == 0]  # 5 px (margin 0.25 x side 20) around the face box stay clear
    apart = ((on0[:, 0] + on0[:, 2] / 2 < 45) | (on0[:, 0] - on0[:, 2] / 2 > 75)
             | (on0[:, 1] + on0[:, 2] / 2 < 45) | (on0[:, 1] - on0[:, 2] / 2 > 75))
    assert apart.all()


def test_face_parts_are_zoomed_views_inside_the_face() -> None:
    boxes = np.array([[50, 50, 70, 70], [np.nan] * 4], float)
    rows, sq = face_part_squares(boxes, np.array([26.0, np.nan]), 50, (2.0, 4.0),
                                 np.random.default_rng(0))
    assert (rows == 0).all() and rows.size == 50
    assert ((sq[:, :2] >= 50) & (sq[:, :2] <= 70)).all()
    assert (sq[:, 2] >= 26 / 4 - 1e-9).all() and (sq[:, 2] <= 26 / 2 + 1e-9).all()


def test_background_rows_are_labelled_absent_and_their_boxes_crop_the_squares() -> None:
    faces = bright_faces()
    neg = NegativesConfig(min_scale=1.0, max_scale=1.5, per_image=3, face_parts=1.0)
    bg = background_faceset(faces, neg, size=SIZE, crop_ratio=1.3, seed=0)
    assert len(bg) > len(faces)  # some background squares plus 3 face parts per face
    assert np.isnan(bg.landmarks).all() and bg.visible.all()
    assert bg.images is not None and bg.images.shape[1:] == (120, 120, 1)
    crops = geometry.square_crops(bg.boxes, 1.3)
    assert np.isfinite(crops).all()
    assert (crops[:, 2] > 0).all()


def test_batches_end_with_background_crops_that_never_show_the_face() -> None:
    pytest.importorskip("tensorflow")
    from runtime.data.pipeline import make_training_dataset

    faces = bright_faces(18)  # 6 faces + 2 background crops per batch: 3 batches
    cfg = data_config(size=SIZE, crop_ratio=1.3, normalize="scale", val_split=0,
                      augment={"enabled": False},
                      negatives={"fraction": 0.25, "min_scale": 1.0, "max_scale": 1.5})
    bg = background_faceset(faces, negatives_config(cfg), size=SIZE, crop_ratio=1.3, seed=0)
    ds, steps = make_training_dataset(faces, cfg, batch_size=8, backgrounds=bg,
                                      background_fraction=0.25)
    assert steps == 3
    batches = list(ds)
    assert len(batches) == 3  # the faces' length: the background stream repeats
    for x, y in batches:
        img, lm = x["image"].numpy(), y["landmarks"].numpy()
        assert img.shape == (8, SIZE, SIZE, 1) and lm.shape == (8, 5, 3)
        assert (lm[:6, :, 2] == 1).all()  # 6 faces: every point inside its crop
        assert (lm[6:, :, 2] == ABSENT).all() and np.isfinite(lm).all()
        assert img[:6].max() == pytest.approx(1.0)  # the white face box
        assert img[6:].max() == 0.0  # background squares keep clear of it


def test_background_folder_source(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "nonfaces"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(np.full((60, 90, 3), 7, np.uint8)).save(folder / "a.png")
    Image.fromarray(np.full((50, 50), 9, np.uint8)).save(folder / "sub" / "b.jpg")
    (folder / "notes.txt").write_text("not an image")
    neg = NegativesConfig(source=str(folder), min_scale=1.0, max_scale=2.0, per_image=4)
    bg = background_faceset(bright_faces(), neg, size=SIZE, crop_ratio=1.3, seed=0)
    assert len(bg) == 8 and set(bg.paths) == {str(folder / "a.png"), str(folder / "sub/b.jpg")}
    assert bg.n_landmarks == 5 and bg.scheme == "5pt"


def test_background_errors_name_the_source(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="neither 'train' nor a folder"):
        background_faceset(bright_faces(), NegativesConfig(source=str(tmp_path / "nope")),
                           size=SIZE, crop_ratio=1.3, seed=0)
    with pytest.raises(DataError, match="no images"):
        background_faceset(bright_faces(), NegativesConfig(source=str(tmp_path)),
                           size=SIZE, crop_ratio=1.3, seed=0)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="bad.jpg.*cannot read the image header"):
        background_faceset(bright_faces(), NegativesConfig(source=str(tmp_path)),
                           size=SIZE, crop_ratio=1.3, seed=0)
    tight = NegativesConfig(min_scale=4.0, max_scale=5.0)  # 96 px squares: no room
    with pytest.raises(DataError, match="data.negatives: no background square of 96 px or "
                                        "more fits in the training images clear of the faces"):
        background_faceset(bright_faces(), tight, size=SIZE, crop_ratio=1.3, seed=0)


@pytest.mark.parametrize(("raw", "message"), [
    ({"fractin": 0.2}, "unknown key 'fractin' (did you mean 'fraction'?)"),
    ({"fraction": 0.95}, "fraction"),
    ({"min_scale": 3.0, "max_scale": 2.0}, "min_scale': is 3.0, larger than max_scale 2.0"),
    ({"part_zoom": [0.5, 2.0]}, "needs 1 < low <= high"),
])
def test_negatives_config_errors(raw: dict, message: str) -> None:
    with pytest.raises(SpecError) as err:
        data_config(negatives=raw)
    assert message in str(err.value)
    assert "negatives" in str(err.value)


def test_negatives_off_by_default() -> None:
    assert negatives_config(data_config()) is None
    assert negatives_config(data_config(negatives={})) == NegativesConfig()
