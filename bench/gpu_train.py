"""Training speed and a full MTFL fit on the lent GPU machine (JAX, no TensorFlow), in one run.

Why this shape: the lent H200 has JAX but neither Keras nor TensorFlow, and nothing can be
downloaded there, so `prepare` (on this machine) puts what it lacks into git-ignored folders
that travel with the working tree: the Keras wheel and the deps the machine lacks (.whl/),
and a copy of shared MTFL (.gpu_data/mtfl; research data, never in the repository). Then
`run` (on the device, one command of under 8 minutes) measures and trains:

(a) throughput: rcn_6branch (MTFL) and lgcn (its spec's synthetic 68-point faces: HELEN
    cannot travel beside MTFL under the 64 MiB limit) x batch 64/256/1024 x float32/mixed
    precision. Per cell, img/s of the whole training step as fit runs it (the DeviceFeed's
    jitted augmentation of the next stream batch from a FaceCache, then the train function
    of the model `build_model` compiles, with its real loss), of the model-only step (one
    fixed pre-made batch) beside it, so an input-bound cell shows (ratio < 0.9), and of the
    augmentation alone; per spec and precision, a jitted forward pass at the largest batch.
    Warm-up, then N steps timed up to jax.block_until_ready; out-of-memory is caught per
    cell. Written to OUT/throughput.json after every cell (a crash keeps what was measured).
(b) a full fit: `python -m netspec fit specs/rcn_6branch.yaml --backend jax --mixed-precision`
    on MTFL for 200 epochs under a time budget; model.keras, metrics.jsonl and state.json are
    copied into OUT, and the best val_nme and fit's own img/s are printed.

Goals (measured, not asserted): RCN-6 training >= 100,000 img/s including augmentation and
never input-bound; batched inference >= 300,000 img/s. `--dry-run` runs every stage on this
CPU with tiny settings (~2-3 min on 2 cores). Children always run with TensorFlow blocked,
as on the GPU machine, so a dry run also shows that nothing on this path imports it.

    python bench/gpu_train.py prepare                # here: wheels, MTFL copy, the `run` call
    python bench/gpu_train.py run --dry-run --out /tmp/gpu_train   # here, on the CPU
    python3 bench/gpu_train.py run --out $OUT [--minutes 3.5]      # on the device
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import itertools
import json
import os
from pathlib import Path
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any
import zipfile

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NETSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))
WHEELS = REPO / ".whl"
DATA = REPO / ".gpu_data"
CARRY = [".whl", ".gpu_data"]
LIMIT_MIB = 64
# Keras' requirements that the H200 image already has (/work/.library/device/KINDS.md)
DEVICE_HAS = {"absl-py", "h5py", "ml-dtypes", "numpy", "packaging", "rich"}
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]
FIT_SPEC = "specs/rcn_6branch.yaml"
BLOCK_TF = ("import runpy, sys; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
            "runpy.{}(sys.argv[0], run_name='__main__'{})")

# The device settings, and the dry run's tiny ones (the same stages, seconds each on a CPU).
GPU = {"batches": [64, 256, 1024], "seconds": 1.0, "warmup": 2, "budget": 120.0, "spec_sets": {},
       "fit_sets": ["train.epochs=200", "train.batch_size=64"]}
DRY = {"batches": [8, 16], "seconds": 0.3, "warmup": 1, "budget": 600.0,
       "spec_sets": {"rcn_6branch": ["data.limit=256"],
                     "lgcn": ["filters=8", "local_depth=2", "local_wide=1", "global_depth=1",
                              "kernel_size=9", "size=48", "data.limit=256"]},
       "fit_sets": ["train.epochs=2", "train.batch_size=8", "train.steps_per_epoch=4",
                    "data.limit=64"]}


def say(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------ prepare (this machine)

def ignore_in_git(*patterns: str) -> None:
    """Append `patterns` to .git/info/exclude (untracked, so this edits nothing tracked)."""
    exclude = REPO / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    have = exclude.read_text().splitlines() if exclude.exists() else []
    new = [p for p in patterns if p not in have]
    if new:
        with exclude.open("a") as fh:
            fh.write("".join(f"{p}\n" for p in new))


def wheel_requirements(wheel: Path) -> list[str]:
    """Distribution names a wheel requires (extras left out)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().splitlines()
    reqs = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:")]
    return [re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0] for r in reqs if "extra ==" not in r]


