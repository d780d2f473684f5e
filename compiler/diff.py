"""What differs between two specs (`netspec diff A B`): the typed graphs, layer by layer,
and the run sections (data/train/eval/search), key path by key path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
import json
from typing import Any

from compiler.ir import Graph, Node


def _params(node: Node) -> dict[str, object]:
    if node.params is None:
        return {}
    return {f.name: getattr(node.params, f.name) for f in fields(node.params)}


def _modules(g: Graph) -> dict[str, tuple[str, int, int]]:
    """Module instance -> (module, layers, layers that use another's weights)."""
    from compiler.modules import scope_instance

    out: dict[str, tuple[str, int, int]] = {}
    for n in g.nodes:
        if n.scope:
            module, inst = scope_instance(n.scope[0])
            m, count, shared = out.get(inst, (module, 0, 0))
            out[inst] = (m, count + 1, shared + bool(n.share))
    return out


def diff_modules(a: Graph, b: Graph) -> list[str]:
    """Module-level summary lines: instances added or removed, and weight sharing changed."""
    ma, mb = _modules(a), _modules(b)
    lines = [f"- module instance {i} ({ma[i][0]})" for i in ma if i not in mb]
    lines += [f"+ module instance {i} ({mb[i][0]})" for i in mb if i not in ma]
    for i in ma.keys() & mb.keys():
        (m1, n1, s1), (m2, n2, s2) = ma[i], mb[i]
        if (m1, n1, s1) != (m2, n2, s2):
            lines.append(f"~ module instance {i}: {m1} ({n1} layers, {s1} sharing) -> "
                         f"{m2} ({n2} layers, {s2} sharing)")
    return sorted(lines)


def diff_graphs(a: Graph, b: Graph) -> list[str]:
    """Human-readable lines: module instances first, then '+ layer', '- layer',
    '~ layer: what changed'. Empty if equal."""
    lines: list[str] = diff_modules(a, b)
    na = {n.name: n for n in (*a.inputs, *a.nodes)}
    nb = {n.name: n for n in (*b.inputs, *b.nodes)}
    for name, n in na.items():
        if name not in nb:
            lines.append(f"- {name}: {n.op}({', '.join(n.inputs)}) {n.out}")
    for name, n in nb.items():
        if name not in na:
            lines.append(f"+ {name}: {n.op}({', '.join(n.inputs)}) {n.out}")
    for name, x in na.items():
        y = nb.get(name)
        if y is None:
            continue
        changes = []
        if x.op != y.op:
            changes.append(f"op {x.op} -> {y.op}")
        if x.inputs != y.inputs:
            changes.append(f"inputs ({', '.join(x.inputs)}) -> ({', '.join(y.inputs)})")
        if x.op == y.op:
            px, py = _params(x), _params(y)
            for key in px:
                if px[key] != py.get(key):
                    changes.append(f"{key} {px[key]!r} -> {py.get(key)!r}")
        if x.out != y.out:
            changes.append(f"shape {x.out} -> {y.out}")
        if x.share != y.share:
            changes.append(f"weights of {x.share or 'its own'} -> {y.share or 'its own'}")
        if x.trainable != y.trainable:
            changes.append("frozen" if not y.trainable else "no longer frozen")
        if changes:
            lines.append(f"~ {name}: " + "; ".join(changes))
    oa = {o.name: o for o in a.outputs}
    ob = {o.name: o for o in b.outputs}
    for name in sorted(set(oa) | set(ob)):
        x, y = oa.get(name), ob.get(name)
        if x is None:
            lines.append(f"+ output {name}: from {y.source} loss {y.loss}")  # type: ignore[union-attr]
        elif y is None:
            lines.append(f"- output {name}: from {x.source} loss {x.loss}")
        elif (x.source, x.loss, x.weight, dict(x.loss_args)) != \
                (y.source, y.loss, y.weight, dict(y.loss_args)):
            lines.append(f"~ output {name}: {x.source}/{x.loss}/x{x.weight:g} -> "
                         f"{y.source}/{y.loss}/x{y.weight:g}")
    return lines


def _show(value: Any) -> str:  # noqa: ANN401 - plain YAML data
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _walk(path: str, x: Any, y: Any, lines: list[str]) -> None:  # noqa: ANN401
    if isinstance(x, Mapping) and isinstance(y, Mapping):
        for key in [*x, *(k for k in y if k not in x)]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in y:
                lines.append(f"- {sub}: {_show(x[key])}")
            elif key not in x:
                lines.append(f"+ {sub}: {_show(y[key])}")
            else:
                _walk(sub, x[key], y[key], lines)
    elif x != y or isinstance(x, bool) != isinstance(y, bool):  # 40 == 40.0, True != 1
        lines.append(f"~ {path}: {_show(x)} -> {_show(y)}")


def diff_sections(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """'~ train.epochs: 30 -> 3', '+ data.limit: 100', '- eval.shape_model: true' for the
    run sections given as plain data ({"train": {...}, ...}); empty if equal. A key only
    one side has is listed with '+'/'-' (the other side gets the default)."""
    lines: list[str] = []
    _walk("", dict(a), dict(b), lines)
    return lines
