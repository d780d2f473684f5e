"""`extends:` merging (with null removal in named sections) and `--set` overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.api import load_spec
from compiler.diagnostics import SourceLoc, SpecError
from compiler.spec_files import apply_overrides, as_plain, load_document, parse_override, read_text
from compiler.yaml_loader import LocatedDict

BASE = """version: 1
params:
  width: 8
  depth: 2
inputs:
  image: {shape: [20, 20, 1]}
  mask: {shape: [20, 20, 1]}
templates:
  t1: {layers: [{name: a, op: identity, in: [image]}]}
  t2: {layers: [{name: b, op: identity, in: [image]}]}
layers:
  - {name: base_layer, op: identity, in: [image]}
outputs:
  out: {from: base_layer, loss: spatial_softmax_nll}
  aux: {from: base_layer}
data: {size: 20, augment: {rotation: 10.0, mirror: true}}
train: {epochs: 5}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(path: Path) -> LocatedDict:
    return load_document(read_text(path), str(path))


def error_of(fn, *args) -> str:  # noqa: ANN001 - any loader
    with pytest.raises(SpecError) as info:
        fn(*args)
    return str(info.value)


def test_child_wins_mappings_merge_lists_replace(tmp_path: Path) -> None:
    write(tmp_path, "_base.yaml", BASE)
    child = write(tmp_path, "child.yaml", """version: 1
extends: _base.yaml
params: {width: 16}
layers:
  - {name: child_layer, op: identity, in: [image]}
data: {augment: {rotation: 20.0}}
""")
    doc = load(child)
    assert "extends" not in doc
    assert doc["params"] == {"width": 16, "depth": 2}
    assert [x["name"] for x in doc["layers"]] == ["child_layer"]  # lists replace
    assert doc["data"] == {"size": 20, "augment": {"rotation": 20.0, "mirror": True}}
    assert doc["train"] == {"epochs": 5}
    # every value still knows its file
    assert doc["params"].loc_of("width").file == str(child)
    assert doc["params"].loc_of("depth") == SourceLoc(str(tmp_path / "_base.yaml"), 4, 3)


def test_null_removes_named_entries(tmp_path: Path) -> None:
    write(tmp_path, "_base.yaml", BASE)
    child = write(tmp_path, "child.yaml", """version: 1
extends: _base.yaml
inputs: {mask: null}
templates: {t2: null, t3: {layers: []}}
outputs: {aux: null, extra: {from: base_layer}}
""")
    doc = load(child)
    assert list(doc["inputs"]) == ["image"]
    assert list(doc["templates"]) == ["t1", "t3"]
    assert list(doc["outputs"]) == ["out", "extra"]


def test_named_entries_merge_field_by_field(tmp_path: Path) -> None:
    write(tmp_path, "_base.yaml", BASE)
    child = write(tmp_path, "child.yaml",
                  "extends: _base.yaml\noutputs: {out: {weight: 2.0}}\n")
    out = load(child)["outputs"]["out"]
    assert as_plain(out) == {"from": "base_layer", "loss": "spatial_softmax_nll", "weight": 2.0}


def test_chains_resolve_relative_to_each_file(tmp_path: Path) -> None:
    write(tmp_path, "bases/_root.yaml", BASE)
    write(tmp_path, "bases/_mid.yaml", "version: 1\nextends: _root.yaml\nparams: {depth: 3}\n")
    leaf = write(tmp_path, "specs/leaf.yaml",
                 "version: 1\nextends: ../bases/_mid.yaml\nparams: {width: 4}\n")
    assert load(leaf)["params"] == {"width": 4, "depth": 3}
    spec = load_spec(leaf)
    assert spec.params == {"width": 4, "depth": 3}
    assert [n.name for n in spec.graph.nodes] == ["base_layer"]


def test_extends_errors(tmp_path: Path) -> None:
    missing = write(tmp_path, "a.yaml", "version: 1\nextends: nope.yaml\n")
    assert error_of(load, missing).startswith(f"{missing}:2:1: error: base spec 'nope.yaml' "
                                              "not found")
    self_ref = write(tmp_path, "self.yaml", "version: 1\nextends: self.yaml\n")
    assert "'extends' cycle through self.yaml" in error_of(load, self_ref)
    write(tmp_path, "x.yaml", "version: 1\nextends: y.yaml\n")
    write(tmp_path, "y.yaml", "version: 1\nextends: x.yaml\n")
    assert "'extends' cycle through x.yaml" in error_of(load, tmp_path / "x.yaml")
    not_str = write(tmp_path, "n.yaml", "version: 1\nextends: [a.yaml]\n")
    assert "'extends' must be a file path string" in error_of(load, not_str)


