"""`netspec doctor`: what to paste into a bug report, and a self-test of this machine.

It prints the versions and devices that decide how netspec behaves, then runs the
numerics guard's quick set (runtime/numerics: every pipeline, target and loss op against
numpy) and one training step of a tiny spec, each in a child process, so a dependency
that crashes (as TensorFlow 2.21's oneDNN did on AVX-512 CPUs) is reported as a failed
item instead of killing the doctor. Exit 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import importlib.metadata
import json
import os
from pathlib import Path
import platform
import shutil
import signal
import subprocess
import sys

CHILD_TIMEOUT_S = 300
TINY_SPEC = """\
version: 1
name: doctor_tiny
inputs:
  image: {shape: [32, 32, 1]}
layers:
  - {name: conv1, op: conv2d, in: [image], filters: 8, kernel_size: 3, activation: relu}
  - {name: head, op: conv2d, in: [conv1], filters: 5, kernel_size: 1}
  - {name: prob, op: spatial_softmax, in: [head]}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
data: {size: 32, channels: 1}
"""


@dataclass(frozen=True)
class Item:
    """One line of the report; `ok` None for facts that cannot fail (versions, paths)."""

    name: str
    text: str
    ok: bool | None = None


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu() -> Item:
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
            elif key.strip() == "model name" and model in ("", platform.machine()):
                model = value.strip()
    isa = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                       "amx_tile") if f in flags]
    return Item("cpu", f"{model}, {os.cpu_count()} cores; ISA: {' '.join(isa) or 'unknown'}")


def _onednn() -> Item:
    env = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    state = "off (TF_ENABLE_ONEDNN_OPTS=0)" if env == "0" else (
        "on" + (" (TF_ENABLE_ONEDNN_OPTS=1)" if env else " (TensorFlow's default on x86 Linux)"))
    return Item("oneDNN", state + (f", ONEDNN_MAX_CPU_ISA={cap}" if cap else ""))


def _tensorflow() -> list[Item]:
    from runtime.quiet_tf import import_tensorflow

    try:
        import_tensorflow()
        import tensorflow as tf
    except Exception as e:  # noqa: BLE001 - a broken install is what the doctor reports
        return [Item("tensorflow", f"import failed: {type(e).__name__}: {e}", False)]
    import keras

    info = tf.sysconfig.get_build_info()
    items = [Item("tensorflow", tf.__version__),
             Item("keras", f"{keras.__version__} (backend {keras.backend.backend()})")]
    if info.get("is_cuda_build"):
        items.append(Item("cuda", f"built for CUDA {info.get('cuda_version', '?')}, cuDNN "
                                  f"{info.get('cudnn_version', '?')}"))
    else:
        items.append(Item("cuda", "CPU-only TensorFlow build"))
    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        names.append(f"{details.get('device_name', gpu.name)} "
                     f"(compute {details.get('compute_capability', '?')})")
    memory = _nvidia_memory()
    text = "; ".join(names) + (f"; memory {memory}" if memory else "") if gpus else \
        "none visible to TensorFlow: training runs on the CPU"
    items.append(Item("gpus", text))
    items.append(Item("other backends", _other_backends()))
    return items


def _other_backends() -> str:
    """The Keras backends besides TensorFlow that `--backend` can use here (versions from
    the package metadata: importing JAX or PyTorch costs seconds and probes devices)."""
    import importlib.metadata

    found = []
    for name, dist in (("jax", "jax"), ("torch", "torch")):
        try:
            found.append(f"{name} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found) + " (netspec fit --backend NAME)"


def _nvidia_memory() -> str:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ""
    try:
        out = subprocess.run([smi, "--query-gpu=memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return ", ".join(line.strip() for line in out.splitlines() if line.strip())


def _graphviz() -> Item:
    dot = shutil.which("dot")
    if not dot:
        return Item("graphviz", "not found (only `netspec graph -o *.svg|png|pdf` needs it; "
                                ".html and .dot work without)")
    try:
        proc = subprocess.run([dot, "-V"], capture_output=True, text=True, timeout=20)
        return Item("graphviz", (proc.stderr or proc.stdout).strip())
    except (OSError, subprocess.SubprocessError) as e:
        return Item("graphviz", f"{dot} does not run: {e}")


def shared_data_folder() -> Path | None:
    """NETSPEC_SHARED_DATA, else ../shared/data beside the working directory or the repo."""
    env = os.environ.get("NETSPEC_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared" / "data",
                   Path(__file__).resolve().parents[2] / "shared" / "data"]
    return next((p for p in candidates if p.is_dir()), None)


def _data() -> Item:
    folder = shared_data_folder()
    if folder is None:
        return Item("shared data", "not found (set NETSPEC_SHARED_DATA; the embedded synthetic "
                                   "faces need none)")
    sets = sorted(p.name for p in folder.iterdir() if p.is_dir())
    return Item("shared data", f"{folder} ({', '.join(sets)})")


def _child(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S, env=env)


def _died(proc: subprocess.CompletedProcess[str]) -> str:
    if proc.returncode < 0:
        try:
            return f"crashed with {signal.Signals(-proc.returncode).name}"
        except ValueError:
            return f"killed by signal {-proc.returncode}"
    return f"exited with {proc.returncode}"


def numerics_items() -> list[Item]:
    """The quick numerics guard in a child; a crash names the op that was running."""
    try:
        proc = _child(["-m", "runtime.numerics.checks", "--quick", "--json"])
    except subprocess.TimeoutExpired:
        return [Item("numerics", f"self-test did not finish in {CHILD_TIMEOUT_S} s", False)]
    results, running = [], None
    for line in proc.stdout.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "start" in record:
            running = f"{record['start']} [{record['shape']}]"
        else:
            results.append(record)
            running = None
    failed = [r for r in results if not r["ok"]]
    items = [Item(f"numerics: {r['name']} [{r['shape']}]",
                  f"max error {r['max_error']:.3g} > tolerance {r['tolerance']:.3g}"
                  + (f"; {r['error']}" if r["error"] else ""), False) for r in failed]
    if running or (proc.returncode not in (0, 1)):
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        items.append(Item(f"numerics: {running or 'self-test'}",
                          f"{_died(proc)} while checking it; {tail[0]}", False))
    if not items:
        items.append(Item("numerics", f"{len(results)} pipeline, target and loss checks "
                                      "match their numpy references", True))
    return items


def train_step_item() -> Item:
    try:
        proc = _child(["-c", "from netspec.doctor import tiny_train_step as t; print(t())"])
    except subprocess.TimeoutExpired:
        return Item("train step", f"did not finish in {CHILD_TIMEOUT_S} s", False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [""])[-1]
        return Item("train step", f"{_died(proc)}: {tail}", False)
    return Item("train step", proc.stdout.strip().splitlines()[-1], True)


def tiny_train_step() -> str:
    """Two training steps of a tiny RCN-like spec on synthetic faces through the real
    pipeline, model and loss; raises unless the loss is finite and the weights moved."""
    import numpy as np

    from runtime.quiet_tf import import_tensorflow

    import_tensorflow()
    from compiler.api import load_spec_text
    from runtime.data.config import data_config
    from runtime.data.pipeline import make_dataset
    from runtime.data.synthetic import synthetic_faceset
    from runtime.train.model_setup import build_model
    from runtime.train.train_config import train_config

    spec = load_spec_text(TINY_SPEC, "<doctor>")
    cfg = data_config(spec.section("data"), loc=spec.section("data").loc)
    faces = synthetic_faceset(32, size=cfg.size, seed=0)
    ds = make_dataset(faces, cfg, training=True, batch_size=16)
    tcfg = train_config({"optimizer": "adam", "learning_rate": 0.01}, spec.section("train").loc)
    model, _ = build_model(spec, tcfg, cfg.size, mixed_precision=False, xla=False)
    before = [w.copy() for w in model.get_weights()]
    losses = []
    for x, y in ds.take(2):
        losses.append(float(model.train_on_batch(x, {"heatmaps": y["landmarks"]})))
    moved = any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(),
                                                         strict=True))
    if not (losses and all(np.isfinite(losses)) and moved):
        raise RuntimeError(f"training did not work: losses {losses}, weights moved: {moved}")
    return (f"2 steps of a {model.count_params()}-param spec on synthetic faces: loss "
            f"{losses[0]:.3f} -> {losses[-1]:.3f}")


def report(say: Callable[[str], None]) -> int:
    """Print every item; 0 when all checks passed, 1 otherwise."""
    facts = [Item("python", f"{platform.python_version()} ({sys.executable})"),
             Item("platform", platform.platform()),
             Item("netspec", _version("netspec")),
             Item("numpy", _version("numpy")), Item("scipy", _version("scipy")),
             _cpu(), _onednn()]
    items: list[Item] = []
    for item in facts:
        say(_line(item))
    for group in (_tensorflow, lambda: [_graphviz(), _data()], numerics_items,
                  lambda: [train_step_item()]):
        for item in group():
            items.append(item)
            say(_line(item))
    failed = [i for i in items if i.ok is False]
    say(f"doctor: {len(failed)} check(s) failed" if failed else "doctor: all checks passed")
    return 1 if failed else 0


def _line(item: Item) -> str:
    mark = {True: "ok  ", False: "FAIL", None: "    "}[item.ok]
    return f"{mark} {item.name}: {item.text}"
