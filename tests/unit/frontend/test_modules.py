"""Spec language v1.1 modules, without TensorFlow: instance naming, weight sharing and its
checks, unrolled recurrence (recurrent / one-shot / cascade parameter counts), per-frame
instances, recurrent batch norm, and the checks of entries excluded by `if:`."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.api import load_spec, load_spec_text
from compiler.diagnostics import SpecError
from compiler.format import format_graph, node_counts, param_summary, rows_per_example
from compiler.ops import DEFAULT_OPS

REPO = Path(__file__).resolve().parents[3]
RECURRENT = REPO / "specs" / "examples" / "recurrent_tiny.yaml"
PER_FRAME = REPO / "specs" / "examples" / "per_frame_tiny.yaml"

BLOCK = """
version: 1
name: m
inputs:
  image: {shape: [32, 32, 1]}
modules:
  block:
    inputs:
      x: {shape: [null, null, 1]}
    outputs: {y: conv2}
    layers:
      - {name: conv1, op: conv2d, in: [x], filters: 4, kernel_size: 3, activation: relu}
      - {name: conv2, op: conv2d, in: [conv1], filters: 1, kernel_size: 3}
layers:
  - {name: a, op: module, module: block, in: [image]}
  - {name: b, op: module, module: block, in: {x: a.y}%s}
  - {name: head, op: conv2d, in: [b.y], filters: 5, kernel_size: 1}
  - {name: prob, op: spatial_softmax, in: [head]}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
"""
BLOCK_PARAMS = (1 * 9 * 4 + 4) + (4 * 9 * 1 + 1)  # conv1 + conv2
HEAD_PARAMS = 1 * 5 + 5


def params(spec) -> int:  # noqa: ANN001 - compiler.api.Spec
    return param_summary(spec.graph, DEFAULT_OPS)[0]


def test_instances_are_named_and_outputs_addressable() -> None:
    spec = load_spec_text(BLOCK % "", "m.yaml")
    names = [n.name for n in spec.graph.nodes]
    assert names[:4] == ["a.x", "a.conv1", "a.conv2", "a.y"]
    assert spec.graph.node("b.x").inputs == ("a.y",)
    assert spec.graph.node("a.conv1").scope[0].startswith(
        "in module 'block' (m.yaml:7:3) as 'a' at m.yaml:15:5")


def test_a_shared_instance_has_one_weight_set_counted_once() -> None:
    own = load_spec_text(BLOCK % "", "m.yaml")
    shared = load_spec_text(BLOCK % ", share: a", "m.yaml")
    assert params(own) == 2 * BLOCK_PARAMS + HEAD_PARAMS
    assert params(shared) == BLOCK_PARAMS + HEAD_PARAMS
    assert shared.graph.node("b.conv1").share == "a.conv1"
    assert shared.graph.node("b.x").share is None  # no weights, nothing to share
    text = format_graph(shared.graph, DEFAULT_OPS)
    assert "= a.conv1" in text and "a.conv1 (40 params) <- b.conv1" in text


def test_expansion_is_idempotent_through_expanded_document() -> None:
    from compiler.api import expanded_document
    from compiler.dump import dump_spec

    spec = load_spec(RECURRENT)
    again = load_spec_text(dump_spec(expanded_document(spec)), "again.yaml")
    assert [n.name for n in again.graph.nodes] == [n.name for n in spec.graph.nodes]
    assert [n.share for n in again.graph.nodes] == [n.share for n in spec.graph.nodes]
    assert params(again) == params(spec)


@pytest.mark.parametrize(("overrides", "copies"), [
    ([], 1),                                       # 2-step recurrent: one weight set
    (["steps=1"], 1),                              # one-shot
    (["share_steps=false"], 2),                    # cascade: a weight set per step
    (["steps=3", "share_steps=false"], 3),
])
def test_recurrent_one_shot_and_cascade_parameter_counts(overrides: list[str], copies: int
                                                         ) -> None:
    one = params(load_spec(RECURRENT, ["steps=1"]))
    spec = load_spec(RECURRENT, overrides)
    assert params(spec) == copies * one
    steps = 3 if "steps=3" in overrides else (1 if "steps=1" in overrides else 2)
    assert spec.graph.node("rec.maps").inputs == (f"rec.s{steps}.maps",)
    if steps > 1:
        assert spec.graph.node("rec.s2.prev").inputs == ("rec.s1.maps",)
        shared = spec.graph.node("rec.s2.conv1").share
        assert shared == (None if copies > 1 else "rec.s1.conv1")


def test_recurrent_batch_norm_keeps_statistics_per_step_and_shares_the_affine() -> None:
    spec = load_spec(RECURRENT, ["step_stats=true"])
    g = spec.graph
    for k in (1, 2):
        stats = g.node(f"rec.s{k}.bn1_stats")
        assert stats.op == "batch_norm" and not stats.params.center and not stats.params.scale
        assert stats.share is None
        assert g.node(f"rec.s{k}.bn1").op == "channel_affine"
    assert g.node("rec.s2.bn1").share == "rec.s1.bn1"


def test_per_frame_module_runs_on_every_frame() -> None:
    g = load_spec(PER_FRAME).graph
    assert g.node("frames.image_frames").op == "fold_time"
    assert g.node("frames.image").out.shape == (None, 32, 32, 1)
    assert g.node("frames.maps").out.shape == (None, 3, 32, 32, 5)


def test_per_frame_flops_count_every_frame_of_the_clip() -> None:
    """The table's FLOPs are per batch row (a frame, inside fold/unfold_time); the total
    per example must be the clip's: 3 frames x the per-frame cost."""
    g = load_spec(PER_FRAME).graph
    types = g.types()
    rows = rows_per_example(g, types)
    assert rows["frames.image_frames"] == rows["frames.head"] == 3
    assert rows["frames.maps"] == 1
    per_frame = sum(node_counts(n, types, DEFAULT_OPS)[1] for n in g.nodes)
    assert param_summary(g, DEFAULT_OPS)[1] == 3 * per_frame
    text = format_graph(g, DEFAULT_OPS)
    assert "FLOPs per example (a clip of 3 frames; per-frame layers show FLOPs per frame)" in text
    assert "  frames: frame, 7 layers, 6,917 own params, 14.12M FLOPs per frame x 3 frames" in text


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "m.yaml")
    return str(info.value)


