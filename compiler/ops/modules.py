"""Ops that module instances expand into (compiler/instances.py); users rarely write them.

`module_input` is the boundary of an instance: it passes its input through and checks it
against the module's declared input shape, so a wrong binding or a fed-back output of
the wrong shape is a located error. `fold_time` / `unfold_time` run a whole sub-graph on
every frame of a clip: [B, T, ...] -> [B*T, ...] and back (T from a reference tensor).
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.diagnostics import ShapeMismatch
from compiler.ir import TensorType
from compiler.params import NoParams, OpParams, param
from compiler.registry import OpDef


@dataclass(frozen=True)
class ModuleInputParams(OpParams):
    shape: tuple[int | None, ...] | None = param(
        None, "the declared shape without the batch dimension (null entries: any size)")
    port: str = param("input", "the module input's name, for error messages")


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "[?, " + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def infer_module_input(p: ModuleInputParams, xs: tuple[TensorType, ...]) -> TensorType:
    (x,) = xs
    if p.shape is None:
        return x
    want = (None, *p.shape)
    if x.rank != len(want) or any(w is not None and w != d for w, d in zip(want, x.shape,
                                                                           strict=True)):
        raise ShapeMismatch(f"module input '{p.port}' is declared {_fmt(p.shape)}, but is "
                            f"given {x}",
                            hint="bind (or feed back) a tensor of the declared shape, or "
                                 "loosen the declaration with null for any size")
    return x


def lower_identity_layer(_p: OpParams, name: str):  # noqa: ANN201 - keras.Layer
    from keras import layers

    return layers.Identity(name=name)



def infer_fold_time(_p: NoParams, xs: tuple[TensorType, ...]) -> TensorType:
    (x,) = xs
    if x.rank < 3 or x.shape[1] is None:
        raise ShapeMismatch(f"a per-frame module needs clips [batch, time, ...] with a known "
                            f"number of frames, found {x}",
                            hint="declare the clip input with a fixed T: shape: [T, S, S, C]")
    return TensorType((None, *x.shape[2:]), x.dtype)


def infer_unfold_time(_p: NoParams, xs: tuple[TensorType, ...]) -> TensorType:
    x, ref = xs
    if ref.rank < 3 or ref.shape[1] is None:
        raise ShapeMismatch(f"unfold_time needs a clip reference [batch, time, ...], found {ref}")
    return TensorType((None, ref.shape[1], *x.shape[1:]), x.dtype)


def lower_fold_time(_p: NoParams, name: str):  # noqa: ANN201 - keras.Layer
    from compiler.keras_layers.modules import FoldTime

    return FoldTime(name=name)


def lower_unfold_time(_p: NoParams, name: str):  # noqa: ANN201 - keras.Layer
    from compiler.keras_layers.modules import UnfoldTime

    return UnfoldTime(name=name)


MODULE_INPUT = OpDef("module_input", ModuleInputParams, infer_module_input, lower_identity_layer,
                     "The boundary of a module instance: passes its input through and checks "
                     "it against the module's declared input shape (written by the compiler "
                     "for `op: module` layers).", family="module")
FOLD_TIME = OpDef("fold_time", NoParams, infer_fold_time, lower_fold_time,
                  "Clips [B, T, ...] -> frames [B*T, ...], so a per-frame module "
                  "(`time_distributed: true`) runs on every frame.", family="module")
UNFOLD_TIME = OpDef("unfold_time", NoParams, infer_unfold_time, lower_unfold_time,
                    "Frames [B*T, ...] -> clips [B, T, ...]; T is read from the second input "
                    "(the clip the frames came from).", min_inputs=2, max_inputs=2,
                    family="module")

OPS = (MODULE_INPUT, FOLD_TIME, UNFOLD_TIME)
