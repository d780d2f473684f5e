"""Modules (spec language v1.1): named sub-graphs with typed inputs and named outputs.

A `modules:` entry is written with the same layers/for/use/if language as `layers:`;
a layer `op: module` instantiates one. Instances are expanded inline (compiler/expand.py)
into ordinary layers named `INSTANCE.LAYER`, so every later pass - shape inference,
lowering, show - sees plain layers; what a module adds is carried on each layer:
`share` (the layer whose weights it uses) and `scope` (the instantiation chain, for
error messages). This module parses the section and holds the pure naming rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import re
from typing import Any

from compiler.diagnostics import DiagnosticSink, SourceLoc, SpecError, did_you_mean
from compiler.yaml_loader import LocatedDict, LocatedList

MODULE_KEYS = ("inputs", "outputs", "layers", "args", "defaults", "doc")
# Keys of an `op: module` layer (besides name/op/in/if).
INSTANCE_KEYS = ("module", "with", "share", "steps", "feedback", "init", "share_steps",
                 "step_stats", "time_distributed", "trainable", "weights_from")
STEP = "s"  # recurrence step k of instance R is R.s<k>


@dataclass(frozen=True)
class ModuleInput:
    name: str
    shape: tuple[int | None, ...] | None  # without batch; None entries: any size
    loc: SourceLoc


@dataclass(frozen=True)
class ModuleDef:
    name: str
    inputs: tuple[ModuleInput, ...]
    outputs: tuple[tuple[str, str, SourceLoc], ...]  # (output name, inner layer, where)
    args: tuple[str, ...]
    defaults: Mapping[str, Any]
    layers: LocatedList
    loc: SourceLoc

    def input(self, name: str) -> ModuleInput | None:
        return next((i for i in self.inputs if i.name == name), None)

    def output(self, name: str) -> str | None:
        return next((src for out, src, _ in self.outputs if out == name), None)

    def where(self) -> str:
        return f"module '{self.name}' ({self.loc})"


def _single_segment(name: Any) -> bool:
    from compiler.expand import name_problem  # the one naming rule (no import cycle: lazy)

    return isinstance(name, str) and name_problem(name) is None and "." not in name


def parse_modules(raw: Any, loc: SourceLoc) -> dict[str, ModuleDef]:
    """The `modules:` section: {NAME: {inputs, outputs, layers, args?, defaults?}}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError.at(loc, "'modules' must map module names to {inputs, outputs, layers}")
    sink, out = DiagnosticSink(), {}
    for name, body in raw.items():
        mloc = raw.loc_of(name) if isinstance(raw, LocatedDict) else loc
        if not _single_segment(name):
            sink.error(mloc, f"bad module name {name!r}",
                       hint="module names are single lower-case segments, e.g. encdec")
            continue
        if not isinstance(body, LocatedDict) or "layers" not in body:
            sink.error(mloc, f"module '{name}' needs `inputs:`, `outputs:` and `layers:`")
            continue
        for key in body:
            if key not in MODULE_KEYS:
                sink.error(body.loc_of(key), f"unknown key '{key}' in module '{name}'",
                           hint=did_you_mean(str(key), MODULE_KEYS))
        inputs = _inputs(name, body, sink)
        outputs = _outputs(name, body, sink)
        args, defaults = body.get("args") or [], body.get("defaults") or {}
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            sink.error(body.loc_of("args"), f"module '{name}': args must be a list of names")
            continue
        if not isinstance(defaults, dict):
            sink.error(body.loc_of("defaults"), f"module '{name}': defaults must be a mapping")
            continue
        if not isinstance(body["layers"], list):
            sink.error(body.loc_of("layers"), f"module '{name}': layers must be a list")
            continue
        if inputs is None or outputs is None:
            continue
        clash = {i.name for i in inputs} & {o for o, _, _ in outputs}
        for o, _, oloc in outputs:
            if o in clash:
                sink.error(oloc, f"module '{name}': output '{o}' has the name of an input",
                           hint="inputs and outputs are both addressed as INSTANCE.NAME; "
                                f"rename one (e.g. {o}_in for the input)")
        out[name] = ModuleDef(name, inputs, outputs, tuple(args), dict(defaults),
                              body["layers"], mloc)
    sink.raise_if_any()
    return out


def _inputs(name: str, body: LocatedDict, sink: DiagnosticSink) -> tuple[ModuleInput, ...] | None:
    raw = body.get("inputs")
    if not isinstance(raw, LocatedDict) or not raw:
        sink.error(body.loc_of("inputs") if "inputs" in body else body.loc,
                   f"module '{name}' needs `inputs:` mapping input names to {{shape: [...]}}",
                   hint="e.g. inputs: {image: {shape: [null, null, 1]}} (null: any size)")
        return None
    found = []
    for iname, spec in raw.items():
        iloc = raw.loc_of(iname)
        if not _single_segment(iname):
            sink.error(iloc, f"module '{name}': bad input name {iname!r}",
                       hint="input names are single lower-case segments, e.g. image")
            continue
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and set(spec) - {"shape"}:
            sink.error(iloc, f"module '{name}' input '{iname}': only `shape` may be given")
        if shape is not None and not (isinstance(shape, list) and shape and all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                for d in shape)):
            sink.error(iloc, f"module '{name}' input '{iname}': shape must be a list of "
                             f"positive ints or null, found {shape!r}",
                       hint="the batch dimension is implicit: [null, null, 1] is any-size gray")
            continue
        found.append(ModuleInput(iname, None if shape is None else tuple(shape), iloc))
    return tuple(found)


def _outputs(name: str, body: LocatedDict, sink: DiagnosticSink
             ) -> tuple[tuple[str, str, SourceLoc], ...] | None:
    raw = body.get("outputs")
    if not isinstance(raw, LocatedDict) or not raw:
        sink.error(body.loc_of("outputs") if "outputs" in body else body.loc,
                   f"module '{name}' needs `outputs:` mapping output names to its layers",
                   hint="e.g. outputs: {maps: head.prob}")
        return None
    found = []
    for oname, src in raw.items():
        oloc = raw.loc_of(oname)
        if not _single_segment(oname) or not isinstance(src, str):
            sink.error(oloc, f"module '{name}': output {oname!r} must name one of its layers",
                       hint="e.g. outputs: {maps: head.prob}")
            continue
        found.append((oname, src, oloc))
    return tuple(found)


def instance_scope(module: ModuleDef, instance: str, loc: SourceLoc) -> str:
    """One entry of a layer's instantiation chain, as error notes print it."""
    return f"in {module.where()} as '{instance}' at {loc}"


_SCOPE = re.compile(r"^in module '([^']+)' \(.*\) as '([^']+)' at ")


def scope_instance(entry: str) -> tuple[str, str]:
    """(module, instance) of an `instance_scope` entry."""
    m = _SCOPE.match(entry)
    return (m.group(1), m.group(2)) if m else ("?", entry)


def step_name(instance: str, k: int) -> str:
    return f"{instance}.{STEP}{k}"
