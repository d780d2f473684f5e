"""Typed, immutable graph IR. Passes return new Graphs; nothing mutates.

Shapes are NHWC (or batch, time, ...) with the batch dimension included as None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from compiler.diagnostics import SourceLoc

Dim = int | None  # None: unknown (always the batch dim)


@dataclass(frozen=True, slots=True)
class TensorType:
    shape: tuple[Dim, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


@dataclass(frozen=True, slots=True)
class Node:
    name: str  # "enc3.conv": unique, stable, from the spec
    op: str  # registry key: "conv2d"
    inputs: tuple[str, ...]  # producer names, defined above this node
    params: Any  # the op's frozen params dataclass
    loc: SourceLoc
    out: TensorType | None = None  # filled by infer_shapes
    # Spec language v1.1 (modules): the layer whose weights this one uses (None: its own);
    # False freezes the weights; (run directory, layer name there) initialises them from a
    # trained run; `scope` is the instantiation chain, outermost first, for error messages
    # ("in module 'encdec' (x.yaml:12) as 'rec.s2' at x.yaml:40").
    share: str | None = None
    trainable: bool = True
    init_from: tuple[str, str] | None = None
    scope: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """A model output: which layer it comes from and how the runtime scores it."""

    name: str
    source: str
    loss: str | None
    weight: float
    loc: SourceLoc
    loss_args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Graph:
    name: str
    inputs: tuple[Node, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[OutputSpec, ...]
    file: str = "<spec>"

    def node(self, name: str) -> Node:
        for n in (*self.inputs, *self.nodes):
            if n.name == name:
                return n
        raise KeyError(name)

    def types(self) -> dict[str, TensorType | None]:
        return {n.name: n.out for n in (*self.inputs, *self.nodes)}


def keras_name(node_name: str) -> str:
    """'enc3.conv' -> 'enc3__conv'. Keras forbids '/'; torch-backed Keras rejects '.'.

    Reversible because spec names may not contain '__'.
    """
    return node_name.replace(".", "__")


def spec_name(keras_layer_name: str) -> str:
    """Inverse of keras_name."""
    return keras_layer_name.replace("__", ".")