def download(name: str) -> Path:
    """The cp312 x86-64 wheel of `name` at this machine's version, into .whl/."""
    pin = f"{name}=={importlib.metadata.version(name)}"
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "-d", str(WHEELS), pin]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    subprocess.run(cmd, check=True)
    norm = re.sub(r"[-_.]+", "_", name).lower()
    found = [w for w in WHEELS.glob("*.whl") if w.name.lower().startswith(norm + "-")]
    if len(found) != 1:
        raise SystemExit(f".whl/ holds {len(found)} wheels of {name}; keep one version")
    return found[0]


def download_wheels() -> list[Path]:
    WHEELS.mkdir(exist_ok=True)
    keras = download("keras")
    missing = [r for r in wheel_requirements(keras)
               if r.lower().replace("_", "-") not in DEVICE_HAS]
    return [keras, *(download(name) for name in missing)]


def copy_mtfl() -> Path:
    src, dst = SHARED / "mtfl", DATA / "mtfl"
    if not (src / "train.txt").is_file():
        raise SystemExit(f"shared MTFL not found at {src} (set NETSPEC_SHARED_DATA)")
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def travelling_bytes() -> int:
    """Tracked + untracked-not-ignored files (what the device tool sends) + CARRY."""
    listed = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout
    tree = sum((REPO / n).stat().st_size for n in listed.decode().split("\0")
               if n and (REPO / n).is_file())
    return tree + sum(folder_bytes(REPO / c) for c in CARRY if (REPO / c).exists())


def device_command(minutes: float) -> str:
    return ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "
            "--upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD "
            "|| exit; export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax; set -o pipefail; "
            f"python3 bench/gpu_train.py run --out $OUT --minutes {minutes} 2>&1 "
            "| tee $OUT/log.txt")


def prepare(args: argparse.Namespace) -> int:
    ignore_in_git(*(f"/{c}/" for c in CARRY))
    for w in download_wheels():
        say(f"wheel: {w.relative_to(REPO)} ({w.stat().st_size / 2**20:.1f} MiB)")
    dst = copy_mtfl()
    say(f"data: {dst.relative_to(REPO)} ({folder_bytes(dst) / 2**20:.1f} MiB)")
    total = travelling_bytes() / 2**20
    say(f"travelling: {total:.1f} MiB of {LIMIT_MIB} (tree + {' + '.join(CARRY)})")
    if total >= LIMIT_MIB:
        raise SystemExit("too much would travel: ignore or carry less")
    call = {"command": device_command(args.minutes), "carry": CARRY, "timeout_s": 540}
    say("device `run` call (paste as is):")
    say(json.dumps(call, indent=1))
    return 0


# ------------------------------------------------------------------ (a) throughput (child)

