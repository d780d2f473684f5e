"""MTFL training benchmark: rcn_6branch for a fixed wall-clock budget, then its figures.

Trains through the library API (`runtime.train.fit.fit_spec` with `train.max_minutes`) on the
shared MTFL set with the spec's data config (the last 1,000 rows held out), then prints
  - validation NME / FR@0.08 / FR@0.10 / AUC@0.08 of the best epoch's model.keras on the
    held-out rows (`runtime.evaluate.score_run.evaluate_run`, split val);
  - training img/s from the fit's own step timings (metrics.jsonl: steps and
    train_seconds per epoch, validation excluded; the first epoch, or the first step
    when there is only one epoch, is left out as tracing/compilation);
  - input-pipeline img/s of the same data config, training mode with full augmentation,
    measured in this process before training, and its ratio to training img/s (it must
    be > 1: the pipeline has to outrun the model).

    python bench/fit_mtfl.py [--minutes 30] [--out runs/bench_fit_mtfl] [--set K=V ...]
                             [--mixed-precision] [--xla] [--pipeline-seconds 15]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("NETSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))

from compiler.api import Spec, load_spec  # noqa: E402
from compiler.diagnostics import SpecError  # noqa: E402


def pipeline_rate(spec: Spec, data: str, batch: int, seconds: float) -> tuple[float, int]:
    """(images/s, images) pulled from the training pipeline of the spec's data config."""
    from runtime.data.config import augment_config
    from runtime.data.pipeline import make_dataset
    from runtime.datasets import load_faces, spec_data_config, split

    dcfg = spec_data_config(spec, data)
    if not augment_config(dcfg).enabled:
        raise SystemExit("the spec's data.augment is disabled; the benchmark needs it on")
    train, _ = split(load_faces(spec, dcfg), dcfg)
    ds = make_dataset(train, dcfg, training=True, batch_size=min(batch, len(train)),
                      input_name=spec.graph.inputs[0].name).repeat()
    it = iter(ds)
    for _ in range(3):  # warm-up: tracing, thread pools, file cache
        next(it)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        x, _ = next(it)
        n += int(next(iter(x.values())).shape[0])
    return n / (time.perf_counter() - t0), n


def training_rate(records: list[dict[str, Any]], batch: int) -> tuple[float, str]:
    """Images/s over training steps only, without the first (tracing) epoch or step."""
    later = [r for r in records[1:] if r.get("steps")]
    if later:
        images = batch * sum(r["steps"] for r in later)
        return images / sum(r["train_seconds"] for r in later), \
            f"epochs 2-{records[-1]['epoch']}, {images} images"
    first = records[0]
    steps = first["steps"] - 1
    if steps < 1:
        return float("nan"), "too few steps to time"
    secs = first["train_seconds"] - first["first_step_seconds"]
    return batch * steps / secs, f"epoch 1 without its first step, {batch * steps} images"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="training wall-clock budget")
    ap.add_argument("--spec", default=str(REPO / "specs" / "rcn_6branch.yaml"))
    ap.add_argument("--data", default=str(SHARED / "mtfl"), help="MTFL folder or list")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_fit_mtfl"),
                    help="run directory (a numeric suffix is added if it holds a run)")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="KEY=VALUE", help="extra spec overrides, e.g. train.batch_size=128")
    ap.add_argument("--pipeline-seconds", type=float, default=15.0,
                    help="how long to pull batches from the input pipeline")
    ap.add_argument("--mixed-precision", action="store_true")
    ap.add_argument("--xla", action="store_true")
    args = ap.parse_args()
    if not Path(args.data).exists():
        print(f"MTFL not found at {args.data} (set NETSPEC_SHARED_DATA or --data)",
              file=sys.stderr)
        return 2
    try:
        return run(args)
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    from runtime.evaluate.score_run import evaluate_run
    from runtime.train import devices
    from runtime.train.fit import fit_spec
    from runtime.train.train_config import train_config

    # the budget, not the epoch count, ends training (an explicit train.epochs wins)
    overrides = ["train.epochs=100000", *args.overrides, f"train.max_minutes={args.minutes}"]
    spec = load_spec(args.spec, overrides)
    tcfg = train_config(spec.section("train"), spec.section("train").loc)
    print(f"spec {spec.name}, data {args.data}, budget {args.minutes:g} min, batch "
          f"{tcfg.batch_size}, {tcfg.optimizer}; {os.cpu_count()} CPU cores; "
          f"{devices.describe_devices()}", flush=True)

    pipe, n_pipe = pipeline_rate(spec, args.data, tcfg.batch_size, args.pipeline_seconds)
    print(f"input pipeline: {pipe:.0f} img/s ({n_pipe} images, training mode, full "
          f"augmentation)", flush=True)

    t0 = time.time()
    result = fit_spec(spec, Path(args.out), data=args.data, overrides=overrides,
                      device={"mixed_precision": args.mixed_precision, "xla": args.xla},
                      explicit_dir=False, quiet=True)
    wall = time.time() - t0
    run_dir = result.run_dir
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text()
               .splitlines()]
    train, how = training_rate(records, tcfg.batch_size)
    steps = sum(r["steps"] for r in records)
    val = evaluate_run(run_dir, data=args.data, split_name="val")

    ratio = pipe / train
    verdict = "ok, the pipeline outruns the model" if ratio > 1 else \
        "INPUT-BOUND: the pipeline is slower than the model"
    summary = {
        "spec": spec.name, "minutes": args.minutes, "wall_seconds": round(wall, 1),
        "epochs": result.epochs_done, "steps": steps, "batch": tcfg.batch_size,
        "stopped": result.stopped, "best_epoch": result.best_epoch,
        "train_img_per_s": round(train, 1), "train_img_per_s_from": how,
        "pipeline_img_per_s": round(pipe, 1), "pipeline_over_train": round(ratio, 2),
        **{f"val_{k}": val[k] for k in ("nme", "fr_008", "fr_010", "auc_008", "auc_010", "n")},
        "devices": devices.describe_devices(), "cpu_cores": os.cpu_count(),
    }
    (run_dir / "bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n== {spec.name} on MTFL, {args.minutes:g} min budget ({run_dir})")
    print(f"trained {result.epochs_done} epochs / {steps} steps of {tcfg.batch_size} "
          f"({result.stopped}) in {wall / 60:.1f} min wall")
    print(f"validation ({val['n']} held-out faces, best epoch {result.best_epoch}): "
          f"NME {100 * val['nme']:.2f} %  FR@0.08 {100 * val['fr_008']:.2f} %  "
          f"FR@0.10 {100 * val['fr_010']:.2f} %  AUC@0.08 {val['auc_008']:.4f}")
    print(f"training:       {train:8.1f} img/s ({how}; validation excluded)")
    print(f"input pipeline: {pipe:8.1f} img/s (same data config, full augmentation)")
    print(f"pipeline / training = {ratio:.2f}x: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
