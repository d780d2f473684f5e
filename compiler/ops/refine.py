"""Refinement ops: what RAR's recurrent attentive refinement needs beyond `points` ops.

One refinement step (Xiao et al., "Robust Facial Landmark Detection via Recurrent
Attentive-Refinement Networks", ECCV 2016) is a module applied T times with one weight
set. Its LSTMs keep their state between steps through the module's `feedback:`, so the
cell is one step (`lstm_cell`, state [B, 2u] = h then c), not a sequence op. The attention
picks one landmark c* (`attention_choice`), the weighting Gamma follows from the distance
of every landmark to c* (`attention_weights`), Gamma scales per-landmark tensors
(`weight_points`), and the per-step quantities the losses need are packed per step
(`pack_step`) and stacked over the steps (`stack_steps`) into [B, T, K, 7], which the
`rar_refine` and `rar_attention` losses read (runtime/train/rar_losses.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compiler.diagnostics import ShapeMismatch
from compiler.ir import TensorType
from compiler.ops.activations import activation_problem
from compiler.ops.points import need_points
from compiler.ops.shapes import need_rank
from compiler.params import NoParams, OpParams, param
from compiler.registry import OpDef

PACK_CHANNELS = 7
"""pack_step's channels per landmark: x_in, y_in, x_out, y_out, gamma, logit, choice."""


def _elems(t: TensorType) -> int:
    n = 1
    for d in t.shape[1:]:
        n *= d or 1
    return n


def _same(a: TensorType, b: TensorType, what: str, index: int) -> None:
    if a.shape != b.shape:
        raise ShapeMismatch(f"input {index} must be {what} of shape {a}, found {b}")


def _per_landmark(x: TensorType, k: int | None, index: int, what: str) -> None:
    """`x` must be [batch, K] (one value per landmark)."""
    if x.rank != 2 or (k is not None and x.shape[1] is not None and x.shape[1] != k):
        raise ShapeMismatch(f"input {index} must be {what} [batch, {k or 'K'}], one value per "
                            f"landmark, found {x}")


# --- lstm_cell ----------------------------------------------------------------------


@dataclass(frozen=True)
class LSTMCellParams(OpParams):
    units: int = param(doc="hidden size u; the state is [batch, 2u] = (h, c)", min=1)
    activation: str = param("tanh", "cell and output activation")
    recurrent_activation: str = param("sigmoid", "gate activation")

    def problems(self) -> list[tuple[str, str]]:
        return [(k, msg) for k in ("activation", "recurrent_activation")
                if (msg := activation_problem(getattr(self, k)))]


def infer_lstm_cell(p: LSTMCellParams, xs: tuple[TensorType, ...]) -> TensorType:
    x, state = xs
    need_rank(x, 2, "features [batch, F]", 0)
    if x.shape[1] is None:
        raise ShapeMismatch(f"lstm_cell needs a known feature size, found {x}")
    want = 2 * p.units
    if state.rank != 2 or state.shape[1] != want:
        raise ShapeMismatch(f"input 1 must be the state [batch, {want}] (h then c, 2 x units), "
                            f"found {state}",
                            hint="feed the cell's own output back (module feedback:) and "
                                 f"start it from a fill with channels: {want}")
    return TensorType((None, want), x.dtype)


def count_lstm_cell(p: LSTMCellParams, xs: tuple[TensorType, ...], _out: TensorType) -> int:
    """Keras LSTMCell's weights: kernel [F, 4u], recurrent kernel [u, 4u], bias [4u]."""
    return 4 * p.units * ((xs[0].shape[1] or 0) + p.units + 1)


def flops_lstm_cell(p: LSTMCellParams, xs: tuple[TensorType, ...], _out: TensorType) -> int:
    u = p.units
    return 8 * u * ((xs[0].shape[1] or 0) + u) + 8 * u


def lower_lstm_cell(p: LSTMCellParams, name: str):  # noqa: ANN201 - Keras layer
    from compiler.keras_layers.refine import LSTMCellStep

    return LSTMCellStep(p.units, activation=p.activation,
                        recurrent_activation=p.recurrent_activation, name=name)


# --- attention_choice ---------------------------------------------------------------


@dataclass(frozen=True)
class AttentionChoiceParams(OpParams):
    mode: Literal["sample", "argmax"] = param(
        "sample", "sample: c* drawn from softmax(logits) while training (REINFORCE needs the "
                  "policy's own draws), the argmax at inference; argmax: always the argmax "
                  "(the supervised surrogate, whose loss pulls the logits towards the "
                  "landmark with the largest current error)")
    seed: int = param(0, "seed of the training-time draws", min=0)


def infer_attention_choice(_p: AttentionChoiceParams, xs: tuple[TensorType, ...]
                           ) -> TensorType:
    (logits,) = xs
    _per_landmark(logits, None, 0, "attention logits")
    if logits.shape[1] is None:
        raise ShapeMismatch(f"attention_choice needs a known number of landmarks, found {logits}")
    return TensorType((None, logits.shape[1]), "float32")