def is_oom(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or "RESOURCE_EXHAUSTED" in str(err) \
        or "out of memory" in str(err).lower()


def rate(step: Any, batch: int, seconds: float, warmup: int) -> float:
    """img/s of `step()` (returns arrays): warm-up (compiles), one calibrating step, then
    about `seconds` of steps, timed to jax.block_until_ready on the last result."""
    import jax

    for _ in range(warmup):
        jax.block_until_ready(step())
    t = time.perf_counter()
    jax.block_until_ready(step())
    n = max(3, min(2000, int(seconds / max(time.perf_counter() - t, 1e-6))))
    t = time.perf_counter()
    for _ in range(n):
        out = step()
    jax.block_until_ready(out)
    return n * batch / (time.perf_counter() - t)


def train_stepper(model: Any, batches: Any) -> Any:
    """step() -> (logs, state): the model's compiled Keras train function (as `fit` calls
    it) on `batches()`, from a copy of the model's state (the function donates its input)."""
    import jax
    import jax.numpy as jnp

    model.make_train_function()
    state = [jax.tree.map(jnp.copy, model._get_jax_state(  # noqa: SLF001 - Keras' own
        trainable_variables=True, non_trainable_variables=True, optimizer_variables=True,
        metrics_variables=True))]
    fn = model.train_function

    def step() -> Any:
        logs, state[0] = fn(state[0], iter([batches()]))
        return logs, state[0]

    return step


def train_rate(model: Any, batches: Any, batch: int, seconds: float, warmup: int) -> float:
    return rate(train_stepper(model, batches), batch, seconds, warmup)


def forward_stepper(model: Any, x: Any) -> Any:
    """step() -> outputs: one jitted inference forward pass of `x` (what predict runs)."""
    import jax

    fwd = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    return lambda: fwd(tv, ntv, x)


def infer_rate(model: Any, x: Any, batch: int, seconds: float, warmup: int) -> float:
    return rate(forward_stepper(model, x), batch, seconds, warmup)


def spec_feed(name: str, sets: list[str], data: str | None) -> tuple[Any, Any, Any]:
    """(spec, train config, training DeviceFeed) as fit builds them; `data` None: the
    spec's own data set."""
    from compiler.api import load_spec
    from runtime.data.device_feed import make_feed
    from runtime.datasets import load_faces, spec_data_config, split
    from runtime.train.train_config import train_config

    spec = load_spec(REPO / "specs" / f"{name}.yaml", sets)
    dcfg = spec_data_config(spec, data)
    tcfg = train_config(spec.section("train"), spec.section("train").loc)
    train, _ = split(load_faces(spec, dcfg), dcfg)
    feed = make_feed(train, dcfg, training=True,
                     cache_dir=os.environ.get("NETSPEC_FACE_CACHE") or None)
    return spec, tcfg, feed


def compiled_model(spec: Any, tcfg: Any, size: int, policy: str | bool, batch: Any) -> Any:
    """build_model as fit calls it, optimizer and loss/metric state built on `batch`."""
    from runtime.train.model_setup import build_model

    model, _ = build_model(spec, tcfg, size, mixed_precision=policy, xla=False)
    model.optimizer.build(model.trainable_variables)
    model._symbolic_build(data_batch=batch)  # noqa: SLF001 - what fit does before step 1
    return model


def failure(err: BaseException) -> str:
    return "out of memory" if is_oom(err) else f"{type(err).__name__}: {str(err)[:300]}"


def guarded(record: dict[Any, Any], key: Any, measure: Any, *args: Any) -> None:
    """record[key] = measure(*args), or record['error'] on out-of-memory or another failure."""
    try:
        record[key] = round(measure(*args))
    except Exception as e:  # noqa: BLE001 - one cell's failure must not end the table
        record["error"] = failure(e)


def measure_spec(name: str, data: str | None, cfg: dict[str, Any], deadline: float,
                 emit: Any) -> None:
    """Every cell of one spec, each passed to `emit(record)` as soon as it is measured."""
    from runtime.data.device_feed import training_batches
    from runtime.train.devices import mixed_policy

    spec, tcfg, feed = spec_feed(name, cfg["spec_sets"].get(name, []), data)
    input_name = spec.graph.inputs[0].name
    outputs = [o.name for o in spec.graph.outputs if o.loss is not None]

    def pack(images: Any, landmarks: Any) -> tuple[Any, Any]:
        return {input_name: images}, {o: landmarks for o in outputs}

    timing, size = (cfg["seconds"], cfg["warmup"]), feed.augment.faces.size
    streams = {b: training_batches(feed, b, 0, pack) for b in cfg["batches"] if b <= feed.n}
    augment: dict[int, Any] = {}
    for b, stream in streams.items():
        guarded(augment, b, rate, stream.__next__, b, *timing)
    for precision, policy in (("float32", False), ("mixed", mixed_policy())):
        cell = {"spec": name, "precision": precision, "policy": policy or "float32"}
        model, why = None, None
        if streams and time.time() <= deadline:
            try:
                model = compiled_model(spec, tcfg, size, policy, next(streams[min(streams)]))
            except Exception as e:  # noqa: BLE001 - reported in every cell of the precision
                why = failure(e)
        for b in cfg["batches"]:
            rec = {"kind": "train", **cell, "batch": b, "augment_img_s": augment.get(b)}
            if b not in streams:
                rec["error"] = f"only {feed.n} training faces"
            elif time.time() > deadline:
                rec["error"] = "skipped: the throughput stage's time budget is spent"
            elif model is None:
                rec["error"] = why
            else:
                fixed = itertools.repeat(next(streams[b])).__next__  # one pre-made batch
                guarded(rec, "train_img_s", train_rate, model, streams[b].__next__, b, *timing)
                guarded(rec, "model_img_s", train_rate, model, fixed, b, *timing)
            emit(rec)
        if model is not None and time.time() <= deadline:
            b = max(streams)
            rec = {"kind": "inference", **cell, "batch": b}
            x = next(streams[b])[0]
            guarded(rec, "infer_img_s", infer_rate, model, x, b, *timing)
            emit(rec)
        model = None
        gc.collect()


def describe() -> dict[str, Any]:
    import jax
    import keras

    from runtime.train.devices import describe_devices

    return {"device": describe_devices(), "keras": keras.__version__, "jax": jax.__version__,
            "backend": keras.backend.backend()}


def throughput(args: argparse.Namespace) -> int:
    cfg = DRY if args.dry_run else GPU
    cfg = {**cfg, "batches": args.batches or cfg["batches"]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = [("rcn_6branch", args.data), ("lgcn", None)]  # lgcn: 68 points, its synthetic set
    result: dict[str, Any] = {**describe(), "data": {n: d or "the spec's (synthetic)"
                                                     for n, d in specs},
                              "seconds_per_figure": cfg["seconds"], "cells": []}
    say(f"throughput on {result['device']} (keras {result['keras']}, jax {result['jax']})")
    t0 = time.time()

    def emit(rec: dict[str, Any]) -> None:
        rec["at_s"] = round(time.time() - t0, 1)  # since the stage began: compiles show
        result["cells"].append(rec)
        say(row(rec))
        (out / "throughput.json").write_text(json.dumps(result, indent=1))

    for i, (name, data) in enumerate(specs):
        measure_spec(name, data, cfg, t0 + cfg["budget"] * (i + 1) / len(specs), emit)
    result["seconds"] = round(time.time() - t0, 1)
    (out / "throughput.json").write_text(json.dumps(result, indent=1))
    say(table(result["cells"]))
    return 0


def _num(v: Any) -> str:
    return f"{v:>10,}" if isinstance(v, int) else f"{'-':>10}"


def row(rec: dict[str, Any]) -> str:
    head = f"{rec['spec']:<12} {rec['precision']:<8} {rec['batch']:>5}"
    if rec["kind"] == "inference":
        body = f"{'inference':>10} {_num(rec.get('infer_img_s'))}"
    else:
        t, m = rec.get("train_img_s"), rec.get("model_img_s")
        ratio = f"{t / m:6.2f}" if t and m else f"{'-':>6}"
        body = f"{_num(t)} {_num(m)} {ratio} {_num(rec.get('augment_img_s'))}"
    at = f" {rec['at_s']:6.0f} s" if "at_s" in rec else ""
    return f"{head} {body}{at}" + (f"  [{rec['error']}]" if rec.get("error") else "")


def table(cells: list[dict[str, Any]]) -> str:
    head = (f"{'spec':<12} {'prec.':<8} {'batch':>5} {'step img/s':>10} {'model-only':>10} "
            f"{'ratio':>6} {'augment':>10} {'at':>8}\n"
            "(step: augmentation + train step as fit runs them; ratio < 0.9: input-bound; "
            "inference rows: jitted forward, img/s; at: seconds since the stage began)")
    return "\n".join([head, *(row(c) for c in cells)])


# ------------------------------------------------------------------ (b) the full fit

def fit_stage(args: argparse.Namespace, out: Path, env: dict[str, str]) -> dict[str, Any]:
    """`netspec fit` of rcn_6branch; RUN/model.keras, metrics.jsonl, state.json into `out`."""
    cfg = DRY if args.dry_run else GPU
    run_dir = Path(tempfile.mkdtemp(prefix="gpu_train_fit_")) / "run"
    sets = [*cfg["fit_sets"], f"train.max_minutes={args.minutes}"]
    argv = ["netspec", "fit", FIT_SPEC, "--backend", "jax", "--data", args.data,
            "--mixed-precision", "-o", str(run_dir), *(a for s in sets for a in ("--set", s))]
    say(f"$ python -m {' '.join(argv)}   (TensorFlow blocked)")
    t = time.time()
    rc = subprocess.run(child(argv, module=True), cwd=REPO, env=env, check=False).returncode
    summary: dict[str, Any] = {"rc": rc, "seconds": round(time.time() - t, 1)}
    for name in ("model.keras", "metrics.jsonl", "state.json"):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, out / name)
            summary[f"{name} MiB"] = round((out / name).stat().st_size / 2**20, 2)
    if (run_dir / "state.json").is_file():
        state = json.loads((run_dir / "state.json").read_text())
        summary.update({k: state.get(k) for k in ("epoch", "best", "best_epoch", "stopped")})
    if (run_dir / "metrics.jsonl").is_file():
        summary["fit_img_s"] = fit_rate(run_dir / "metrics.jsonl", fit_batch(cfg))
    return summary


def fit_rate(metrics: Path, batch: int) -> int | None:
    """Median training img/s of fit's epochs (after the first, which compiles)."""
    epochs = [json.loads(ln) for ln in metrics.read_text().splitlines() if ln.strip()]
    rates = [e["steps"] * batch / e["train_seconds"] for e in epochs[1:] or epochs
             if e.get("train_seconds")]
    return round(statistics.median(rates)) if rates else None


def fit_batch(cfg: dict[str, Any]) -> int:
    return int(next(s.split("=")[1] for s in cfg["fit_sets"] if "batch_size" in s))


# ------------------------------------------------------------------ run (orchestrator)

def child(argv: list[str], module: bool = False) -> list[str]:
    """A Python command line with TensorFlow unimportable (as on the GPU machine)."""
    how = ("run_module", ", alter_sys=True") if module else ("run_path", "")
    return [sys.executable, "-c", BLOCK_TF.format(*how), *argv]


def default_data(dry_run: bool) -> str:
    for path in ([] if dry_run else [DATA / "mtfl"]) + [SHARED / "mtfl"]:
        if (path / "train.txt").is_file():
            return str(path)
    return "synthetic"


def goals(cells: list[dict[str, Any]], fit: dict[str, Any]) -> str:
    """The issue's goals against what was measured (not asserted)."""
    rcn = [c for c in cells if c["spec"] == "rcn_6branch"]
    train = [c for c in rcn if c.get("train_img_s")]
    infer = [c["infer_img_s"] for c in rcn if c.get("infer_img_s")]
    bound = [f"{c['precision']}/{c['batch']}" for c in train
             if c.get("model_img_s") and c["train_img_s"] < 0.9 * c["model_img_s"]]
    best = max(train, key=lambda c: c["train_img_s"], default=None)
    lines = ["goals (measured, not asserted):"]
    if best:
        lines.append(f"  RCN-6 training incl. augmentation: best {best['train_img_s']:,} img/s "
                     f"({best['precision']}, batch {best['batch']}) vs >= 100,000: "
                     f"{'met' if best['train_img_s'] >= 100_000 else 'not met'}")
    lines.append(f"  input-bound RCN-6 cells (step < 0.9 x model-only): {bound or 'none'}")
    if infer:
        lines.append(f"  RCN-6 batched inference: best {max(infer):,} img/s vs >= 300,000: "
                     f"{'met' if max(infer) >= 300_000 else 'not met'}")
    nme = f"{100 * fit['best']:.2f} %" if fit.get("best") is not None else "-"
    lines.append(f"  netspec fit's own training rate: {fit.get('fit_img_s')} img/s; best "
                 f"val_nme {nme} (inter-ocular) at epoch {fit.get('best_epoch')} of "
                 f"{fit.get('epoch')} ({fit.get('stopped')})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out or os.environ.get("OUT")
               or Path(tempfile.gettempdir()) / "gpu_train_out").resolve()
    out.mkdir(parents=True, exist_ok=True)
    args.data = args.data or default_data(args.dry_run)
    tmp = Path(tempfile.gettempdir()) / "gpu_train_cache"
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                         if p),
           # decoded faces and XLA executables shared by the stages (and later runs)
           "NETSPEC_FACE_CACHE": os.environ.get("NETSPEC_FACE_CACHE") or str(tmp / "faces"),
           "JAX_COMPILATION_CACHE_DIR": os.environ.get("JAX_COMPILATION_CACHE_DIR")
           or str(tmp / "xla"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           # headroom for the big cells (JAX takes 75 % of the GPU by default)
           "XLA_PYTHON_CLIENT_MEM_FRACTION": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION")
           or ".92"}
    if args.dry_run:
        env["JAX_PLATFORMS"] = "cpu"
    say(f"gpu_train {'dry run (CPU) ' if args.dry_run else ''}-> {out}; data {args.data}")
    t = time.time()
    argv = [__file__, "throughput", "--out", str(out), "--data", args.data,
            *(["--dry-run"] if args.dry_run else []),
            *(["--batches", *map(str, args.batches)] if args.batches else [])]
    rc_a = subprocess.run(child(argv), cwd=REPO, env=env, check=False).returncode
    say(f"(a) throughput: exit {rc_a}, {time.time() - t:.0f} s")
    fit = fit_stage(args, out, env)
    say(f"(b) fit: {json.dumps(fit)}")
    tp = out / "throughput.json"
    cells = json.loads(tp.read_text())["cells"] if tp.is_file() else []
    say(goals(cells, fit))
    say(f"total {time.time() - t:.0f} s; files in {out}: "
        f"{', '.join(sorted(p.name for p in out.iterdir()))}")
    return 0 if rc_a == 0 and fit["rc"] == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="here: wheels into .whl/, MTFL into .gpu_data/, the call")
    p.add_argument("--minutes", type=float, default=3.5, help="the fit's time budget there")
    p.set_defaults(func=prepare)
    for name, func in (("run", run), ("throughput", throughput)):
        p = sub.add_parser(name, help="throughput table, then the full fit" if name == "run"
                           else "the throughput table alone")
        p.add_argument("--out", default=None, help="output folder (default: $OUT)")
        p.add_argument("--data", default=None, help="MTFL folder (default: .gpu_data/mtfl, "
                       "else ../shared/data/mtfl, else synthetic)")
        p.add_argument("--dry-run", action="store_true", help="tiny settings on this CPU")
        p.add_argument("--batches", type=int, nargs="+", default=None)
        p.add_argument("--minutes", type=float, default=3.5, help="the fit's time budget")
        p.set_defaults(func=func)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
