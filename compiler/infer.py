"""Shape inference over the whole graph, without TensorFlow.

Pre: build_graph passed (every input is defined above its use).
Post: every node has `out`, or a SpecError lists every independent failure; nodes
downstream of a failure are skipped, not re-reported (no cascades).
"""

from __future__ import annotations

from dataclasses import replace

from compiler.diagnostics import DiagnosticSink, ShapeMismatch
from compiler.ir import Graph, Node, TensorType
from compiler.registry import Registry


def infer_shapes(graph: Graph, ops: Registry) -> Graph:
    known: dict[str, TensorType | None] = {n.name: n.out for n in graph.inputs}
    done = []
    sink = DiagnosticSink()
    for node in graph.nodes:
        ins = tuple(known.get(i) for i in node.inputs)
        if any(t is None for t in ins):
            known[node.name] = None  # an upstream node already failed
            done.append(node)
            continue
        opdef = ops.get(node.op)
        try:
            out = opdef.infer(node.params, ins)  # type: ignore[union-attr, arg-type]
        except ShapeMismatch as e:
            notes = tuple(f"input {k}: {src} {t}"
                          for k, (src, t) in enumerate(zip(node.inputs, ins, strict=True)))
            sink.error(node.loc, str(e), node=node.name, op=node.op,
                       notes=(*notes, *node.scope), hint=e.hint)
            out = None
        known[node.name] = out
        done.append(replace(node, out=out))
    sink.raise_if_any()
    typed = replace(graph, nodes=check_sharing(tuple(done), known, ops, sink))
    sink.raise_if_any()
    check_output_losses(typed, sink)
    sink.raise_if_any()
    return typed


def check_output_losses(graph: Graph, sink: DiagnosticSink) -> None:
    """Each output's loss must suit its layer's shape (e.g. heatmap losses need 4-D maps)
    and the kind of values it gives (probabilities vs logits; compiler/value_kinds.py)."""
    from compiler.losses import check_loss, coerce_loss_args, producer_problem
    from compiler.value_kinds import value_kind

    types = graph.types()
    for out in graph.outputs:
        if out.loss is None:
            continue
        shape = types[out.source]
        if shape is None:
            continue
        problems = check_loss(out.loss, out.loss_args, shape.shape, None)
        for problem in problems:
            sink.error(out.loc, f"output '{out.name}' (loss {out.loss}): {problem}",
                       notes=(f"from: {out.source} {shape}",))
        if problems:
            continue
        args, _ = coerce_loss_args(out.loss, out.loss_args)
        value = value_kind(graph, out.source)
        found = producer_problem(out.loss, args, value)
        if found:
            problem, hint = found
            where = graph.node(value.node).loc
            sink.error(out.loc, f"output '{out.name}' (loss {out.loss}): {problem}",
                       notes=(f"from: {out.source} {shape}", f"'{value.node}' is at {where}"),
                       hint=hint)


def check_sharing(nodes: tuple[Node, ...], types: dict[str, TensorType | None], ops: Registry,
                  sink: DiagnosticSink) -> tuple[Node, ...]:
    """Shared weights must have one shape: the same op params and the same channels on
    every input (spatial sizes may differ: a fully-convolutional module can run at another
    size). `share` is resolved to the group's owner and dropped where there are no weights."""
    by_name = {n.name: n for n in nodes}
    out = []
    for node in nodes:
        if node.share is None or node.out is None:
            out.append(node)
            continue
        owner = by_name[node.share]
        while owner.share is not None:  # a chain of sharers has one owner
            owner = by_name[owner.share]
        opdef = ops.get(node.op)
        owner_ins = tuple(types.get(i) for i in owner.inputs)
        if opdef is None or owner.out is None or None in owner_ins or opdef.count_params(
                owner.params, owner_ins, owner.out) == 0:  # type: ignore[arg-type]
            out.append(replace(node, share=None))
            continue
        notes = (f"weights of '{owner.name}' ({owner.loc})", *node.scope)
        if node.params != owner.params:
            sink.error(node.loc, f"shares weights with '{owner.name}' but has other params",
                       node=node.name, op=node.op, notes=notes,
                       hint="layers that share weights need identical params")
        for k, (src, osrc) in enumerate(zip(node.inputs, owner.inputs, strict=True)):
            mine, theirs = types.get(src), types.get(osrc)
            if mine is not None and theirs is not None and mine.shape[-1] != theirs.shape[-1]:
                sink.error(node.loc, f"shares weights with '{owner.name}', but its input {k} "
                                     f"has {mine.shape[-1]} channels where the owner's has "
                                     f"{theirs.shape[-1]}: the weights would differ in shape",
                           node=node.name, op=node.op,
                           notes=(f"input {k}: {src} {mine}", f"owner's: {osrc} {theirs}",
                                  *notes),
                           hint="share only between uses with the same input channels")
        out.append(replace(node, share=owner.name))
    return tuple(out)

