"""The compiler's public entry points: spec file -> checked, typed `Spec`.

The passes run in a fixed, visible order: load (+extends) -> overrides -> params ->
expand macros -> build graph -> infer shapes. None of them imports TensorFlow; only
`compile_model` (in lower_keras) does.

Run sections that are not mappings (`--set train=5`, `data: [1, 2]`) and spec names
that are unsafe as a folder name (`build/<name>` is compile's default output) are
errors here: the first used to be dropped silently, the second wrote outside build/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
import re
from typing import Any

from compiler.budget import memory_warnings
from compiler.build import build_graph
from compiler.diagnostics import Diagnostic, DiagnosticSink, SourceLoc, SpecError, describe_value
from compiler.expand import Defs, RawLayer, check_excluded_layers, expand_layers, parse_templates
from compiler.infer import infer_shapes
from compiler.ir import Graph
from compiler.modules import parse_modules
from compiler.ops import DEFAULT_OPS
from compiler.registry import Registry
from compiler.spec_files import apply_overrides, as_plain, load_document, read_text
from compiler.substitute import resolve_params, substitute
from compiler.yaml_loader import LocatedDict

SECTIONS = ("data", "train", "eval", "search")
_SECTION_EXAMPLES = {"data": "dataset: synthetic", "train": "epochs: 3",
                     "eval": "normalizer: inter_ocular", "search": "phi: 0.001"}
# A spec name becomes a folder (build/<name>, runs/<name>) and a Keras model name.
NAME_RULE = "1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Spec:
    """A checked spec: the typed graph plus its (substituted) run sections."""

    file: str
    name: str
    params: dict[str, Any]
    layers: tuple[RawLayer, ...]
    graph: Graph
    sections: dict[str, LocatedDict]  # data/train/eval/search, `$params` substituted
    document: LocatedDict  # merged document (extends resolved, overrides applied)
    warnings: tuple[Diagnostic, ...] = field(default=())  # e.g. weights that need > 1 GB

    def section(self, name: str) -> LocatedDict:
        return self.sections.get(name) or LocatedDict(loc=SourceLoc(self.file))


def load_spec(path: str | Path, overrides: Sequence[str] = (), ops: Registry = DEFAULT_OPS
              ) -> Spec:
    """Read, expand, check and type a spec file. Raises SpecError on any user mistake."""
    return load_spec_text(read_text(path), str(path), overrides, ops)


def load_spec_text(text: str, file: str, overrides: Sequence[str] = (),
                   ops: Registry = DEFAULT_OPS) -> Spec:
    doc = apply_overrides(load_document(text, file), list(overrides))
    params = resolve_params(doc.get("params"), doc.loc_of("params"))
    defs = Defs(parse_templates(doc.get("templates"), doc.loc_of("templates")),
                parse_modules(doc.get("modules"), doc.loc_of("modules")))
    layers = expand_layers(doc.get("layers"), params, defs, doc.loc_of("layers")) \
        if "layers" in doc else ()
    inputs = substitute(doc.get("inputs"), params, doc.loc_of("inputs"))
    outputs = substitute(doc.get("outputs"), params, doc.loc_of("outputs"))
    sink = DiagnosticSink()
    name = spec_name(doc, file, sink)
    check_section_types(doc, sink)
    check_excluded_layers(defs.excluded, ops, sink)
    try:
        graph = build_graph(name, inputs, layers, outputs, ops, file, doc.loc,
                            inputs_loc=doc.loc_of("inputs"), outputs_loc=doc.loc_of("outputs"))
        graph = infer_shapes(graph, ops)
    except SpecError as e:
        sink.extend(e)
    sink.raise_if_any()
    sections = {s: substitute(doc[s], params, doc.loc_of(s)) for s in SECTIONS
                if isinstance(doc.get(s), dict)}
    return Spec(file, name, params, layers, graph, sections, doc,
                tuple(memory_warnings(graph, ops, doc.loc)))


def spec_name(doc: LocatedDict, file: str, sink: DiagnosticSink) -> str:
    """`name:` (or the file's stem), reported to `sink` unless it is a safe folder name."""
    raw = doc.get("name")
    if raw is None or raw == "":
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(file).stem).lstrip("_.-")[:64]
        if _NAME.fullmatch(stem) and ".." not in stem:
            return stem
        sink.error(SourceLoc(file, 1, 1), "cannot name the spec after its file "
                   f"({Path(file).name!r})", hint=f"add `name: ...` ({NAME_RULE})")
        return "spec"
    if type(raw) is int and raw >= 0:
        raw = str(raw)  # `name: 300` reads as an int
    if not isinstance(raw, str) or not _NAME.fullmatch(raw) or ".." in raw:
        found = describe_value(raw)
        sink.error(doc.loc_of("name"), f"bad spec name: found {found}",
                   notes=("the name is a folder (build/<name>, runs/<name>) and the Keras "
                          "model's name",),
                   hint=f"a spec name is {NAME_RULE}, without '..' (e.g. rcn_6branch)")
        return "spec"
    return raw


def check_section_types(doc: LocatedDict, sink: DiagnosticSink) -> None:
    """Each run section present must be a mapping (null is the same as absent)."""
    for s in SECTIONS:
        value = doc.get(s)
        if value is None or isinstance(value, dict):
            continue
        example = _SECTION_EXAMPLES[s]
        sink.error(doc.loc_of(s), f"section '{s}' must be a mapping of settings, found "
                                  f"{describe_value(value)}",
                   hint=f"write keys under it, e.g. `{s}: {{{example}}}`; on the command line "
                        f"set one key: --set {s}.{example.replace(': ', '=')}")


def _layer_options(layer: RawLayer) -> dict[str, Any]:
    """What a module instance set on its layers, as the keys a plain layer writes it with."""
    out: dict[str, Any] = {}
    if layer.share:
        out["share"] = layer.share
    if not layer.trainable:
        out["freeze"] = True
    if layer.init_from:
        run, source = layer.init_from
        out["weights_from"] = run if source == layer.name else {"run": run, "layer": source}
    return out


def expanded_document(spec: Spec) -> dict[str, Any]:
    """The spec with extends merged, overrides applied and macros unrolled (plain data).

    Feeding this back through load_spec_text gives the same graph (idempotence).
    """
    doc: dict[str, Any] = {"version": 1, "name": spec.name}
    if spec.document.get("description"):
        doc["description"] = spec.document["description"]
    if spec.params:
        doc["params"] = as_plain(spec.params)
    doc["inputs"] = as_plain(substitute(spec.document.get("inputs"), spec.params, SourceLoc("")))
    doc["layers"] = [
        {"name": layer.name, "op": layer.op, **({"in": list(layer.inputs)} if layer.inputs else {}),
         **as_plain(dict(layer.params)), **_layer_options(layer)}
        for layer in spec.layers
    ]
    doc["outputs"] = as_plain(substitute(spec.document.get("outputs"), spec.params,
                                         SourceLoc("")))
    for s in SECTIONS:
        if s in spec.sections:
            doc[s] = as_plain(spec.sections[s])
    return doc
