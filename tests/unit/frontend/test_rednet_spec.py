"""specs/rednet.yaml (TF-free): Table 1's encoder-decoder, the 7-point detection step,
shared weights across the recurrent steps and the ablation variants by --set."""

from __future__ import annotations

from pathlib import Path
import re

import pytest

from compiler.api import load_spec
from compiler.format import param_summary
from compiler.ops import DEFAULT_OPS

SPEC = Path(__file__).resolve().parents[3] / "specs" / "rednet.yaml"
SMALL = ("size=64", "widths=[8, 16, 16, 32, 32]")


def params(*sets: str) -> int:
    return param_summary(load_spec(SPEC, (*SMALL, *sets)).graph, DEFAULT_OPS)[0]


def test_table_1_shapes_and_response_maps_at_half_the_input() -> None:
    g = load_spec(SPEC).graph
    convs = [n for n in g.nodes if n.op == "conv2d" and n.name.startswith("rec.s1.enc.e")]
    assert len(convs) == 13  # VGG-16's 13 convolutions
    assert [g.node(f"rec.s1.enc.e{i}.pool").out.shape[1] for i in range(1, 6)] == [128, 64, 32,
                                                                             16, 8]
    assert [g.node(f"rec.s1.dec.d{j}.unpool").out.shape[1:] for j in range(1, 5)] == [
        (16, 16, 512), (32, 32, 512), (64, 64, 256), (128, 128, 128)]
    assert g.node("rec.s1.det").out.shape == (None, 128, 128, 7)
    assert g.node("rec.reg").out.shape == (None, 128, 128, 68)
    # step 2 sees the image and step 1's sigmoid detection maps at the input size
    assert g.node("rec.s2.cat").out.shape == (None, 256, 256, 3 + 7)


def test_the_detection_step_scores_the_seven_robust_points() -> None:
    spec = load_spec(SPEC)
    out = {o.name: o for o in spec.graph.outputs}
    one_based = [37, 40, 43, 46, 31, 49, 55]  # eye corners, nose tip, mouth corners (iBUG)
    assert list(out["detection"].loss_args["landmarks"]) == [i - 1 for i in one_based]
    assert out["detection"].loss == "sigmoid_xent" and out["detection"].source == "rec.s1.det"
    assert out["heatmaps"].loss == "heatmap_l2" and out["heatmaps"].source == "rec.reg"


def test_both_steps_use_one_weight_set() -> None:
    g = load_spec(SPEC, SMALL).graph
    owners = {n.name: n.share for n in g.nodes if n.name.startswith("rec.s2.")
              and n.op in ("conv2d", "batch_norm")}
    assert owners and all(v == k.replace("rec.s2.", "rec.s1.") for k, v in owners.items())


def test_ablations_by_override() -> None:
    recurrent = params()
    assert params("steps=1") == recurrent  # one-shot: the same weights, applied once
    assert params("share_steps=false") == 2 * recurrent  # cascade: a copy per step
    assert params("step_stats=true") > recurrent  # per-step BN statistics
    det = load_spec(SPEC, (*SMALL, "final_loss=sigmoid_xent", "final_args={sigma: 1.0}"))
    assert {o.name: o.loss for o in det.graph.outputs}["heatmaps"] == "sigmoid_xent"


def test_any_input_size_gives_maps_at_half_of_it() -> None:
    """72 is not a multiple of 32: the floor-pools drop a border, the unpools put zeros back."""
    g = load_spec(SPEC, ("size=72", "widths=[8, 16, 16, 32, 32]")).graph
    assert g.node("rec.s1.enc.e5.pool").out.shape[1:3] == (2, 2)
    assert g.node("rec.reg").out.shape == (None, 36, 36, 68)


VIDEO = SPEC.with_name("rednet_video.yaml")
VIDEO_SMALL = (*SMALL, "id_channels=16", "lstm_units=16")


def test_video_model_splits_the_bottleneck_and_runs_an_lstm_over_the_clip() -> None:
    g = load_spec(VIDEO, VIDEO_SMALL).graph
    assert g.inputs[0].out.shape == (None, 3, 64, 64, 3)
    assert g.node("rec.s1.e_id").out.shape == (None, 3, 2, 2, 16)
    assert g.node("rec.s1.e_pe").out.shape == (None, 3, 2, 2, 16)
    assert g.node("rec.s1.pe_vec").out.shape == (None, 3, 16)
    assert g.node("rec.s1.pe_lstm").out.shape == (None, 3, 32)  # both directions
    assert g.node("rec.s1.code").out.shape == (None, 3, 2, 2, 32)
    assert g.node("rec.reg").out.shape == (None, 3, 32, 32, 68)
    assert g.node("rec.s2.pe_lstm").share == "rec.s1.pe_lstm"


def test_the_video_model_warm_starts_from_the_image_model_by_layer_names() -> None:
    """Staged training (section 4): every weighted layer of rednet is in rednet_video
    under the same name; without the temporal part the two have the same weights."""
    def weighted(path: Path, sets: tuple[str, ...]) -> set[str]:
        g = load_spec(path, sets).graph
        return {n.name for n in g.nodes if n.op in ("conv2d", "batch_norm", "time_distributed")
                and not n.share}

    image, video = weighted(SPEC, SMALL), weighted(VIDEO, VIDEO_SMALL)
    assert image <= video
    assert params() == param_summary(load_spec(VIDEO, (*VIDEO_SMALL, "temporal=false")).graph,
                                     DEFAULT_OPS)[0]


RESNET = SPEC.with_name("rednet_resnet.yaml")


@pytest.mark.parametrize(("blocks", "units"), [("[3, 8, 36, 3]", 50), ("[3, 4, 6, 3]", 16)])
def test_resnet_variant_depth_is_a_param(blocks: str, units: int) -> None:
    """Table 2 (ResNet-152 stages) or the authors' code (ResNet-50): bottleneck units per
    stage, maps at size/4 ... size/32, a skip module per decoder scale, maps at size/2."""
    g = load_spec(RESNET, (f"blocks={blocks}",)).graph
    b = [int(v) for v in blocks.strip("[]").split(",")]
    found = [n.name for n in g.nodes if re.fullmatch(r"rec\.s1\.s\du\d+\.c1", n.name)]
    assert len(found) == units == sum(b)
    sizes = [g.node(f"rec.s1.s{i}u{b[i - 1]}.y").out.shape[1:] for i in range(1, 5)]
    assert sizes == [(64, 64, 256), (32, 32, 512), (16, 16, 1024), (8, 8, 2048)]
    assert [g.node(f"rec.s1.d{j}.out").out.shape[1:] for j in range(1, 5)] == [
        (16, 16, 1024), (32, 32, 512), (64, 64, 256), (128, 128, 128)]
    assert g.node("rec.reg").out.shape == (None, 128, 128, 68)
