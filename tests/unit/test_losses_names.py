"""compiler/losses.py: loss names, argument schemas and output-shape checks (TF-free)."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest

from compiler.losses import COORDS, HEATMAP, LOSSES, check_loss, coerce_loss_args

HEATMAP_LOSSES = sorted(n for n, s in LOSSES.items() if s.kind == HEATMAP)


def test_names_and_kinds() -> None:
    assert set(LOSSES) == {"spatial_softmax_nll", "heatmap_l2", "sigmoid_xent", "coord_l2",
                           "lgcn_weighted_l2", "rar_refine", "rar_attention", "identity_xent"}
    assert LOSSES["identity_xent"].kind == "classes"
    assert LOSSES["coord_l2"].kind == COORDS
    assert LOSSES["rar_refine"].kind == LOSSES["rar_attention"].kind == "rar_steps"
    assert all(LOSSES[n].kind == HEATMAP for n in HEATMAP_LOSSES)
    assert all(s.doc and s.name == n for n, s in LOSSES.items())


@pytest.mark.parametrize("name", HEATMAP_LOSSES)
def test_heatmap_losses_accept_matching_maps(name: str) -> None:
    assert check_loss(name, {}, (None, 40, 40, 68), 68) == []
    assert check_loss(name, None, (None, 40, 40, 68), None) == []


def test_coords_loss_accepts_2k() -> None:
    assert check_loss("coord_l2", {}, (None, 10), 5) == []


def test_misspelt_name_gets_did_you_mean() -> None:
    (msg,) = check_loss("spatial_sofmax_nll", {}, (None, 8, 8, 5), 5)
    assert "unknown loss 'spatial_sofmax_nll'" in msg
    assert "did you mean 'spatial_softmax_nll'" in msg


def test_nonsense_name_lists_the_losses() -> None:
    (msg,) = check_loss("zzz", {}, (None, 8, 8, 5), 5)
    assert "coord_l2" in msg and "heatmap_l2" in msg


def test_heatmap_loss_on_coords_output() -> None:
    (msg,) = check_loss("heatmap_l2", {}, (None, 10), 5)
    assert ("needs heat-maps [batch, H, W, K] (or [batch, T, H, W, K] per time step), found "
            "rank 2 output [?, 10]") in msg


def test_coords_loss_on_heatmap_output() -> None:
    (msg,) = check_loss("coord_l2", {}, (None, 8, 8, 5), 5)
    assert "needs coordinates [batch, 2K] (or [batch, T, 2K] per time step), found rank 4" in msg


def test_odd_coordinate_count() -> None:
    (msg,) = check_loss("coord_l2", {}, (None, 9), None)
    assert "even coordinate count" in msg


def test_channel_count_must_equal_landmarks() -> None:
    (msg,) = check_loss("spatial_softmax_nll", {}, (None, 80, 80, 5), 68)
    assert "has 5 channels, but the data has 68 landmarks" in msg
    (msg,) = check_loss("coord_l2", {}, (None, 10), 68)
    assert "has 5 coordinate pairs, but the data has 68 landmarks" in msg


def test_a_landmark_subset_sets_the_channel_count() -> None:
    """RED-Net's 7-map detection step trains on 68-point data through args.landmarks."""
    seven = [36, 39, 42, 45, 30, 48, 54]
    assert check_loss("sigmoid_xent", {"landmarks": seven}, (None, 64, 64, 7), 68) == []
    (msg,) = check_loss("sigmoid_xent", {"landmarks": seven}, (None, 64, 64, 68), 68)
    assert "has 68 channels, but args.landmarks names 7 landmarks" in msg
    (msg,) = check_loss("heatmap_l2", {"landmarks": [0, 68]}, (None, 8, 8, 2), 68)
    assert "index 68 is out of range for data with 68 landmarks" in msg
    (msg,) = check_loss("coord_l2", {"landmarks": [3, 3]}, (None, 4), None)
    assert "expected distinct indices, found [3, 3]" in msg
    (msg,) = check_loss("heatmap_l2", {"landmarks": [1, 2], "keypoint_weights": [1.0]},
                        (None, 8, 8, 2), 68)
    assert "'keypoint_weights': expected 2 values, found 1" in msg


def test_unknown_arg_with_hint() -> None:
    (msg,) = check_loss("heatmap_l2", {"sigms": 2.0}, (None, 8, 8, 5), 5)
    assert "unknown param 'sigms'" in msg and "did you mean 'sigma'" in msg


@pytest.mark.parametrize(("name", "args", "fragment"), [
    ("heatmap_l2", {"sigma": 0}, "param 'sigma' must be >="),
    ("heatmap_l2", {"sigma": "wide"}, "param 'sigma': expected float"),
    ("spatial_softmax_nll", {"from_logits": "yes"}, "expected bool"),
    ("sigmoid_xent", {"pos_weight": "auto"}, "param 'pos_weight': expected"),
    ("sigmoid_xent", {"pos_weight": -2.0}, "must be > 0 or 'balanced'"),
    ("sigmoid_xent", {"target": "box"}, "param 'target': expected one of gaussian, disk"),
    ("coord_l2", {"normalize": "sum"}, "param 'normalize'"),
    ("lgcn_weighted_l2", {"kernel_size": 44}, "param 'kernel_size': must be odd"),
    ("lgcn_weighted_l2", {"kernel": "gauss"}, "param 'kernel'"),
])
def test_bad_args(name: str, args: dict, fragment: str) -> None:
    shape = (None, 10) if LOSSES[name].kind == COORDS else (None, 8, 8, 5)
    problems = check_loss(name, args, shape, 5)
    assert len(problems) == 1 and fragment in problems[0], problems


def test_keypoint_weights_length_and_sign() -> None:
    assert check_loss("heatmap_l2", {"keypoint_weights": [1, 2, 0.5]}, (None, 8, 8, 3), 3) == []
    (msg,) = check_loss("heatmap_l2", {"keypoint_weights": [1, 2]}, (None, 8, 8, 3), 3)
    assert "expected 3 values, found 2" in msg
    (msg,) = check_loss("heatmap_l2", {"keypoint_weights": [1, -2, 1]}, (None, 8, 8, 3), 3)
    assert "must be >= 0.0" in msg


def test_coerce_gives_defaults_and_tuples() -> None:
    args, problems = coerce_loss_args("sigmoid_xent", {"keypoint_weights": [1, 2]})
    assert problems == []
    assert args.pos_weight == "balanced" and args.sigma == 1.0 and args.target == "gaussian"
    assert args.keypoint_weights == (1.0, 2.0)
    args, _ = coerce_loss_args("spatial_softmax_nll", {})
    assert (args.from_logits, args.sum_over_keypoints) == (False, True)
    args, _ = coerce_loss_args("lgcn_weighted_l2", {})
    assert (args.kernel, args.kernel_size, args.scale) == ("lgcn", 45, 0.05)


def test_metadata_does_not_import_tensorflow(repo: Path) -> None:
    code = ("import sys, compiler.losses, runtime.evaluate.metrics, runtime.evaluate.decode; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
