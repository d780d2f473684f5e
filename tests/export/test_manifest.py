"""DIR/manifest.json round-trips and a damaged one is a located error (no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.diagnostics import SpecError
from runtime.export.manifest import (
    build_manifest,
    is_export_dir,
    raw_output,
    read_manifest,
    write_manifest,
)


def _manifest(**kw) -> dict:  # noqa: ANN003
    args = dict(fmt="onnx", quantize=None, spec_name="rcn", run="runs/rcn", epoch=3,
                size=80, channels=1, normalize="lcn", crop="none", crop_ratio=1.3,
                antialias=True, scheme="5pt", output="heatmaps", kind="heatmap",
                output_shape=(80, 80, 5), points="points", refine="quadratic",
                n_landmarks=5, input_name="image")
    return build_manifest(**{**args, **kw})


def test_round_trip(tmp_path: Path) -> None:
    m = _manifest()
    (tmp_path / m["artefact"]).write_bytes(b"x")
    write_manifest(tmp_path, m)
    assert is_export_dir(tmp_path)
    back = read_manifest(tmp_path)
    assert back == json.loads(json.dumps(m))
    assert back["input"]["shape"] == [None, 80, 80, 1]
    assert back["landmarks"]["order"][0] == "left_eye"
    assert raw_output(back) == ("heatmaps", "heatmap")
    assert back["outputs"]["points"]["shape"] == [None, 5, 2]


def test_round_trip_quantised_and_batch_1(tmp_path: Path) -> None:
    """The quantisation record and a batch-1 TFLite graph's fixed batch survive the file."""
    quant = {"engine": "onnxruntime.quantization.quantize_static", "format": "QDQ",
             "activations": "uint8", "weights": "int8 per-channel", "calibration": "minmax",
             "calibration_images": 200, "int8_op_types": ["Conv", "MaxPool"],
             "float_layers": ["netspec_normalize", "netspec_decode", "softmax"]}
    m = _manifest(quantize="int8", quantization=quant)
    (tmp_path / m["artefact"]).write_bytes(b"x")
    write_manifest(tmp_path, m)
    back = read_manifest(tmp_path)
    assert back["quantize"] == "int8" and back["quantization"] == quant
    assert back["input"]["shape"][0] is None and back["input"]["batch"] == "any"
    one = tmp_path / "one"
    one.mkdir()
    m = _manifest(fmt="tflite", batch=1)
    (one / m["artefact"]).write_bytes(b"x")
    write_manifest(one, m)
    back = read_manifest(one)
    assert back["quantization"] is None
    assert back["input"]["shape"] == [1, 80, 80, 1] and back["input"]["batch"].startswith("1")
    assert back["outputs"]["points"]["shape"] == [1, 5, 2]
    assert back["outputs"]["heatmaps"]["shape"] == [1, 80, 80, 5]


@pytest.mark.parametrize("damage, message", [
    (lambda m: m.update(format="caffe"), "format: expected one of"),
    (lambda m: m.update(input={"name": "image"}), "input: expected"),
    (lambda m: m.update(netspec_export=9), "version-1"),
])
def test_damaged_manifest_is_an_error(tmp_path: Path, damage, message: str) -> None:
    m = _manifest()
    (tmp_path / m["artefact"]).write_bytes(b"x")
    damage(m)
    write_manifest(tmp_path, m)
    with pytest.raises(SpecError, match=message):
        read_manifest(tmp_path)


def test_missing_artefact_and_folder(tmp_path: Path) -> None:
    write_manifest(tmp_path, _manifest())
    with pytest.raises(SpecError, match="model.onnx named by the manifest is missing"):
        read_manifest(tmp_path)
    with pytest.raises(SpecError, match="not a netspec export"):
        read_manifest(tmp_path / "nothing")
