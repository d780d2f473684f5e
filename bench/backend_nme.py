"""Same spec, same seeds, three Keras backends: validation NME and training speed.

`netspec fit` trains through tf.data on TensorFlow and through the device feed
(runtime/data/device_feed.py) on JAX and PyTorch; weight initialisation and the jitter
draws come from each backend's own random numbers, so the same seed gives different
runs, and the question is whether the backends differ by more than seeds do. For each
backend (torch where installed) and seed this trains rcn_6branch on MTFL (synthetic
faces without the shared data), then prints val NME per run, the spread over seeds per
backend, and the training img/s (metrics.jsonl's train_seconds, first epoch left out).

    python bench/backend_nme.py [--epochs 4] [--limit 3000] [--seeds 1 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
import sys
import tempfile

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from netspec_cli import SHARED, netspec  # noqa: E402


def train(backend: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, float]:
    run = out / f"{backend}_{seed}"
    data = SHARED / "mtfl"
    sets = [f"train.epochs={args.epochs}", f"train.seed={seed}", f"data.seed={seed}",
            f"data.limit={args.limit}", "data.val_split=1000", "train.val_examples=1000",
            f"train.batch_size={args.batch}"]
    done = run / "state.json"
    if not (done.is_file() and json.loads(done.read_text()).get("stopped")):  # --keep: reuse
        netspec(["fit", "specs/rcn_6branch.yaml", "-o", str(run), "--backend", backend,
                 *(["--data", str(data)] if data.is_dir() else []),
                 *[a for s in sets for a in ("--set", s)]])
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    later = lines[1:] or lines
    img_s = sum(m["steps"] for m in later) * args.batch / sum(m["train_seconds"] for m in later)
    return {"nme": min(m["val_nme"] for m in lines), "last_nme": lines[-1]["val_nme"],
            "img_s": img_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--limit", type=int, default=3000, help="training faces (data.limit)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    p.add_argument("--keep", type=Path, default=None,
                   help="keep the runs in this folder (default: a temporary one); finished "
                        "runs found there are reused, not trained again")
    args = p.parse_args()
    backends = [b for b in args.backends if importlib.util.find_spec(b) is not None]
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="netspec-backends-") as tmp:
        out = args.keep or Path(tmp)
        for seed in args.seeds:  # interleaved, so a load change hits every backend alike
            for backend in backends:
                results.setdefault(backend, []).append(train(backend, seed, args, out))
    print(f"\nrcn_6branch, {args.limit} training faces, {args.epochs} epochs, batch "
          f"{args.batch}, seeds {args.seeds}")
    print(f"{'backend':12s} {'best val NME per seed (%)':32s} {'mean':>7s} {'spread':>7s} "
          f"{'img/s':>7s}")
    for backend, runs in results.items():
        nmes = np.array([r["nme"] for r in runs]) * 100
        print(f"{backend:12s} {' '.join(f'{v:6.2f}' for v in nmes):32s} {nmes.mean():7.2f} "
              f"{nmes.max() - nmes.min():7.2f} {np.mean([r['img_s'] for r in runs]):7.0f}")
    means = {b: np.mean([r["nme"] for r in v]) * 100 for b, v in results.items()}
    spread = max(np.ptp([r["nme"] for r in v]) * 100 for v in results.values())
    print(f"largest difference of backend means {np.ptp(list(means.values())):.2f} points; "
          f"largest seed spread within a backend {spread:.2f} points")


if __name__ == "__main__":
    main()
