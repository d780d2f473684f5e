"""Refuse, before building, a model whose weights cannot fit in this machine's memory.

Building a spec with a huge `--set width=...` would otherwise allocate until numpy or
TensorFlow gives up (MemoryError, ResourceExhaustedError) or the kernel kills the
process. The parameter count comes from the IR (no TensorFlow), so the check is free.
"""

from __future__ import annotations

import os

from compiler.api import Spec
from compiler.budget import FLOAT32, human_bytes, weight_counts
from compiler.diagnostics import SourceLoc, SpecError

# per weight during training: the weight, its gradient and the optimizer's slots
_TRAINING_COPIES = {"adadelta": 4, "adam": 4, "sgd": 3}


def physical_memory() -> int | None:
    """Bytes of RAM of this machine (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def param_counts(spec: Spec) -> tuple[int, str | None, int]:
    """(total params, the layer with most params, its count) from the typed IR."""
    from compiler.ops import DEFAULT_OPS

    counts = weight_counts(spec.graph, DEFAULT_OPS)
    if not counts:
        return 0, None, 0
    name = max(counts, key=counts.__getitem__)
    return sum(counts.values()), name, counts[name]


def training_bytes(params: int, optimizer: str) -> int:
    return params * FLOAT32 * _TRAINING_COPIES.get(optimizer, 4)


def check_fits_in_memory(spec: Spec, optimizer: str | None, memory: int | None = None) -> None:
    """SpecError (exit 1) naming the sizes when the weights (optimizer None: `compile`) or
    training with `optimizer` need more than the RAM."""
    memory = physical_memory() if memory is None else memory
    params, layer, top = param_counts(spec)
    need = params * FLOAT32 if optimizer is None else training_bytes(params, optimizer)
    if memory is None or need <= memory:
        return
    raise SpecError.at(SourceLoc(spec.file), memory_message(params, optimizer, memory),
                       notes=(f"largest layer: '{layer}' with {top:,} params",) if layer else (),
                       hint="lower the layer widths (--set ...); `netspec check` prints the "
                            "param count without building anything")


def memory_message(params: int, optimizer: str | None, memory: int) -> str:
    training = "" if optimizer is None else (
        f", {human_bytes(training_bytes(params, optimizer))} to train with {optimizer} "
        "(weights, gradients, optimizer state)")
    return (f"the model cannot fit in memory: {params:,} params need "
            f"{human_bytes(params * FLOAT32)} of float32 weights{training}; this machine has "
            f"{human_bytes(memory)} of memory")


def is_out_of_memory(err: BaseException) -> bool:
    """MemoryError (numpy's _ArrayMemoryError included) or TensorFlow's OOM."""
    return isinstance(err, MemoryError) or type(err).__name__ == "ResourceExhaustedError"


def out_of_memory_error(spec: Spec, optimizer: str, err: BaseException) -> SpecError:
    params, layer, top = param_counts(spec)
    return SpecError.at(SourceLoc(spec.file), "building the model ran out of memory: "
                        f"{params:,} params need {human_bytes(params * FLOAT32)} of "
                        f"float32 weights, {human_bytes(training_bytes(params, optimizer))} "
                        f"to train with {optimizer}",
                        notes=(f"{type(err).__name__}: {str(err)[:200]}",
                               *((f"largest layer: '{layer}' with {top:,} params",)
                                 if layer else ())),
                        hint="lower the layer widths or train.batch_size, or use a machine "
                             "(GPU) with more memory")

