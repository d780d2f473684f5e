"""`netspec export RUN -o DIR --format F`: the run's best model, wrapped with its
normalisation and decoding (graph.py), written by the format's exporter (formats.py),
checked against Keras on fixed inputs, with DIR/manifest.json beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import sys

import numpy as np

from compiler.diagnostics import SourceLoc, SpecError
from runtime.export.manifest import ARTEFACTS, FORMATS, build_manifest, write_manifest

PARITY_TOLERANCE = 1e-4  # float32 exports: max |export - keras| on the raw output, relative
# to its largest magnitude when that exceeds 1 (logits of an untrained model reach 1e13)


@dataclass(frozen=True)
class ExportResult:
    artefact: Path
    manifest: Path
    max_abs_diff: float  # raw output, export vs Keras, on fixed inputs
    points_diff: float | None  # decoded points (input pixels)


def check_options(fmt: str, quantize: str | None, calibration: str | None) -> None:
    """Usage errors (exit 2 in the CLI) before anything is loaded."""
    from runtime.export.formats import FORMAT_QUANTIZE

    loc = SourceLoc("--quantize")
    if fmt not in FORMATS:
        raise SpecError.at(SourceLoc("--format"), f"unknown format {fmt!r}",
                           hint=f"one of {', '.join(FORMATS)}")
    if quantize is not None and quantize not in FORMAT_QUANTIZE[fmt]:
        takes = [f"--format {f}: {', '.join(q)}" for f, q in FORMAT_QUANTIZE.items() if q]
        raise SpecError.at(loc, f"--quantize {quantize} is not available for --format {fmt}",
                           hint="; ".join(takes) + " (SavedModel exports are float32)")
    if quantize == "int8" and calibration is None:
        raise SpecError.at(SourceLoc("--calibration"), "int8 quantisation needs calibration "
                                                       "data",
                           hint="--calibration DATA: a data set (as for fit --data) or "
                                "'synthetic'; its first 200 training crops are used")
    if calibration is not None and quantize != "int8":
        raise SpecError.at(SourceLoc("--calibration"), "--calibration is only for --quantize "
                                                       "int8")


def fixed_inputs(size: int, channels: int, n: int = 4, seed: int = 0) -> np.ndarray:
    """Deterministic 0..255 inputs for parity checks: smooth blobs plus noise, so heat-map
    peaks are distinct (pure noise makes near-ties that argmax may break either way)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.empty((n, size, size, channels), np.float32)
    for i in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.7) * size, size / 4
        blob = 200.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        out[i] = (blob[..., None] + rng.uniform(0, 40, (size, size, channels))).clip(0, 255)
    return out


def export_run(run_dir: Path, out_dir: Path, fmt: str, *, quantize: str | None = None,
               calibration: str | None = None) -> ExportResult:
    """Export RUN to OUT/<artefact> + OUT/manifest.json; see the module docstring."""
    from runtime.datasets import spec_data_config
    from runtime.export.formats import write_artefact
    from runtime.export.graph import INPUT_NAME, build_export_graph
    from runtime.export.runners import load_runner
    from runtime.run_dir import ensure_output_dir, load_run, read_state

    check_options(fmt, quantize, calibration)
    spec, keras_model = load_run(Path(run_dir))
    state = read_state(Path(run_dir))
    if state is None or state.get("epoch", 0) < 1:
        print(f"{run_dir}: warning: this model was never trained (no finished epoch): the "  # noqa: T201
              "export carries random weights", file=sys.stderr)
    graph = build_export_graph(spec, keras_model)
    calib = None
    if quantize == "int8":
        from runtime.export.calibration import calibration_inputs

        calib = calibration_inputs(spec, str(calibration))
    from runtime.export.op_support import unsupported_ops

    known_bad = unsupported_ops(spec, fmt)
    if known_bad:  # refused before any exporter runs (they fail late, or write a bad file)
        raise SpecError.at(SourceLoc(str(run_dir)), f"this run cannot be exported to {fmt}",
                           notes=tuple(f"op {o}" for o in known_bad),
                           hint="`netspec ops` lists which formats take which ops")
    x = fixed_inputs(graph.size, graph.channels)
    want = graph.model.predict_on_batch({INPUT_NAME: x})  # also builds the traced call
    out = ensure_output_dir(Path(out_dir))
    artefact = out / ARTEFACTS[fmt]
    try:
        batch, quantization = write_artefact(fmt, graph.model, artefact, quantize=quantize,
                                             calibration=calib)
    except Exception as e:  # noqa: BLE001 - exporters raise anything for an op they lack
        bad = unsupported_ops(spec, fmt)
        raise SpecError.at(SourceLoc(str(run_dir)), f"the {fmt} exporter failed: "
                                                    f"{type(e).__name__}: {str(e)[:300]}",
                           notes=tuple(f"op '{o}' is not supported by {fmt}" for o in bad),
                           hint="`netspec ops` lists which formats take which ops") from None
    dcfg = spec_data_config(spec)
    k = int(graph.model.output[graph.points].shape[1]) if graph.points else 0
    manifest = build_manifest(
        fmt=fmt, quantize=quantize, spec_name=spec.name, run=str(run_dir),
        epoch=None if state is None else state.get("epoch"), size=graph.size,
        channels=graph.channels, normalize=graph.normalize, crop=dcfg.crop,
        crop_ratio=float(dcfg.crop_ratio), antialias=bool(dcfg.antialias),
        scheme=dcfg.scheme, output=graph.output, kind=graph.kind,
        output_shape=graph.output_shape, points=graph.points, refine=graph.refine,
        n_landmarks=k, input_name=INPUT_NAME, batch=batch, quantization=quantization)
    try:
        got = load_runner(out, manifest)(x)
    except RuntimeError as e:  # the interpreter refuses to run what the converter wrote
        raise SpecError.at(SourceLoc(str(artefact)), f"the {fmt}"
                                                     f"{' ' + quantize if quantize else ''} "
                                                     "export was written but cannot run: "
                                                     f"{str(e).splitlines()[0][:300]}",
                           hint="calibrate on the data the model was trained on, or use "
                                "--quantize float16") from None
    diff = float(np.abs(got[graph.output] - want[graph.output]).max())
    pdiff = None if graph.points is None else \
        float(np.abs(got[graph.points] - want[graph.points]).max())
    tolerance = PARITY_TOLERANCE * max(1.0, float(np.abs(want[graph.output]).max()))
    manifest["parity"] = {"inputs": "netspec.export fixed_inputs(seed 0), 4 images",
                          "max_abs_diff": diff, "points_max_abs_diff_px": pdiff,
                          "tolerance": tolerance}
    path = write_manifest(out, manifest)
    if quantize is None and not diff <= tolerance:  # NaN fails too
        raise SpecError.at(SourceLoc(str(artefact)), f"the {fmt} export differs from the Keras "
                                                     f"model by {diff:.3g} (> {tolerance:.3g}) "
                                                     "on fixed inputs",
                           hint="this is an exporter bug; please report it with `netspec "
                                "doctor`")
    return ExportResult(artefact, path, diff, pdiff)
