"""Quantised exports stay close to Keras on real face crops: a small RCN trained for a few
dozen steps on MTFL, exported as ONNX int8 (ONNX Runtime QDQ) and TFLite int8 / float16,
run by their own runtimes on 64 fixed validation crops; the points may move by at most the
tolerances measured here (mean and 95th percentile |export - Keras| in input pixels, with
about 2x margin). Random weights would not do: their heat maps have near-tied peaks that
any rounding moves across the map.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("onnxruntime")

pytestmark = [pytest.mark.keras, pytest.mark.slow]

SMALL = [f"{k}=[8,8,8,8,8,8,8]" for k in ("enc_filters", "conv1_filters", "conv2_filters")]
QUICK = [*SMALL, "size=40", "train.optimizer=adam", "train.learning_rate=0.002",
         "train.batch_size=16", "train.epochs=3", "train.steps_per_epoch=15",
         "data.limit=600", "data.augment.occlusion=false", "data.augment.mirror=false"]
# (format, quantize): (mean, p95) of max(|dx|, |dy|) export vs Keras in px at 40 px; measured
# (ONNX int8 0.46 / 2.63, TFLite int8 1.06 / 5.63, float16 0.0002 / 0.0007), about x2
TOLERANCE = {("onnx", "int8"): (1.0, 5.5), ("tflite", "int8"): (2.0, 11.0),
             ("tflite", "float16"): (0.005, 0.02)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Path, str]:
    from netspec.cli import main

    mtfl = shared_data / "mtfl"
    if not (mtfl / "train.txt").is_file():
        pytest.skip(f"MTFL not found at {mtfl}")
    run = tmp_path_factory.mktemp("qrun") / "run"
    argv = ["fit", "specs/rcn_4branch.yaml", "-o", str(run), "--data", str(mtfl)]
    for s in QUICK:
        argv += ["--set", s]
    cwd = os.getcwd()
    os.chdir(Path(__file__).resolve().parents[2])
    try:
        assert main(argv) == 0
    finally:
        os.chdir(cwd)
    return run, str(mtfl)


@pytest.fixture(scope="module")
def crops(trained: tuple[Path, str]) -> tuple[np.ndarray, np.ndarray]:
    """64 validation crops (raw 0..255) and the Keras export graph's points on them."""
    from dataclasses import replace

    from runtime.datasets import load_faces, spec_data_config, split
    from runtime.export.calibration import raw_inputs
    from runtime.export.graph import build_export_graph
    from runtime.run_dir import load_run

    run, data = trained
    spec, model = load_run(run)
    dcfg = spec_data_config(spec, data)
    _, val = split(load_faces(spec, dcfg), replace(dcfg))
    x = raw_inputs(val, dcfg, limit=64)
    graph = build_export_graph(spec, model)
    return x, np.asarray(graph.model.predict_on_batch({"image": x})["points"])


@pytest.mark.parametrize("fmt, quantize", list(TOLERANCE))
def test_quantised_points_stay_near_keras(fmt: str, quantize: str, trained: tuple[Path, str],
                                          crops: tuple[np.ndarray, np.ndarray],
                                          tmp_path: Path) -> None:
    from runtime.export.command import export_run
    from runtime.export.manifest import read_manifest
    from runtime.export.runners import load_runner

    run, data = trained
    x, want = crops
    out = tmp_path / f"{fmt}-{quantize}"
    export_run(run, out, fmt, quantize=quantize,
               calibration=data if quantize == "int8" else None)
    man = read_manifest(out)
    assert man["quantize"] == quantize and man["quantization"] is not None
    got = load_runner(out, man)(x)["points"]
    assert got.shape == want.shape and np.isfinite(got).all()
    err = np.abs(got - want).max(axis=-1)  # [N, K] px
    mean, p95 = float(err.mean()), float(np.percentile(err, 95))
    tol_mean, tol_p95 = TOLERANCE[(fmt, quantize)]
    assert mean <= tol_mean and p95 <= tol_p95, json.dumps(
        {"format": fmt, "quantize": quantize, "mean_px": mean, "p95_px": p95})
