"""Augmentation on the accelerator vs the tf.data pipeline, img/s on this machine.

Both produce training batches of 64 with full augmentation (crop, scale, shift, rotation,
mirror, occluder), LCN and the landmark targets, on shared MTFL (or in-memory synthetic
faces when ../shared/data is absent). tf.data: `make_dataset` (decode + warp per image in
parallel, as bench/input_pipeline.py). Device path: the faces decoded once into the uint8
cache (runtime/data/face_cache.py; its build time and size are printed), then per batch
only indices and a key go in and `DeviceAugment` runs compiled: `tf.function` (graph and
XLA) on TensorFlow, `jax.jit` on JAX (a subprocess with KERAS_BACKEND=jax, when jax is
installed). Batches are produced and not used, so each figure is the most a path delivers.

    python bench/device_augment.py [--batches 20] [--rounds 2] [--cache-dir DIR] [--no-jax]
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("NETSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))


from runtime.data import device_augment as da  # noqa: E402
from runtime.data import face_cache as fc  # noqa: E402
from runtime.data.config import augment_config, data_config  # noqa: E402
from runtime.data.records import FaceSet  # noqa: E402


def faces() -> tuple[FaceSet, str]:
    mtfl = SHARED / "mtfl" / "train.txt"
    if mtfl.is_file():
        from runtime.data.readers import load_faceset

        return load_faceset(mtfl), f"MTFL ({mtfl})"
    from runtime.data.synthetic import synthetic_faceset

    return synthetic_faceset(2048), "synthetic (in memory; shared data not found)"


def config(crop_ratio: float):  # noqa: ANN201 - DataConfig
    return data_config(crop="landmarks", crop_ratio=crop_ratio)  # as bench/input_pipeline.py


def _rate(pull, batch: int, batches: int, sync) -> tuple[float, float]:  # noqa: ANN001
    """(img/s, CPU-us/img) of `batches` calls of `pull()`; CPU time (all threads of this
    process) is the figure a machine shared with other work disturbs least."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        out = pull()
    sync(out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return batches * batch / wall, cpu / (batches * batch) * 1e6


def device_pullers(args: argparse.Namespace) -> dict[str, tuple[object, object]]:
    """{variant: (pull, sync)} of the device path on the current Keras backend: each pull
    is the next stream batch (host indices + key in, augmented batch out)."""
    import keras

    data, _ = faces()
    cfg = config(args.crop_ratio)
    cache = fc.build_face_cache(data, cfg, cache_dir=args.cache_dir)
    dev = da.DeviceAugment(da.device_faces(cache), augment_config(cfg), cfg.normalize,
                           training=True)
    n, batch = len(cache), args.batch
    per_pass = n // batch

    def puller(step):  # noqa: ANN001, ANN202
        counter = iter(range(10**9))

        def pull():  # noqa: ANN202
            i = next(counter)
            p, b = divmod(i, per_pass)
            return step(da.index_batch(n, 0, p, b, batch), da.batch_key(0, i))

        return pull

    if keras.backend.backend() == "jax":
        import jax

        return {"jax.jit": (puller(jax.jit(dev.__call__)), jax.block_until_ready)}
    import tensorflow as tf

    return {name: (puller(tf.function(dev.__call__, jit_compile=xla, reduce_retracing=True)),
                   lambda o: o[0].numpy())
            for name, xla in (("tf.function", False), ("tf.function XLA", True))}


def measure_all(pullers: dict, args: argparse.Namespace) -> dict[str, tuple[float, float]]:  # noqa: ANN001
    """Median (img/s, CPU-us/img) per variant over `rounds` interleaved rounds, after
    `warmup` batches each, so a load change hits every variant alike."""
    for pull, sync in pullers.values():
        for _ in range(args.warmup):
            sync(pull())
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in pullers}
    for _ in range(args.rounds):
        for name, (pull, sync) in pullers.items():
            got[name].append(_rate(pull, args.batch, args.batches, sync))
    return {k: (float(np.median([r for r, _ in v])), float(np.median([c for _, c in v])))
            for k, v in got.items()}


def tf_data_puller(data: FaceSet, args: argparse.Namespace):  # noqa: ANN201
    from runtime.data.pipeline import make_dataset

    ds = make_dataset(data, config(args.crop_ratio), training=True, batch_size=args.batch,
                      passes=None)
    it = iter(ds)
    return (lambda: next(it)), (lambda o: o)


def run_group(group: str, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """One group's figures from a fresh process (`--only`), so no other path's threads
    (tf.data prefetches in the background) share the CPU while it is timed."""
    env = {**os.environ, "KERAS_BACKEND": "jax" if group == "jax" else "tensorflow",
           "JAX_PLATFORMS": "cpu"}
    argv = [sys.executable, __file__, "--only", group, "--batches", str(args.batches),
            "--warmup", str(args.warmup), "--batch", str(args.batch), "--crop-ratio",
            str(args.crop_ratio)] + (["--cache-dir", args.cache_dir] if args.cache_dir else [])
    r = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"the {group} run failed:\n{r.stderr[-3000:]}")
    return {k: tuple(v) for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--crop-ratio", type=float, default=4.4, help="4.4 ~ whole MTFL image")
    ap.add_argument("--cache-dir", default=None, help="keep the face cache (npz) here")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX runs")
    ap.add_argument("--only", choices=["tfdata", "tf", "jax"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.rounds = 1 if args.only else args.rounds
    if args.only:
        data = faces()[0]
        pullers = ({"tf.data make_dataset": tf_data_puller(data, args)}
                   if args.only == "tfdata" else device_pullers(args))
        print(json.dumps(measure_all(pullers, args)))
        return

    data, what = faces()
    cfg = config(args.crop_ratio)
    print(f"data: {what}: {len(data)} faces; cpu cores visible: {os.cpu_count()}; "
          f"{args.rounds} rounds of {args.batches} batches of {args.batch}, medians")
    t = time.perf_counter()
    cache = fc.build_face_cache(data, cfg, cache_dir=args.cache_dir)
    quads = 4 * len(cache) * (cache.side + 1) ** 2 * cache.images.shape[-1] / 2**20
    print(f"face cache: {len(cache)} tiles of {cache.side}x{cache.side}x"
          f"{cache.images.shape[-1]} uint8, {cache.nbytes / 2**20:.0f} MiB (on the device as "
          f"2x2 quads: {quads:.0f} MiB), built or loaded in {time.perf_counter() - t:.1f} s "
          "(once)", flush=True)
    groups = ["tfdata", "tf"]
    try:
        import jax  # noqa: F401

        groups += [] if args.no_jax else ["jax"]
    except ImportError:
        print("jax not installed: JAX row skipped (pip install -e '.[backends]')")
    got: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.rounds):  # groups alternate, so a load change hits each alike
        for group in groups:
            for name, fig in run_group(group, args).items():
                got.setdefault(name, []).append(fig)
    rates = {k: (float(np.median([r for r, _ in v])), float(np.median([c for _, c in v])))
             for k, v in got.items()}
    base, base_cpu = rates["tf.data make_dataset"]
    for name, (rate, cpu) in rates.items():
        label = name if name.startswith("tf.data") else f"device path, {name}"
        print(f"{label:<34} {rate:8.0f} img/s {rate / base:5.2f}x  {cpu:6.0f} CPU-us/img "
              f"{base_cpu / cpu:5.2f}x", flush=True)
    print("(x: relative to tf.data, higher is better; CPU-us/img counts every thread of the "
          "process and is the figure other load on the machine disturbs least)")


if __name__ == "__main__":
    main()
