"""What kind of values a layer produces (logits, probabilities, a bounded range), for
the loss checks of compiler/losses.py.

A loss scores a particular kind of output: `spatial_softmax_nll` reads probabilities
that sum to 1 over each map, `sigmoid_xent` reads logits. Fed the wrong kind, training
runs with a wrong or constant loss and no error, so `netspec check` must know. The kind
is read off the graph: an op's activation, softmaxes, and ops that pass values through
(identity, dropout) or keep their range (crops, pools, resizes). Where an op could give
anything (multiply, learned upsampling, reshapes of probabilities), the kind is UNKNOWN
and no rule applies: the check only reports what it can prove.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir import Graph, Node

LOGITS = "logits"  # unbounded reals: a layer without activation, a sum of such
SPATIAL_PROBS = "spatial_probs"  # spatial_softmax: each map sums to 1 over H x W
AXIS_PROBS = "axis_probs"  # softmax over one axis (channels by default): sums to 1 there
UNIT = "unit"  # values in [0, 1] (sigmoid, or probabilities cropped, pooled, resized)
SIGNED_UNIT = "signed_unit"  # values in [-1, 1] (tanh)
NONNEG = "nonneg"  # values >= 0 (relu, softplus, ...)
UNKNOWN = "unknown"

KIND_TEXT = {LOGITS: "unbounded logits",
             SPATIAL_PROBS: "probabilities normalised over each map (sum 1 over H x W)",
             AXIS_PROBS: "probabilities normalised over one axis",
             UNIT: "values in [0, 1]", SIGNED_UNIT: "values in [-1, 1]",
             NONNEG: "non-negative values", UNKNOWN: "values of unknown range"}

_BY_ACTIVATION = {None: LOGITS, "linear": LOGITS, "softmax": AXIS_PROBS, "sigmoid": UNIT,
                  "hard_sigmoid": UNIT, "tanh": SIGNED_UNIT, "relu": NONNEG, "relu6": NONNEG,
                  "softplus": NONNEG, "exponential": NONNEG}
_ACTIVATED = ("conv2d", "conv2d_transpose", "depthwise_conv2d", "dense", "activation",
              "lstm", "conv_lstm2d")
_PASS = ("identity", "dropout", "time_slice", "module_input", "fold_time", "unfold_time",
         "stop_gradient", "split")  # values unchanged (dropout: up to scale; folds and
# channel subsets: rearranged, each map keeps its kind)
# Values kept within their range, but no longer normalised.
_RANGE = ("crop2d", "max_pool2d", "avg_pool2d", "global_avg_pool2d", "global_max_pool2d",
          "upsample2d", "resize_to_match", "pad2d", "unpool_with_indices")
_LINEAR = ("add", "weighted_sum", "scale", "kernel_conv", "batch_norm")


@dataclass(frozen=True)
class ValueKind:
    """A kind and the layer that decided it, as the loss errors name it."""

    kind: str
    node: str  # the deciding layer
    why: str  # e.g. "conv2d without activation", "spatial_softmax"
    fix: str = ""  # how to get at the values before this layer changed their kind

    def describe(self) -> str:
        return f"'{self.node}' ({self.why}) gives {KIND_TEXT[self.kind]}"


def value_kind(graph: Graph, name: str) -> ValueKind:
    """The kind of the values layer (or input) `name` produces."""
    memo: dict[str, ValueKind] = {}
    # One pass in define-before-use order: no recursion, however deep the graph.
    for node in (*graph.inputs, *graph.nodes):
        memo[node.name] = _kind(node, [memo[i] for i in node.inputs if i in memo])
        if node.name == name:
            break
    return memo.get(name, ValueKind(UNKNOWN, name, "unknown layer"))


def _kind(node: Node, ins: list[ValueKind]) -> ValueKind:
    op, p = node.op, node.params
    unknown = ValueKind(UNKNOWN, node.name, op)
    if op == "spatial_softmax":
        return ValueKind(SPATIAL_PROBS, node.name, "spatial_softmax", _before(node))
    if op == "softmax":
        return ValueKind(AXIS_PROBS, node.name, f"softmax over axis {p.axis}", _before(node))
    if op in _ACTIVATED:
        act = getattr(p, "activation", None)
        if op == "activation" and act == "linear":
            return ins[0] if ins else unknown
        if act in (None, "linear"):
            return ValueKind(LOGITS, node.name, f"{op} without activation")
        why = f"{op} with activation {act}"
        if act == "softmax":
            why += " (over the last axis)"
        return ValueKind(_BY_ACTIVATION.get(act, UNKNOWN), node.name, why,
                         f"remove `activation: {act}` from '{node.name}'")
    if not ins:
        return unknown
    first = ins[0]
    if op in _PASS:
        return first
    if op == "pad2d" and first.kind == SPATIAL_PROBS:
        return first  # zeros added: each map still sums to 1
    if op in _RANGE or op == "concat":
        if op == "concat" and len({k.kind for k in ins}) != 1:
            return unknown
        if first.kind == SPATIAL_PROBS and op == "concat" and p.axis in (-1, 3):
            return first  # each map is still normalised
        if first.kind in (SPATIAL_PROBS, AXIS_PROBS):
            return ValueKind(UNIT, node.name, f"{op} of the probabilities of '{first.node}'",
                             f"apply the {op} before '{first.node}', so that the softmax "
                             "comes last")
        return first if first.kind != UNKNOWN else unknown
    if op in _LINEAR and (op == "batch_norm" or any(k.kind == LOGITS for k in ins)):
        # a learned affine map, or a sum/scaling with an unbounded term: unbounded
        return ValueKind(LOGITS, node.name, "batch_norm (learned affine)" if op == "batch_norm"
                         else f"{op} of logits")
    return unknown


def _before(node: Node) -> str:
    return f"take the output from '{node.inputs[0]}', the layer before '{node.name}'"
