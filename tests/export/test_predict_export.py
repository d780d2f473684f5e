"""`netspec export` from the CLI, `netspec predict` on an export equal to predict on the
run, TFLite float16 / int8 exports, and the usage errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.export.tiny_runs import write_run

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("onnxruntime")
from PIL import Image  # noqa: E402

from netspec.cli import main  # noqa: E402

pytestmark = [pytest.mark.keras, pytest.mark.slow]
SMALL = ("size=40",)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run("rcn_4branch", tmp_path_factory.mktemp("exp") / "run", extra=SMALL)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(3)
    out = []
    for i, (w, h) in enumerate([(64, 48), (40, 40), (90, 120)]):
        yy, xx = np.mgrid[0:h, 0:w]
        blob = 220 * np.exp(-((xx - w * 0.4) ** 2 + (yy - h * 0.6) ** 2) / (2 * (w / 5) ** 2))
        img = (blob + rng.uniform(0, 30, (h, w))).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"im{i}.png")
        out.append(root / f"im{i}.png")
    return out


def _landmarks(out: Path) -> dict[str, np.ndarray]:
    index = json.loads((out / "predictions.json").read_text())
    return {Path(e["image"]).name: np.array(e["landmarks"], float) for e in index["images"]}


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_predict_on_export_equals_predict_on_run(fmt: str, run: Path, images: list[Path],
                                                  tmp_path: Path, capsys) -> None:
    exp = tmp_path / "export"
    assert main(["export", str(run), "-o", str(exp), "--format", fmt]) == 0
    assert "max |export - keras|" in capsys.readouterr().out
    manifest = json.loads((exp / "manifest.json").read_text())
    assert manifest["format"] == fmt and manifest["input"]["shape"] == [None, 40, 40, 1]
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    assert main(["predict", str(run), *map(str, images), "-o", str(tmp_path / "a")]) == 0
    assert main(["predict", str(exp), *map(str, images), "-o", str(tmp_path / "b")]) == 0
    a, b = _landmarks(tmp_path / "a"), _landmarks(tmp_path / "b")
    assert a.keys() == b.keys() == {p.name for p in images}
    for k in a:
        np.testing.assert_allclose(b[k], a[k], atol=1e-2)  # source pixels


def test_quantised_tflite(run: Path, tmp_path: Path, capsys) -> None:
    from runtime.export.command import fixed_inputs
    from runtime.export.manifest import read_manifest
    from runtime.export.runners import load_runner

    x = fixed_inputs(40, 1, n=2, seed=5)
    pts = {}
    for q in ("float16", "int8"):
        out = tmp_path / q
        extra = ["--calibration", "synthetic"] if q == "int8" else []
        assert main(["export", str(run), "-o", str(out), "--format", "tflite", "--quantize", q,
                     *extra]) == 0, capsys.readouterr().err
        man = read_manifest(out)
        assert man["quantize"] == q
        pts[q] = load_runner(out, man)(x)["points"]
    f32 = tmp_path / "f32"
    assert main(["export", str(run), "-o", str(f32), "--format", "tflite"]) == 0
    ref = load_runner(f32, read_manifest(f32))(x)["points"]
    assert np.abs(pts["float16"] - ref).max() < 0.5  # px at 40 px: float16 weights
    assert np.isfinite(pts["int8"]).all() and pts["int8"].shape == ref.shape


def test_onnx_int8_from_the_cli(run: Path, tmp_path: Path, capsys) -> None:
    """`--format onnx --quantize int8` writes a QDQ model ONNX Runtime runs, and says so in
    the manifest (closeness to Keras: test_quantised_parity.py, on a trained run)."""
    from runtime.export.manifest import read_manifest
    from runtime.export.runners import load_runner

    out = tmp_path / "onnx-int8"
    assert main(["export", str(run), "-o", str(out), "--format", "onnx", "--quantize", "int8",
                 "--calibration", "synthetic"]) == 0, capsys.readouterr().err
    man = read_manifest(out)
    assert man["quantize"] == "int8" and man["quantization"]["format"] == "QDQ"
    import onnx

    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    got = load_runner(out, man, batch=1)(np.full((1, 40, 40, 1), 128, np.float32))
    assert got["points"].shape == (1, 5, 2) and np.isfinite(got["points"]).all()


@pytest.mark.parametrize("argv, message", [
    (["--format", "onnx", "--quantize", "float16"], "not available for --format onnx"),
    (["--format", "savedmodel", "--quantize", "int8"], "not available for --format savedmodel"),
    (["--format", "onnx", "--quantize", "int8"], "int8 quantisation needs calibration"),
    (["--format", "tflite", "--quantize", "int8"], "int8 quantisation needs calibration"),
    (["--format", "tflite", "--calibration", "synthetic"], "only for --quantize int8"),
])
def test_usage_errors_exit_2(argv: list[str], message: str, run: Path, tmp_path: Path,
                             capsys) -> None:
    assert main(["export", str(run), "-o", str(tmp_path / "x"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_not_a_run_is_exit_1(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path), "-o", str(tmp_path / "x"), "--format", "onnx"]) == 1
    assert "not a netspec run" in capsys.readouterr().err
