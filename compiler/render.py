"""Graph pictures: Graphviz DOT text, and a self-contained HTML/SVG with its own layout.

The HTML needs nothing installed or fetched: compiler.layout places the layers in rows
(a layered DAG layout with crossing reduction), so parallel branches sit side by side and
every edge runs in its own lane around the boxes; the SVG, CSS and a few lines of script
(hover highlights a layer's edges) are inline.
"""

from __future__ import annotations

import html

from compiler.ir import Graph
from compiler.layout import Layout, Route, layout_dag

_COLORS = {"conv": "#dbeafe", "pool": "#fde68a", "resize": "#d1fae5", "merge": "#fbcfe8",
           "weighting": "#e9d5ff", "core": "#e5e7eb", "sequence": "#fed7aa", "input": "#bbf7d0",
           "points": "#fef9c3", "module": "#f8fafc"}


_MODULE_TINTS = ("#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2")


def instances(graph: Graph) -> dict[str, str]:
    """Layer -> its outermost module instance (recurrence steps count as instances)."""
    from compiler.modules import scope_instance

    return {n.name: scope_instance(n.scope[0])[1] for n in graph.nodes if n.scope}


def feedback_edges(graph: Graph) -> set[tuple[str, str]]:
    """Edges from one recurrence step into the next (R.s<k-1>.* -> R.s<k>.*)."""
    inst = instances(graph)
    out = set()
    for n in graph.nodes:
        for i in n.inputs:
            a, b = inst.get(i), inst.get(n.name)
            if a and b and a != b and a.rpartition(".")[0] == b.rpartition(".")[0] \
                    and a.rpartition(".")[2][:1] == "s" == b.rpartition(".")[2][:1]:
                out.add((i, n.name))
    return out


