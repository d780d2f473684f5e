"""The `eval:` section of a spec and which output a run is scored on.

Both say how a trained run is scored, so they live with evaluation; training's
validator imports them from here (the arrows point from train to evaluate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from compiler.diagnostics import SourceLoc, SpecError
from compiler.losses import CLASSES, LOSSES
from compiler.params import OpParams, param, section_config

if TYPE_CHECKING:
    from compiler.api import Spec


@dataclass(frozen=True)
class EvalConfig(OpParams):
    """How landmarks are scored (NME normaliser, which output, decoding)."""

    normalizer: Literal["inter_ocular", "inter_pupil", "rcn_eye_centre", "box",
                        "box_diag"] = param(
        "inter_ocular", "NME normaliser: outer eye corners (68 pt) / eye centres (5 pt), "
                        "eye-centre means, RCN's 2-corner eye centres, sqrt(w*h) of the box, "
                        "box diagonal")
    output: str | None = param(None, "output decoded to points (null: the first with a loss)")
    refine: Literal["none", "quadratic", "log_quadratic", "com"] = param(
        "quadratic", "sub-pixel refinement of heatmap peaks: parabola through the 3x3 "
                     "neighbours, the same on log values (exact for Gaussian peaks), or "
                     "centre of mass")
    # LGCN (section 3.3): a PCA shape model fitted on the training shapes by `netspec fit`
    shape_model: bool = param(False, "also report NME after fitting the PCA shape model "
                                     "(RUN/shape_model.npz, see runtime/shapes/shape_model.py)")
    shape_model_components: int = param(12, "PCA eigenvectors of the shape model (nEVs)", min=1)


def eval_config(raw: Mapping[str, Any] | None, loc: SourceLoc) -> EvalConfig:
    """The validated `eval:` section."""
    return section_config(EvalConfig, raw, loc, "eval")


def trained_outputs(spec: Spec) -> list[str]:
    return [o.name for o in spec.graph.outputs if o.loss is not None]


def _subset(loss_args: Any) -> bool:
    return bool(loss_args) and loss_args.get("landmarks") is not None


def _points(output: Any) -> bool:
    """An output trained on every landmark: not a subset, not identity classes."""
    return bool(output.loss) and LOSSES[output.loss].kind != CLASSES \
        and not _subset(output.loss_args)


def decoded_output(spec: Spec, ev: EvalConfig) -> tuple[str, str]:
    """(output name, kind) whose predictions are decoded to landmark points."""
    outs = {o.name: o for o in spec.graph.outputs}
    name = ev.output or next((o.name for o in spec.graph.outputs if _points(o)), None)
    if name is None or name not in outs:
        raise SpecError.at(SourceLoc(spec.file), f"eval.output '{name}' is not an output",
                           hint=f"outputs: {', '.join(outs)}")
    if outs[name].loss and LOSSES[outs[name].loss].kind == CLASSES:
        raise SpecError.at(SourceLoc(spec.file), f"eval.output '{name}' gives identity classes, "
                           "not landmarks",
                           hint="score an output that predicts landmarks: " + ", ".join(
                               o.name for o in spec.graph.outputs if _points(o)))
    if _subset(outs[name].loss_args):
        full = [o.name for o in spec.graph.outputs if _points(o)]
        raise SpecError.at(SourceLoc(spec.file), f"eval.output '{name}' predicts a subset of the "
                           "landmarks (its loss has args.landmarks), so NME against every "
                           "labelled landmark is undefined for it",
                           hint=f"score an output that predicts them all: {', '.join(full)}"
                           if full else "add an output whose loss covers every landmark")
    loss = outs[name].loss
    kind = LOSSES[loss].kind if loss else ("coords" if spec.graph.node(
        outs[name].source).out.rank == 2 else "heatmap")  # type: ignore[union-attr]
    return name, kind
