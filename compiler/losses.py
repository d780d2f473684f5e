"""Loss names and their metadata, TF-free, so `netspec check` catches a misspelt loss,
a bad loss argument, a loss attached to an output of the wrong shape, or to the wrong
kind of values (`producer_problem`: probabilities where logits are read, or the reverse,
which trains with a wrong or constant loss and no error). Each LossSpec's `needs` says
what its output must be; compiler/value_kinds.py tells what a layer gives.

runtime/train/losses.py implements every name here; a test keeps the two key sets equal.
Every loss reads y_true = float32 [B, K, 3] (x, y in input-image pixels, visibility)
and builds its own target, so the data pipeline never depends on the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from compiler.diagnostics import UNKNOWN_LOC, did_you_mean
from compiler.params import OpParams, coerce_params, param
from compiler.value_kinds import (
    AXIS_PROBS,
    LOGITS,
    NONNEG,
    SIGNED_UNIT,
    SPATIAL_PROBS,
    UNIT,
    ValueKind,
)

HEATMAP = "heatmap"  # y_pred float32 [B, H, W, K], one map per landmark
COORDS = "coords"  # y_pred float32 [B, 2K], interleaved x0, y0, x1, y1, ... divided by S

RAR_STEPS = "rar_steps"  # y_pred float32 [B, T, K, 7]: pack_step per refinement step, stacked

CLASSES = "classes"  # y_pred float32 [B, N] or [B, T, N]: logits over the training identities

LossKind = Literal["heatmap", "coords", "rar_steps", "classes"]


@dataclass(frozen=True)
class LossArgs(OpParams):
    """Arguments every loss accepts."""

    keypoint_weights: tuple[float, ...] | None = param(
        None, "per-landmark factors (length K) multiplying each landmark's term", min=0.0)
    landmarks: tuple[int, ...] | None = param(
        None, "0-based indices of the data's landmarks this output predicts, in its channel "
              "order (RED-Net's 7-point detection step on 68-point data: [36, 39, 42, 45, 30, "
              "48, 54]); null: all of them", min=0)


@dataclass(frozen=True)
class SpatialSoftmaxNllArgs(LossArgs):
    from_logits: bool = param(False, "y_pred holds logits; apply the spatial log-softmax here")
    sum_over_keypoints: bool = param(
        True, "multiply the mean over visible landmarks by K, as RCN's code does")
    eps: float = param(1e-12, "probabilities are clipped below at eps before the log",
                       min=0.0, max=1.0, max_exclusive=True)


@dataclass(frozen=True)
class HeatmapL2Args(LossArgs):
    sigma: float = param(1.0, "Gaussian target std-dev in output-map pixels", min=1e-6)
    amplitude: float = param(1.0, "target peak value (RED-Net uses 10)", min=0.0)


@dataclass(frozen=True)
class SigmoidXentArgs(LossArgs):
    target: Literal["gaussian", "disk"] = param(
        "gaussian", "gaussian: exp(-d²/2σ²) soft labels; disk: 1 where d <= sigma, else 0")
    sigma: float = param(1.0, "Gaussian std-dev, or disk radius, in output-map pixels",
                         min=1e-6)
    pos_weight: float | Literal["balanced"] = param(
        "balanced", "weight of the positive term: a number, or 'balanced' = bg/fg pixel ratio "
        "per map (RED-Net detection)")

    def problems(self) -> list[tuple[str, str]]:
        if not isinstance(self.pos_weight, str) and self.pos_weight <= 0:
            return [("pos_weight", f"must be > 0 or 'balanced', found {self.pos_weight}")]
        return []


@dataclass(frozen=True)
class CoordL2Args(LossArgs):
    normalize: Literal["mean", "visible"] = param(
        "mean", "mean: ½·Σ over visible coords per example, Keras averages over the batch "
                "(Caffe EuclideanLoss); visible: ½·mean over the visible coords")


@dataclass(frozen=True)
class LgcnWeightedL2Args(LossArgs):
    kernel: Literal["lgcn", "lgcn_code"] = param(
        "lgcn", "named kernel (compiler.kernels) convolved with the bilinear GT splat; use the "
                "same kernel as the network's kernel convolution")
    kernel_size: int = param(45, "kernel side in output-map pixels (odd)", min=1)
    scale: float = param(0.05, "overall factor (0.05 in the authors' code)", min=0.0)

    def problems(self) -> list[tuple[str, str]]:
        if self.kernel_size % 2 == 0:
            return [("kernel_size", f"must be odd, found {self.kernel_size}")]
        return []


@dataclass(frozen=True)
class RarRefineArgs(LossArgs):
    """RAR's refinement loss has no arguments beyond the common ones."""