def to_dot(graph: Graph, families: dict[str, str]) -> str:
    lines = [f'digraph "{graph.name}" {{', "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    inst = instances(graph)
    clusters: dict[str, list[str]] = {}
    for n in (*graph.inputs, *graph.nodes):
        color = _COLORS.get(families.get(n.op, "input" if n.op == "input" else ""), "#ffffff")
        label = f"{n.name}\\n{n.op}\\n{n.out}"
        line = f'"{n.name}" [label="{label}", fillcolor="{color}"];'
        if n.name in inst:
            clusters.setdefault(inst[n.name], []).append(line)
        else:
            lines.append("  " + line)
    for k, (name, members) in enumerate(clusters.items()):  # one box per module instance
        lines.append(f'  subgraph "cluster_{name}" {{ label="{name}"; style=dashed; '
                     f'color="{_MODULE_TINTS[k % len(_MODULE_TINTS)]}";')
        lines += [f"    {m}" for m in members]
        lines.append("  }")
    feedback = feedback_edges(graph)
    for n in graph.nodes:
        for i in n.inputs:
            style = ' [style=dashed, color="#d23", label="feedback"]' \
                if (i, n.name) in feedback else ""
            lines.append(f'  "{i}" -> "{n.name}"{style};')
    for o in graph.outputs:
        lines.append(f'  "out:{o.name}" [shape=oval, label="{o.name}\\n{o.loss or ""}"];')
        lines.append(f'  "{o.source}" -> "out:{o.name}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


_OUT = "out:"  # layout key prefix of an output; layer names cannot contain ':'
_CSS = ("body{font-family:Helvetica,Arial,sans-serif;margin:16px}"
        ".e{fill:none;stroke:#667;stroke-width:1.3;opacity:.8}"
        ".e.hl{stroke:#d23;stroke-width:2.6;opacity:1}"
        ".n rect{stroke:#333}.n.hl rect{stroke:#d23;stroke-width:2.5}"
        ".legend span{display:inline-block;padding:1px 8px;margin-right:6px;"
        "border:1px solid #999;border-radius:4px;font-size:12px}")
_JS = ("document.querySelectorAll('.n').forEach(function(g){"
       "function mark(on){var k=g.getAttribute('data-k');g.classList.toggle('hl',on);"
       "document.querySelectorAll('.e').forEach(function(e){"
       "if(e.getAttribute('data-s')===k||e.getAttribute('data-t')===k)"
       "e.classList.toggle('hl',on);});}"
       "g.addEventListener('mouseenter',function(){mark(true);});"
       "g.addEventListener('mouseleave',function(){mark(false);});});")


def _text_width(text: str, bold: bool = False) -> float:
    """A Helvetica 11 px estimate; boxes get some slack, the layout never measures text."""
    return len(text) * (6.9 if bold else 6.3)


def graph_layout(graph: Graph) -> Layout:
    """The picture's geometry: one box per input, layer and output."""
    nodes = [n.name for n in (*graph.inputs, *graph.nodes)]
    edges = [(i, n.name) for n in graph.nodes for i in n.inputs]
    width = {n.name: max(_text_width(n.name, True), _text_width(n.op),
                         _text_width(str(n.out))) + 18 for n in (*graph.inputs, *graph.nodes)}
    for o in graph.outputs:
        key = _OUT + o.name
        nodes.append(key)
        edges.append((o.source, key))
        width[key] = max(_text_width(o.name, True), _text_width(o.loss or "no loss")) + 28
    return layout_dag(nodes, edges, {k: max(v, 90.0) for k, v in width.items()})


def _path(route: Route) -> str:
    """Vertical runs inside layer bands, S-curves (vertical tangents) across the gaps."""
    pts = route.points
    d = [f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"]
    for i in range(1, len(pts)):
        (x1, y1), (x2, y2) = pts[i - 1], pts[i]
        if i % 2:  # a gap between two bands
            ym = (y1 + y2) / 2
            d.append(f"C{x1:.1f},{ym:.1f} {x2:.1f},{ym:.1f} {x2:.1f},{y2:.1f}")
        else:
            d.append(f"L{x2:.1f},{y2:.1f}")
    return " ".join(d)


def to_html(graph: Graph, families: dict[str, str]) -> str:
    lay = graph_layout(graph)
    by_name = {n.name: n for n in (*graph.inputs, *graph.nodes)}
    outputs = {_OUT + o.name: o for o in graph.outputs}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" '
             f'height="{lay.height:.0f}" font-family="Helvetica,Arial,sans-serif" '
             'font-size="11">',
             '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#667"/>'
             "</marker></defs>"]
    feedback = feedback_edges(graph)
    inst = instances(graph)
    tint = {name: _MODULE_TINTS[k % len(_MODULE_TINTS)]
            for k, name in enumerate(dict.fromkeys(inst.values()))}
    for r in lay.routes:
        dash = ' stroke-dasharray="5,3" style="stroke:#d23"' \
            if (r.source, r.target) in feedback else ""
        parts.append(f'<path class="e" data-s="{html.escape(r.source)}" '
                     f'data-t="{html.escape(r.target)}" d="{_path(r)}"{dash} '
                     'marker-end="url(#a)"/>')
    for key, b in lay.boxes.items():
        cx = f"{b.cx:.1f}"
        if key in outputs:
            o = outputs[key]
            tip = html.escape(f"output {o.name} = {o.source}; loss {o.loss} x{o.weight:g}")
            parts.append(f'<g class="n" data-k="{html.escape(key)}"><title>{tip}</title>'
                         f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" '
                         f'height="{b.h:.1f}" rx="{b.h / 2:.0f}" fill="#fff7ed"/>'
                         f'<text x="{cx}" y="{b.y + 20:.1f}" text-anchor="middle" '
                         f'font-style="italic">{html.escape(o.name)}</text>'
                         f'<text x="{cx}" y="{b.y + 35:.1f}" text-anchor="middle" '
                         f'fill="#444">{html.escape(o.loss or "no loss")}</text></g>')
            continue
        n = by_name[key]
        fam = "input" if n.op == "input" else families.get(n.op, "")
        color = _COLORS.get(fam, "#ffffff")
        where = f" [module instance {inst[key]}]" if key in inst else ""
        tip = html.escape(f"{n.name} = {n.op}({', '.join(n.inputs)}) -> {n.out}{where}")
        frame = (f' style="stroke:{tint[inst[key]]};stroke-width:2.5;stroke-dasharray:6,2"'
                 if key in inst else "")
        parts.append(f'<g class="n" data-k="{html.escape(key)}"><title>{tip}</title>'
                     f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" '
                     f'rx="6" fill="{color}"{frame}/>'
                     f'<text x="{cx}" y="{b.y + 15:.1f}" text-anchor="middle" '
                     f'font-weight="bold">{html.escape(n.name)}</text>'
                     f'<text x="{cx}" y="{b.y + 29:.1f}" text-anchor="middle">'
                     f"{html.escape(n.op)}</text>"
                     f'<text x="{cx}" y="{b.y + 42:.1f}" text-anchor="middle" '
                     f'fill="#444">{html.escape(str(n.out))}</text></g>')
    parts.append("</svg>")
    outs = ", ".join(f"{html.escape(o.name)} &larr; {html.escape(o.source)}"
                     for o in graph.outputs)
    legend = "".join(f'<span style="background:{c}">{f}</span>' for f, c in _COLORS.items())
    legend += "".join(f'<span style="border:2px dashed {c}">module {html.escape(m)}</span>'
                      for m, c in tint.items())
    if feedback:
        legend += '<span style="border:2px dashed #d23">feedback</span>'
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(graph.name)}</title><style>{_CSS}</style></head><body>"
            f"<h2>{html.escape(graph.name)}</h2><p>{len(graph.nodes)} layers; outputs: "
            f"{outs}</p><p class='legend'>{legend}</p>"
            + "".join(parts) + f"<script>{_JS}</script></body></html>\n")
