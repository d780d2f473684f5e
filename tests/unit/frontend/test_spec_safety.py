"""Issue 10, spec front end safety: alias bombs, unsafe names, `extends:` of non-specs,
capped quotes, run sections that are not mappings and the memory warning."""

from __future__ import annotations

from pathlib import Path
import resource
import time

import pytest

from compiler.api import load_spec, load_spec_text
from compiler.diagnostics import MAX_FIELD, Diagnostic, SourceLoc, SpecError, cap_text, clip
from compiler.yaml_loader import MAX_ALIAS_EXPANSION, load_yaml, load_yaml_value

TINY = """version: 1
name: tiny
inputs:
  image: {shape: [16, 16, 1]}
layers:
  - {name: head, op: conv2d, in: [image], filters: 5, kernel_size: 1}
  - {name: prob, op: spatial_softmax, in: [head]}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
"""


def error_of(text: str, overrides: tuple[str, ...] = (), file: str = "s.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, file, overrides)
    return info.value


def billion_laughs(levels: int = 9) -> str:
    lines = ["version: 1", "l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# --- YAML aliases ------------------------------------------------------------------------

def test_billion_laughs_fails_fast_without_memory_blow_up() -> None:
    text = billion_laughs()
    assert len(text) < 1024
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_yaml(text, "bomb.yaml")
    assert time.perf_counter() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 200_000  # kB
    (d,) = info.value.diagnostics
    assert d.loc.file == "bomb.yaml" and d.loc.line > 1
    assert d.message.startswith("YAML aliases expand this value to ")
    assert "billion laughs" in (d.hint or "")


def test_billion_laughs_in_a_set_value_and_the_pure_python_parser() -> None:
    bomb = "[" + ", ".join(["*a"] * 9) + "]"
    value = "&a [" + ", ".join(["x"] * 50) + "]"
    text = "{a: " + value + ", " + ", ".join(f"b{i}: &b{i} " + bomb.replace("*a", f"*b{i - 1}"
                                                                           if i else "*a")
                                              for i in range(6)) + "}"
    with pytest.raises(SpecError, match="YAML aliases expand"):
        load_yaml_value(text)
    deep = billion_laughs() + "\n" * 6000  # past the libyaml fast path's bound
    with pytest.raises(SpecError, match="YAML aliases expand"):
        load_yaml(deep, "deep.yaml")


def test_modest_aliases_still_work() -> None:
    doc = load_yaml("base: &b {x: 1, y: [1, 2]}\nc: *b\nd: {<<: *b, z: 3}\n", "a.yaml")
    assert doc["c"] == {"x": 1, "y": [1, 2]} and doc["d"] == {"x": 1, "y": [1, 2], "z": 3}
    big = "a: &a [" + ", ".join(["1"] * 1000) + "]\nb: [" + ", ".join(["*a"] * 50) + "]\n"
    assert len(load_yaml(big, "a.yaml")["b"]) == 50  # 50,000 values: under the bound
    assert MAX_ALIAS_EXPANSION >= 50_000


def test_recursive_alias_is_located() -> None:
    with pytest.raises(SpecError) as info:
        load_yaml("a: &x [1, *x]\n", "r.yaml")
    assert str(info.value).startswith("r.yaml:1:4: error: a YAML alias refers to the anchor")


# --- spec names --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../outside", "a/b", "..", "/abs", "x..y", "a b", "-x",
                                  "a\\b", "x" * 65, ""])
def test_unsafe_names_are_errors(name: str) -> None:
    if name == "":
        load_spec_text(TINY.replace("name: tiny", "name: ''"), "ok.yaml")  # stem: fine
        return
    err = error_of(TINY.replace("name: tiny", f"name: {name!r}"))
    (d,) = err.diagnostics
    assert d.loc == SourceLoc("s.yaml", 2, 1) and d.message.startswith("bad spec name")
    assert "letters, digits" in (d.hint or "")


def test_name_set_on_the_command_line_is_checked_too() -> None:
    err = error_of(TINY, ("name=../../x",))
    assert str(err).startswith("--set name=../../x: error: bad spec name")


def test_safe_names_and_file_stems() -> None:
    assert load_spec_text(TINY.replace("name: tiny", "name: rcn-6.b_1"), "s.yaml").name \
        == "rcn-6.b_1"
    assert load_spec_text(TINY.replace("name: tiny", "name: 300"), "s.yaml").name == "300"
    no_name = TINY.replace("name: tiny\n", "")
    assert load_spec_text(no_name, "dir/my spec.yaml").name == "my_spec"
    with pytest.raises(SpecError, match="cannot name the spec after its file"):
        load_spec_text(no_name, "dir/....yaml")


# --- extends -----------------------------------------------------------------------------

def test_extends_accepts_only_yaml_spec_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password: hunter2\nline2: more\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: secret.txt\n")
    with pytest.raises(SpecError) as info:
        load_spec(child)
    assert "hunter2" not in str(info.value)
    assert "must name a YAML spec file (.yaml or .yml)" in str(info.value)
    child.write_text("extends: /dev/zero\n")
    with pytest.raises(SpecError, match="not a regular file"):
        load_spec(child)


