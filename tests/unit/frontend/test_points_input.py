"""A spec whose input is keypoints [K, 2] trains on shapes alone (RCN's denoiser): the
data section's mistakes for such a spec are `netspec check` errors, found without TF."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.api import load_spec
from compiler.diagnostics import SpecError
from netspec.sections import check_sections
from runtime.data.config import corrupt_config, data_config_for_graph, points_input

SPECS = Path(__file__).resolve().parents[3] / "specs"


def _errors(*overrides: str) -> str:
    spec = load_spec(SPECS / "rcn_denoise.yaml", overrides)
    with pytest.raises(SpecError) as info:
        check_sections(spec)
    return str(info.value)


def test_the_denoiser_spec_reads_keypoints_and_corrupts_35() -> None:
    spec = load_spec(SPECS / "rcn_denoise.yaml")
    check_sections(spec)
    node = points_input(spec.graph)
    assert node is not None and node.out.shape == (None, 68, 2)
    cfg = data_config_for_graph(spec.section("data"), spec.graph)
    assert (corrupt_config(cfg).count, cfg.crop, cfg.size) == (35, "landmarks", 80)
    assert points_input(load_spec(SPECS / "rcn_300w.yaml").graph) is None  # an image model


@pytest.mark.parametrize(("override", "expected"), [
    ("data.corrupt.count=69", "data.corrupt.count is 69, but input 'keypoints' has 68"),
    ("data.crop=none", "data.crop is none, but a keypoints input"),
    ("data.negatives={fraction: 0.2}", "data.negatives adds background images"),
    ("data.corrupt.mode=move", "expected one of uniform, drop"),
    ("data.corrupt.cout=3", "did you mean 'count'"),
])
def test_data_mistakes_for_a_keypoints_input_are_located_errors(override: str,
                                                                expected: str) -> None:
    assert expected in _errors(override)
