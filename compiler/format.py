"""Text forms of the IR: the `netspec show` table (also the golden-file format)."""

from __future__ import annotations

from compiler.ir import Graph, Node, TensorType
from compiler.registry import Registry


def node_counts(node: Node, types: dict[str, TensorType | None], ops: Registry
                ) -> tuple[int, int]:
    """(parameter count, FLOPs) of one typed node; a layer that shares another's weights
    counts no params (each weight group is counted once, at its owner)."""
    opdef = ops.get(node.op)
    if opdef is None or node.out is None:
        return 0, 0
    ins = tuple(types[i] for i in node.inputs)
    params = 0 if node.share else opdef.count_params(node.params, ins, node.out)
    return params, opdef.flops(node.params, ins, node.out)


def _human(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def format_graph(graph: Graph, ops: Registry) -> str:
    """One line per layer: name = op(inputs)  type  params  FLOPs; then totals."""
    types = graph.types()
    ins = ", ".join(f"{n.name}: {n.out}" for n in graph.inputs)
    outs = ", ".join(f"{o.name}: {o.source}" + (f" [{o.loss} x{o.weight:g}]" if o.loss else "")
                     for o in graph.outputs)
    rows = []
    total_p = total_f = 0
    for node in graph.nodes:
        p, f = node_counts(node, types, ops)
        total_p, total_f = total_p + p, total_f + f
        rows.append((node.name, f"{node.op}({', '.join(node.inputs)})", str(node.out),
                     f"= {node.share}" if node.share else f"{p:,}", _human(f)))
    widths = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in
              enumerate(("layer", "op(inputs)", "output", "params", "FLOPs"))]
    head = ("layer", "op(inputs)", "output", "params", "FLOPs")
    lines = [f"graph {graph.name}({ins}) -> ({outs})",
             "  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  " + "  ".join(
            (c.rjust(w) if i >= 3 else c.ljust(w)) for i, (c, w) in
            enumerate(zip(r, widths, strict=True))).rstrip())
    lines.append(f"total: {len(graph.nodes)} layers, {total_p:,} params, "
                 f"{_human(total_f)} FLOPs per example")
    lines += module_lines(graph, types, ops)
    return "\n".join(lines) + "\n"


def module_lines(graph: Graph, types: dict[str, TensorType | None], ops: Registry) -> list[str]:
    """Module instances (params once per weight group, FLOPs per instance or step) and the
    weight groups that several layers share; nothing for a spec without modules."""
    from compiler.modules import scope_instance

    instances: dict[str, tuple[str, list[Node]]] = {}
    for node in graph.nodes:
        if node.scope:
            module, inst = scope_instance(node.scope[0])
            instances.setdefault(inst, (module, []))[1].append(node)
    groups: dict[str, list[str]] = {}
    for node in graph.nodes:
        if node.share:
            groups.setdefault(node.share, []).append(node.name)
    lines = []
    if instances:
        lines.append("modules:")
        for inst, (module, nodes) in instances.items():
            counts = [node_counts(n, types, ops) for n in nodes]
            own = sum(c[0] for c in counts)
            shared = sum(1 for n in nodes if n.share)
            lines.append(f"  {inst}: {module}, {len(nodes)} layers, {own:,} own params"
                         + (f", {shared} layers use other weights" if shared else "")
                         + f", {_human(sum(c[1] for c in counts))} FLOPs")
    if groups:
        lines.append(f"weight groups: {len(groups)} shared by "
                     f"{sum(len(v) for v in groups.values())} more layers")
        for owner, users in groups.items():
            p, _ = node_counts(graph.node(owner), types, ops)
            lines.append(f"  {owner} ({p:,} params) <- {', '.join(users)}")
    return lines


def param_summary(graph: Graph, ops: Registry) -> tuple[int, int]:
    types = graph.types()
    counts = [node_counts(n, types, ops) for n in graph.nodes]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)
