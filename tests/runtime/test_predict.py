"""`netspec predict`: outputs, the exact crop inversion, ordering, video and input errors.

Runs are written by hand (spec.resolved.yaml + model.keras) from tiny specs: `const`
outputs fixed network-frame points (zero kernel, known bias), so the inverse crop
mapping can be checked against hand-computed source pixels; `peak` is the identity
heat-map (the brightest pixel is the landmark), which tests crop + resampling + decode
+ inversion end to end; `seq` is a 3-frame sequence model for --video.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("tensorflow")
from PIL import Image  # noqa: E402

from compiler.diagnostics import SpecError  # noqa: E402
from runtime.data.errors import DataError  # noqa: E402
from runtime.predict.predict_files import natural_key, network_to_source, predict_run  # noqa: E402

pytestmark = pytest.mark.keras

PEAK = """
version: 1
name: peak
inputs: {image: {shape: [32, 32, 1]}}
layers: [{name: maps, op: identity, in: [image]}]
outputs: {heat: {from: maps, loss: heatmap_l2}}
data: {size: 32, channels: 1, normalize: scale, crop: none}
"""
CONST = """
version: 1
name: const
inputs: {image: {shape: [16, 16, 1]}}
layers:
  - {name: flat, op: flatten, in: [image]}
  - {name: fc, op: dense, in: [flat], units: 4}
outputs: {coords: {from: fc, loss: coord_l2}}
data: {size: 16, channels: 1, normalize: scale}
"""
SEQ = """
version: 1
name: seq
inputs: {clip: {shape: [3, 16, 16, 1]}}
layers:
  - {name: mean, op: time_distributed, in: [clip], layer: {op: global_avg_pool2d}}
  - {name: fc, op: time_distributed, in: [mean], layer: {op: dense, units: 2}}