@dataclass(frozen=True)
class RarAttentionArgs(LossArgs):
    mode: Literal["reinforce", "surrogate"] = param(
        "reinforce", "reinforce: -sum_t (R_t - b_t) log pi(c*_t), R_t the discounted reward "
                     "to go; surrogate: cross-entropy of the attention softmax towards the "
                     "landmark with the largest error at the step's input shape")
    discount: float = param(0.9, "eta: the reward of step t' counts eta^(t' - t) in R_t "
                                 "(reinforce only)", min=0.0, max=1.0)
    baseline: Literal["batch_mean", "none"] = param(
        "batch_mean", "b_t: the mean R_t of the other examples of the batch (leave-one-out, "
                      "so it does not bias the gradient), or none (reinforce only)")
    normalize: bool = param(True, "divide the advantages R_t - b_t by the standard "
                                  "deviation of R_t over the batch (batches > 1; "
                                  "reinforce only)")


@dataclass(frozen=True)
class LossSpec:
    """A loss name's contract: the output kind it scores and its argument schema."""

    name: str
    kind: LossKind
    args: type[LossArgs]
    doc: str
    needs: str  # what the output's values must be (checked by producer_problem)


_SPECS: tuple[LossSpec, ...] = (
    LossSpec(
        "spatial_softmax_nll", HEATMAP, SpatialSoftmaxNllArgs,
        "RCN: negative log-likelihood of the discretised GT pixel under a per-landmark "
        "softmax over all H·W pixels. y_pred is already spatial-softmaxed (from_logits: "
        "false). Landmarks that are invisible or fall outside the map are masked; the "
        "mean over the rest is multiplied by K (sum_over_keypoints).",
        "from_logits false (default): probabilities normalised over each map, i.e. a "
        "spatial_softmax output (identity/dropout/pad2d/concat of such are fine); not raw "
        "logits, a channel softmax, a sigmoid, or a crop/pool/resize of probabilities. "
        "from_logits true: unbounded logits (e.g. a conv2d without activation); not "
        "probabilities, sigmoid or tanh outputs."),
    LossSpec(
        "heatmap_l2", HEATMAP, HeatmapL2Args,
        "Mean squared error against Gaussian heat-maps (peak `amplitude`, std-dev `sigma` "
        "map pixels), averaged over pixels and visible landmarks.",
        "unnormalised maps: logits or non-negative values; not softmax probabilities (they "
        "sum to 1, the Gaussian targets do not), and a sigmoid/tanh output only when "
        "amplitude <= 1."),
    LossSpec(
        "sigmoid_xent", HEATMAP, SigmoidXentArgs,
        "RED-Net detection: pixel-wise sigmoid cross-entropy on logits against Gaussian or "
        "disk targets, positives weighted by `pos_weight`; mean over pixels and visible "
        "landmarks.",
        "unbounded logits (the loss applies the sigmoid): not a sigmoid, softmax, tanh or "
        "relu-family output (with logits >= 0 every pixel scores >= 0.5)."),
    LossSpec(
        "coord_l2", COORDS, CoordL2Args,
        "Euclidean loss ½‖p − t‖² on coordinates [B, 2K] = (x0, y0, x1, y1, ...) / S, "
        "S the input side; invisible landmarks are masked.",
        "coordinates: any real-valued output (linear, sigmoid, tanh, relu); not a softmax, "
        "whose values sum to 1."),
    LossSpec(
        "lgcn_weighted_l2", HEATMAP, LgcnWeightedL2Args,
        "LGCN eq. 3-4: squared error, summed over pixels, against the bilinear GT splat "
        "convolved with the fixed kernel, landmark k weighted by 0.1 + 0.5·mean(n) + n_k "
        "(n_k = GT mass inside the map, 0 if unlabelled), times `scale`. For the paper's "
        "two-term loss, attach this loss to both the kernel-convolved local output "
        "(K * O^l) and the final output Ω: (O^l − G) * K = K * O^l − G * K.",
        "unnormalised maps (logits, as LGCN's linear heads and their sums); not softmax "
        "probabilities."),
)

_SPECS += (
    LossSpec(
        "rar_refine", RAR_STEPS, RarRefineArgs,
        "RAR refinement loss: sum over the T steps of ||Gamma_t (S* - S_{t+1})||^2 = "
        "||Gamma_t (D_R S_t - dS_t)||^2, coordinates divided by the input side S, summed "
        "over the visible landmarks (invisible ones masked).",
        "the stacked per-step pack [batch, T, K, 7] (stack_steps of pack_step layers)"),
    LossSpec(
        "rar_attention", RAR_STEPS, RarAttentionArgs,
        "RAR attention objective on the stacked steps: REINFORCE with a baseline on the "
        "discounted reward r_t = ||Gamma_t (S* - S_t)||^2 - ||Gamma_t (S* - S_{t+1})||^2 "
        "(mode reinforce), or the supervised surrogate: cross-entropy towards the visible "
        "landmark with the largest error at each step's input (mode surrogate).",
        "the stacked per-step pack [batch, T, K, 7] with attention logits and choices "
        "(pack_step with 5 inputs)"),
)



