"""Layered (Sugiyama-style) layout of a DAG, in pure Python, for `netspec graph -o x.html`.

Steps: layering (longest path, then each node slides to the end of its slack that shortens
its edges, so parallel branches share rows); long edges become chains of dummy nodes (edges
from one source share their dummies, like a bus); barycentre sweeps plus adjacent swaps
reduce crossings; x coordinates come from alternating weighted-mean sweeps, each packed
exactly by isotonic regression under the minimum-separation constraints, with dummy chains
weighted to run straight. Edges are routed through their dummies' positions, so a route
crosses a layer's band only in its own lane and never through a box.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Box:
    name: str
    layer: int
    x: float  # left
    y: float  # top
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass(frozen=True, slots=True)
class Route:
    source: str
    target: str
    points: tuple[Point, ...]  # from the source's bottom to the target's top; vertical
    # pairs inside a layer's band (through a dummy), one chord per gap between layers


@dataclass(frozen=True, slots=True)
class Layout:
    boxes: dict[str, Box]
    routes: tuple[Route, ...]
    layers: tuple[tuple[str, ...], ...]  # final order per layer; dummies are "\0SRC\0LAYER"
    links: dict[str, tuple[str, ...]]  # the layered graph's edges (dummies included), down
    crossings: int
    width: float
    height: float
    band: float  # height of a layer's band (every box's height)
    gap: float  # space between bands, where routes change lanes


def _dummy(source: str, layer: int) -> str:
    return f"\0{source}\0{layer}"


def is_dummy(key: str) -> bool:
    return key.startswith("\0")


def _topological(nodes: Sequence[str], preds: Mapping[str, list[str]],
                 succs: Mapping[str, list[str]]) -> list[str]:
    indeg = {n: len(preds[n]) for n in nodes}
    ready = [n for n in nodes if indeg[n] == 0]
    order: list[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s in succs[n]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(order) != len(nodes):
        raise ValueError("graph has a cycle")
    return order


def assign_layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest path from the sources, then slack used to shorten edges: a node with more
    outputs than inputs (or as many) moves down, one with more inputs moves up."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for u, v in edges:
        preds[v].append(u)
        succs[u].append(v)
    order = _topological(nodes, preds, succs)
    layer: dict[str, int] = {}
    for n in order:
        layer[n] = 1 + max((layer[p] for p in preds[n]), default=-1)
    for _ in range(8):
        moved = False
        for n in reversed(order):  # down: ties too, so sibling branches line up in rows
            if succs[n] and len(succs[n]) >= len(preds[n]):
                hi = min(layer[s] for s in succs[n]) - 1
                if hi > layer[n]:
                    layer[n], moved = hi, True
        for n in order:
            if preds[n] and len(preds[n]) > len(succs[n]):
                lo = max(layer[p] for p in preds[n]) + 1
                if lo < layer[n]:
                    layer[n], moved = lo, True
        if not moved:
            break
    low = min(layer.values(), default=0)
    return {n: v - low for n, v in layer.items()}


def _inversions(seq: list[float]) -> int:
    seen: list[float] = []
    count = 0
    for v in seq:
        i = bisect_right(seen, v)
        count += len(seen) - i
        seen.insert(i, v)
    return count


def crossings_between(upper: Sequence[str], lower: Sequence[str],
                      down: Mapping[str, Sequence[str]]) -> int:
    """Edge crossings between two adjacent layers (edges given as upper -> lower lists)."""
    pos = {k: i for i, k in enumerate(lower)}
    seq = [pos[t] for u in upper for t in sorted(down.get(u, ()), key=pos.__getitem__)
           if t in pos]
    return _inversions(seq)


def count_crossings(layers: Sequence[Sequence[str]], down: Mapping[str, Sequence[str]]) -> int:
    return sum(crossings_between(layers[i], layers[i + 1], down) for i in range(len(layers) - 1))


def _pair_crossings(a: str, b: str, nbrs: Mapping[str, Sequence[str]],
                    pos: Mapping[str, int]) -> int:
    """Crossings among a's and b's edges to one neighbouring layer when a is left of b."""
    pa = [pos[x] for x in nbrs.get(a, ())]
    pb = [pos[x] for x in nbrs.get(b, ())]
    return sum(1 for x in pa for y in pb if x > y)


def _order(layers: list[list[str]], down: dict[str, list[str]], up: dict[str, list[str]]
           ) -> list[list[str]]:
    def sweep(lay: list[list[str]], downward: bool) -> list[list[str]]:
        lay = [list(x) for x in lay]
        rng = range(1, len(lay)) if downward else range(len(lay) - 2, -1, -1)
        for i in rng:
            ref = lay[i - 1] if downward else lay[i + 1]
            nbrs = up if downward else down
            pos = {k: j for j, k in enumerate(ref)}
            cur = {k: j for j, k in enumerate(lay[i])}

            def key(k: str, nbrs: dict[str, list[str]] = nbrs, pos: dict[str, int] = pos,
                    cur: dict[str, int] = cur, n: int = len(lay[i]), m: int = len(ref)
                    ) -> tuple[float, int]:
                ps = [pos[x] for x in nbrs.get(k, ()) if x in pos]
                # no neighbour there: keep its relative place in this layer
                bary = sum(ps) / len(ps) if ps else cur[k] * max(m - 1, 1) / max(n - 1, 1)
                return (bary, cur[k])

            lay[i].sort(key=key)
        return lay

    def transpose(lay: list[list[str]]) -> list[list[str]]:
        lay = [list(x) for x in lay]
        for _ in range(4):
            improved = False
            for i, row in enumerate(lay):
                pos_up = {k: j for j, k in enumerate(lay[i - 1])} if i > 0 else {}
                pos_dn = {k: j for j, k in enumerate(lay[i + 1])} if i + 1 < len(lay) else {}
                for j in range(len(row) - 1):
                    a, b = row[j], row[j + 1]
                    now = _pair_crossings(a, b, up, pos_up) + _pair_crossings(a, b, down, pos_dn)
                    swapped = (_pair_crossings(b, a, up, pos_up)
                               + _pair_crossings(b, a, down, pos_dn))
                    if swapped < now:
                        row[j], row[j + 1] = b, a
                        improved = True
            if not improved:
                break
        return lay

    best, best_c = layers, count_crossings(layers, down)
    cur = layers
    for it in range(12):
        cur = transpose(sweep(cur, downward=it % 2 == 0))
        c = count_crossings(cur, down)
        if c < best_c:
            best, best_c = cur, c
        if best_c == 0:
            break
    return best


def _pack(desired: list[float], weight: list[float], offset: list[float]) -> list[float]:
    """x minimising sum w (x - desired)^2 with x[i+1] - x[i] >= offset[i+1] - offset[i]:
    isotonic regression (pool adjacent violators) on desired - offset."""
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for t, w in zip((d - o for d, o in zip(desired, offset, strict=True)), weight,
                    strict=True):
        blocks.append([t * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, ww, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += ww
            blocks[-1][2] += c
    out: list[float] = []
    for s, w, c in blocks:
        out.extend([s / w] * int(c))
    return [y + o for y, o in zip(out, offset, strict=True)]


def _coordinates(layers: list[list[str]], width: Mapping[str, float], sep: float,
                 lane: float, down: dict[str, list[str]], up: dict[str, list[str]]
                 ) -> dict[str, float]:
    def gap(a: str, b: str) -> float:
        space = lane if is_dummy(a) and is_dummy(b) else sep
        return (width[a] + width[b]) / 2 + space

    offsets = []
    for row in layers:
        off = [0.0]
        for a, b in pairwise(row):
            off.append(off[-1] + gap(a, b))
        offsets.append(off)
    span = max((o[-1] for o in offsets), default=0.0)
    x = {k: o + (span - off[-1]) / 2 for row, off in zip(layers, offsets, strict=True)
         for k, o in zip(row, off, strict=True)}

    def edge_w(a: str, b: str) -> float:
        return 8.0 if is_dummy(a) and is_dummy(b) else 2.0 if is_dummy(a) or is_dummy(b) else 1.0

    order = list(range(len(layers)))
    for it in range(10):
        mode = ("down", "up", "both")[it % 3]
        rows = order if mode != "up" else order[::-1]
        for i in rows:
            row = layers[i]
            desired, weight = [], []
            for k in row:
                nb = ([*up.get(k, ())] if mode != "up" else []) + \
                     ([*down.get(k, ())] if mode != "down" else [])
                ws = [edge_w(k, n) for n in nb]
                if ws:
                    desired.append(sum(w * x[n] for w, n in zip(ws, nb, strict=True)) / sum(ws))
                    weight.append(sum(ws))
                else:
                    desired.append(x[k])
                    weight.append(0.1)
            for k, v in zip(row, _pack(desired, weight, offsets[i]), strict=True):
                x[k] = v
    return x


def layout_dag(nodes: Sequence[str], edges: Sequence[tuple[str, str]],
               width: Mapping[str, float], *, band: float = 48, gap: float = 40,
               sep: float = 24, lane: float = 10, dummy_width: float = 8,
               margin: float = 16) -> Layout:
    """Lay out the DAG (nodes in any order; edges u -> v) with boxes of the given widths."""
    layer = assign_layers(nodes, edges)
    n_layers = 1 + max(layer.values(), default=-1)
    rows: list[list[str]] = [[] for _ in range(n_layers)]
    for n in nodes:
        rows[layer[n]].append(n)
    down: dict[str, list[str]] = {}
    up: dict[str, list[str]] = {}
    w = dict(width)

    def link(a: str, b: str) -> None:
        if b not in down.setdefault(a, []):
            down[a].append(b)
            up.setdefault(b, []).append(a)

    hops: dict[tuple[str, str], list[str]] = {}  # edge -> the keys it passes, ends included
    for u, v in edges:
        path = [u]
        for li in range(layer[u] + 1, layer[v]):
            d = _dummy(u, li)  # shared by all of u's long edges: a bus down to the last target
            if d not in w:
                w[d] = dummy_width
                rows[li].append(d)
            path.append(d)
        path.append(v)
        for a, b in pairwise(path):
            link(a, b)
        hops[(u, v)] = path
    rows = _order(rows, down, up)
    crossings = count_crossings(rows, down)
    xs = _coordinates(rows, w, sep, lane, down, up)
    left = min((xs[k] - w[k] / 2 for k in xs), default=0.0)
    right = max((xs[k] + w[k] / 2 for k in xs), default=0.0)
    shift = margin - left
    boxes = {n: Box(n, layer[n], xs[n] - w[n] / 2 + shift, margin + layer[n] * (band + gap),
                    w[n], band) for n in nodes}

    def ports(key: str, others: list[str]) -> dict[str, float]:
        """Spread a box's edge ends over the middle of its side, ordered by the far end."""
        b = boxes[key]
        ordered = sorted(others, key=lambda o: xs[o])
        n = len(ordered)
        inner = min(b.w * 0.7, 18.0 * (n - 1)) if n > 1 else 0.0
        return {o: b.cx - inner / 2 + (inner * i / (n - 1) if n > 1 else 0.0)
                for i, o in enumerate(ordered)}

    out_port = {n: ports(n, down.get(n, [])) for n in nodes}
    in_port = {n: ports(n, up.get(n, [])) for n in nodes}
    routes = []
    for (u, v), path in hops.items():
        pts: list[Point] = [(out_port[u][path[1]], boxes[u].y + band)]
        for d in path[1:-1]:
            li = int(d.rsplit("\0", 1)[1])
            top = margin + li * (band + gap)
            pts += [(xs[d] + shift, top), (xs[d] + shift, top + band)]
        pts.append((in_port[v][path[-2]], boxes[v].y))
        routes.append(Route(u, v, tuple(pts)))
    return Layout(boxes=boxes, routes=tuple(routes), layers=tuple(tuple(r) for r in rows),
                  links={k: tuple(v) for k, v in down.items()},
                  crossings=crossings, width=right - left + 2 * margin,
                  height=2 * margin + n_layers * band + max(n_layers - 1, 0) * gap,
                  band=band, gap=gap)
