"""`if:` on an output entry: a variant switched off by a param drops its output (and
its loss) with the layers it reads, e.g. RED-Net's identity head."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.api import load_spec, load_spec_text
from compiler.diagnostics import SpecError

SPEC = """version: 1
name: guarded
params: {extra: false}
inputs:
  image: {shape: [16, 16, 1]}
layers:
  - {name: head, op: conv2d, in: [image], filters: 5, kernel_size: 1}
  - {name: prob, op: spatial_softmax, in: [head]}
  - {name: aux, op: conv2d, in: [image], filters: 5, kernel_size: 1, if: $extra}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
  aux: {from: aux, loss: heatmap_l2, if: $extra}
"""


def test_an_output_switched_off_is_dropped_with_its_layer() -> None:
    off = load_spec_text(SPEC, "g.yaml")
    assert [o.name for o in off.graph.outputs] == ["heatmaps"]
    on = load_spec_text(SPEC, "g.yaml", ["extra=true"])
    assert [(o.name, o.loss) for o in on.graph.outputs] == [
        ("heatmaps", "spatial_softmax_nll"), ("aux", "heatmap_l2")]


def test_a_non_bool_guard_is_a_located_error() -> None:
    with pytest.raises(SpecError, match="`if` must be true or false") as info:
        load_spec_text(SPEC.replace("if: $extra}\n  \n", "").replace(
            "loss: heatmap_l2, if: $extra}", "loss: heatmap_l2, if: 3}"), "g.yaml",
            ["extra=true"])
    assert "g.yaml:12" in str(info.value)


def test_rednet_video_identity_head_is_an_override() -> None:
    spec = Path(__file__).resolve().parents[3] / "specs" / "rednet_video.yaml"
    assert "identity" not in [o.name for o in load_spec(spec).graph.outputs]
    on = load_spec(spec, ["identity=true", "n_identities=7"])
    out = next(o for o in on.graph.outputs if o.name == "identity")
    assert out.loss == "identity_xent"
    assert on.graph.node(out.source).out.shape == (None, 3, 7)  # every time step
