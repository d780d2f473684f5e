"""Macro expansion: `for` loops, templates (`use`), `if` guards, and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from compiler import expand as expand_module
from compiler.diagnostics import SourceLoc, SpecError
from compiler.expand import RawLayer, expand_layers, name_problem, parse_templates
from compiler.substitute import resolve_params
from compiler.yaml_loader import load_yaml

LOC = SourceLoc("t.yaml")


def expand(text: str) -> tuple[RawLayer, ...]:
    doc = load_yaml(text, "t.yaml")
    params = resolve_params(doc.get("params"), LOC)
    templates = parse_templates(doc.get("templates"), LOC)
    return expand_layers(doc["layers"], params, templates, LOC)


def names(text: str) -> list[str]:
    return [layer.name for layer in expand(text)]


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        expand(text)
    return info.value


def test_a_flat_layer_becomes_a_raw_layer() -> None:
    (layer,) = expand("layers:\n  - {name: c1, op: conv2d, in: image, filters: 8, "
                      "if: true}\n")
    assert (layer.name, layer.op, layer.inputs) == ("c1", "conv2d", ("image",))
    assert dict(layer.params) == {"filters": 8}  # name/op/in/if are not params
    assert layer.loc == SourceLoc("t.yaml", 2, 5)
    assert layer.key_loc("filters") == SourceLoc("t.yaml", 2, 39)


def test_for_loops_nest_and_unroll_in_order() -> None:
    text = """
layers:
  - for: {i: [1, 2]}
    layers:
      - {name: "a${i}", op: identity, in: [x]}
      - for: {j: {from: 1, to: 2}}
        layers:
          - {name: "b${i}_${j}", op: identity, in: ["a${i}"]}
"""
    assert names(text) == ["a1", "b1_1", "b1_2", "a2", "b2_1", "b2_2"]
    assert expand(text)[2].inputs == ("a1",)


TEMPLATES = """
params: {width: 8}
templates:
  block:
    doc: conv then pool
    args: [i, from]
    defaults: {k: 3}
    layers:
      - {name: "b${i}.conv", op: conv2d, in: [$from], filters: $width, kernel_size: $k}
      - {name: "b${i}.pool", op: max_pool2d, in: ["b${i}.conv"], pool_size: 2}
  pair:
    args: [i]
    layers:
      - {use: block, with: {i: $i, from: image}}
      - {use: block, with: {i: "${i + 1}", from: "b${i}.pool", k: 5}}
"""


def test_templates_take_args_and_defaults_and_nest() -> None:
    layers = expand(TEMPLATES + "layers:\n  - {use: pair, with: {i: 1}}\n")
    assert [x.name for x in layers] == ["b1.conv", "b1.pool", "b2.conv", "b2.pool"]
    assert layers[0].params["kernel_size"] == 3 and layers[2].params["kernel_size"] == 5
    assert layers[2].inputs == ("b1.pool",)
    assert layers[0].params["filters"] == 8  # params are visible inside templates


def test_templates_inside_loops() -> None:
    text = TEMPLATES + """layers:
  - for: {i: [1, 3]}
    layers:
      - {use: block, with: {i: $i, from: image}}
"""
    assert names(text) == ["b1.conv", "b1.pool", "b3.conv", "b3.pool"]


def test_if_guards_layers_loops_and_templates() -> None:
    text = TEMPLATES + """layers:
  - {if: true, name: kept, op: identity, in: [x]}
  - {if: "${width > 100}", name: dropped, op: identity, in: [x]}
  - {if: false, for: {i: [1]}, layers: [{name: never, op: identity}]}
  - {if: "${width == 8}", use: block, with: {i: 7, from: kept}}
  - {if: false, use: nonexistent}
