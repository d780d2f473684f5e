"""Memory warnings for specs that check fine but cannot be built: `filters: 1e6` or a
10⁵-pixel input type-checks, and a trillion-parameter model is only refused by the
machine (an out-of-memory kill) minutes later. Counts are exact, from the typed IR.
"""

from __future__ import annotations

from compiler.diagnostics import Diagnostic, SourceLoc
from compiler.format import node_counts
from compiler.ir import Graph
from compiler.registry import Registry

WARN_BYTES = 10**9  # 1 GB: more than any landmark net needs, well below a GPU's memory
FLOAT32 = 4
TRAINING_FACTOR = 4  # weights + gradients + two optimizer slots (Adam, AdaDelta)


def human_bytes(n: int) -> str:
    for unit, div in (("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6),
                      ("kB", 10**3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def weight_counts(graph: Graph, ops: Registry) -> dict[str, int]:
    """Parameters per layer, from the typed IR (exact, no framework)."""
    types = graph.types()
    return {n.name: node_counts(n, types, ops)[0] for n in graph.nodes}


def memory_warnings(graph: Graph, ops: Registry, loc: SourceLoc) -> list[Diagnostic]:
    """Warnings (severity 'warning') when the float32 weights, or one example's
    activations, need more than WARN_BYTES; each names the largest layer."""
    counts = weight_counts(graph, ops)
    out = []
    total = sum(counts.values())
    if total * FLOAT32 > WARN_BYTES:
        big = max(graph.nodes, key=lambda n: counts[n.name])
        out.append(Diagnostic(
            big.loc, f"the weights need {human_bytes(total * FLOAT32)} "
                     f"({total:,} float32 params); training needs about {TRAINING_FACTOR}x "
                     "that (gradients and optimizer state)",
            notes=(f"largest: layer '{big.name}' ({big.op}) with {counts[big.name]:,} params "
                   f"({100 * counts[big.name] / total:.0f}%)",),
            hint="check the layer sizes (filters, units, the input shape); "
                 "a GPU holds 16-141 GB", severity="warning"))
    sizes = {n.name: _elements(n.out.shape) for n in (*graph.inputs, *graph.nodes)
             if n.out is not None}
    acts = sum(sizes.values())
    if acts * FLOAT32 > WARN_BYTES:
        big = max((*graph.inputs, *graph.nodes), key=lambda n: sizes.get(n.name, 0))
        out.append(Diagnostic(
            big.loc if big.loc.line else loc,
            f"one example's activations need {human_bytes(acts * FLOAT32)} (float32), "
            "times the batch size in training",
            notes=(f"largest: '{big.name}' {big.out}",),
            hint="check the input shape and the feature-map sizes", severity="warning"))
    return out


def _elements(shape: tuple[int | None, ...]) -> int:
    n = 1
    for d in shape[1:]:
        n *= d or 1
    return n