def lower_attention_choice(p: AttentionChoiceParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.refine import AttentionChoice

    return AttentionChoice(mode=p.mode, seed=p.seed, name=name)


# --- attention_weights --------------------------------------------------------------


@dataclass(frozen=True)
class AttentionWeightsParams(OpParams):
    mode: Literal["gaussian", "uniform"] = param(
        "gaussian", "gaussian: gamma_l = kappa exp(-|S_l - S_c*|^2 / 4 D^2) (RAR's Gamma_t); "
                    "uniform: gamma_l = kappa for every landmark (the 'no attention' "
                    "ablation; the choice input is then optional)")
    kappa: float = param(1.0, "peak weight (at the attention centre)", min=0.0)
    radius: float = param(0.1, "D as a fraction of the face size: the side sqrt(w h) of the "
                               "current shape's bounding box (so D_t follows S_t)", min=0.0)

    def problems(self) -> list[tuple[str, str]]:
        if self.mode == "gaussian" and self.radius <= 0:
            return [("radius", f"must be > 0 for mode gaussian, found {self.radius}")]
        return []


def infer_attention_weights(p: AttentionWeightsParams, xs: tuple[TensorType, ...]
                            ) -> TensorType:
    pts = xs[0]
    need_points(pts, 0)
    if len(xs) == 1 and p.mode == "gaussian":
        raise ShapeMismatch("mode gaussian needs the choice as input 1 (attention_choice's "
                            "one-hot [batch, K])", hint="in: [points, choice], or mode: uniform")
    if len(xs) == 2:
        _per_landmark(xs[1], pts.shape[1], 1, "the choice (a one-hot)")
    return TensorType((None, pts.shape[1]), "float32")


def lower_attention_weights(p: AttentionWeightsParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.refine import AttentionWeights

    return AttentionWeights(mode=p.mode, kappa=p.kappa, radius=p.radius, name=name)


# --- weight_points ------------------------------------------------------------------


def infer_weight_points(_p: NoParams, xs: tuple[TensorType, ...]) -> TensorType:
    x, w = xs
    if x.rank != 3:
        raise ShapeMismatch(f"input 0 must be per-landmark values [batch, K, C], found {x}")
    _per_landmark(w, x.shape[1], 1, "the weights")
    return x


def lower_weight_points(_p: NoParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.refine import WeightPoints

    return WeightPoints(name=name)


# --- pack_step / stack_steps --------------------------------------------------------


def infer_pack_step(_p: NoParams, xs: tuple[TensorType, ...]) -> TensorType:
    if len(xs) not in (3, 5):
        raise ShapeMismatch(f"pack_step takes 3 inputs [shape in, shape out, gamma] or 5 (+ "
                            f"attention logits, choice), found {len(xs)}")
    s_in, s_out, *rest = xs
    need_points(s_in, 0)
    _same(s_in, s_out, "the step's output shape", 1)
    for i, what in ((2, "gamma"), (3, "the attention logits"), (4, "the choice")):
        if i < len(xs):
            _per_landmark(xs[i], s_in.shape[1], i, what)
    return TensorType((None, s_in.shape[1], PACK_CHANNELS), "float32")


def lower_pack_step(_p: NoParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.refine import PackStep

    return PackStep(name=name)


def infer_stack_steps(_p: NoParams, xs: tuple[TensorType, ...]) -> TensorType:
    first = xs[0]
    for i, x in enumerate(xs[1:], start=1):
        _same(first, x, "a step of the same shape as input 0", i)
    return TensorType((None, len(xs), *first.shape[1:]), first.dtype)


def lower_stack_steps(_p: NoParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.refine import StackSteps

    return StackSteps(name=name)


LSTM_CELL = OpDef(
    "lstm_cell", LSTMCellParams, infer_lstm_cell, lower_lstm_cell,
    "One LSTM step: [x [B, F], state [B, 2u]] -> new state [B, 2u] = (h, c); h is the first "
    "u channels (split). Feed the state back through a recurrent module's feedback: so the "
    "cell's weights are shared across steps (RAR's A-LSTM and R-LSTM); Keras LSTMCell's "
    "gates and initialisers.",
    min_inputs=2, max_inputs=2, count_params=count_lstm_cell, flops=flops_lstm_cell,
    family="refine")
ATTENTION_CHOICE = OpDef(
    "attention_choice", AttentionChoiceParams, infer_attention_choice, lower_attention_choice,
    "Attention logits [B, K] -> the chosen landmark c* as a one-hot [B, K]: drawn from the "
    "softmax while training (mode sample, for REINFORCE) or the argmax; no gradient.",
    family="refine")
ATTENTION_WEIGHTS = OpDef(
    "attention_weights", AttentionWeightsParams, infer_attention_weights,
    lower_attention_weights,
    "RAR's Gamma: [points [B, K, 2], choice [B, K]] -> gamma [B, K] = kappa exp(-|S_l - "
    "S_c*|^2 / 4 D^2), D = radius x the shape's bounding-box side; mode uniform: kappa "
    "everywhere. No gradient.",
    min_inputs=1, max_inputs=2, flops=lambda _p, ins, _o: 8 * _elems(ins[0]), family="refine")
WEIGHT_POINTS = OpDef(
    "weight_points", NoParams, infer_weight_points, lower_weight_points,
    "Per-landmark scaling: [x [B, K, C], w [B, K]] -> x * w (RAR's Gamma-weighted features "
    "and updates).",
    min_inputs=2, max_inputs=2, flops=lambda _p, ins, _o: _elems(ins[0]), family="refine")
PACK_STEP = OpDef(
    "pack_step", NoParams, infer_pack_step, lower_pack_step,
    "One refinement step's quantities for the RAR losses: [shape in [B, K, 2], shape out, "
    "gamma [B, K](, attention logits [B, K], choice [B, K])] -> [B, K, 7] (x_in, y_in, x_out, "
    "y_out, gamma, logit, choice; zeros without attention).",
    min_inputs=3, max_inputs=5, family="refine")
STACK_STEPS = OpDef(
    "stack_steps", NoParams, infer_stack_steps, lower_stack_steps,
    "Inputs of one shape [B, ...] -> [B, T, ...] on a new time axis, in input order (e.g. "
    "every refinement step's pack_step).",
    min_inputs=1, max_inputs=None, family="refine")

OPS = (LSTM_CELL, ATTENTION_CHOICE, ATTENTION_WEIGHTS, WEIGHT_POINTS, PACK_STEP, STACK_STEPS)
