"""Build the untyped Graph: resolve ops and params, check names, arity and wiring.

Pre: expanded RawLayers plus the `inputs:`/`outputs:` sections (substituted).
Post: a Graph whose every edge points at an input or a layer defined above it
(define-before-use makes cycles impossible), or a SpecError listing every problem.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from compiler.diagnostics import (
    Diagnostic,
    DiagnosticSink,
    SourceLoc,
    SpecError,
    describe_value,
    did_you_mean,
)
from compiler.expand import RawLayer, name_problem
from compiler.ir import Graph, Node, OutputSpec, TensorType
from compiler.params import coerce_params
from compiler.registry import Registry
from compiler.yaml_loader import LocatedDict

_DTYPES = ("float32", "float16", "bfloat16", "int32", "uint8", "bool")


def _is_key_name(name: Any) -> bool:
    """Input and output names are single segments: they key the model's dicts."""
    return isinstance(name, str) and name_problem(name) is None and "." not in name


def _section_problem(raw: Any, section: str, loc: SourceLoc, raw_loc: SourceLoc | None,
                     example: str, sink: DiagnosticSink) -> bool:
    """Report a missing, empty or non-mapping `inputs:`/`outputs:`; True when reported."""
    if isinstance(raw, dict) and raw:
        return False
    if raw is None or isinstance(raw, dict):
        sink.error(loc, f"the spec declares no `{section}:`", hint=f"e.g. {example}")
    else:
        sink.error(raw_loc or loc, f"`{section}:` must map names to their settings, found "
                                   f"{describe_value(raw)}", hint=f"e.g. {example}")
    return True


def build_inputs(raw: Any, loc: SourceLoc, sink: DiagnosticSink,
                 raw_loc: SourceLoc | None = None) -> tuple[Node, ...]:
    if _section_problem(raw, "inputs", loc, raw_loc, "inputs: {image: {shape: [80, 80, 1]}}",
                        sink):
        return ()
    nodes = []
    for name, body in raw.items():
        nloc = raw.loc_of(name) if isinstance(raw, LocatedDict) else loc
        if not _is_key_name(name):
            sink.error(nloc, f"bad input name {name!r}",
                       hint="input names are single lower-case segments, e.g. image")
            continue
        if not isinstance(body, dict) or "shape" not in body:
            sink.error(nloc, f"input '{name}' needs a shape",
                       hint="e.g. image: {shape: [80, 80, 1]}")
            continue
        for key in body:
            if key not in ("shape", "dtype"):
                sink.error(body.loc_of(key), f"unknown key '{key}' in input '{name}'",
                           hint=did_you_mean(str(key), ("shape", "dtype")))
        shape, dtype = body["shape"], body.get("dtype", "float32")
        if not isinstance(shape, list) or not shape or not all(
                (isinstance(d, int) and not isinstance(d, bool) and d > 0) or d is None
                for d in shape):
            sink.error(body.loc_of("shape"), f"input '{name}': shape must be a list of positive "
                                             f"ints (null for unknown), found {shape!r}",
                       hint="the batch dimension is implicit: [80, 80, 1] for an 80x80 gray image")
            continue
        if dtype not in _DTYPES:
            sink.error(body.loc_of("dtype"), f"input '{name}': unknown dtype {dtype!r}",
                       hint=did_you_mean(str(dtype), _DTYPES, "dtypes"))
            continue
        nodes.append(Node(name, "input", (), None, nloc, TensorType((None, *shape), dtype)))
    return tuple(nodes)


def build_nodes(layers: tuple[RawLayer, ...], inputs: tuple[Node, ...], ops: Registry,
                sink: DiagnosticSink, broken: frozenset[str] = frozenset(),
                inputs_missing: bool = False) -> tuple[Node, ...]:
    """`broken`: declared inputs already reported as bad; layers reading them are
    skipped silently, as are unknown names when the whole `inputs:` is missing."""
    defined: dict[str, SourceLoc] = {n.name: n.loc for n in inputs}
    later = {layer.name for layer in layers}
    nodes: list[Node] = []
    for layer in layers:
        start = len(sink.items)
        _build_node(layer, ops, sink, defined, later, nodes, broken, inputs_missing)
        if layer.scope:  # errors inside a module instance say which instance, and where
            sink.items[start:] = [with_scope(d, layer.scope) for d in sink.items[start:]]
    return tuple(nodes)


def with_scope(d: Diagnostic, scope: tuple[str, ...]) -> Diagnostic:
    """`d` with the module instantiation chain added to its notes (once)."""
    extra = tuple(s for s in scope if s not in d.notes)
    return replace(d, notes=(*d.notes, *extra)) if extra else d


