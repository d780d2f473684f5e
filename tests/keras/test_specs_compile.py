"""Every shipped model spec lowers to Keras and the Keras model agrees with the IR.

Agreement means: same output shapes, same layer names (keras_name), same parameter
count as `netspec show`, and a forward pass giving finite, normalised outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.api import Spec, load_spec
from compiler.format import param_summary
from compiler.ir import keras_name
from compiler.ops import DEFAULT_OPS

pytestmark = pytest.mark.keras

keras = pytest.importorskip("keras")
from compiler.lower_keras import lower_to_keras  # noqa: E402

SPEC_DIR = Path(__file__).resolve().parents[2] / "specs"
# '_'-prefixed files are bases/fragments used through `extends:`, not models.
MODEL_SPECS = sorted(p for p in SPEC_DIR.glob("*.yaml") if not p.name.startswith("_"))

_CACHE: dict[Path, tuple[Spec, Any]] = {}


def _compiled(path: Path) -> tuple[Spec, Any]:
    """Load and lower once per spec; the tests below only read the model."""
    if path not in _CACHE:
        spec = load_spec(path)
        _CACHE[path] = (spec, lower_to_keras(spec.graph))
    return _CACHE[path]


def test_specs_are_found() -> None:
    names = {p.stem for p in MODEL_SPECS}
    assert {"rcn_6branch", "rcn_6branch_skip", "sumnet_6branch"} <= names
    assert not any(n.startswith("_") for n in names)


@pytest.fixture(params=MODEL_SPECS, ids=lambda p: p.stem)
def compiled(request: pytest.FixtureRequest) -> tuple[Spec, Any]:
    return _compiled(request.param)


def test_output_shapes_match_ir(compiled: tuple[Spec, Any]) -> None:
    spec, model = compiled
    graph = spec.graph
    assert sorted(model.output.keys()) == sorted(o.name for o in graph.outputs)
    for o in graph.outputs:
        assert tuple(model.output[o.name].shape) == graph.node(o.source).out.shape, o.name
    for n in graph.inputs:
        assert tuple(model.input[n.name].shape) == n.out.shape, n.name


def _live(spec: Spec) -> set[str]:
    """Names of the nodes some output depends on (Keras drops all others)."""
    graph, seen = spec.graph, set()
    todo = [o.source for o in graph.outputs]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.node(name).inputs)
    return seen


def _keras_layers(spec: Spec) -> set[str]:
    """The IR nodes that are Keras layers: live ones, where a layer that shares another's
    weights is that owner's layer called again (the owner may be unused itself)."""
    graph = spec.graph
    live = _live(spec)
    return ({n for n in live if not graph.node(n).share}
            | {graph.node(n).share for n in live if graph.node(n).share})


def test_layer_names_are_keras_names(compiled: tuple[Spec, Any]) -> None:
    spec, model = compiled
    # Keras orders layers by its own topological sort, so compare as sets
    expected = {keras_name(n) for n in _keras_layers(spec)}
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert set(names) == expected


@pytest.mark.parametrize("path", MODEL_SPECS, ids=lambda p: p.stem)
def test_every_layer_reaches_an_output(path: Path) -> None:
    spec = load_spec(path)
    # a module instance computes all the module's outputs and a spec need not use each
    # (RED-Net: step 1's 68-map head, the last step's feedback): only plain layers count
    live = _live(spec)
    dead = [n.name for n in spec.graph.nodes if n.name not in live and not n.scope]
    assert dead == [], f"layers no output depends on (Keras drops them): {dead}"


def test_param_count_matches_ir(compiled: tuple[Spec, Any]) -> None:
    spec, model = compiled
    ir_total, _ = param_summary(spec.graph, DEFAULT_OPS)
    assert model.count_params() == ir_total
    # per layer too, so a mismatch names the culprit
    types, live = spec.graph.types(), _keras_layers(spec)
    for n in spec.graph.nodes:
        if n.name not in live:
            continue  # not in the Keras model; test_every_layer_reaches_an_output flags it
        opdef = DEFAULT_OPS.get(n.op)
        ir_count = opdef.count_params(n.params, tuple(types[i] for i in n.inputs), n.out)
        assert model.get_layer(keras_name(n.name)).count_params() == ir_count, n.name


# Models too costly for a CPU forward pass in a unit test run one shrunk with --set
# overrides (widths/depths only: the same ops and wiring).
FORWARD_MAX_FLOPS = 3e9  # per example
SHRINK = {"lgcn": ("filters=16", "local_depth=3", "local_wide=1", "global_depth=2",
                   "kernel_size=15"),
          "rednet": ("size=64", "widths=[8, 16, 16, 32, 32]"),
          "rednet_resnet": ("size=64", "res_widths=[4, 8, 8, 8]", "blocks=[1, 1, 1, 1]",
                            "stem=8"),
          "rednet_video": ("size=64", "widths=[8, 16, 16, 32, 32]", "id_channels=16",
                           "lstm_units=16"),
          "rcn_300w_joint": ("den_width=16",)}


def test_forward_pass_is_finite_and_normalised(compiled: tuple[Spec, Any]) -> None:
    spec, model = compiled
    if spec.name in SHRINK:
        spec = load_spec(spec.file, SHRINK[spec.name])
        model = lower_to_keras(spec.graph)
    flops = param_summary(spec.graph, DEFAULT_OPS)[1]
    assert flops <= FORWARD_MAX_FLOPS, f"{spec.name}: {flops / 1e9:.1f} GFLOPs; add to SHRINK"
    rng = np.random.default_rng(0)
    batch = {n.name: rng.standard_normal((2, *n.out.shape[1:])).astype(n.out.dtype)
             for n in spec.graph.inputs}
    outs = model(batch, training=False)
    for o in spec.graph.outputs:
        y = keras.ops.convert_to_numpy(outs[o.name])
        assert y.shape == (2, *spec.graph.node(o.source).out.shape[1:]), o.name
        assert np.isfinite(y).all(), o.name
        if spec.graph.node(o.source).op == "spatial_softmax":
            assert (y >= 0).all()
            # float32 sums over up to 6,400 pixels
            np.testing.assert_allclose(y.sum(axis=(1, 2)), 1.0, atol=1e-4, err_msg=o.name)
            # a real distribution, not a constant map: the two images differ
            assert not np.allclose(y[0], y[1])
