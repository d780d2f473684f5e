"""The default op registry, built from an explicit list of op-family modules."""

from __future__ import annotations

from compiler.ops import (
    conv,
    core,
    merge,
    modules,
    points,
    pool,
    refine,
    resize,
    robust_shape,
    sequence,
    weighting,
)
from compiler.registry import Registry

DEFAULT_OPS = Registry([*conv.OPS, *pool.OPS, *resize.OPS, *merge.OPS, *weighting.OPS,
                        *core.OPS, *sequence.OPS, *modules.OPS, *points.OPS,
                        *robust_shape.OPS, *refine.OPS])
