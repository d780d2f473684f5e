"""The numerics guard: every TensorFlow computation of the input pipeline, the loss
targets and the losses, run at the shapes production uses and compared with the numpy
references in `references.py`.

Why: TensorFlow 2.21's oneDNN returned wrong values (then segfaulted) for an ordinary
broadcast batch matmul on AVX-512 CPUs. A kernel bug in a dependency must show as a
failing, named check, not as a crash or silently wrong training inputs. The test suite
runs the full set (tests/numerics); `netspec doctor` runs the quick set in a child
process (`python -m runtime.numerics.checks --quick --json`) so that a crash is reported
as a failure instead of killing the doctor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
import json
import math
import sys
from typing import Any

import numpy as np

from runtime.numerics import references as ref
from runtime.numerics.rar_references import rar_cases

# Images: batch x side x channels (gray and RGB at every input size the specs use).
IMAGE_SHAPES = tuple((b, s, c) for b in (1, 64) for s in (48, 80, 96, 256) for c in (1, 3))
QUICK_IMAGE_SHAPES = ((8, 80, 1), (64, 96, 3))
# Output maps: batch x H x W x K (RCN 80x80x5, RCN-300W 80x80x68, LGCN 96x96x68).
MAP_SHAPES = tuple((b, h, h, k) for b in (1, 64) for h, k in ((80, 5), (80, 68), (96, 68)))
QUICK_MAP_SHAPES = ((8, 80, 80, 5), (8, 96, 96, 68))
# Warps: (source side, output side, crop side in source pixels); factor > 1 when shrinking.
WARPS = ((80, 80, 64.0), (80, 96, 70.0), (256, 48, 200.0), (256, 80, 256.0), (256, 96, 150.0),
         (256, 256, 240.0))
QUICK_WARPS = ((80, 80, 64.0), (256, 96, 150.0))
NORMALIZE_METHODS = ("lcn", "per_image", "scale", "lgcn")

Case = tuple[str, str, Callable[[], tuple[Any, np.ndarray, float]]]


@dataclass(frozen=True)
class Result:
    """One check: `name` (the op), `shape` (where), the max abs error against the reference
    and the tolerance it had; `error` holds an exception text if the op raised."""

    name: str
    shape: str
    max_error: float
    tolerance: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and math.isfinite(self.max_error) and \
            self.max_error <= self.tolerance


def _tol(reference: np.ndarray, rtol: float, atol: float = 1e-6) -> float:
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    return atol + rtol * scale


def _shape(dims: tuple[Any, ...]) -> str:
    return "x".join(str(d) for d in dims)


def _images(rng: np.random.Generator, b: int, s: int, c: int) -> np.ndarray:
    """Raw 0..255 float images with structure (gradients, flat patches) and noise."""
    ys, xs = np.mgrid[0:s, 0:s] / s
    base = 127.5 + 100.0 * np.sin(6.0 * xs + 3.0 * ys)[None, :, :, None]
    img = base + rng.normal(0.0, 25.0, (b, s, s, c))
    img[:, : s // 4, : s // 4] = 40.0  # a flat corner: LCN's floor on the std matters there
    return np.clip(img, 0, 255).astype(np.float32)


def _labels(rng: np.random.Generator, b: int, k: int, size: int) -> np.ndarray:
    """[B, K, 3] labels as the pipeline makes them: mostly visible points on the crop,
    some off it (ABSENT, -1), some unlabelled (0); sub-pixel positions and exact integers."""
    xy = rng.uniform(-0.5, size - 0.5, (b, k, 2))
    xy[:, ::7] = np.round(xy[:, ::7])
    state = np.ones((b, k))
    state[rng.random((b, k)) < 0.1] = -1.0
    state[rng.random((b, k)) < 0.1] = 0.0
    xy[state == 0] = 0.0
    return np.concatenate([xy, state[..., None]], -1).astype(np.float32)


def normalize_cases(shapes: tuple[tuple[int, int, int], ...]) -> Iterator[Case]:
    from runtime.data.normalize import normalize

    for b, s, c in shapes:
        for method in NORMALIZE_METHODS:
            def run(b: int = b, s: int = s, c: int = c, method: str = method
                    ) -> tuple[Any, np.ndarray, float]:
                x = _images(np.random.default_rng(b * 1000 + s + c), b, s, c)
                want = ref.normalize(x, method)
                return normalize(x, method), want, _tol(want, 1e-5)
            yield f"normalize.{method}", _shape((b, s, s, c)), run


def augment_cases(batches: tuple[int, ...], warps: tuple[tuple[int, int, float], ...]
                  ) -> Iterator[Case]:
    import tensorflow as tf

    from runtime.data import augment as aug
    from runtime.data.config import AugmentConfig

    cfg = AugmentConfig()
    for b in batches:
        for size in (48, 80, 96, 256):
            def jitter(b: int = b, size: int = size) -> tuple[Any, np.ndarray, float]:
                u = np.random.default_rng(b + size).random((b, aug.N_UNIFORMS), np.float32)
                j = aug.jitter_from_uniforms(u, cfg, size)
                m, flip, occ = ref.jitter(u, cfg, size)
                got = np.concatenate([j.matrix.numpy().reshape(b, -1), j.occluder.numpy(),
                                      j.flip.numpy()[:, None]], 1)
                want = np.concatenate([m.reshape(b, -1), occ, flip[:, None]], 1)
                return got, want, _tol(want, 2e-6)
            yield "augment.jitter_from_uniforms", f"{b} at {size}px", jitter

            def crop_then_jitter(b: int = b, size: int = size) -> tuple[Any, np.ndarray, float]:
                rng = np.random.default_rng(7 * b + size)
                crops = np.stack([rng.uniform(20, 230, b), rng.uniform(20, 230, b),
                                  rng.uniform(40, 300, b)], 1).astype(np.float32)
                u = rng.random((b, aug.N_UNIFORMS), np.float32)
                j = aug.jitter_from_uniforms(u, cfg, size)
                got = j.matrix @ aug.crop_matrices(crops, size)  # the pipeline's composition
                want = ref.jitter(u, cfg, size)[0] @ ref.crop_matrices(crops, size)
                return got, want, _tol(want, 2e-6)
            yield "augment.crop_matrices @ jitter", f"{b} at {size}px", crop_then_jitter

        def transforms(b: int = b) -> tuple[Any, np.ndarray, float]:
            rng = np.random.default_rng(b)
            crops = np.stack([rng.uniform(20, 230, b), rng.uniform(20, 230, b),
                              rng.uniform(40, 300, b)], 1).astype(np.float32)
            m = ref.jitter(rng.random((b, aug.N_UNIFORMS)), cfg, 80)[0] @ \
                ref.crop_matrices(crops, 80)
            t, f = aug.warp_transforms(tf.constant(m, tf.float32))
            want_t, want_f = ref.inverse_transforms(m)
            got = np.concatenate([t.numpy(), f.numpy()[:, None]], 1)
            want = np.concatenate([want_t, want_f[:, None]], 1)
            return got, want, _tol(want, 2e-5)
        yield "augment.warp_transforms", f"{b} matrices", transforms

        for size, k in ((80, 5), (96, 68), (256, 68)):
            def landmarks(b: int = b, size: int = size, k: int = k
                          ) -> tuple[Any, np.ndarray, float]:
                from runtime.data.geometry import mirror_permutation

                rng = np.random.default_rng(b * k + size)
                hw = rng.integers(60, 300, (b, 2))
                pts = rng.uniform(-20, 320, (b, k, 2))
                pts[:, ::11] = np.nan
                vis = rng.random((b, k)) > 0.1
                crops = np.stack([hw[:, 1] / 2, hw[:, 0] / 2, hw.max(1) * 0.8], 1)
                u = rng.random((b, aug.N_UNIFORMS))
                jm, flip, _ = ref.jitter(u, cfg, size)
                m = jm @ ref.crop_matrices(crops, size)
                perm = mirror_permutation("5pt" if k == 5 else "68pt", k)
                got = aug.transform_landmarks(
                    tf.constant(pts, tf.float32), tf.constant(vis), tf.constant(m, tf.float32),
                    size, tf.constant(hw, tf.int32), flip=tf.constant(flip),
                    permutation=tf.constant(perm))
                want = ref.transform_landmarks(pts, vis, m, size, hw, flip, perm)
                return got, want, _tol(want, 2e-6, 1e-4)
            yield "augment.transform_landmarks", f"{b}x{k} at {size}px", landmarks

        def occlusion(b: int = b) -> tuple[Any, np.ndarray, float]:
            rng = np.random.default_rng(b + 3)
            x = _images(rng, b, 80, 3)
            u = rng.random((b, aug.N_UNIFORMS))
            boxes = ref.jitter(u, cfg, 80)[2].astype(np.float32)
            want = ref.occlude(x, boxes)
            return aug.occlude(tf.constant(x), tf.constant(boxes)), want, _tol(want, 1e-7)
        yield "augment.occlude", _shape((b, 80, 80, 3)), occlusion

    for src, size, side in warps:
        for channels in (1, 3):
            def warp(src: int = src, size: int = size, side: float = side,
                     channels: int = channels) -> tuple[Any, np.ndarray, float]:
                rng = np.random.default_rng(src + size + channels)
                image = _images(rng, 1, src, channels)[0]
                u = rng.random((1, aug.N_UNIFORMS))
                m = ref.jitter(u, cfg, size)[0] @ ref.crop_matrices(
                    np.array([[src / 2 - 3.3, src / 2 + 1.7, side]]), size)
                t, f = ref.inverse_transforms(m)
                got = aug.warp(tf.constant(image), tf.constant(t[0], tf.float32),
                               tf.constant(int(f[0])), size)
                want = ref.warp(image, t[0], int(f[0]), size)
                return got, want, _tol(want, 1e-4, 1e-3)
            yield "augment.warp", f"{src}px{'x3' if channels == 3 else ''} -> {size}px", warp


def target_cases(shapes: tuple[tuple[int, int, int, int], ...]) -> Iterator[Case]:
    import tensorflow as tf

    from compiler.kernels import named_kernel
    from runtime.train import targets

    for b, h, w, k in shapes:
        size = 80 if h == 80 else 96  # input side: the map is the input's size in these specs
        where = _shape((b, h, w, k))

        def labels(b: int = b, k: int = k, size: int = size) -> np.ndarray:
            return _labels(np.random.default_rng(b * 100 + k + size), b, k, size)

        def pixel(labels: Callable[[], np.ndarray] = labels, hw: tuple[int, int] = (h, w),
                  size: int = size) -> tuple[Any, np.ndarray, float]:
            y = labels()
            index, valid = targets.pixel_index(tf.constant(y), size, hw)
            want_i, want_v = ref.pixel_index(y, size, hw)
            got = np.concatenate([index.numpy(), valid.numpy()], -1)
            return got, np.concatenate([want_i, want_v], -1), 0.0
        yield "targets.pixel_index", where, pixel

        builders: tuple[tuple[str, Callable[..., Any], Callable[..., np.ndarray]], ...] = (
            ("targets.one_hot_maps", targets.one_hot_maps, ref.one_hot_maps),
            ("targets.gaussian_maps", lambda y, s, hw: targets.gaussian_maps(y, s, hw, 1.5, 2.0),
             lambda y, s, hw: ref.gaussian_maps(y, s, hw, 1.5, 2.0)),
            ("targets.disk_maps", lambda y, s, hw: targets.disk_maps(y, s, hw, 2.0),
             lambda y, s, hw: ref.disk_maps(y, s, hw, 2.0)),
            ("targets.bilinear_splat", targets.bilinear_splat, ref.bilinear_splat),
            ("targets.kernel_splat",
             lambda y, s, hw: targets.kernel_splat(y, s, hw, named_kernel("lgcn", 45)),
             lambda y, s, hw: ref.kernel_splat(y, s, hw, named_kernel("lgcn", 45))),
        )
        for name, tf_fn, ref_fn in builders:
            def build(tf_fn: Callable[..., Any] = tf_fn, ref_fn: Callable[..., np.ndarray] = ref_fn,
                      labels: Callable[[], np.ndarray] = labels, hw: tuple[int, int] = (h, w),
                      size: int = size) -> tuple[Any, np.ndarray, float]:
                y = labels()
                want = ref_fn(y, size, hw)
                return tf_fn(tf.constant(y), size, hw), want, _tol(want, 1e-5)
            yield name, where, build


def loss_cases(shapes: tuple[tuple[int, int, int, int], ...]) -> Iterator[Case]:
    import tensorflow as tf

    from compiler.kernels import named_kernel
    from runtime.train.losses import make_loss

    for b, h, w, k in shapes:
        size = 80 if h == 80 else 96
        where = _shape((b, h, w, k))
        rng = np.random.default_rng(b + h + k)
        y = _labels(rng, b, k, size)
        logits = rng.normal(0.0, 2.0, (b, h, w, k)).astype(np.float32)
        flat = logits.reshape(b, h * w, k)
        probs = (np.exp(flat - flat.max(1, keepdims=True))
                 / np.exp(flat - flat.max(1, keepdims=True)).sum(1, keepdims=True)
                 ).reshape(b, h, w, k).astype(np.float32)
        kernel = named_kernel("lgcn", 45)
        losses: tuple[tuple[str, dict[str, Any], np.ndarray, Callable[[], np.ndarray]], ...] = (
            ("spatial_softmax_nll", {}, probs,
             lambda y=y, p=probs, s=size: ref.spatial_softmax_nll(y, p, s)),
            ("spatial_softmax_nll", {"from_logits": True}, logits,
             lambda y=y, p=logits, s=size: ref.spatial_softmax_nll(y, p, s, from_logits=True)),
            ("heatmap_l2", {"sigma": 1.5, "amplitude": 10.0}, logits,
             lambda y=y, p=logits, s=size: ref.heatmap_l2(y, p, s, sigma=1.5, amplitude=10.0)),
            ("sigmoid_xent", {"sigma": 2.0}, logits,
             lambda y=y, p=logits, s=size: ref.sigmoid_xent(y, p, s, sigma=2.0)),
            ("lgcn_weighted_l2", {}, probs,
             lambda y=y, p=probs, s=size, kern=kernel: ref.lgcn_weighted_l2(y, p, s, kern)),
        )
        for name, args, pred, want_fn in losses:
            label = name + ("(from_logits)" if args.get("from_logits") else "")

            def run(name: str = name, args: dict[str, Any] = args, pred: np.ndarray = pred,
                    want_fn: Callable[[], np.ndarray] = want_fn, y: np.ndarray = y,
                    size: int = size, shape: tuple[int, ...] = (h, w, k)
                    ) -> tuple[Any, np.ndarray, float]:
                fn = make_loss(name, input_size=size, out_shape=shape, **args)
                want = want_fn()
                return fn(tf.constant(y), tf.constant(pred)), want, _tol(want, 2e-5)
            yield f"losses.{label}", where, run
    for b in (1, 64):
        def coords(b: int = b) -> tuple[Any, np.ndarray, float]:
            rng = np.random.default_rng(b)
            y = _labels(rng, b, 5, 40)
            pred = rng.uniform(0, 1, (b, 10)).astype(np.float32)
            fn = make_loss("coord_l2", input_size=40, out_shape=(10,))
            want = ref.coord_l2(y, pred, 40)
            return fn(tf.constant(y), tf.constant(pred)), want, _tol(want, 2e-5)
        yield "losses.coord_l2", f"{b}x10", coords
    yield from rar_cases(_labels, _tol)
    for b, t, n in ((1, 3, 224), (5, 3, 224)):  # RED-Net: 5 clips of 3 frames, YTF people
        def identity(b: int = b, t: int = t, n: int = n) -> tuple[Any, np.ndarray, float]:
            rng = np.random.default_rng(b)
            ids = rng.integers(-1, n, (b, t))
            logits = rng.normal(0, 3, (b, t, n)).astype(np.float32)
            fn = make_loss("identity_xent", input_size=64, out_shape=(t, n))
            want = ref.identity_xent(ids, logits)
            return fn(tf.constant(ids), tf.constant(logits)), want, _tol(want, 2e-5)
        yield "losses.identity_xent", f"{b}x{t}x{n}", identity


def all_cases(quick: bool = False) -> list[Case]:
    """Every check; `quick` takes a few seconds (doctor), the full set about a minute."""
    images = QUICK_IMAGE_SHAPES if quick else IMAGE_SHAPES
    maps = QUICK_MAP_SHAPES if quick else MAP_SHAPES
    return [*normalize_cases(images),
            *augment_cases((8,) if quick else (1, 64), QUICK_WARPS if quick else WARPS),
            *target_cases(maps), *loss_cases(maps)]


def run_case(case: Case) -> Result:
    name, shape, fn = case
    try:
        got, want, tol = fn()
        got = np.asarray(got, np.float64)
        if got.shape != want.shape:
            return Result(name, shape, math.inf, tol, f"shape {got.shape}, expected {want.shape}")
        err = float(np.max(np.abs(got - want))) if got.size else 0.0
        if not np.isfinite(got).all():
            err = math.inf
        return Result(name, shape, err, tol)
    except Exception as e:  # noqa: BLE001 - a raising op is a failed check, reported by name
        return Result(name, shape, math.inf, 0.0, f"{type(e).__name__}: {e}")


def main(argv: list[str] | None = None) -> int:
    """`python -m runtime.numerics.checks [--quick] [--json]`: run the checks, one line
    (or JSON object) each, flushed as they finish so a crash shows where it happened."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = set(argv if argv is not None else sys.argv[1:])
    ok = True
    for case in all_cases(quick="--quick" in args):
        if "--json" in args:
            print(json.dumps({"start": case[0], "shape": case[1]}), flush=True)  # noqa: T201
        result = run_case(case)
        ok &= result.ok
        if "--json" in args:
            print(json.dumps(asdict(result) | {"ok": result.ok}), flush=True)  # noqa: T201
        else:
            print(f"{'ok  ' if result.ok else 'FAIL'} {result.name} [{result.shape}] "  # noqa: T201
                  f"max error {result.max_error:.3g} (tolerance {result.tolerance:.3g})"
                  f"{' ' + result.error if result.error else ''}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