def test_share_across_modules_and_unknown_instances_are_errors() -> None:
    assert "share: 'zz' is not a module instance defined above" in _error(BLOCK % ", share: zz")
    two = BLOCK.replace("modules:\n", "modules:\n  other:\n    inputs: {x: {}}\n"
                        "    outputs: {y: c}\n    layers:\n"
                        "      - {name: c, op: conv2d, in: [x], filters: 1, kernel_size: 3}\n")
    two = two.replace("module: block, in: [image]", "module: other, in: [image]")
    assert "cannot share weights with 'a', an instance of 'other'" in _error(two % ", share: a")


def test_a_layer_shares_weights_by_name() -> None:
    text = BLOCK % "" + "  # plain layers share too\n"
    text = text.replace("  - {name: head, op: conv2d, in: [b.y], filters: 5, kernel_size: 1}",
                        "  - {name: head0, op: conv2d, in: [a.y], filters: 5, kernel_size: 1}\n"
                        "  - {name: head, op: conv2d, in: [b.y], filters: 5, kernel_size: 1,"
                        " share: head0}")
    spec = load_spec_text(text, "m.yaml")
    assert spec.graph.node("head").share == "head0"
    assert params(spec) == 2 * BLOCK_PARAMS + HEAD_PARAMS
    bad = text.replace("share: head0", "share: nothere")
    assert "shares weights with 'nothere', which is not a layer defined above" in _error(bad)


def test_module_inputs_outputs_and_weights_options() -> None:
    text = BLOCK % ", trainable: false, weights_from: runs/block"
    g = load_spec_text(text, "m.yaml").graph
    assert not g.node("b.conv1").trainable and g.node("a.conv1").trainable
    assert g.node("b.conv2").init_from == ("runs/block", "conv2")
    assert "'x' of module 'block'" in _error(BLOCK.replace("in: [image]", "in: {}") % "")
    assert "unknown key 'stepz'" in _error(BLOCK % ", stepz: 2")
    assert "feedback/init need `steps:`" in _error(BLOCK % ", feedback: {x: y}")


def test_excluded_entries_are_checked_for_ops_and_param_names() -> None:
    text = BLOCK % "" + ""
    text = text.replace("layers:\n  - {name: a,", "layers:\n  - {name: skipped, op: conv2d, in: "
                        "[image], filterz: 3, if: false}\n  - {name: a,")
    assert "layer 'skipped' (excluded by its `if:`): conv2d has no param 'filterz'" in _error(text)


def test_resolved_spec_keeps_sharing_freezing_and_weights_from() -> None:
    from compiler.api import expanded_document
    from compiler.dump import dump_spec

    spec = load_spec_text(BLOCK % ", share: a, trainable: false, weights_from: runs/x", "m.yaml")
    text = dump_spec(expanded_document(spec))
    assert "freeze: true" in text and "{run: runs/x, layer: conv1}" in text
    again = load_spec_text(text, "resolved.yaml").graph
    for n in spec.graph.nodes:
        m = again.node(n.name)
        assert (m.share, m.trainable, m.init_from) == (n.share, n.trainable, n.init_from)


def test_graph_draws_instances_as_clusters_and_feedback_dashed() -> None:
    from compiler.render import feedback_edges, to_dot, to_html

    families = {op.name: op.family for op in DEFAULT_OPS}
    g = load_spec(RECURRENT, ["steps=3"]).graph
    assert feedback_edges(g) == {("rec.s1.maps", "rec.s2.prev"), ("rec.s2.maps", "rec.s3.prev")}
    dot = to_dot(g, families)
    for inst in ("rec.s1", "rec.s2", "rec.s3"):
        assert f'subgraph "cluster_{inst}"' in dot
    assert '"rec.s2.maps" -> "rec.s3.prev" [style=dashed' in dot
    page = to_html(g, families)
    assert "module rec.s2" in page and 'stroke-dasharray="5,3"' in page
    assert not feedback_edges(load_spec_text(BLOCK % ", share: a", "m.yaml").graph)


def test_diff_reports_module_instances_and_sharing() -> None:
    from compiler.diff import diff_graphs

    lines = diff_graphs(load_spec(RECURRENT).graph,
                        load_spec(RECURRENT, ["steps=3", "share_steps=false"]).graph)
    assert "+ module instance rec.s3 (refine)" in lines
    assert "~ rec.s2.conv1: weights of rec.s1.conv1 -> its own" in lines