def test_a_bad_base_is_quoted_by_one_capped_line(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("root:x:0:0:root:/root:/bin/bash\n" + "user:x:1000:secret\n" * 200)
    (tmp_path / "child.yaml").write_text("extends: base.yaml\n")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "child.yaml")
    text = str(info.value)
    assert "plain text (first line: 'root:x:0:0:root:/root:/bin/bash')" in text
    assert "secret" not in text and len(text) < 400


def test_huge_and_special_spec_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="found a device, pipe or socket"):
        load_spec("/dev/null")
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(33 * 2**20)  # sparse: costs no disk
    with pytest.raises(SpecError, match="specs are small text files"):
        load_spec(big)


# --- capped quotes -----------------------------------------------------------------------

def test_a_10_mb_scalar_gives_a_short_message() -> None:
    huge = "x" * 10_000_000
    t0 = time.perf_counter()
    for text in (TINY.replace("op: conv2d", f"op: {huge}"),
                 TINY.replace("name: tiny", f"name: {huge}"),
                 TINY.replace("loss: spatial_softmax_nll", f"loss: {huge}"),
                 TINY.replace("[16, 16, 1]", f"[16, 16, {huge}]")):
        err = error_of(text)
        assert len(str(err)) < 1500 and " chars)" in str(err), str(err)[:300]
    assert time.perf_counter() - t0 < 20


def test_cap_text_clips_words_and_fields() -> None:
    assert clip("abc", 5) == "abc" and clip("abcdefgh", 3) == "abc… (8 chars)"
    assert cap_text("short") == "short"
    capped = cap_text("found '" + "y" * 5000 + "' here")
    assert capped.startswith("found '" + "y" * 193) and "(5,002 chars) here" in capped
    assert len(cap_text("word " * 10_000)) < MAX_FIELD + 40
    d = Diagnostic(SourceLoc("--set " + "k" * 10_000), "m" * 10_000, notes=("n" * 9999,),
                   hint="h" * 9999)
    assert len(str(d)) < 1500


# --- run sections that are not mappings --------------------------------------------------

@pytest.mark.parametrize(("override", "found"), [
    ("train=5", "the int 5"), ("data=[1, 2]", "a list [1, 2]"), ("eval=x", "the string 'x'"),
    ("search=true", "the boolean True")])
def test_set_of_a_whole_section_is_an_error(override: str, found: str) -> None:
    err = error_of(TINY, (override,))
    (d,) = err.diagnostics
    section = override.split("=")[0]
    assert d.loc == SourceLoc(f"--set {override}")
    assert d.message == f"section '{section}' must be a mapping of settings, found {found}"
    assert f"--set {section}." in (d.hint or "")


def test_section_in_the_file_that_is_not_a_mapping() -> None:
    err = error_of(TINY + "data: [1, 2]\ntrain: 30\n")
    assert [(d.loc.line, d.message.split(",")[0]) for d in err.diagnostics] == [
        (10, "section 'data' must be a mapping of settings"),
        (11, "section 'train' must be a mapping of settings")]
    assert load_spec_text(TINY + "data:\ntrain: {epochs: 3}\n", "s.yaml").sections.keys() \
        == {"train"}  # null = absent


def test_inputs_and_outputs_that_are_not_mappings_are_located() -> None:
    err = error_of(TINY, ("inputs=5",))
    assert str(err).startswith("--set inputs=5: error: `inputs:` must map names to their "
                               "settings, found the int 5")


# --- memory warning ----------------------------------------------------------------------

def test_billions_of_parameters_warn_with_the_memory_they_need() -> None:
    text = TINY.replace("filters: 5, kernel_size: 1", "filters: 5, kernel_size: 1}\n"
                        "  - {name: f, op: flatten, in: [image]}\n"
                        "  - {name: fc1, op: dense, in: [f], units: 50000}\n"
                        "  - {name: fc2, op: dense, in: [fc1], units: 50000")
    spec = load_spec_text(text, "s.yaml")
    (w,) = spec.warnings
    assert w.severity == "warning"
    assert str(w).startswith("s.yaml:9:5: warning: the weights need 10.1 GB "
                             "(2,512,900,010 float32 params); training needs about 4x that")
    assert w.notes == ("largest: layer 'fc2' (dense) with 2,500,050,000 params (99%)",)
    assert load_spec_text(TINY, "s.yaml").warnings == ()


def test_check_prints_the_warning_and_exits_0(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    spec = tmp_path / "big.yaml"
    spec.write_text(TINY.replace("[16, 16, 1]", "[16, 16, 1]}\n  big: {shape: [100000, 100000, 3]"))
    assert main(["check", str(spec)]) == 0
    out, err = capsys.readouterr()
    assert ": ok:" in out
    assert "warning: one example's activations need 120.0 GB" in err
