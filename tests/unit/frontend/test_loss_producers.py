"""Issue 10: `check` knows what each loss needs from its output's producer (logits vs
probabilities vs bounded activations), per the `needs` of every LossSpec."""

from __future__ import annotations

import pytest

from compiler.api import load_spec_text
from compiler.diagnostics import SpecError
from compiler.losses import LOSSES, coerce_loss_args, producer_problem
from compiler.value_kinds import (
    AXIS_PROBS,
    LOGITS,
    NONNEG,
    SIGNED_UNIT,
    SPATIAL_PROBS,
    UNIT,
    UNKNOWN,
    ValueKind,
    value_kind,
)

HEAD = "version: 1\nname: k\ninputs: {image: {shape: [16, 16, 1]}}\nlayers:\n"
CONV = "  - {name: h, op: conv2d, in: [image], filters: 5, kernel_size: 1%s}\n"
SOFT = CONV % "" + "  - {name: p, op: spatial_softmax, in: [h]}\n"
FLAT = "  - {name: f, op: flatten, in: [image]}\n"


def spec(layers: str, src: str, loss: str, args: str = "") -> str:
    extra = f", args: {args}" if args else ""
    return HEAD + layers + f"outputs:\n  o: {{from: {src}, loss: {loss}{extra}}}\n"


def problem(text: str) -> str | None:
    try:
        load_spec_text(text, "k.yaml")
    except SpecError as e:
        (d,) = e.diagnostics
        assert d.loc.line == text.count("\n")  # the output's line
        return f"{d.message} | {d.hint}"
    return None


BAD = [  # (layers, from, loss, args, words in message | hint)
    (CONV % "", "h", "spatial_softmax_nll", "", "'h' (conv2d without activation) gives "
     "unbounded logits | add a spatial_softmax layer after 'h'"),
    (CONV % ", activation: relu", "h", "spatial_softmax_nll", "", "non-negative values"),
    (CONV % ", activation: softmax", "h", "spatial_softmax_nll", "", "normalised over one axis"),
    (CONV % ", activation: sigmoid", "h", "spatial_softmax_nll", "", "values in [0, 1]"),
    (SOFT + "  - {name: c, op: crop2d, in: [p], cropping: 1}\n", "c", "spatial_softmax_nll", "",
     "apply the crop2d before 'p', so that the softmax comes last"),
    (SOFT + "  - {name: u, op: upsample2d, in: [p], size: 2}\n", "u", "spatial_softmax_nll", "",
     "upsample2d of the probabilities of 'p'"),
    (CONV % "" + "  - {name: s, op: softmax, in: [h]}\n", "s", "spatial_softmax_nll", "",
     "take the output from 'h', the layer before 's'"),
    (SOFT, "p", "spatial_softmax_nll", "{from_logits: true}", "the softmax would be applied "
     "twice"),
    (CONV % ", activation: tanh", "h", "spatial_softmax_nll", "{from_logits: true}",
     "values in [-1, 1] | remove `activation: tanh` from 'h'"),
    (CONV % ", activation: sigmoid", "h", "sigmoid_xent", "", "the sigmoid would be applied "
     "twice"),
    (CONV % ", activation: relu", "h", "sigmoid_xent", "", "every pixel scores at least 0.5"),
    (SOFT, "p", "sigmoid_xent", "", "take the output from 'h'"),
    (SOFT, "p", "heatmap_l2", "", "regresses unnormalised Gaussian heat-maps"),
    (CONV % ", activation: sigmoid", "h", "heatmap_l2", "{amplitude: 10}", "amplitude 10"),
    (SOFT, "p", "lgcn_weighted_l2", "", "kernel-convolved landmark maps"),
    (FLAT + "  - {name: d, op: dense, in: [f], units: 10, activation: softmax}\n", "d",
     "coord_l2", "", "which sum to 1"),
    (SOFT + "  - {name: i, op: identity, in: [p]}\n  - {name: q, op: dropout, in: [i], "
            "rate: 0.1}\n", "q", "sigmoid_xent", "", "'p' (spatial_softmax)"),
    (CONV % ", activation: relu" + "  - {name: b, op: batch_norm, in: [h]}\n", "b",
     "spatial_softmax_nll", "", "batch_norm (learned affine)"),
]

GOOD = [
    (SOFT, "p", "spatial_softmax_nll", ""),
    (SOFT + "  - {name: z, op: pad2d, in: [p], padding: 1}\n", "z", "spatial_softmax_nll", ""),
    (SOFT + "  - {name: c, op: concat, in: [p, p]}\n", "c", "spatial_softmax_nll", ""),
    (CONV % "", "h", "spatial_softmax_nll", "{from_logits: true}"),
    (CONV % ", activation: relu", "h", "spatial_softmax_nll", "{from_logits: true}"),
    (CONV % "", "h", "sigmoid_xent", ""),
    (CONV % ", activation: leaky_relu", "h", "sigmoid_xent", ""),
    (CONV % "" + "  - {name: a, op: add, in: [h, h]}\n", "a", "sigmoid_xent", ""),
    (CONV % ", activation: sigmoid", "h", "heatmap_l2", ""),
    (CONV % ", activation: relu", "h", "heatmap_l2", "{amplitude: 10}"),
    (CONV % "", "h", "lgcn_weighted_l2", ""),
    (FLAT + "  - {name: d, op: dense, in: [f], units: 10, activation: sigmoid}\n", "d",
     "coord_l2", ""),
    (CONV % "" + "  - {name: m, op: multiply, in: [h, h]}\n", "m", "spatial_softmax_nll", ""),
    ("  - {name: i, op: identity, in: [image]}\n", "i", "spatial_softmax_nll", ""),
]


@pytest.mark.parametrize(("layers", "src", "loss", "args", "words"), BAD)
def test_wrong_kind_of_output_is_a_located_error(layers: str, src: str, loss: str, args: str,
                                                 words: str) -> None:
    found = problem(spec(layers, src, loss, args))
    assert found is not None, "passed check"
    assert f"output 'o' (loss {loss}): " in found
    for part in words.split(" | "):
        assert part in found, found


@pytest.mark.parametrize(("layers", "src", "loss", "args"), GOOD)
def test_right_kind_of_output_passes(layers: str, src: str, loss: str, args: str) -> None:
    assert problem(spec(layers, src, loss, args)) is None


def test_every_loss_documents_what_it_needs() -> None:
    for s in LOSSES.values():
        assert len(s.needs) > 40, s.name


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_unknown_values_are_never_a_problem(name: str) -> None:
    args, _ = coerce_loss_args(name, {})
    assert producer_problem(name, args, ValueKind(UNKNOWN, "x", "multiply")) is None


def test_value_kinds_follow_the_graph() -> None:
    text = spec(SOFT + "  - {name: c, op: crop2d, in: [p], cropping: 1}\n"
                       "  - {name: t, op: activation, in: [h], activation: tanh}\n"
                       "  - {name: l, op: activation, in: [t], activation: linear}\n"
                       "  - {name: r, op: activation, in: [h], activation: relu}\n"
                       "  - {name: s, op: softmax, in: [h]}\n", "p", "spatial_softmax_nll")
    graph = load_spec_text(text, "k.yaml").graph
    kinds = {n: value_kind(graph, n).kind for n in ("image", "h", "p", "c", "t", "l", "r", "s")}
    assert kinds == {"image": UNKNOWN, "h": LOGITS, "p": SPATIAL_PROBS, "c": UNIT,
                     "t": SIGNED_UNIT, "l": SIGNED_UNIT, "r": NONNEG, "s": AXIS_PROBS}
