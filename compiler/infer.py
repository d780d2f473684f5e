"""Shape inference over the whole graph, without TensorFlow.

Pre: build_graph passed (every input is defined above its use).
Post: every node has `out`, or a SpecError lists every independent failure; nodes
downstream of a failure are skipped, not re-reported (no cascades).
"""

from __future__ import annotations

from dataclasses import replace

from compiler.diagnostics import DiagnosticSink, ShapeMismatch
from compiler.ir import Graph, TensorType
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
            sink.error(node.loc, str(e), node=node.name, op=node.op, notes=notes, hint=e.hint)
            out = None
        known[node.name] = out
        done.append(replace(node, out=out))
    sink.raise_if_any()
    typed = replace(graph, nodes=tuple(done))
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
