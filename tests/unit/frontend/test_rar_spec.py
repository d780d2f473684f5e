"""specs/rar.yaml (TF-free): the feature network's pixel correspondence, the refinement
steps sharing one weight set, the losses each ablation attaches, and located errors for a
mis-wired refinement."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.api import load_spec, load_spec_text
from compiler.diagnostics import SpecError

SPEC = Path(__file__).resolve().parents[3] / "specs" / "rar.yaml"


def losses(*sets: str) -> dict[str, str | None]:
    return {o.name: o.loss for o in load_spec(SPEC, sets).graph.outputs}


def test_conv8_has_pixel_correspondence_and_the_steps_share_weights() -> None:
    g = load_spec(SPEC).graph
    assert g.node("prob").out.shape == (None, 80, 80, 68)
    assert g.node("sd").out.shape == g.node("s0").out.shape == (None, 68, 2)
    assert g.node("s0").op == "robust_init_shape"
    assert g.node("steps_pack").out.shape == (None, 3, 68, 7)
    assert g.node("final").out.shape == (None, 136)
    shared = {n.name: n.share for n in g.nodes if n.name.startswith("rec.s3.") and n.share}
    assert set(shared) == {"rec.s3.a_new", "rec.s3.logits", "rec.s3.r_new", "rec.s3.r_out"}
    assert all(v == k.replace("s3", "s1") for k, v in shared.items())


def test_the_ablations_attach_the_right_losses() -> None:
    full = {"heatmaps": "spatial_softmax_nll", "refine": "rar_refine",
            "attention": "rar_attention", "final": None}
    assert losses() == full
    assert losses("attention=surrogate") == full
    assert losses("attention=none") == {**full, "attention": None}
    assert losses("steps=0") == {**full, "refine": None, "attention": None}
    g = load_spec(SPEC, ["attention=none"]).graph
    assert g.node("rec.s1.gamma").params.mode == "uniform"
    assert not any(n.op == "lstm_cell" and ".a_new" in n.name for n in g.nodes)
    surrogate = load_spec(SPEC, ["attention=surrogate"])
    assert surrogate.graph.node("rec.s1.choice").params.mode == "argmax"
    (att,) = [o for o in surrogate.graph.outputs if o.name == "attention"]
    assert att.loss_args["mode"] == "surrogate"
    assert load_spec(SPEC, ["robust_init=false"]).graph.node("s0").op == "identity"
    assert load_spec(SPEC, ["steps=5"]).graph.node("steps_pack").out.shape[1] == 5
    # the refinement trains the trunk only end to end; without steps it has no features
    assert g.node("sip_in").op == "stop_gradient"
    assert load_spec(SPEC, ["end_to_end=true"]).graph.node("sip_in").op == "identity"
    assert not any(n.name.startswith("sip") for n in load_spec(SPEC, ["steps=0"]).graph.nodes)


BASE = """version: 1
name: wiring
inputs: {pts: {shape: [4, 2]}, state: {shape: [%d]}}
layers:
  - {name: flat, op: flatten, in: [pts]}
  - {name: cell, op: lstm_cell, in: [flat, state], units: 3}
  - {name: h, op: split, in: [cell], start: 0, size: 3}
  - {name: logits, op: dense, in: [h], units: 4}
  - {name: choice, op: attention_choice, in: [logits]}
  - {name: gamma, op: attention_weights, in: [pts, choice]}
  - {name: pack, op: pack_step, in: [pts, pts, gamma, logits, choice]}
  - {name: steps, op: stack_steps, in: [pack, pack]}
outputs:
  refine: {from: %s, loss: rar_refine}
"""


def test_a_well_wired_step_checks() -> None:
    spec = load_spec_text(BASE % (6, "steps"), "w.yaml")
    assert spec.graph.node("steps").out.shape == (None, 2, 4, 7)


@pytest.mark.parametrize(("state", "source", "fragment"), [
    (5, "steps", "must be the state [batch, 6] (h then c, 2 x units)"),
    (6, "pack", "needs the stacked refinement steps [batch, T, K, 7]"),
])
def test_mis_wiring_is_a_located_error(state: int, source: str, fragment: str) -> None:
    with pytest.raises(SpecError) as e:
        load_spec_text(BASE % (state, source), "w.yaml")
    assert fragment in str(e.value) and "w.yaml:" in str(e.value)
