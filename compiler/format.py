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


def rows_per_example(graph: Graph, types: dict[str, TensorType | None]) -> dict[str, int]:
    """How many batch rows each layer's output has per example: 1, except between
    `fold_time` (a clip [B, T, ...] becomes B*T frames) and `unfold_time`, where it is T.

    A layer's FLOPs are counted per batch row, so per-frame layers cost T times that
    per clip; `show` prints them per frame and totals them per example (clip)."""
    rows: dict[str, int] = {n.name: 1 for n in graph.inputs}
    for node in graph.nodes:
        before = max((rows.get(i, 1) for i in node.inputs), default=1)
        if node.op in ("fold_time", "unfold_time"):
            t = types.get(node.inputs[0] if node.op == "fold_time" else node.name)
            steps = t.shape[1] if t is not None and len(t.shape) > 1 else None
            steps = steps if isinstance(steps, int) else 1
            before = before * steps if node.op == "fold_time" else max(1, before // steps)
        rows[node.name] = before
    return rows


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
    per_row = rows_per_example(graph, types)
    for node in graph.nodes:
        p, f = node_counts(node, types, ops)
        total_p, total_f = total_p + p, total_f + f * per_row[node.name]
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
    frames = max(per_row.values(), default=1)
    lines.append(f"total: {len(graph.nodes)} layers, {total_p:,} params, "
                 f"{_human(total_f)} FLOPs per example"
                 + (f" (a clip of {frames} frames; per-frame layers show FLOPs per frame)"
                    if frames > 1 else ""))
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
        per_row = rows_per_example(graph, types)
        for inst, (module, nodes) in instances.items():
            counts = [node_counts(n, types, ops) for n in nodes]
            own = sum(c[0] for c in counts)
            shared = sum(1 for n in nodes if n.share)
            frames = max(per_row[n.name] for n in nodes)
            flops = sum(c[1] for c, n in zip(counts, nodes, strict=True)
                        if per_row[n.name] == frames)
            rest = sum(c[1] * per_row[n.name] for c, n in zip(counts, nodes, strict=True)
                       if per_row[n.name] != frames)
            cost = (f"{_human(flops)} FLOPs" if frames == 1 else
                    f"{_human(flops)} FLOPs per frame x {frames} frames"
                    + (f" + {_human(rest)} per clip" if rest else ""))
            lines.append(f"  {inst}: {module}, {len(nodes)} layers, {own:,} own params"
                         + (f", {shared} layers use other weights" if shared else "")
                         + f", {cost}")
    if groups:
        lines.append(f"weight groups: {len(groups)} shared by "
                     f"{sum(len(v) for v in groups.values())} more layers")
        for owner, users in groups.items():
            p, _ = node_counts(graph.node(owner), types, ops)
            lines.append(f"  {owner} ({p:,} params) <- {', '.join(users)}")
    return lines


def param_summary(graph: Graph, ops: Registry) -> tuple[int, int]:
    """(params, FLOPs per example): per-frame layers count once per frame of the clip."""
    types = graph.types()
    per_row = rows_per_example(graph, types)
    counts = [(node_counts(n, types, ops), per_row[n.name]) for n in graph.nodes]
    return sum(c[0] for c, _ in counts), sum(c[1] * r for c, r in counts)
