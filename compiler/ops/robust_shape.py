"""`robust_init_shape`: RAR's robust initial shape S_0 from a detected shape S_d.

The detected shape (one map maximum per landmark, `argmax_points`) is exact where the face
is seen and wrong by arbitrary amounts where it is occluded. The op replaces it by the
training shape it agrees with best: M representative shapes (`templates`, K-means of the
similarity-aligned training shapes, filled by `netspec fit` from the training set before the
first step, see runtime/train/data_init.py), each fitted to S_d by RANSAC over 2-point
similarity hypotheses. The slides' l0 objective -- fewest outliers subject to a residual
bound on the inliers -- is what RANSAC maximises; the winner is refitted by least squares on
its inliers. Numpy reference: runtime/shapes/robust_init.py.

Pure (no TensorFlow): params, shape rule, the hypotheses drawn from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.diagnostics import ShapeMismatch
from compiler.ir import TensorType
from compiler.ops.points import need_points
from compiler.params import OpParams, param
from compiler.registry import OpDef

# Outer eye corners by landmark count: the inter-ocular distance `netspec eval` divides by
# (runtime/evaluate/metrics.py, 'inter_ocular'; a test keeps the two tables equal).
EYES_BY_K: dict[int, tuple[int, int]] = {68: (36, 45), 5: (0, 1), 7: (0, 3)}


@dataclass(frozen=True)
class RobustInitShapeParams(OpParams):
    templates: int = param(8, "number M of representative training shapes (K-means "
                              "clusters of the aligned training shapes)", min=1)
    hypotheses: int = param(64, "random 2-point minimal subsets per template, drawn once "
                                "from `seed` when the model is built", min=1)
    inlier_threshold: float = param(
        0.08, "a point is an inlier when its residual is below this fraction of the fitted "
              "template's inter-ocular distance (0.08: the usual failure NME)")
    seed: int = param(0, "seed of the hypotheses (and of `netspec fit`'s K-means)", min=0)
    eyes: tuple[int, int] | None = param(
        None, "the two landmarks whose distance scales the threshold; null: the outer eye "
              "corners `netspec eval` uses (68 points: 36, 45; 5: 0, 1; 7: 0, 3)", min=0)

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.inlier_threshold <= 0:
            out.append(("inlier_threshold", f"must be > 0, found {self.inlier_threshold}"))
        if self.eyes is not None and self.eyes[0] == self.eyes[1]:
            out.append(("eyes", f"must name two different landmarks, found {list(self.eyes)}"))
        return out


def eye_pair(p: RobustInitShapeParams, k: int) -> tuple[int, int]:
    """The landmark pair whose distance is the threshold's unit for K = `k` points."""
    if p.eyes is not None:
        return p.eyes
    return EYES_BY_K[k]


def hypothesis_pairs(k: int, templates: int, hypotheses: int, seed: int) -> np.ndarray:
    """int32 [templates, hypotheses, 2]: the landmark pairs (i != j) of each template's
    similarity hypotheses. Drawn once from `seed` (not per call), so the op is a fixed
    function of S_d and the templates: the same output in training, eval and a reloaded
    model, and the numpy reference can be handed the very same subsets."""
    if k < 2:
        raise ValueError(f"a 2-point hypothesis needs at least 2 landmarks, found {k}")
    rng = np.random.default_rng(seed)
    first = rng.integers(0, k, size=(templates, hypotheses))
    second = (first + rng.integers(1, k, size=(templates, hypotheses))) % k  # never == first
    return np.stack([first, second], axis=-1).astype(np.int32)


def infer_robust_init_shape(p: RobustInitShapeParams, xs: tuple[TensorType, ...]
                            ) -> TensorType:
    (pts,) = xs
    need_points(pts, 0)
    k = pts.shape[1]
    if k is None:
        raise ShapeMismatch(f"robust_init_shape needs a known number of landmarks K (its "
                            f"templates are [M, K, 2]), found {pts}")
    if k < 2:
        raise ShapeMismatch(f"robust_init_shape fits a similarity, which needs at least 2 "
                            f"landmarks, found K = {k} in {pts}")
    if p.eyes is None and k not in EYES_BY_K:
        raise ShapeMismatch(f"no inter-ocular pair is known for {k} landmarks",
                            hint="give eyes: [i, j], the two landmarks whose distance scales "
                                 "inlier_threshold")
    bad = [i for i in eye_pair(p, k) if i >= k]
    if bad:
        raise ShapeMismatch(f"eyes {bad} are out of range for {k} landmarks",
                            hint=f"landmarks are 0-based: use 0..{k - 1}")
    return TensorType(pts.shape, "float32")


def lower_robust_init_shape(p: RobustInitShapeParams, name: str):  # noqa: ANN201
    from compiler.keras_layers.robust_shape import RobustInitShape

    return RobustInitShape(templates=p.templates, hypotheses=p.hypotheses,
                           inlier_threshold=p.inlier_threshold, seed=p.seed,
                           eyes=None if p.eyes is None else list(p.eyes), name=name)


def _count(p: RobustInitShapeParams, ins: tuple[TensorType, ...], _out: TensorType) -> int:
    return p.templates * (ins[0].shape[1] or 0) * 2


def _flops(p: RobustInitShapeParams, ins: tuple[TensorType, ...], _out: TensorType) -> int:
    k = ins[0].shape[1] or 0
    return p.templates * p.hypotheses * k * 14 + 2 * 12 * k  # hypotheses + two refits


ROBUST_INIT_SHAPE = OpDef(
    "robust_init_shape", RobustInitShapeParams, infer_robust_init_shape,
    lower_robust_init_shape,
    "RAR's robust initial shape: detected points S_d [B, K, 2] -> S_0 [B, K, 2] (same frame), "
    "the representative training shape that fits S_d with the fewest outliers. Each of M "
    "templates [M, K, 2] (a non-trainable weight `netspec fit` fills by K-means of the "
    "similarity-aligned training shapes before the first step) is fitted by RANSAC: "
    "`hypotheses` fixed 2-point similarity fits, inliers = residual < inlier_threshold x "
    "the fitted template's inter-ocular distance; the most inliers win (ties: smaller "
    "inlier residual), then a least-squares refit on the inliers (twice: once more on the "
    "refit's inliers). No gradient reaches S_d. Until the templates are filled (a compiled, "
    "untrained model) there is no valid hypothesis and S_0 = S_d.",
    count_params=_count, flops=_flops, family="points")

OPS = (ROBUST_INIT_SHAPE,)
