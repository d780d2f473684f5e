"""Time per call of the keras.ops losses (runtime/train/portable_losses.py) against the TF
ones (runtime/train/losses.py): spatial_softmax_nll (RCN, from logits) and
lgcn_weighted_l2 (45×45 kernel) at batch 64, 80×80 maps, K = 68, on this CPU.

Each loss is timed forward alone and forward + gradient w.r.t. the maps (what a training
step pays), as the median over --calls rounds after 3 warm-up calls, all variants called in
turn each round (fair under a shared machine's drifting load): the TF loss and the
portable one inside tf.function on the TF backend, the portable one inside jax.jit on
JAX (a subprocess: Keras' backend is fixed at import). ops/TF and JAX/TF: the portable
loss's time over the TF loss's.

    python bench/portable_losses.py [--calls 30] [--batch 64] [--k 68]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LOSSES = [("spatial_softmax_nll", {"from_logits": True}), ("lgcn_weighted_l2", {})]
SIZE, MAP = 160, 80  # input side, map side


def inputs(batch: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, SIZE, (batch, k, 2))
    vis = (rng.uniform(size=(batch, k, 1)) > 0.1).astype(np.float64)
    yt = np.concatenate([xy, vis], -1).astype(np.float32)
    return yt, rng.normal(size=(batch, MAP, MAP, k)).astype(np.float32)


def median_ms(calls: dict[str, object], rounds: int) -> dict[str, float]:
    """Median ms per call of each callable, called in turn round after round so that a
    shared machine's load drifts over all of them alike."""
    for call in calls.values():
        for _ in range(3):
            call()
    times: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            start = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - start)
    return {key: 1000.0 * float(np.median(t)) for key, t in times.items()}


def time_tf(args: argparse.Namespace) -> dict[str, float]:
    import tensorflow as tf

    from runtime.train.losses import make_loss
    from runtime.train.portable_losses import make_portable_loss

    yt, pred = (tf.constant(a) for a in inputs(args.batch, args.k))
    calls = {}
    for name, kw in LOSSES:
        shape = (None, MAP, MAP, args.k)
        for impl, make in (("tf", make_loss), ("portable", make_portable_loss)):
            fn = make(name, input_size=SIZE, out_shape=shape, **kw)
            forward = tf.function(lambda fn=fn: tf.reduce_mean(fn(yt, pred)))

            @tf.function
            def step(fn=fn):
                with tf.GradientTape() as tape:
                    tape.watch(pred)
                    loss = tf.reduce_mean(fn(yt, pred))
                return loss, tape.gradient(loss, pred)

            calls[f"{name}/{impl}/forward"] = lambda f=forward: f().numpy()
            calls[f"{name}/{impl}/grad"] = lambda s=step: s()[1].numpy()
    return median_ms(calls, args.calls)


def time_jax(args: argparse.Namespace) -> dict[str, float]:
    import jax

    from runtime.train.portable_losses import make_portable_loss

    yt, pred = (jax.numpy.asarray(a) for a in inputs(args.batch, args.k))
    calls = {}
    for name, kw in LOSSES:
        fn = make_portable_loss(name, input_size=SIZE, out_shape=(None, MAP, MAP, args.k), **kw)
        forward = jax.jit(lambda p, fn=fn: fn(yt, p).mean())
        step = jax.jit(jax.value_and_grad(lambda p, fn=fn: fn(yt, p).mean()))
        calls[f"{name}/jax/forward"] = lambda f=forward: f(pred).block_until_ready()
        calls[f"{name}/jax/grad"] = lambda s=step: s(pred)[1].block_until_ready()
    return median_ms(calls, args.calls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--k", type=int, default=68)
    ap.add_argument("--backend", choices=["tensorflow", "jax"], default="tensorflow",
                    help=argparse.SUPPRESS)  # the JAX half runs in a child process
    args = ap.parse_args()
    if args.backend == "jax":
        print(json.dumps(time_jax(args)))
        return
    os.environ["KERAS_BACKEND"] = "tensorflow"  # keras is imported after this
    times = time_tf(args)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    child = subprocess.run([sys.executable, __file__, "--backend", "jax", "--calls",
                            str(args.calls), "--batch", str(args.batch), "--k", str(args.k)],
                           env=env, capture_output=True, text=True)
    if child.returncode == 0:
        times.update(json.loads(child.stdout.strip().splitlines()[-1]))
    else:
        print(f"JAX half failed (pip install -e '.[backends]'?):\n{child.stderr[-2000:]}")
    print(f"batch {args.batch}, {MAP}x{MAP} maps, K={args.k}, median of {args.calls} calls "
          f"(ms per call, this CPU)")
    print(f"{'loss':22s} {'pass':8s} {'TF':>9s} {'ops on TF':>10s} {'ops on JAX':>11s} "
          f"{'ops/TF':>7s} {'JAX/TF':>7s}")
    for name, _ in LOSSES:
        for part in ("forward", "grad"):
            tf_ms, ops_ms = times[f"{name}/tf/{part}"], times[f"{name}/portable/{part}"]
            jax_ms = times.get(f"{name}/jax/{part}", float("nan"))
            label = "fwd" if part == "forward" else "fwd+grad"
            print(f"{name:22s} {label:8s} {tf_ms:9.1f} {ops_ms:10.1f} {jax_ms:11.1f} "
                  f"{ops_ms / tf_ms:7.2f} {jax_ms / tf_ms:7.2f}")


if __name__ == "__main__":
    main()
