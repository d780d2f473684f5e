"""Corrupt inputs through `python -m netspec fit`: each gives its promised file:line
error and exit 1, never a traceback, an internal error or a NaN loss.

Most cases fail while the data is read, before TensorFlow is imported, so they cost a
second each; the ones that reach the input pipeline (a truncated JPEG, landmarks off the
image) train a 4-filter model for a few steps.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/rcn_4branch.yaml"
TINY = [f"{k}=[4,4,4,4,4,4,4]" for k in ("enc_filters", "conv1_filters", "conv2_filters")]
QUICK = [*TINY, "size=40", "train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8",
         "data.val_split=8", "train.val_examples=8"]
POINTS = "25 55 40 28 52 30 30 45 60 60"  # x1..x5 y1..y5 of a plausible 80x80 face


def netspec(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NETSPEC_DEBUG": ""}
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def fit(run: Path, *args: str, sets: list[str] = QUICK) -> subprocess.CompletedProcess[str]:
    return netspec("fit", SPEC, "-o", str(run), *args,
                   *(a for s in sets for a in ("--set", s)))


def assert_user_error(r: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 1, a diagnostic containing every fragment, no traceback, no internal error."""
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-3000:]
    for fragment in fragments:
        assert fragment in r.stderr, f"{fragment!r} not in:\n{r.stderr[-3000:]}"


def write_images(folder: Path, n: int, *, seed: int = 0) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        name = f"face{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (80, 80), dtype=np.uint8)).save(folder / name)
        names.append(name)
    return names


def mtfl_list(folder: Path, rows: list[str], n_good: int = 40, at: int = 2) -> Path:
    """folder/list.txt: `at` good rows, then `rows` (from line at + 1), then more good rows."""
    good = [f"{name} {POINTS}" for name in write_images(folder, n_good)]
    path = folder / "list.txt"
    path.write_text("\n".join([*good[:at], *rows, *good[at:]]) + "\n")
    return path