def test_top_level_checks(tmp_path: Path) -> None:
    text = error_of(load_document, "version: 1\nlayer: []\nparms: {}\n", "s.yaml")
    assert text == ("s.yaml:2:1: error: unknown top-level section 'layer'\n"
                    "  hint: did you mean 'layers'?\n"
                    "s.yaml:3:1: error: unknown top-level section 'parms'\n"
                    "  hint: did you mean 'params'?")
    assert "missing 'version'" in error_of(load_document, "name: x\n", "s.yaml")
    assert "unsupported spec version 2" in error_of(load_document, "version: 2\n", "s.yaml")
    assert "unsupported spec version True" in error_of(load_document, "version: true\n",
                                                       "s.yaml")
    assert "the spec is empty" in error_of(load_document, "# nothing\n", "s.yaml")
    assert "found a list" in error_of(load_document, "- 1\n", "s.yaml")
    # a child may leave `version` to its base
    write(tmp_path, "_b.yaml", BASE)
    assert load(write(tmp_path, "c.yaml", "extends: _b.yaml\n"))["version"] == 1


def test_read_text_errors(tmp_path: Path) -> None:
    assert error_of(read_text, tmp_path / "none.yaml").endswith(
        "spec file not found\n  hint: check the path; specs live in specs/, e.g. "
        "specs/rcn_6branch.yaml")
    assert "found a directory" in error_of(read_text, tmp_path)
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"version: 1\nname: \xff\xfe\n")
    assert "not UTF-8" in error_of(read_text, binary)


def base_doc() -> LocatedDict:
    return load_document(BASE, "base.yaml")


def test_overrides_set_params_and_sections() -> None:
    doc = base_doc()
    out = apply_overrides(doc, ["width=32", "params.depth=4", "train.epochs=1",
                                "data.augment.rotation=0.0", "eval.normalizer=box",
                                "name=renamed"])
    assert out["params"] == {"width": 32, "depth": 4}
    assert out["train"] == {"epochs": 1}
    assert out["data"]["augment"] == {"rotation": 0.0, "mirror": True}
    assert out["eval"] == {"normalizer": "box"}
    assert out["name"] == "renamed"
    assert out["params"].loc_of("width") == SourceLoc("--set width=32")
    # the original document is untouched
    assert doc["params"] == {"width": 8, "depth": 2} and "eval" not in doc
    assert doc["data"]["augment"]["rotation"] == 10.0


def test_override_values_are_yaml() -> None:
    out = apply_overrides(base_doc(), ["width=[1, 2]", "depth=", "train.tag='on'"])
    assert out["params"]["width"] == [1, 2]
    assert out["params"]["depth"] == ""
    assert out["train"]["tag"] == "on"
    assert "ambiguous YAML value 'on'" in error_of(apply_overrides, base_doc(), ["width=on"])


@pytest.mark.parametrize(("override", "message"), [
    ("widht=3", "--set widht=3: error: unknown param 'widht'\n  hint: did you mean 'width'?"),
    ("params.nope=3", "unknown param 'nope'"),
    ("width", "--set width: error: expected KEY=VALUE"),
    ("=3", "bad override key ''"),
    ("a..b=3", "bad override key 'a..b'"),
    ("params.a.b=3", "bad param override 'params.a.b'"),
    ("layers.x=3", "cannot override 'layers.x'"),
    ("width=[1", "YAML syntax error"),
])
def test_bad_overrides(override: str, message: str) -> None:
    assert message in error_of(apply_overrides, base_doc(), [override])


def test_all_bad_overrides_are_reported_together() -> None:
    with pytest.raises(SpecError) as info:
        apply_overrides(base_doc(), ["widht=1", "width=2", "layers.a=1", "nokey"])
    assert len(info.value.diagnostics) == 3


def test_parse_override() -> None:
    assert parse_override("train.epochs=3")[:2] == ("train.epochs", 3)
    assert parse_override("a = b=c")[:2] == ("a", " b=c".strip())


def test_set_on_a_real_spec_changes_the_graph(repo: Path) -> None:
    five = load_spec(repo / "specs" / "rcn_6branch.yaml", ["branches=5"])
    ref = load_spec(repo / "specs" / "rcn_5branch.yaml")
    assert [(n.name, n.op, n.inputs, n.params, n.out) for n in five.graph.nodes] == \
        [(n.name, n.op, n.inputs, n.params, n.out) for n in ref.graph.nodes]


def test_as_plain_strips_locations() -> None:
    plain = as_plain(base_doc())
    assert type(plain) is dict and type(plain["layers"]) is list
    assert type(plain["layers"][0]) is dict


@pytest.mark.parametrize(("text", "value"), [("1e-3", 0.001), ("3E+4", 30000.0),
                                             ("-2e5", -200000.0), ("1.0e-3", 0.001),
                                             ("12", 12), ("e5", "e5")])
def test_scientific_floats_without_a_dot_are_floats(text: str, value: object) -> None:
    """YAML 1.1 reads '1e-3' as a string; `--set train.learning_rate=1e-3` means a float."""
    got = parse_override(f"train.learning_rate={text}")[1]
    assert got == value and type(got) is type(value)
