"""Golden files for every model spec in specs/: the `netspec show` IR table and the
`netspec expand` YAML; plus expansion idempotence (expanded text -> same graph).

A spec is a model (not a fragment) when its merged document has `layers`.
Regenerate with `pytest tests/golden --update-goldens` and review the diff.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from golden_files import check_golden, remove_stale
import pytest

from compiler.api import Spec, expanded_document, load_spec, load_spec_text
from compiler.dump import dump_spec
from compiler.format import format_graph
from compiler.ir import Graph
from compiler.ops import DEFAULT_OPS
from compiler.spec_files import load_document, read_text

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"
GOLDEN = Path(__file__).resolve().parent


def _model_specs() -> list[str]:
    """Stems relative to specs/ ('rcn_6branch', 'examples/recurrent_tiny')."""
    names = []
    for path in sorted([*SPECS.glob("*.yaml"), *SPECS.glob("examples/*.yaml")]):
        if "layers" in load_document(read_text(path), str(path)):
            names.append(path.relative_to(SPECS).with_suffix("").as_posix())
    return names


MODEL_SPECS = _model_specs()


@cache
def _spec(stem: str) -> Spec:
    return load_spec(f"specs/{stem}.yaml")  # relative: goldens carry no machine paths


@cache
def _expanded_text(stem: str) -> str:
    return dump_spec(expanded_document(_spec(stem)))


def signature(graph: Graph) -> tuple[Any, ...]:
    """Everything about a typed graph except source locations."""
    return (graph.name,
            [(n.name, n.op, n.inputs, n.params, n.out) for n in (*graph.inputs, *graph.nodes)],
            [(o.name, o.source, o.loss, o.weight, dict(o.loss_args)) for o in graph.outputs])


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def test_model_specs_found() -> None:
    assert {"rcn_6branch", "rcn_5branch", "sumnet_5branch"} <= set(MODEL_SPECS)
    assert "_landmarks5" not in MODEL_SPECS  # a fragment: templates and sections only
    assert {"examples/recurrent_tiny", "examples/per_frame_tiny"} <= set(MODEL_SPECS)


@pytest.mark.parametrize("stem", MODEL_SPECS)
def test_ir_golden(stem: str, update_goldens: bool) -> None:
    check_golden(GOLDEN / "ir" / f"{stem}.txt", format_graph(_spec(stem).graph, DEFAULT_OPS),
                 update_goldens)


@pytest.mark.parametrize("stem", MODEL_SPECS)
def test_expanded_golden(stem: str, update_goldens: bool) -> None:
    check_golden(GOLDEN / "expanded" / f"{stem}.yaml", _expanded_text(stem), update_goldens)


@pytest.mark.parametrize("stem", MODEL_SPECS)
def test_expansion_is_idempotent(stem: str) -> None:
    text = _expanded_text(stem)
    again = load_spec_text(text, f"{stem}.expanded.yaml")
    assert signature(again.graph) == signature(_spec(stem).graph)
    assert dump_spec(expanded_document(again)) == text
    assert again.sections == _spec(stem).sections
    # the expanded form is flat: no macros and no substitutions left
    assert all(not {"for", "use", "if"} & set(layer) for layer in
               expanded_document(again)["layers"])
    assert "$" not in text


def test_no_stale_goldens(update_goldens: bool) -> None:
    stale = remove_stale(GOLDEN / "ir", "*.txt", {f"{s}.txt" for s in MODEL_SPECS},
                         update_goldens)
    stale += remove_stale(GOLDEN / "expanded", "*.yaml", {f"{s}.yaml" for s in MODEL_SPECS},
                          update_goldens)
    assert not stale, f"golden files for specs that no longer exist: {stale}"


def test_ir_golden_pins_shapes_and_counts() -> None:
    """The rcn_6branch golden is the paper's network: spot-check what it pins."""
    text = (GOLDEN / "ir" / "rcn_6branch.txt").read_text()
    assert "enc6.pool    max_pool2d(enc5.conv)" in text
    assert "float32[?, 2, 2, 48]" in text  # 5x5 -> 2x2 by the 3x3 stride-2 pool
    assert text.splitlines()[-1].startswith("total: 40 layers, 333,333 params")
