"""compiler.layout: the layered DAG layout behind `netspec graph -o x.html` (no TensorFlow).

Geometry invariants on the real specs and on random DAGs: boxes never overlap, every edge
runs downwards, no route passes through a box other than its own ends, and crossing
reduction beats the naive order (spec order, dummies after the layers).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
import random
import time

import pytest

from compiler.api import load_spec
from compiler.layout import Layout, count_crossings, is_dummy, layout_dag
from compiler.render import graph_layout

SPECS = ("rcn_6branch", "rcn_6branch_skip", "sumnet_6branch", "lgcn", "is_net")


@pytest.fixture(scope="module")
def layouts(repo: Path) -> dict[str, tuple[list[str], Layout]]:
    out = {}
    for name in SPECS:
        g = load_spec(repo / "specs" / f"{name}.yaml").graph
        order = [n.name for n in (*g.inputs, *g.nodes)] + [f"out:{o.name}" for o in g.outputs]
        out[name] = (order, graph_layout(g))
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]
             ) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _segment_hits_box(p: tuple[float, float], q: tuple[float, float],
                      box: tuple[float, float, float, float]) -> bool:
    """Liang-Barsky clipping against the box shrunk by half a pixel (touching is fine)."""
    x0, y0, x1, y1 = box[0] + 0.5, box[1] + 0.5, box[2] - 0.5, box[3] - 0.5
    dx, dy = q[0] - p[0], q[1] - p[1]
    lo, hi = 0.0, 1.0
    for d, near, far in ((dx, x0 - p[0], x1 - p[0]), (dy, y0 - p[1], y1 - p[1])):
        if d == 0:
            if near > 0 or far < 0:
                return False
            continue
        t0, t1 = sorted((near / d, far / d))
        lo, hi = max(lo, t0), min(hi, t1)
        if lo > hi:
            return False
    return True


def _check_geometry(lay: Layout) -> None:
    rects = {k: (b.x, b.y, b.x + b.w, b.y + b.h) for k, b in lay.boxes.items()}
    keys = list(rects)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not _overlap(rects[a], rects[b]), (a, b)
        assert rects[a][0] >= 0 and rects[a][2] <= lay.width and rects[a][3] <= lay.height
    for r in lay.routes:
        assert lay.boxes[r.source].layer < lay.boxes[r.target].layer, (r.source, r.target)
        ys = [p[1] for p in r.points]
        assert ys == sorted(ys), (r.source, r.target)  # always downwards
        assert ys[0] == rects[r.source][3] and ys[-1] == rects[r.target][1]
        for p, q in pairwise(r.points):
            for k, rect in rects.items():
                if k not in (r.source, r.target):
                    assert not _segment_hits_box(p, q, rect), (r.source, r.target, k)


@pytest.mark.parametrize("name", SPECS)
def test_real_specs_have_sound_geometry(layouts: dict, name: str) -> None:
    order, lay = layouts[name]
    assert set(lay.boxes) == set(order)
    _check_geometry(lay)


def _naive_crossings(order: list[str], lay: Layout) -> int:
    """The same layered graph with each layer in spec order, dummies after (by source)."""
    rank = {k: i for i, k in enumerate(order)}

    def key(k: str) -> tuple[int, int]:
        return (1, rank[k.split("\0")[1]]) if is_dummy(k) else (0, rank[k])

    return count_crossings([sorted(row, key=key) for row in lay.layers], lay.links)


@pytest.mark.parametrize("name", ["rcn_6branch", "rcn_6branch_skip", "sumnet_6branch"])
def test_crossing_reduction_beats_the_naive_order(layouts: dict, name: str) -> None:
    order, lay = layouts[name]
    naive = _naive_crossings(order, lay)
    assert lay.crossings < naive
    assert lay.crossings == count_crossings(lay.layers, lay.links) == 0


def test_sumnet_branches_sit_side_by_side(layouts: dict) -> None:
    _, lay = layouts["sumnet_6branch"]
    rows = {lay.boxes[f"br{k}.maps"].layer for k in range(2, 7)}
    assert len(rows) == 1  # one row of per-branch heads, not a staircase
    xs = [lay.boxes[f"br{k}.maps"].x for k in range(1, 7)]
    assert len({round(x) for x in xs}) == 6


def test_rcn_skip_edges_run_in_their_own_lanes(layouts: dict) -> None:
    _, lay = layouts["rcn_6branch"]
    skip = next(r for r in lay.routes if (r.source, r.target) == ("enc1.conv", "br1.cat"))
    assert len(skip.points) > 2  # through dummies, not a straight line under the chain
    chain_x = [lay.boxes[f"enc{k}.conv"] for k in range(2, 7)]
    lane_x = {round(p[0]) for p in skip.points[1:-1]}
    assert all(not (b.x <= x <= b.x + b.w) for b in chain_x for x in lane_x)


def test_largest_spec_lays_out_fast(repo: Path) -> None:
    g = load_spec(repo / "specs" / "lgcn.yaml").graph
    t0 = time.perf_counter()
    graph_layout(g)
    assert time.perf_counter() - t0 < 0.2


def test_layout_is_deterministic(layouts: dict, repo: Path) -> None:
    g = load_spec(repo / "specs" / "rcn_6branch_skip.yaml").graph
    assert graph_layout(g) == layouts["rcn_6branch_skip"][1]


@pytest.mark.parametrize("seed", range(12))
def test_random_dags_have_sound_geometry(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(2, 30)
    nodes = [f"n{i}" for i in range(n)]
    edges = sorted({(nodes[rng.randrange(j)], nodes[j]) for j in range(1, n)
                    for _ in range(rng.randint(1, 3))})
    lay = layout_dag(nodes, edges, {k: rng.uniform(60, 180) for k in nodes})
    _check_geometry(lay)
    assert {(r.source, r.target) for r in lay.routes} == set(edges)