def _build_node(layer: RawLayer, ops: Registry, sink: DiagnosticSink,
                defined: dict[str, SourceLoc], later: set[str], nodes: list[Node],
                broken: frozenset[str], inputs_missing: bool) -> None:
    if layer.name in defined:
        sink.error(layer.loc, f"duplicate layer name '{layer.name}'", node=layer.name,
                   hint=f"first defined at {defined[layer.name]}")
        return
    try:
        opdef = ops.lookup(layer.op, layer.loc, node=layer.name)
    except SpecError as e:
        sink.extend(e)
        defined[layer.name] = layer.loc
        return
    ok = True
    for i, src in enumerate(layer.inputs):
        if src in defined:
            continue
        ok = False
        if src in broken or (inputs_missing and src not in later):
            continue  # already reported (no cascade)
        hint = (f"'{src}' is defined below this layer; layers may only use inputs and "
                "layers defined above them (this also rules out cycles)"
                if src in later else did_you_mean(src, defined, "defined names"))
        sink.error(layer.loc, f"input {i} '{src}' is not defined above", node=layer.name,
                   op=layer.op, hint=hint)
    n_in = len(layer.inputs)
    if n_in < opdef.min_inputs or (opdef.max_inputs is not None and n_in > opdef.max_inputs):
        sink.error(layer.loc, f"takes {opdef.arity_text()}, found {n_in}",
                   node=layer.name, op=layer.op,
                   hint="list producers in `in: [a, b]`" if n_in < opdef.min_inputs
                   else None)
        ok = False
    params, errors = coerce_params(opdef.params, layer.params, layer.loc, node=layer.name,
                                   op=layer.op, key_locs=layer.key_loc)
    sink.items.extend(errors)
    defined[layer.name] = layer.loc
    if layer.share is not None and not _share_ok(layer, defined, nodes, sink):
        ok = False
    if ok and params is not None:
        nodes.append(Node(layer.name, layer.op, layer.inputs, params, layer.loc,
                          share=layer.share, trainable=layer.trainable,
                          init_from=layer.init_from, scope=layer.scope))


def _share_ok(layer: RawLayer, defined: dict[str, SourceLoc], nodes: list[Node],
              sink: DiagnosticSink) -> bool:
    """A layer may use the weights of a layer of the same op and params defined above it."""
    owner = next((n for n in nodes if n.name == layer.share), None)
    notes = layer.scope
    if owner is None:
        sink.error(layer.loc, f"shares weights with '{layer.share}', which is not a layer "
                              "defined above", node=layer.name, op=layer.op, notes=notes,
                   hint=did_you_mean(layer.share, defined, "defined names")  # type: ignore[arg-type]
                   if layer.share not in defined else "the owner must come first")
        return False
    if owner.op != layer.op:
        sink.error(layer.loc, f"shares weights with '{owner.name}', a {owner.op} layer",
                   node=layer.name, op=layer.op, notes=notes,
                   hint="only layers of the same op (and params) share weights")
        return False
    return True


_OUTPUT_KEYS = ("from", "loss", "weight", "args", "if")


def build_outputs(raw: Any, loc: SourceLoc, defined: set[str], sink: DiagnosticSink,
                  raw_loc: SourceLoc | None = None) -> tuple[OutputSpec, ...]:
    from compiler.losses import LOSSES

    if _section_problem(raw, "outputs", loc, raw_loc,
                        "outputs: {heatmaps: {from: head.prob, loss: spatial_softmax_nll}}",
                        sink):
        return ()
    outs = []
    for name, body in raw.items():
        oloc = raw.loc_of(name) if isinstance(raw, LocatedDict) else loc
        if not _is_key_name(name):
            sink.error(oloc, f"bad output name {name!r}",
                       hint="output names are single lower-case segments, e.g. heatmaps")
            continue
        if isinstance(body, str):
            body = LocatedDict({"from": body}, loc=oloc)
        if not isinstance(body, dict) or "from" not in body:
            sink.error(oloc, f"output '{name}' needs `from: LAYER`")
            continue
        for key in body:
            if key not in _OUTPUT_KEYS:
                sink.error(body.loc_of(key), f"unknown key '{key}' in output '{name}'",
                           hint=did_you_mean(str(key), _OUTPUT_KEYS))
        guard = body.get("if", True)
        if not isinstance(guard, bool):
            sink.error(body.loc_of("if"), f"output '{name}': `if` must be true or false, found "
                                          f"{guard!r}", hint="e.g. if: $identity (a bool param)")
            continue
        if not guard:  # an output of a variant this spec's params switch off
            continue
        src = body["from"]
        if not isinstance(src, str) or src not in defined:
            sink.error(body.loc_of("from"), f"output '{name}' comes from unknown layer '{src}'",
                       hint=did_you_mean(str(src), defined, "layers"))
            continue
        loss, weight = body.get("loss"), body.get("weight", 1.0)
        if loss is not None and (not isinstance(loss, str) or loss not in LOSSES):
            sink.error(body.loc_of("loss"), f"output '{name}': unknown loss '{loss}'",
                       hint=did_you_mean(str(loss), LOSSES, "losses"))
            continue
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            sink.error(body.loc_of("weight"), f"output '{name}': weight must be a number >= 0, "
                                              f"found {weight!r}")
            continue
        args = body.get("args") or {}
        if not isinstance(args, dict):
            sink.error(body.loc_of("args"), f"output '{name}': args must be a mapping")
            continue
        outs.append(OutputSpec(name, src, loss, float(weight), oloc, dict(args)))
    return tuple(outs)


def build_graph(name: str, raw_inputs: Any, layers: tuple[RawLayer, ...], raw_outputs: Any,
                ops: Registry, file: str, loc: SourceLoc, *, inputs_loc: SourceLoc | None = None,
                outputs_loc: SourceLoc | None = None) -> Graph:
    """`loc`: the document (for a missing section); `inputs_loc`/`outputs_loc`: the keys."""
    sink = DiagnosticSink()
    inputs = build_inputs(raw_inputs, loc, sink, inputs_loc)
    declared = {k for k in raw_inputs if isinstance(k, str)} \
        if isinstance(raw_inputs, dict) else set()
    nodes = build_nodes(layers, inputs, ops, sink,
                        broken=frozenset(declared - {n.name for n in inputs}),
                        inputs_missing=not declared)
    defined = {n.name for n in inputs} | {layer.name for layer in layers}
    outputs = build_outputs(raw_outputs, loc, defined, sink, outputs_loc)
    sink.raise_if_any()
    return Graph(name, inputs, nodes, outputs, file)
