"""`netspec diff`, the DOT/HTML pictures and the expanded-YAML dumper."""

from __future__ import annotations

from pathlib import Path
import re

import pytest
import yaml

from compiler.api import expanded_document, load_spec, load_spec_text
from compiler.diff import diff_graphs, diff_sections
from compiler.dump import dump_spec
from compiler.ops import DEFAULT_OPS
from compiler.render import to_dot, to_html
from compiler.yaml_loader import load_yaml

FAMILIES = {op.name: op.family for op in DEFAULT_OPS}
A = """version: 1
name: a
inputs: {image: {shape: [8, 8, 1]}}
layers:
  - {name: c1, op: conv2d, in: image, filters: 4, kernel_size: 3}
  - {name: gone, op: identity, in: c1}
  - {name: head, op: conv2d, in: c1, filters: 2, kernel_size: 1}
outputs:
  maps: {from: head, loss: spatial_softmax_nll, args: {from_logits: true}}
  extra: {from: c1}
"""
B = """version: 1
name: b
inputs: {image: {shape: [8, 8, 1]}}
layers:
  - {name: c1, op: conv2d, in: image, filters: 8, kernel_size: 3}
  - {name: added, op: max_pool2d, in: c1, pool_size: 2}
  - {name: head, op: identity, in: added}
outputs:
  maps: {from: head, loss: spatial_softmax_nll, weight: 2, args: {from_logits: true}}
  new: {from: added}
"""


def test_diff_lists_added_removed_and_changed() -> None:
    a = load_spec_text(A, "a.yaml").graph
    b = load_spec_text(B, "b.yaml").graph
    assert diff_graphs(a, b) == [
        "- gone: identity(c1) float32[?, 8, 8, 4]",
        "+ added: max_pool2d(c1) float32[?, 4, 4, 8]",
        "~ c1: filters 4 -> 8; shape float32[?, 8, 8, 4] -> float32[?, 8, 8, 8]",
        "~ head: op conv2d -> identity; inputs (c1) -> (added); "
        "shape float32[?, 8, 8, 2] -> float32[?, 4, 4, 8]",
        "- output extra: from c1 loss None",
        "~ output maps: head/spatial_softmax_nll/x1 -> head/spatial_softmax_nll/x2",
        "+ output new: from added loss None",
    ]
    assert diff_graphs(a, a) == []


def test_diff_of_real_specs(repo: Path) -> None:
    five = load_spec(repo / "specs" / "rcn_5branch.yaml").graph
    six = load_spec(repo / "specs" / "rcn_6branch.yaml").graph
    lines = diff_graphs(five, six)
    assert "+ enc6.pool: max_pool2d(enc5.conv) float32[?, 2, 2, 48]" in lines
    assert "~ br5.conv1: inputs (enc5.conv) -> (br5.cat)" in lines
    assert not any(line.startswith("-") for line in lines)  # 6 branches only add
    assert diff_graphs(six, five)[0].startswith("- enc6.pool")


def test_diff_sections_names_key_paths() -> None:
    a = {"train": {"epochs": 30, "optimizer": "adadelta", "rho": 0.95},
         "data": {"augment": {"rotation": 40.0, "mirror": True}}}
    b = {"train": {"epochs": 3, "optimizer": {"name": "adam"}},
         "data": {"augment": {"rotation": 40, "mirror": 1}, "limit": 100},
         "eval": {"shape_model": True}}
    assert diff_sections(a, b) == [
        "~ train.epochs: 30 -> 3",
        '~ train.optimizer: "adadelta" -> {"name": "adam"}',
        "- train.rho: 0.95",
        "~ data.augment.mirror: true -> 1",  # 40.0 vs 40 is no difference, true vs 1 is
        "+ data.limit: 100",
        '+ eval: {"shape_model": true}',
    ]
    assert diff_sections(a, a) == []


def test_netspec_diff_compares_run_sections_and_exits_like_diff(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    (tmp_path / "a.yaml").write_text(A)
    (tmp_path / "b.yaml").write_text(A + "train: {epochs: 3}\n")
    a, b = str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")
    assert main(["diff", a, a]) == 0
    assert capsys.readouterr().out == (
        "specs are identical (graph and data/train/eval/search sections)\n")
    assert main(["diff", a, b]) == 1  # the graphs are the same; train differs
    assert capsys.readouterr().out == f"--- {a}\n+++ {b}\n+ train: {{\"epochs\": 3}}\n"
    assert main(["diff", a, str(tmp_path / "missing.yaml")]) == 2
    assert "spec file not found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def graphs(repo: Path) -> list:  # noqa: ANN401 - Graphs
    return [load_spec(repo / "specs" / f"{s}.yaml").graph
            for s in ("rcn_6branch", "sumnet_5branch", "rcn_6branch_skip")]


def test_dot_has_every_layer_and_edge(graphs: list) -> None:
    for g in graphs:
        dot = to_dot(g, FAMILIES)
        assert dot.startswith(f'digraph "{g.name}" {{') and dot.endswith("}\n")
        for n in (*g.inputs, *g.nodes):
            assert f'  "{n.name}" [label="{n.name}\\n{n.op}\\n{n.out}"' in dot
        edges = re.findall(r'^  "[^"]+" -> "[^"]+";$', dot, flags=re.M)
        assert len(edges) == sum(len(n.inputs) for n in g.nodes) + len(g.outputs)
        assert '"head.prob" -> "out:heatmaps";' in dot


def test_html_has_every_layer_and_needs_nothing(graphs: list) -> None:
    for g in graphs:
        page = to_html(g, FAMILIES)
        assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
        boxes = re.findall(r'font-weight="bold">([^<]+)</text>', page)
        assert sorted(boxes) == sorted(n.name for n in (*g.inputs, *g.nodes))
        outs = re.findall(r'font-style="italic">([^<]+)</text>', page)
        assert sorted(outs) == sorted(o.name for o in g.outputs)
        edges = re.findall(r'<path class="e" data-s="([^"]+)" data-t="([^"]+)"', page)
        assert sorted(edges) == sorted([(i, n.name) for n in g.nodes for i in n.inputs]
                                       + [(o.source, f"out:{o.name}") for o in g.outputs])
        assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "src=" not in page and "href=" not in page  # no external script/style


def test_html_places_each_layer_below_its_inputs(graphs: list) -> None:
    g = graphs[0]
    page = to_html(g, FAMILIES)
    y = {m[1]: float(m[0]) for m in re.findall(
        r'<rect x="[^"]+" y="([^"]+)".*?font-weight="bold">([^<]+)</text>', page)}
    for n in g.nodes:
        assert all(y[i] < y[n.name] for i in n.inputs)


def test_dump_is_readable_and_round_trips(repo: Path) -> None:
    doc = expanded_document(load_spec(repo / "specs" / "rcn_6branch.yaml"))
    text = dump_spec(doc)
    assert yaml.safe_load(text) == doc
    assert load_yaml(text, "x.yaml") == doc  # also through netspec's strict loader
    layer_lines = [x for x in text.splitlines() if x.startswith("  - {name: ")]
    assert len(layer_lines) == len(doc["layers"])  # one layer per line


def test_dump_quotes_strings_yaml_would_misread() -> None:
    doc = {"version": 1, "params": {"mode": "off", "answer": "yes", "num": "3",
                                    "empty": "", "null_word": "null", "colon": "a: b"}}
    text = dump_spec(doc)
    assert load_yaml(text, "x.yaml") == doc