@dataclass(frozen=True)
class IdentityXentArgs(OpParams):
    """Arguments of a classification loss (no landmark arguments: it scores people)."""

    label_smoothing: float = param(0.0, "mix this share of the uniform distribution into "
                                        "the one-hot target", min=0.0, max=1.0,
                                   max_exclusive=True)


_SPECS += (
    LossSpec(
        "identity_xent", CLASSES, IdentityXentArgs,  # type: ignore[arg-type]
        "RED-Net's identity loss: softmax cross-entropy of logits over the training "
        "people against each frame's person (runtime/data/identities.py); frames of "
        "people outside the training classes (held-out validation people) are masked. "
        "On clips [B, T, N]: the mean over time steps.",
        "logits over the N training identities (a dense layer without activation), "
        "[batch, N] or [batch, T, N]; not softmax probabilities."),
)

LOSSES: Mapping[str, LossSpec] = MappingProxyType({s.name: s for s in _SPECS})


def coerce_loss_args(name: str, args: Mapping[str, Any]) -> tuple[LossArgs | None, list[str]]:
    """Validate `args` for loss `name`: (args dataclass, []) or (None, problems)."""
    spec = LOSSES.get(name)
    if spec is None:
        return None, [_unknown(name)]
    params, diags = coerce_params(spec.args, args, UNKNOWN_LOC, op=f"loss {name}")
    return params, [_message(d.message, d.hint) for d in diags]  # type: ignore[return-value]


