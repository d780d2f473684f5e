"""`netspec predict --detect`: OpenCV's cascade finds both faces of two shared MTFL faces
side by side, and each face's points are mapped back to source pixels through the crop
its detector box gives under the model's training crop rule."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("cv2")
pytest.importorskip("tensorflow")
from PIL import Image  # noqa: E402

from netspec.cli import main  # noqa: E402

pytestmark = [pytest.mark.keras, pytest.mark.data]

# `const` predicts fixed network-frame points (zero kernel, known bias): what predict writes
# is then exactly the inverse of each face's crop, which the test recomputes by hand.
CONST = """
version: 1
name: const5
inputs: {image: {shape: [16, 16, 1]}}
layers:
  - {name: flat, op: flatten, in: [image]}
  - {name: fc, op: dense, in: [flat], units: 10}
outputs: {coords: {from: fc, loss: coord_l2}}
data: {size: 16, channels: 1, normalize: scale, crop: none, scheme: 5pt}
"""
NET = np.array([[5.0, 6.0], [11.0, 6.0], [8.0, 9.0], [6.0, 12.0], [10.0, 12.0]])


def _const_run(run: Path) -> Path:
    from compiler.api import expanded_document, load_spec_text
    from compiler.dump import dump_spec
    from compiler.lower_keras import lower_to_keras

    spec = load_spec_text(CONST, "const5.yaml")
    run.mkdir(parents=True)
    (run / "spec.resolved.yaml").write_text(dump_spec(expanded_document(spec)))
    model = lower_to_keras(spec.graph)
    model.set_weights([np.zeros((256, 10), np.float32), (NET.ravel() / 16).astype(np.float32)])
    model.save(run / "model.keras")
    return run


def test_two_faces_side_by_side(shared_data: Path, tmp_path: Path, capsys) -> None:
    from runtime.predict.detect import detect_faces, haar_to_crop
    from runtime.predict.predict_files import network_to_source

    rows = (shared_data / "mtfl" / "train.txt").read_text().splitlines()
    faces = [Image.open(shared_data / "mtfl" / rows[i].split()[0]).convert("RGB")
             for i in (0, 2)]
    w, h = faces[0].size
    pair = Image.new("RGB", (2 * w, h))
    pair.paste(faces[0], (0, 0))
    pair.paste(faces[1].resize((w, h)), (w, 0))
    pair = pair.resize((4 * w, 2 * h), Image.BICUBIC)  # 160 px faces: the cascade's scale
    img = tmp_path / "pair.png"
    pair.save(img)
    run = _const_run(tmp_path / "run")
    out = tmp_path / "out"
    assert main(["predict", str(run), str(img), "-o", str(out), "--detect"]) == 0
    doc = json.loads((out / "pair.json").read_text())
    assert len(doc["faces"]) == 2, doc
    boxes = detect_faces(img)
    half = pair.size[0] / 2
    assert boxes[0][2] <= half + 8 and boxes[1][0] >= half - 8  # one face per half
    for face, box in zip(doc["faces"], boxes, strict=True):
        crop = haar_to_crop(box, "none", 1.0, "5pt")
        want = network_to_source(NET, crop, 16)
        np.testing.assert_allclose(np.array(face["landmarks"]), want, atol=1e-3)
        np.testing.assert_allclose(face["crop"], crop, atol=1e-5)
        assert face["detector_box"] == pytest.approx(list(box), abs=0.01)
    left, right = (np.array(f["landmarks"])[:, 0].mean() for f in doc["faces"])
    assert left < half < right
    assert (out / "pair.png").is_file()
    index = json.loads((out / "predictions.json").read_text())
    assert index["crop_rule"] == "detect" and index["images"][0]["faces"] == 2


def test_detect_takes_no_box(tmp_path: Path, capsys) -> None:
    run = _const_run(tmp_path / "run")
    img = tmp_path / "x.png"
    Image.new("L", (32, 32)).save(img)
    assert main(["predict", str(run), str(img), "-o", str(tmp_path / "o"), "--detect",
                 "--box", "0,0,10,10"]) == 1
    assert "takes neither --box nor --video" in capsys.readouterr().err
    assert main(["predict", str(run), str(img), "-o", str(tmp_path / "o2"), "--detect"]) == 0
    doc = json.loads((tmp_path / "o2" / "x.json").read_text())
    assert doc["faces"] == []
    assert "no face found" in capsys.readouterr().err
