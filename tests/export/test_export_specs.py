"""Every spec in specs/ exports to SavedModel, TFLite and ONNX, and each runtime's outputs
match Keras on fixed inputs (max |diff| <= 1e-4 float32, decoded points <= 1e-2 px).

Export is tracing plus the exporter, so cost is per graph, not per weight: the specs whose
op set another spec already covers (rcn_4..7 and rcn_300w vs rcn_6branch_skip, sumnet_5/6/
search vs sumnet_4, is_cnn_baseline vs is_net) are covered by
`test_tested_specs_cover_every_op`, which fails when a spec brings an op no exported spec has.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.export.tiny_runs import REPO, TINY, spec_names, write_run

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EXPORTED = ["rcn_6branch_skip", "sumnet_4branch", "is_net", "lgcn", "rednet", "export_zoo"]
FORMATS = ("savedmodel", "tflite", "onnx")


def _spec(name: str):  # noqa: ANN202 - compiler.api.Spec
    from compiler.api import load_spec

    path = REPO / "specs" / f"{name}.yaml"
    return load_spec(path if path.is_file() else Path(__file__).with_name(f"{name}.yaml"),
                     TINY.get(name, []))


def _ops(name: str) -> set[str]:
    return {n.op for n in _spec(name).graph.nodes}


def _is_sequence(name: str) -> bool:
    inp = _spec(name).graph.inputs[0].out
    return inp is not None and inp.rank == 5


# Specs the tests do not export yet, and why (their ops are listed by `netspec ops` as not
# yet exported; formats that cannot take an op are refused up front by runtime.export).
NOT_EXPORTED = {
    "rar": "robust_init_shape has no TFLite or ONNX op (op_support.UNSUPPORTED): RAR exports "
           "to SavedModel only (test_partly_exportable_specs_export_where_their_ops_allow)",
}


def test_tested_specs_cover_every_op() -> None:
    covered = set().union(*(_ops(n) for n in EXPORTED))
    for name in spec_names():
        if _is_sequence(name):  # clip models: refused, see test_sequence_specs_are_refused
            continue
        if name in NOT_EXPORTED:
            continue
        missing = _ops(name) - covered
        assert not missing, f"specs/{name}.yaml uses {missing}, which no exported spec has"


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTED)
def test_spec_exports_to_every_format(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from runtime.evaluate.decode import decode
    from runtime.export.command import PARITY_TOLERANCE, export_run, fixed_inputs
    from runtime.export.graph import build_export_graph
    from runtime.export.manifest import read_manifest
    from runtime.export.runners import load_runner
    from runtime.run_dir import load_run

    run = write_run(name, tmp_path / "run")
    spec, model = load_run(run)
    graph = build_export_graph(spec, model)
    x = fixed_inputs(graph.size, graph.channels, n=3, seed=7)  # not export_run's inputs
    want = graph.model.predict_on_batch({"image": x})
    raw = np.asarray(want[graph.output])
    np.testing.assert_allclose(want[graph.points], decode(graph.kind, raw, graph.size,
                                                          refine=graph.refine), atol=1e-3)
    for fmt in FORMATS:
        out = tmp_path / fmt
        export_run(run, out, fmt)
        man = read_manifest(out)
        if fmt == "tflite":  # the manifest says when the converter needed a batch-1 graph
            _assert_manifest_batch(out / man["artefact"], man)
        got = load_runner(out, man)(x)
        assert set(got) == {graph.output, graph.points}
        diff = np.abs(got[graph.output] - raw).max()
        assert diff <= PARITY_TOLERANCE, f"{name} {fmt}: max diff {diff}"
        pts = np.abs(got[graph.points] - want[graph.points]).max()
        assert pts <= 1e-2, f"{name} {fmt}: points differ by {pts} px"


def _assert_manifest_batch(artefact: Path, man: dict) -> None:
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(model_path=str(artefact))
    sig = interp.get_signature_runner("serving_default").get_input_details()["image"]
    fixed = int(sig["shape_signature"][0]) == 1
    assert man["input"]["shape"][0] == (1 if fixed else None), man["input"]
    assert man["input"]["batch"].startswith("1") if fixed else man["input"]["batch"] == "any"


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOT_EXPORTED))
def test_partly_exportable_specs_export_where_their_ops_allow(name: str, tmp_path: Path
                                                              ) -> None:
    """RAR: SavedModel matches Keras; TFLite and ONNX are refused up front, naming the op."""
    from compiler.diagnostics import SpecError
    from runtime.export.command import PARITY_TOLERANCE, export_run, fixed_inputs
    from runtime.export.graph import build_export_graph
    from runtime.export.manifest import read_manifest
    from runtime.export.op_support import UNSUPPORTED, unsupported_ops
    from runtime.export.runners import load_runner
    from runtime.run_dir import load_run

    run = write_run(name, tmp_path / "run")
    spec, model = load_run(run)
    graph = build_export_graph(spec, model)
    x = fixed_inputs(graph.size, graph.channels, n=3, seed=7)
    want = graph.model.predict_on_batch({"image": x})
    refused = {f for f in FORMATS if unsupported_ops(spec, f)}
    assert refused and refused < set(FORMATS)
    for fmt in FORMATS:
        out = tmp_path / fmt
        if fmt in refused:
            ops = [o for o in UNSUPPORTED if fmt in UNSUPPORTED[o]]
            with pytest.raises(SpecError, match="|".join(ops)):
                export_run(run, out, fmt)
            continue
        export_run(run, out, fmt)
        got = load_runner(out, read_manifest(out))(x)
        diff = np.abs(got[graph.output] - np.asarray(want[graph.output])).max()
        assert diff <= PARITY_TOLERANCE, f"{name} {fmt}: max diff {diff}"
        assert np.abs(got[graph.points] - want[graph.points]).max() <= 1e-2


@pytest.mark.keras
def test_sequence_specs_are_refused(tmp_path: Path) -> None:
    from compiler.diagnostics import SpecError
    from runtime.export.graph import build_export_graph

    names = [n for n in spec_names() if _is_sequence(n)]
    if not names:
        pytest.skip("no clip spec in specs/")
    spec = _spec(names[0])
    with pytest.raises(SpecError, match=r"export takes models with one image input"):
        build_export_graph(spec, None)


def test_verified_ops_are_the_exported_ones() -> None:
    from runtime.export.op_support import VERIFIED

    assert set().union(*(_ops(n) for n in EXPORTED)) == set(VERIFIED)