def check_loss(name: str, args: Mapping[str, Any] | None, out_shape: Sequence[int | None],
               n_landmarks: int | None) -> list[str]:
    """Problems with attaching loss `name` (with `args`) to an output of `out_shape`.

    `out_shape` includes the batch dimension (as `TensorType.shape`); `n_landmarks` is
    K from the data, or None when unknown. Returns [] when everything fits.
    """
    spec = LOSSES.get(name)
    if spec is None:
        return [_unknown(name)]
    params, problems = coerce_loss_args(name, args or {})
    shape = tuple(out_shape)
    if spec.kind == CLASSES:
        if len(shape) not in (2, 3):
            problems.append(f"loss '{name}' needs class logits [batch, N] (or [batch, T, N] "
                            f"per time step), found rank {len(shape)} output {_fmt(shape)}")
        elif shape[-1] is not None and shape[-1] < 2:
            problems.append(f"loss '{name}' needs at least 2 classes, found {shape[-1]}")
        return problems
    if spec.kind == RAR_STEPS:
        if len(shape) != 4 or shape[-1] != 7:
            problems.append(
                f"loss '{name}' needs the stacked refinement steps [batch, T, K, 7] "
                f"(stack_steps of pack_step layers), found {_fmt(shape)}")
            return problems
        channels, what = shape[2], "landmarks per step"
    elif spec.kind == HEATMAP:
        if len(shape) not in (4, 5):
            problems.append(
                f"loss '{name}' needs heat-maps [batch, H, W, K] (or [batch, T, H, W, K] per "
                f"time step), found rank {len(shape)} output {_fmt(shape)}")
            return problems
        channels, what = shape[-1], "channels"
    else:
        if len(shape) not in (2, 3):
            problems.append(
                f"loss '{name}' needs coordinates [batch, 2K] (or [batch, T, 2K] per time "
                f"step), found rank {len(shape)} output {_fmt(shape)}")
            return problems
        if shape[-1] is not None and shape[-1] % 2:
            problems.append(f"loss '{name}' needs an even coordinate count (x, y per landmark), "
                            f"found {shape[-1]}")
            return problems
        channels, what = (None if shape[-1] is None else shape[-1] // 2), "coordinate pairs"
    subset = params.landmarks if params is not None else None
    if subset is not None:
        if len(set(subset)) != len(subset) or not subset:
            problems.append(f"param 'landmarks': expected distinct indices, found {list(subset)}")
        if channels is not None and channels != len(subset):
            problems.append(f"loss '{name}': output {_fmt(shape)} has {channels} {what}, but "
                            f"args.landmarks names {len(subset)} landmarks")
        if n_landmarks is not None and subset and max(subset) >= n_landmarks:
            problems.append(f"param 'landmarks': index {max(subset)} is out of range for data "
                            f"with {n_landmarks} landmarks (0-based)")
    elif n_landmarks is not None and channels is not None and channels != n_landmarks:
        problems.append(f"loss '{name}': output {_fmt(shape)} has {channels} {what}, but the "
                        f"data has {n_landmarks} landmarks")
    weights = params.keypoint_weights if params is not None else None
    k = (len(subset) if subset is not None
         else n_landmarks if n_landmarks is not None else channels)
    if weights is not None and k is not None and len(weights) != k:
        problems.append(f"param 'keypoint_weights': expected {k} values, found {len(weights)}")
    return problems


def producer_problem(name: str, args: LossArgs | None, value: ValueKind
                     ) -> tuple[str, str] | None:
    """(problem, hint) when loss `name` cannot score the values `value` describes (see
    each LossSpec's `needs`), else None. Unknown kinds are never a problem."""
    kind, node, got = value.kind, value.node, value.describe()
    probs = kind in (SPATIAL_PROBS, AXIS_PROBS)
    before = value.fix or f"change '{node}'"
    if name == "spatial_softmax_nll":
        if not getattr(args, "from_logits", False):
            if kind == SPATIAL_PROBS:
                return None
            if kind in (LOGITS, NONNEG, SIGNED_UNIT):
                return (f"reads probabilities normalised over each map (from_logits: false), "
                        f"but {got}",
                        f"add a spatial_softmax layer after '{node}' and take the output from "
                        "it, or set `args: {from_logits: true}`")
            if kind in (AXIS_PROBS, UNIT):
                then = "" if "softmax comes last" in before else \
                    ", then add a spatial_softmax layer (a softmax per map over H x W) and " \
                    "take the output from it"
                return (f"reads probabilities normalised over each map, but {got}",
                        before + then)
            return None
        if probs or kind in (UNIT, SIGNED_UNIT):
            hint = f"{before}: logits must be unbounded"
            if kind == SPATIAL_PROBS:
                hint = f"the softmax would be applied twice: drop `from_logits: true`, or {before}"
            return (f"from_logits: true applies the spatial softmax itself, but {got}", hint)
        return None
    if name in ("heatmap_l2", "lgcn_weighted_l2"):
        target = ("Gaussian heat-maps" if name == "heatmap_l2"
                  else "kernel-convolved landmark maps")
        if probs:
            return (f"regresses unnormalised {target}, but {got}",
                    f"{before}, or use spatial_softmax_nll for probability maps")
        amplitude = getattr(args, "amplitude", 1.0)
        if name == "heatmap_l2" and kind in (UNIT, SIGNED_UNIT) and amplitude > 1.0:
            return (f"the target peak (amplitude {amplitude:g}) is out of reach: {got}",
                    f"set `args: {{amplitude: 1.0}}`, or {before}")
        return None
    if name == "sigmoid_xent":
        if kind == UNIT:
            return (f"applies the sigmoid itself and reads unbounded logits, but {got}",
                    f"{before} (the sigmoid would be applied twice)")
        if probs:
            return (f"applies the sigmoid itself and reads unbounded logits, but {got}",
                    before)
        if kind in (NONNEG, SIGNED_UNIT):
            why = ("with logits >= 0 every pixel scores at least 0.5" if kind == NONNEG
                   else "logits in [-1, 1] never score below 0.27 or above 0.73")
            return (f"applies the sigmoid itself and reads unbounded logits, but {got}",
                    f"{before}: {why}")
        return None
    if name == "identity_xent" and (probs or kind in (UNIT, SIGNED_UNIT, NONNEG)):
        return (f"applies the softmax itself and reads logits over the identities, but {got}",
                f"{before} (a dense layer without activation)")
    if name == "coord_l2" and kind == AXIS_PROBS:
        return (f"regresses coordinates, but {got}, which sum to 1",
                f"{before} (a linear dense layer regresses coordinates)")
    return None


def _unknown(name: str) -> str:
    return _message(f"unknown loss '{name}'", did_you_mean(name, LOSSES, "losses"))


def _message(message: str, hint: str | None) -> str:
    return f"{message} (hint: {hint})" if hint else message


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def checked_class_loss_args(name: str, args: Mapping[str, Any], shape: tuple
                            ) -> tuple[Any, tuple]:
    """(coerced params, [B, N] or [B, T, N] logits shape) of a classification loss, whose
    shape may come without the batch dim; ValueError naming every problem. Shared by the
    TF and keras.ops builders (runtime/train/losses.py, portable_losses.py)."""
    if len(shape) in (1, 2) and (len(shape) == 1 or shape[0] is not None):
        shape = (None, *shape)  # given without the batch dim
    problems = check_loss(name, args, shape, None)
    params, _ = coerce_loss_args(name, args)
    if problems or params is None:
        raise ValueError(f"loss '{name}': " + "; ".join(problems))
    return params, shape