"""
    assert names(text) == ["kept", "b7.conv", "b7.pool"]


@pytest.mark.parametrize(("layers", "message"), [
    ("- {use: blok, with: {i: 1, from: x}}", "unknown template 'blok'"),
    ("- {use: block, with: {i: 1, from: x, widht: 3}}",
     "template 'block' has no argument 'widht'"),
    ("- {use: block, with: {i: 1}}", "template 'block' needs argument(s) 'from'"),
    ("- {use: block, with: [1]}", "`with` must map argument names to values"),
    ("- {use: block, args: {i: 1}}", "unexpected keys ['args'] in `use`"),
    ("- {for: {i: [1]}}", "a loop is {for: {VAR: VALUES}, layers: [...]}"),
    ("- {for: {i: [1]}, layers: x}", "loop `layers` must be a list"),
    ("- {for: {i: [1]}, layers: [], name: x}", "unexpected keys: ['name']"),
    ("- {name: x, in: [y]}", "layer entry has none of `op`"),
    ("- {name: x, op: identity, use: block}", "layer entry mixes op, use"),
    ("- just_a_name", "a layer entry must be a mapping, found 'just_a_name'"),
    ("- {op: identity}", "layer has no `name`"),
    ("- {name: 3, op: identity}", "layer name must be a string, found 3"),
    ("- {name: Enc, op: identity}", "bad layer name 'Enc'"),
    ("- {name: a__b, op: identity}", "'__' is reserved"),
    ("- {name: x, op: [conv2d]}", "op must be a string"),
    ("- {name: x, op: identity, in: [1]}", "`in` must be a layer name or a list of names"),
    ("- {if: 1, name: x, op: identity}", "'if' needs true or false, found 1"),
    ("- {if: $width, name: x, op: identity}", "'if' needs true or false, found 8"),
])
def test_expansion_errors(layers: str, message: str) -> None:
    err = error_of(TEMPLATES + "layers:\n  " + layers + "\n")
    assert message in str(err)
    assert str(err).startswith("t.yaml:")


def test_layers_must_be_a_list() -> None:
    with pytest.raises(SpecError, match="'layers' must be a list"):
        expand_layers({"a": 1}, {}, {}, LOC)


def test_template_recursion_is_an_error_with_the_chain() -> None:
    text = """
templates:
  a: {layers: [{use: b}]}
  b: {layers: [{name: x, op: identity}, {use: a}]}
layers:
  - {use: a}
"""
    err = error_of(text)
    assert "template 'a' uses itself" in str(err)
    assert "hint: a -> b -> a" in str(err)


@pytest.mark.parametrize(("templates", "message"), [
    ("{t: {args: [a]}}", "template 't' needs `layers:`"),
    ("{t: {layers: [], lyers: []}}", "unknown key 'lyers' in template 't'"),
    ("{t: {args: a, layers: []}}", "args must be a list of names"),
    ("{t: {defaults: [1], layers: []}}", "defaults must be a mapping"),
    ("{t: {layers: {a: 1}}}", "layers must be a list"),
    ("{1: {layers: []}}", "template name must be a string, found 1"),
    ("[t]", "'templates' must map template names"),
])
def test_bad_templates(templates: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_templates(load_yaml(templates, "t.yaml"), LOC)
    assert message in str(info.value)


def test_independent_errors_are_all_collected() -> None:
    err = error_of("""
layers:
  - {name: ok1, op: identity}
  - {name: Bad, op: identity}
  - {name: ok2, op: identity, filters: $nope}
  - {for: {i: [1, 2], j: [1]}, layers: []}
""")
    assert [d.loc.line for d in err.diagnostics] == [4, 5, 6]


def test_a_runaway_loop_stops_early(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expand_module, "_MAX_LAYERS", 100)  # 10,000 in real use
    err = error_of("""
layers:
  - for: {i: {from: 1, to: 9000}}
    layers:
      - for: {j: {from: 1, to: 9000}}
        layers: [{name: "l${i}_${j}", op: identity}]
""")
    assert "the spec expands to more than 100 layers" in str(err)
    err = error_of("""
layers:
  - for: {i: {from: 1, to: 9000}}
    layers: [{name: "l${i}", op: identity, in: ["${[1][i]}"]}]
""")
    # 50 copies of one error at one place are reported once, then where it stopped
    assert len(err.diagnostics) == 2
    assert "stopping after 50 errors" in str(err)


@pytest.mark.parametrize(("name", "ok"), [
    ("enc3.conv", True), ("head", True), ("br1.up_2", True), ("Enc", False),
    ("enc.3", False), ("3enc", False), ("a__b", False), ("a.", False), ("a-b", False),
])
def test_name_rules(name: str, ok: bool) -> None:
    assert (name_problem(name) is None) == ok


def test_expansion_of_an_expanded_list_is_the_identity() -> None:
    once = expand(TEMPLATES + "layers:\n  - {use: pair, with: {i: 1}}\n")
    flat: list[dict[str, Any]] = [
        {"name": x.name, "op": x.op, "in": list(x.inputs), **dict(x.params)} for x in once]
    import yaml

    again = expand("layers: " + yaml.safe_dump(flat, default_flow_style=True))
    assert [(x.name, x.op, x.inputs, dict(x.params)) for x in again] == \
        [(x.name, x.op, x.inputs, dict(x.params)) for x in once]