outputs: {coords: {from: fc}}
data: {size: 16, channels: 1, normalize: scale}
eval: {output: coords}
"""
NET_POINTS = np.array([[7.5, 7.5], [0.0, 0.0]])  # what `const` predicts, 16 x 16 frame


def _write_run(text: str, run: Path, weights: list[np.ndarray] | None = None) -> Path:
    from compiler.api import expanded_document, load_spec_text
    from compiler.dump import dump_spec
    from compiler.lower_keras import lower_to_keras

    spec = load_spec_text(text, f"{run.name}.yaml")
    run.mkdir(parents=True)
    (run / "spec.resolved.yaml").write_text(dump_spec(expanded_document(spec)))
    model = lower_to_keras(spec.graph)
    if weights is not None:
        model.set_weights(weights)
    model.save(run / "model.keras")
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    const_w = [np.zeros((256, 4), np.float32), (NET_POINTS.ravel() / 16).astype(np.float32)]
    # seq: per frame x = 16 * 16 * mean, y = 16 * (8 * mean + 1), mean = gray / 255
    seq_w = [np.array([[16.0, 8.0]], np.float32), np.array([0.0, 1.0], np.float32)]
    return {"peak": _write_run(PEAK, root / "peak"),
            "const": _write_run(CONST, root / "const", const_w),
            "seq": _write_run(SEQ, root / "seq", seq_w)}


def _blob(path: Path, width: int, height: int, x: float, y: float, sigma: float = 2.5) -> Path:
    yy, xx = np.mgrid[0:height, 0:width]
    img = 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.astype(np.uint8)).save(path)
    return path


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_writes_json_overlay_and_index(runs: dict[str, Path], tmp_path: Path) -> None:
    a = _blob(tmp_path / "in" / "a.png", 40, 20, 10, 10)
    b = _blob(tmp_path / "in" / "b.jpg", 30, 30, 5, 5)
    out = tmp_path / "out"
    predict_run(runs["const"], [a, b], out)
    rec = _json(out / "a.json")
    assert rec["image"] == str(a) and (rec["width"], rec["height"]) == (40, 20)
    assert rec["crop"] == [19.5, 9.5, 40.0]
    assert len(rec["landmarks"]) == 2 and rec["scheme"] is None
    with Image.open(out / "a.png") as overlay:
        assert overlay.mode == "RGB" and overlay.width / overlay.height == 2
        px = np.asarray(overlay)
    assert px.std() > 0  # dots were drawn on the image
    index = _json(out / "predictions.json")
    assert [e["json"] for e in index["images"]] == ["a.json", "b.json"]
    assert index["images"][1]["landmarks"] == _json(out / "b.json")["landmarks"]
    assert index["crop_rule"] == "whole_image" and index["model"] == "const"


@pytest.mark.parametrize(("size", "box", "crop", "expected"), [
    # 40 x 20: square side 40 centred at (19.5, 9.5); scale 16/40; network centre 7.5
    ((40, 20), None, [19.5, 9.5, 40.0], [[19.5, 9.5], [0.75, -9.25]]),
    ((20, 40), None, [9.5, 19.5, 40.0], [[9.5, 19.5], [-9.25, 0.75]]),
    # box 20 x 10 -> square side 20 at (20, 9); scale 16/20
    ((40, 20), "10,4,30,14", [20.0, 9.0, 20.0], [[20.0, 9.0], [10.625, -0.375]]),
])
def test_network_points_map_back_to_source_pixels(runs: dict[str, Path], tmp_path: Path,
                                                  size: tuple[int, int], box: str | None,
                                                  crop: list[float],
                                                  expected: list[list[float]]) -> None:
    img = _blob(tmp_path / "img.png", *size, 3, 3)
    predict_run(runs["const"], [img], tmp_path / "out", box=box)
    rec = _json(tmp_path / "out" / "img.json")
    assert rec["crop"] == crop
    np.testing.assert_allclose(rec["landmarks"], expected, atol=1e-3)
    np.testing.assert_allclose(network_to_source(NET_POINTS, crop, 16), expected, atol=1e-12)


def test_bright_dot_is_found_in_source_pixels(runs: dict[str, Path], tmp_path: Path) -> None:
    """Crop, anti-aliased warp, decode and inversion agree: whole image, box, BMP."""
    png = _blob(tmp_path / "dot.png", 90, 50, 61, 17)
    bmp = tmp_path / "dot_copy.bmp"
    Image.open(png).save(bmp)
    predict_run(runs["peak"], [png, bmp], tmp_path / "whole")
    predict_run(runs["peak"], [png], tmp_path / "box", box="40,0,90,40")
    for found in (tmp_path / "whole" / "dot.json", tmp_path / "whole" / "dot_copy.json",
                  tmp_path / "box" / "dot.json"):
        np.testing.assert_allclose(_json(found)["landmarks"], [[61, 17]], atol=0.3)


def test_folders_in_natural_order_and_clashing_stems(runs: dict[str, Path],
                                                     tmp_path: Path) -> None:
    assert sorted(["f10.png", "f2.png", "F1.png"], key=natural_key) == \
        ["F1.png", "f2.png", "f10.png"]
    frames = tmp_path / "frames"
    for i in (10, 2, 1, 11):
        _blob(frames / f"frame_{i}.png", 40, 40, 2.5 * i + 5, 20)
    (frames / "notes.txt").write_text("not an image")
    other = _blob(tmp_path / "other" / "frame_1.png", 40, 40, 20, 20)
    out = tmp_path / "out"
    predict_run(runs["peak"], [frames, other], out)
    images = _json(out / "predictions.json")["images"]
    assert [Path(e["image"]).name for e in images] == \
        ["frame_1.png", "frame_2.png", "frame_10.png", "frame_11.png", "frame_1.png"]
    assert [e["json"] for e in images] == \
        ["frames_frame_1.json", "frame_2.json", "frame_10.json", "frame_11.json",
         "other_frame_1.json"]
    xs = [e["landmarks"][0][0] for e in images[:4]]
    np.testing.assert_allclose(xs, [7.5, 10, 30, 32.5], atol=0.3)
    assert (out / "other_frame_1.png").is_file()


def test_video_clips_frame_by_frame(runs: dict[str, Path], tmp_path: Path) -> None:
    for i in range(1, 12):
        _blob(tmp_path / "walk" / f"{i}.png", 40, 40, 5 + 2.5 * i, 20)
    _blob(tmp_path / "still" / "a.png", 40, 40, 20, 20)
    out = tmp_path / "out"
    predict_run(runs["peak"], [tmp_path / "walk", tmp_path / "still"], out, video=True)
    clip = _json(out / "walk.json")
    assert [Path(f["image"]).name for f in clip["frames"]] == [f"{i}.png" for i in range(1, 12)]
    xs = [f["landmarks"][0][0] for f in clip["frames"]]
    np.testing.assert_allclose(xs, 5 + 2.5 * np.arange(1, 12), atol=0.3)
    assert all((out / "walk" / f"{i}.png").is_file() for i in range(1, 12))
    index = _json(out / "predictions.json")
    assert [(c["clip"], c["frames"]) for c in index["clips"]] == [("walk", 11), ("still", 1)]


def test_video_with_a_sequence_model(runs: dict[str, Path], tmp_path: Path) -> None:
    """5 frames through T = 3 windows ([1 2 3], [4 5 5]): each frame keeps its own value."""
    gray = 40 * np.arange(1, 6)
    for i, g in enumerate(gray, 1):
        Image.fromarray(np.full((16, 16), g, np.uint8)).save(tmp_path / f"f{i}.png")
    predict_run(runs["seq"], [tmp_path], tmp_path / "out", video=True)
    got = [f["landmarks"][0] for f in _json(tmp_path / "out" / f"{tmp_path.name}.json")["frames"]]
    mean = gray / 255
    np.testing.assert_allclose(got, np.stack([256 * mean, 16 * (8 * mean + 1)], 1), atol=1e-3)
    with pytest.raises(SpecError, match="sequences of frames"):
        predict_run(runs["seq"], [tmp_path / "f1.png"], tmp_path / "out2")


def _corrupt_inside(src: Path, dest: Path) -> Path:
    """A JPEG with garbage in its entropy-coded data but intact header and end marker: it
    passes the cheap up-front checks and fails only when TensorFlow decodes it."""
    data = bytearray(src.read_bytes())
    for j in range(int(len(data) * 0.6), len(data) - 10):
        data[j] = 0xFF if j % 2 else 0x12
    dest.write_bytes(bytes(data))
    return dest


def test_bad_files_are_reported_and_the_rest_predicted(runs: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    from netspec.cli import main

    folder = tmp_path / "in"
    good = _blob(folder / "good.png", 20, 20, 5, 5)
    (folder / "bad.jpg").write_text("hello")
    data = good.read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 2])
    (folder / "zero.png").write_bytes(b"")
    noise = np.random.default_rng(0).integers(0, 256, (24, 24), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "src.jpg", quality=95)
    _corrupt_inside(tmp_path / "src.jpg", folder / "inside.jpg")
    _blob(folder / "late.png", 20, 20, 9, 9)
    out = tmp_path / "out"
    assert main(["predict", str(runs["const"]), str(folder), "-o", str(out)]) == 1
    cap = capsys.readouterr()
    index = _json(out / "predictions.json")
    assert [Path(e["image"]).name for e in index["images"]] == ["good.png", "late.png"]
    errors = {Path(e["image"]).name: e["error"] for e in index["errors"]}
    assert set(errors) == {"bad.jpg", "cut.png", "zero.png", "inside.jpg"}
    assert "not an image file" in errors["bad.jpg"]
    assert "cannot be decoded" in errors["cut.png"] and "empty (0 bytes)" in errors["zero.png"]
    assert "decode" in errors["inside.jpg"]
    assert "predicted 2 image(s)" in cap.out
    assert "4 image(s) could not be predicted" in cap.err
    assert f"{folder / 'bad.jpg'}: " in cap.err and "Traceback" not in cap.err
    assert (out / "good.json").is_file() and not (out / "bad.json").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    for paths, video, msg in (([tmp_path / "missing.png"], False, "no such file"),
                              ([empty], False, "no images"), ([good], True, "folder of frames")):
        with pytest.raises(DataError, match=msg):
            predict_run(runs["const"], paths, tmp_path / "out", video=video)


def huge_png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height pixels, with no pixel data (a few bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(
            kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_is_an_image_error(runs: dict[str, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = huge_png_header(tmp_path / "bomb.png", 30000, 30000)
    good = _blob(tmp_path / "good.png", 20, 20, 5, 5)
    index = predict_run(runs["const"], [bomb, good], tmp_path / "out")
    (err,) = index["errors"]
    assert err["image"] == str(bomb) and len(index["images"]) == 1
    assert "30000x30000 = 900,000,000 pixels" in err["error"]
    assert "decompression-bomb limit of 89,478,485 pixels" in err["error"]
    monkeypatch.setenv("NETSPEC_MAX_IMAGE_PIXELS", "100")  # the limit is the user's to set
    index = predict_run(runs["const"], [good], tmp_path / "out2")
    assert "20x20 = 400 pixels, beyond the decompression-bomb limit of 100" in \
        index["errors"][0]["error"]


def test_scores_of_heat_maps() -> None:
    from runtime.evaluate.decode import face_scores, heatmap_confidence

    maps = np.zeros((3, 4, 5, 2))
    maps[0, 1, 2, :] = 1.0  # all mass on one pixel: 1
    maps[1] = 1.0 / 20  # flat softmax: 1 / (H W)
    maps[2, ..., 0] = -1.0  # nothing positive: 0; map 1 of face 2 is all zero: 0
    np.testing.assert_allclose(heatmap_confidence(maps), [[1, 1], [0.05, 0.05], [0, 0]])
    np.testing.assert_allclose(face_scores("heatmap", maps), [1, 0.05, 0])
    assert face_scores("coords", np.zeros((2, 4))) is None


def test_score_low_confidence_and_warnings(runs: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    dot = np.zeros((32, 32), np.uint8)
    dot[10, 20] = 255
    Image.fromarray(dot).save(tmp_path / "dot.png")  # identity heat map: one hot pixel
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "black.png")
    Image.fromarray(np.full((1, 1), 200, np.uint8)).save(tmp_path / "one.png")
    Image.fromarray(np.zeros((32, 32, 4), np.uint8), "RGBA").save(tmp_path / "clear.png")
    out = tmp_path / "out"
    paths = [str(tmp_path / n) for n in ("dot.png", "black.png", "one.png", "clear.png")]
    assert main(["predict", str(runs["peak"]), *paths, "-o", str(out)]) == 0
    cap = capsys.readouterr()
    rec = {Path(e["image"]).stem: e for e in _json(out / "predictions.json")["images"]}
    assert rec["dot"]["score"] == pytest.approx(1.0, abs=0.05)
    assert not rec["dot"]["low_confidence"] and rec["dot"]["warnings"] == []
    assert rec["black"]["score"] == 0.0 and rec["black"]["low_confidence"]
    assert any("low confidence: score 0.000 < 0.1" in w for w in rec["black"]["warnings"])
    assert any("1x1 pixels, too small to hold a face" in w for w in rec["one"]["warnings"])
    assert any("fully transparent" in w for w in rec["clear"]["warnings"])
    assert rec["one"]["low_confidence"] and rec["clear"]["low_confidence"]
    assert f"{tmp_path / 'one.png'}: warning: the image is 1x1" in cap.err
    assert "3 low-confidence" in cap.out
    assert _json(out / "dot.json")["score"] == rec["dot"]["score"]
    # the threshold is an option; coordinate outputs carry no score
    assert main(["predict", str(runs["peak"]), paths[1], "-o", str(out), "--min-confidence",
                 "0"]) == 0
    assert not _json(out / "black.json")["low_confidence"]
    assert main(["predict", str(runs["peak"]), paths[1], "-o", str(out), "--min-confidence",
                 "2"]) == 1
    assert "--min-confidence: error: must be in [0, 1]" in capsys.readouterr().err
    predict_run(runs["const"], [tmp_path / "dot.png"], tmp_path / "c")
    assert _json(tmp_path / "c" / "dot.json")["score"] is None


@pytest.mark.parametrize(("box", "msg"), [
    ("1,2,3", "expected 4 numbers"), ("a,b,c,d", "not four numbers"),
    ("10,10,5,20", "x1 > x0"), ("10,10,20,10", "y1 > y0"), ("0,0,nan,5", "non-finite"),
])
def test_bad_box(runs: dict[str, Path], tmp_path: Path, box: str, msg: str) -> None:
    img = _blob(tmp_path / "img.png", 40, 20, 3, 3)
    with pytest.raises(SpecError, match=msg) as err:
        predict_run(runs["const"], [img], tmp_path / "out", box=box)
    assert "--box" in str(err.value)


def test_box_outside_the_image_and_cli(runs: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    img = _blob(tmp_path / "img.png", 40, 20, 3, 3)
    assert main(["predict", str(runs["const"]), str(img), "-o", str(tmp_path / "out"),
                 "--box", "50,0,60,10"]) == 1
    err = capsys.readouterr().err
    assert str(img) in err and "outside this 40x20 image" in err and "Traceback" not in err
    assert main(["predict", str(runs["const"]), str(img), "-o", str(tmp_path / "out"),
                 "--box", "30,5,45,15"]) == 0  # overlapping the edge is fine
    assert "predicted 1 image(s)" in capsys.readouterr().out
    assert _json(tmp_path / "out" / "img.json")["crop"] == [37.5, 10.0, 15.0]