def truncated_jpeg(folder: Path) -> str:
    write_images(folder, 1, seed=7)
    data = (folder / "face0.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    return "cut.jpg"


# ---- rows of an MTFL list: reported at list.txt:3 before anything is trained ----

BAD_ROWS = {
    "count": ("face1.jpg 1 2 3 4 5 6 7 8 9", "found 10 fields"),
    "nan": ("face1.jpg 1 2 nan 4 5 6 7 8 9 10", "column 4 is 'nan'"),
    "text": ("face1.jpg 1 2 3 4 5 six 7 8 9 10", "found 'six'"),
    "missing_image": ("gone.jpg " + POINTS, "image file not found"),
}


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_bad_mtfl_row_is_a_file_line_error(tmp_path: Path, kind: str) -> None:
    row, expected = BAD_ROWS[kind]
    lst = mtfl_list(tmp_path, [row], n_good=4)
    run = tmp_path / "run"
    r = fit(run, "--data", str(lst))
    assert_user_error(r, f"{lst}:3: error: ", expected, "on_error: skip")
    assert not run.exists(), "a data error must not leave a half-made run directory"


def test_pts_with_wrong_point_count(tmp_path: Path) -> None:
    from PIL import Image

    for i in range(3):
        Image.new("L", (80, 80)).save(tmp_path / f"f{i}.jpg")
        n = 67 if i == 1 else 68
        body = "\n".join(f"{10 + j * 0.5:.1f} {20 + j * 0.3:.1f}" for j in range(n))
        (tmp_path / f"f{i}.pts").write_text(f"version: 1\nn_points: {n}\n{{\n{body}\n}}\n")
    r = fit(tmp_path / "run", "--data", str(tmp_path))
    assert_user_error(r, f"{tmp_path / 'f1.pts'}:", "expected 68 points, found 67",
                      "on_error: skip")


def test_68_point_data_into_a_5_point_spec(tmp_path: Path) -> None:
    from PIL import Image

    body = "\n".join(f"{10 + j * 0.5:.1f} {20 + j * 0.3:.1f}" for j in range(68))
    for i in range(3):
        Image.new("L", (80, 80)).save(tmp_path / f"f{i}.png")
        (tmp_path / f"f{i}.pts").write_text(body + "\n")
    r = fit(tmp_path / "run", "--data", str(tmp_path))
    assert_user_error(r, f"{tmp_path}: error: ", "68 landmarks per face",
                      "n_landmarks = 5", "rcn_300w")


# ---- --set mistakes: named by the override itself ----

SET_ERRORS = {
    "unknown_param": ("branchs=5", ["--set branchs=5: error: unknown param 'branchs'",
                                    "did you mean 'branches'"]),
    "bad_train_type": ("train.epochs=abc", ["--set train.epochs=abc: error: ",
                                            "expected int", "'abc'"]),
    "unknown_train_key": ("train.epoch=3", ["--set train.epoch=3: error: ",
                                            "unknown key 'epoch'", "did you mean 'epochs'"]),
    "train_out_of_range": ("train.batch_size=0", ["train.batch_size=0", "batch_size"]),
    "data_size_vs_input": ("data.size=64", ["--set data.size=64: error: data.size is 64, but "
                                            "input 'image' is 80x80", "80, 80, 1"]),
    "data_channels_vs_input": ("data.channels=3", ["--set data.channels=3: error: data.channels "
                                                   "is 3, but input 'image' has 1 channel"]),
}


@pytest.mark.parametrize("kind", sorted(SET_ERRORS))
def test_bad_set_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    override, fragments = SET_ERRORS[kind]
    run = tmp_path / "run"
    r = fit(run, "--set", override, sets=[])
    assert_user_error(r, *fragments)
    assert not run.exists()


# ---- faults that only the input pipeline sees (TensorFlow; a few training steps) ----

@pytest.mark.keras
def test_truncated_jpeg_raise_names_the_row(tmp_path: Path) -> None:
    # in the validation rows (the last 8), which are all read before the first step
    lst = mtfl_list(tmp_path, [f"{truncated_jpeg(tmp_path)} {POINTS}"], at=36)
    r = fit(tmp_path / "run", "--data", str(lst))
    assert_user_error(r, f"{lst}:37: error: ", "cut.jpg cannot be decoded", "on_error: skip")


@pytest.mark.keras
def test_skip_drops_bad_rows_and_trains_with_finite_loss(tmp_path: Path) -> None:
    rows = [f"{truncated_jpeg(tmp_path)} {POINTS}", BAD_ROWS["nan"][0],
            BAD_ROWS["missing_image"][0]]
    lst = mtfl_list(tmp_path, rows, at=36)
    run = tmp_path / "run"
    r = fit(run, "--data", str(lst), "--set", "data.on_error=skip",
            sets=[*QUICK, "train.epochs=2"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in records] == [1, 2]
    for m in records:
        for key in ("loss", "val_loss", "val_nme"):
            assert key in m and math.isfinite(m[key]), m
    # all three are dropped by the reader (the truncated JPEG lacks its end marker), and
    # counted once: 40 readable rows, 8 for validation
    assert "32 train / 8 val faces" in r.stderr
    assert (f"data.on_error: skip: skipped 3 of 43 rows of {lst} (1 missing image, "
            "1 non-numeric coordinate, 1 unreadable image), e.g.\n"
            f"  {lst}:37: image {tmp_path / 'cut.jpg'} cannot be decoded") in r.stderr


def test_landmarks_far_off_the_image_are_a_row_error(tmp_path: Path) -> None:
    names = write_images(tmp_path, 24)
    far = " ".join(str(1000 + int(v)) for v in POINTS.split())  # finite, but far off 80x80 images
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{name} {far}\n" for name in names))
    r = fit(tmp_path / "run", "--data", str(lst))
    assert_user_error(r, f"{lst}:1: error: landmark 1 at (1025, 1030) lies far outside its "
                         "80x80 image", "check the column order", "on_error: skip")


@pytest.mark.keras
def test_landmarks_off_the_image_are_an_error_not_a_zero_loss(tmp_path: Path) -> None:
    names = write_images(tmp_path, 24)
    off = " ".join(str(90 + int(v)) for v in POINTS.split())  # outside, within one image size
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{name} {off}\n" for name in names))
    r = fit(tmp_path / "run", "--data", str(lst))
    assert_user_error(r, f"{lst}: error: ", "no landmark of the 8 validation faces",
                      "inside its 40x40 crop")
