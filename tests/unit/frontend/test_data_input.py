"""Issue 10: data.size/data.channels default to the spec's image input, and an explicit
mismatch is a `netspec check` error at the value's line (or `--set`) naming the input."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.api import load_spec, load_spec_text
from compiler.diagnostics import SourceLoc, SpecError
from netspec.cli import main
from netspec.sections import check_sections
from runtime.data.config import data_config_for_input, image_input

# The README's example spec, verbatim: a 32x32 input and no data section.
README_SPEC = """version: 1
name: tiny
params: {size: 32, width: 16}
inputs:
  image: {shape: [$size, $size, 1]}          # batch dimension implicit, NHWC
layers:
  - for: {i: [1, 2, 3], f: [16, 32, 48]}      # loop variables are zipped
    layers:
      - {name: "enc${i}.conv", op: conv2d, in: ["${'image' if i == 1 else 'enc' + str(i-1) + '.pool'}"],
         filters: $f, kernel_size: 3, activation: relu}
      - {name: "enc${i}.pool", op: max_pool2d, in: ["enc${i}.conv"]}
  - {name: head, op: conv2d, in: [enc3.pool], filters: 5, kernel_size: 1}
  - {name: prob, op: spatial_softmax, in: [head]}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
"""  # noqa: E501 - verbatim


def section_error(text: str, overrides: tuple[str, ...] = ()) -> SpecError:
    spec = load_spec_text(text, "t.yaml", overrides)
    with pytest.raises(SpecError) as info:
        check_sections(spec)
    return info.value


def test_readme_spec_checks_and_trains_at_its_input_size(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    from runtime.datasets import spec_data_config

    path = tmp_path / "tiny.yaml"
    path.write_text(README_SPEC)
    assert main(["check", str(path)]) == 0
    assert ": ok: 8 layers" in capsys.readouterr().out
    cfg = spec_data_config(load_spec(path))
    assert (cfg.size, cfg.channels) == (32, 1)
    rgb = load_spec(path, ["inputs.image.shape=[48, 48, 3]"])
    assert (spec_data_config(rgb).size, spec_data_config(rgb).channels) == (48, 3)


def test_explicit_size_mismatch_blames_the_set_that_made_it() -> None:
    err = section_error(README_SPEC, ("data.size=64",))
    (d,) = err.diagnostics
    assert d.loc == SourceLoc("--set data.size=64")
    assert d.message == "data.size is 64, but input 'image' is 32x32"
    assert d.notes == ("input 'image' is float32[?, 32, 32, 1], declared at t.yaml:5:3",)
    assert "drop data.size" in (d.hint or "")


def test_mismatch_in_the_file_points_at_the_key_and_reports_both_keys() -> None:
    err = section_error(README_SPEC + "data:\n  size: 80\n  channels: 3\n")
    assert [(str(d.loc), d.message) for d in err.diagnostics] == [
        ("t.yaml:17:3", "data.size is 80, but input 'image' is 32x32"),
        ("t.yaml:18:3", "data.channels is 3, but input 'image' has 1 channel")]


def test_fit_uses_the_same_check() -> None:
    from runtime.datasets import spec_data_config

    spec = load_spec_text(README_SPEC, "t.yaml", ["data.channels=3"])
    with pytest.raises(SpecError, match="data.channels is 3, but input 'image' has 1 channel"):
        spec_data_config(spec)


def test_inputs_the_pipeline_cannot_feed_are_reported_at_the_input() -> None:
    err = section_error(README_SPEC.replace("[$size, $size, 1]", "[32, 24, 2]")
                        + "data: {dataset: synthetic}\n")
    assert [(d.loc.line, d.message.split(", but ")[1]) for d in err.diagnostics] == [
        (5, "the data pipeline only makes square images"),
        (5, "the data pipeline only makes 1 (gray) or 3 (RGB) channels")]


def test_unknown_sizes_keep_the_defaults() -> None:
    spec = load_spec_text(README_SPEC.replace("[$size, $size, 1]", "[null, null, 1]"), "t.yaml")
    cfg = data_config_for_input({"size": 64}, image_input(spec.graph))
    assert (cfg.size, cfg.channels) == (64, 1)
    assert data_config_for_input(None, None).size == 80


CLIP_SPEC = """version: 1
name: clip_size
inputs:
  clip: {shape: [3, 32, 32, 1]}
layers:
  - {name: conv1, op: time_distributed, in: [clip], layer: {op: conv2d, filters: 4, kernel_size: 3}}
  - {name: prob, op: time_distributed, in: [conv1], layer: {op: spatial_softmax}}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
data: {size: 48}
"""  # noqa: E501 - one line per layer


def test_clip_frames_are_checked_against_data_size() -> None:
    """A clip input [T, H, W, C]: data.size describes its frames, so 48 vs 32x32 frames is
    a check error at the value, not a crash in the clip pipeline."""
    err = section_error(CLIP_SPEC)
    (d,) = err.diagnostics
    assert d.loc.line == 10 and "data.size is 48, but input 'clip[t]' is 32x32" in d.message
    spec = load_spec_text(CLIP_SPEC.replace("data: {size: 48}", "data: {size: 32}"), "t.yaml")
    check_sections(spec)  # frames agree: no error
