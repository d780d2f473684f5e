"""A corpus of hostile data sets: every case is a located exit-1 error through `netspec
fit` (never exit 70, never a silent wrong result), and under `data.on_error: skip` a
counted skip. Files are generated small in tmp_path; nothing is trained (every case fails
while the data is read, before the first step).
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import struct
import zlib

import numpy as np
from PIL import Image
import pytest

from runtime.data.errors import DataError
from runtime.data.readers import load_faceset

SPEC = str(Path(__file__).resolve().parents[2] / "specs" / "rcn_4branch.yaml")
POINTS = "25 55 40 28 52 30 30 45 60 60"  # x1..x5 y1..y5 on an 80x80 image
PTS68 = "\n".join(f"{20 + j * 0.5:.1f} {30 + j * 0.3:.1f}" for j in range(68))
QUICK = ["size=40", "train.epochs=1", "train.steps_per_epoch=1", "train.batch_size=2",
         "data.val_split=1", "train.val_examples=1"]


def jpeg(path: Path, seed: int = 0, size: int = 80) -> Path:
    arr = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=90)
    return path


def huge_png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height pixels, with no pixel data (a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


def mtfl(d: Path, bad_row: str, *, prepare: Callable[[Path], None] | None = None) -> Path:
    """list.txt with two good rows, `bad_row` on line 3, then two more good rows."""
    for i in range(4):
        jpeg(d / f"g{i}.jpg", i)
    if prepare:
        prepare(d)
    rows = [f"g0.jpg {POINTS}", f"g1.jpg {POINTS}", bad_row, f"g2.jpg {POINTS}",
            f"g3.jpg {POINTS}"]
    (d / "list.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return d / "list.txt"


def _truncated(d: Path) -> None:
    data = jpeg(d / "full.jpg", 9).read_bytes()
    (d / "cut.jpg").write_bytes(data[: len(data) // 2])


def _symlink_loop(d: Path) -> None:
    os.symlink(d / "loop_b.jpg", d / "loop_a.jpg")
    os.symlink(d / "loop_a.jpg", d / "loop_b.jpg")


def _csv(d: Path, header: str, row: str) -> Path:
    jpeg(d / "a.jpg")
    good = "a.jpg," + ",".join(f"{x},{y}" for x, y in zip(POINTS.split()[:5],
                                                           POINTS.split()[5:], strict=True))
    (d / "t.csv").write_text(f"{header}\n{good}\n{row}\n{good}\n")
    return d / "t.csv"


HEAD = "image," + ",".join(f"x{i},y{i}" for i in range(5))


def _pts_folder(d: Path, counts: list[int]) -> Path:
    for i, n in enumerate(counts):
        jpeg(d / f"f{i}.jpg", i)
        body = "\n".join(PTS68.splitlines()[:n]) if n <= 68 else PTS68
        (d / f"f{i}.pts").write_text(f"version: 1\nn_points: {n}\n{{\n{body}\n}}\n")
    return d


def _coco(d: Path, kps: int) -> Path:
    jpeg(d / "a.jpg")
    pts = ", ".join("10, 20, 2" for _ in range(kps))
    (d / "k.json").write_text(
        '{"images": [{"id": 1, "file_name": "a.jpg"}],\n "categories": [{"keypoints": '
        f'{list(map(str, range(5)))!r}'.replace("'", '"') + '}],\n "annotations": [\n'
        f'  {{"image_id": 1, "keypoints": [{", ".join("10, 20, 2" for _ in range(5))}]}},\n'
        f'  {{"image_id": 1, "keypoints": [{pts}]}}\n]}}\n')
    return d / "k.json"


def _far(v: str) -> str:
    return " ".join(str(float(t) * 1e6) for t in v.split())


# name -> (build(dir) -> data path, located prefix (relative to dir), fragments, skipped kind)
CASES: dict[str, tuple[Callable[[Path], Path], str, tuple[str, ...], str | None]] = {
    "truncated_jpeg": (lambda d: mtfl(d, f"cut.jpg {POINTS}", prepare=_truncated),
                       "list.txt:3", ("cut.jpg cannot be decoded", "truncated"),
                       "unreadable image"),
    "zero_byte_jpeg": (lambda d: mtfl(d, f"zero.jpg {POINTS}",
                                      prepare=lambda d: (d / "zero.jpg").write_bytes(b"")),
                       "list.txt:3", ("zero.jpg is empty (0 bytes)",), "unreadable image"),
    "text_named_jpg": (lambda d: mtfl(d, f"note.jpg {POINTS}",
                                      prepare=lambda d: (d / "note.jpg").write_text("hi")),
                       "list.txt:3", ("note.jpg is not an image file",), "unreadable image"),
    "folder_named_jpg": (lambda d: mtfl(d, f"dir.jpg {POINTS}",
                                        prepare=lambda d: (d / "dir.jpg").mkdir()),
                         "list.txt:3", ("dir.jpg is a folder",), "missing image"),
    "symlink_loop": (lambda d: mtfl(d, f"loop_a.jpg {POINTS}", prepare=_symlink_loop),
                     "list.txt:3", ("broken or looping symbolic link",), "missing image"),
    "unicode_missing": (lambda d: mtfl(d, f"visage_顔_é.jpg {POINTS}"), "list.txt:3",
                        ("image file not found", "visage_顔_é.jpg"), "missing image"),
    "inf": (lambda d: mtfl(d, "g0.jpg 1 inf 3 4 5 6 7 8 9 10"), "list.txt:3",
            ("column 3 is 'inf'",), "non-numeric coordinate"),
    "huge_coordinates": (lambda d: mtfl(d, f"g0.jpg {_far(POINTS)}"), "list.txt:3",
                         ("landmark 1 at (2.5e+07, 3e+07) lies far outside its 80x80 image",),
                         "landmark far outside its image"),
    "negative_far": (lambda d: mtfl(d, "g0.jpg -200 55 40 28 52 30 30 45 60 60"),
                     "list.txt:3", ("landmark 1 at (-200, 30) lies far outside",),
                     "landmark far outside its image"),
    "bomb_png": (lambda d: mtfl(d, f"bomb.png {POINTS}", prepare=lambda d: huge_png_header(
        d / "bomb.png", 40000, 30000)), "list.txt:3",
        ("40000x30000 = 1,200,000,000 pixels", "decompression-bomb limit",
         "NETSPEC_MAX_IMAGE_PIXELS"), "oversized image"),
    "csv_wrong_columns": (lambda d: _csv(d, "image,a,b,c", ""), "t.csv:1",
                          ("expected a header `image,x0,y0,x1,y1,...`",), None),
    "csv_short_row": (lambda d: _csv(d, HEAD, "a.jpg,1,2,3"), "t.csv:3",
                      ("expected 10 coordinate columns (5 points), found 3",),
                      "wrong point count"),
    "csv_nan": (lambda d: _csv(d, HEAD, "a.jpg,1,2,nan,4,5,6,7,8,9,10"), "t.csv:3",
                ("column 4 is 'nan'",), "non-numeric coordinate"),
    "pts_wrong_count": (lambda d: _pts_folder(d, [68, 67, 68]), "f1.pts:",
                        ("expected 68 points, found 67",), "wrong point count"),
    "mixed_schemes": (lambda d: _pts_folder(d, [68, 5, 68]), "f1.pts:",
                      ("expected 68 points, found 5",), "wrong point count"),
    "coco_wrong_count": (lambda d: _coco(d, 4), "k.json:5",
                         ("expected 15 keypoint values", "found 12"), "wrong point count"),
    "binary_list": (lambda d: (d / "list.txt").write_bytes(os.urandom(512)) and d / "list.txt",
                    "list.txt", ("cannot tell the landmark format",), None),
}


@pytest.fixture(scope="module")
def fit_main() -> Callable[..., int]:
    from netspec.cli import main

    return main


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_data_is_a_located_error(name: str, tmp_path: Path, fit_main: Callable[..., int],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    build, where, fragments, _ = CASES[name]
    data = build(tmp_path)
    sets = [a for s in QUICK for a in ("--set", s)]
    rc = fit_main(["fit", SPEC, "--data", str(data), "-o", str(tmp_path / "run"), *sets])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert f"{tmp_path / where}" in err and "error: " in err, err
    assert "internal error" not in err and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c[3]))
def test_hostile_rows_are_skipped_and_counted(name: str, tmp_path: Path) -> None:
    build, where, _, kind = CASES[name]
    faces = load_faceset(build(tmp_path), on_error="skip")
    assert len(faces.skipped) == 1
    loc, reason = faces.skipped[0]
    assert loc.startswith(str(tmp_path / where))
    from runtime.data.errors import skip_kind

    assert skip_kind(reason) == kind
    assert len(faces) >= 1 and np.isfinite(faces.landmarks).all()


def test_points_near_the_border_stay_accepted(tmp_path: Path) -> None:
    # an occluded chin below the frame, an ear left of it: up to one image size outside
    lst = mtfl(tmp_path, "g0.jpg -79 55 40 28 52 30 30 45 60 158")
    faces = load_faceset(lst)
    assert len(faces) == 5 and faces.landmarks[2, 0, 0] == -79
    assert faces.landmarks[2, 4, 1] == 158


def test_unicode_paths_are_read(tmp_path: Path) -> None:
    jpeg(tmp_path / "ça_顔" / "visage.jpg")
    lst = tmp_path / "ça_顔" / "liste.txt"
    lst.write_text(f"visage.jpg {POINTS}\n", encoding="utf-8")
    assert load_faceset(lst).paths[0].endswith("ça_顔/visage.jpg")


def test_scheme_that_does_not_match_the_data(tmp_path: Path, fit_main: Callable[..., int],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    lst = mtfl(tmp_path, f"g0.jpg {POINTS}")
    sets = [a for s in QUICK for a in ("--set", s)]
    for scheme, fragments in (("68pt", ("data.scheme=68pt: error: scheme '68pt' expects 68 "
                                        "landmarks per face, but the data (mtfl) has 5",
                                        "set data.scheme: 5pt or null")),
                              ("7pt", ("unknown landmark scheme '7pt'", "'5pt' (5 points)"))):
        rc = fit_main(["fit", SPEC, "--data", str(lst), "-o", str(tmp_path / "run"), *sets,
                       "--set", f"data.scheme={scheme}"])
        err = capsys.readouterr().err
        assert rc == 1, err
        assert all(f in err for f in fragments), err
    rc = fit_main(["fit", SPEC, "-o", str(tmp_path / "run"), *sets, "--set",
                   "data.scheme=68pt"])  # the synthetic faces of a 5-point spec
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "scheme '68pt' expects 68 landmarks per face, but the spec predicts n_landmarks = 5" \
        in err, err


def test_skip_summary_names_counts_kinds_and_rows(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from compiler.api import load_spec
    from runtime.datasets import load_faces, spec_data_config

    _truncated(tmp_path)
    (tmp_path / "zero.jpg").write_bytes(b"")
    lst = mtfl(tmp_path, "\n".join([f"cut.jpg {POINTS}", f"zero.jpg {POINTS}",
                                    "g0.jpg 1 2 3", f"g1.jpg {_far(POINTS)}"]))
    spec = load_spec(SPEC, ["data.on_error=skip", "size=40"])
    faces = load_faces(spec, spec_data_config(spec, str(lst)))
    assert len(faces) == 4
    err = capsys.readouterr().err
    assert (f"skipped 4 of 8 rows of {lst} (2 unreadable images, 1 landmark far outside its "
            "image, 1 wrong point count), e.g.") in err, err
    assert f"  {lst}:3: image {tmp_path / 'cut.jpg'} cannot be decoded" in err
    assert "... and 1 more" in err


def test_pipeline_counts_images_that_fail_only_in_tensorflow(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A JPEG corrupt inside passes the cheap checks; tf.data drops it under skip and names
    it (ignore_errors alone dropped it without a word); other formats decode."""
    pytest.importorskip("tensorflow")
    from runtime.data.config import data_config
    from runtime.data.pipeline import make_dataset

    data = bytearray(jpeg(tmp_path / "src.jpg", 3).read_bytes())
    for j in range(int(len(data) * 0.6), len(data) - 10):
        data[j] = 0xFF if j % 2 else 0x12
    (tmp_path / "inside.jpg").write_bytes(bytes(data))
    arr = np.random.default_rng(1).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    for ext in ("ppm", "tif", "bmp", "gif", "webp"):  # gray from formats tf.io reads as RGB
        Image.fromarray(arr).save(tmp_path / f"c.{ext}")  # only, or not at all
    names = ["g0.jpg", "inside.jpg", "c.ppm", "c.tif", "c.bmp", "c.gif", "c.webp"]
    jpeg(tmp_path / "g0.jpg")
    (tmp_path / "l.txt").write_text("".join(f"{n} {POINTS}\n" for n in names))
    faces = load_faceset(tmp_path / "l.txt")
    assert len(faces) == 7
    cfg = data_config({"on_error": "skip", "size": 16, "normalize": "scale", "crop": "none"})
    n = sum(len(y["landmarks"]) for _, y in make_dataset(faces, cfg, training=False,
                                                          batch_size=4))
    assert n == 6
    err = capsys.readouterr().err
    assert f"skipped {tmp_path / 'inside.jpg'}: TensorFlow cannot decode it" in err
    with pytest.raises(DataError, match="empty"):  # and on_error: raise still names rows
        load_faceset(mtfl(tmp_path / "z", f"e.jpg {POINTS}",
                          prepare=lambda d: (d / "e.jpg").write_bytes(b"")))
