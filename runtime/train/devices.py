"""Device setup for training: seeds, GPU memory growth, mixed precision, strategies.

Called once per command (fit, search trial); library code never touches global
backend state elsewhere. On TensorFlow the strategies are tf.distribute's; on JAX
`mirrored` is keras.distribution.DataParallel over every local device; on PyTorch one
device. Only the tensorflow branch imports TensorFlow.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import hashlib
import json
import logging
import os
from typing import Any

from compiler.diagnostics import SourceLoc, SpecError

log = logging.getLogger(__name__)


class _Scope:
    """The strategy of a backend without tf.distribute: `scope()` is a no-op (JAX's data
    parallelism is set globally by keras.distribution.set_distribution)."""

    def __init__(self, replicas: int = 1) -> None:
        self.num_replicas_in_sync = replicas

    def scope(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def configure(seed: int, strategy: str = "default") -> Any:
    """Seed everything, let GPUs grow memory, and return the strategy (tf.distribute's on
    TensorFlow; an object with the same `scope()` elsewhere)."""
    import keras

    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    if backend != "tensorflow":
        return _portable_strategy(backend, strategy)
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError):  # already initialised: harmless
            tf.config.experimental.set_memory_growth(gpu, True)
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # the cluster comes from TF_CONFIG
    return tf.distribute.get_strategy()


def _portable_strategy(backend: str, strategy: str) -> Any:
    import keras

    if strategy == "multi_worker":
        raise SpecError.at(CLI, f"strategy multi_worker is tf.distribute's; it does not run "
                                f"on the {backend} backend",
                           hint="use --backend tensorflow for several machines, or "
                                "--strategy mirrored on one machine with --backend jax")
    if strategy != "mirrored":
        return _Scope()
    if backend != "jax":
        raise SpecError.at(CLI, f"strategy mirrored (data parallel) is not built for the "
                                f"{backend} backend yet",
                           hint="use --backend jax (keras.distribution.DataParallel) or "
                                "--backend tensorflow (tf.distribute.MirroredStrategy)")
    found = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=found))
    return _Scope(len(found))


def mixed_policy() -> str:
    """The 16-bit policy for this machine: mixed_bfloat16 where the hardware computes in
    bfloat16 (CPUs, TPUs, NVIDIA GPUs of compute capability 8.0 and later: A100, H100),
    mixed_float16 on older GPUs (whose bfloat16 is emulated)."""
    import keras

    backend = keras.backend.backend()
    older = False
    if backend == "jax":
        import jax

        older = any(getattr(d, "compute_capability", "8.0") < "8" for d in jax.devices()
                    if d.platform == "gpu")
    elif backend == "torch":
        import torch

        older = torch.cuda.is_available() and not torch.cuda.is_bf16_supported()
    else:
        import tensorflow as tf

        for g in tf.config.list_physical_devices("GPU"):
            cc = tf.config.experimental.get_device_details(g).get("compute_capability")
            older = older or (cc is not None and tuple(cc) < (8, 0))
    return "mixed_float16" if older else "mixed_bfloat16"


def describe_devices() -> str:
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devs = jax.devices()
        if devs[0].platform == "cpu":
            return "CPU (jax)" if len(devs) == 1 else f"CPU (jax, {len(devs)} devices)"
        return f"{len(devs)} {devs[0].platform.upper()} (jax): {devs[0].device_kind}"
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return "CPU (torch)"
        n = torch.cuda.device_count()
        return f"{n} GPU (torch): {torch.cuda.get_device_name(0)}"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    names = []
    for g in gpus:
        details = tf.config.experimental.get_device_details(g)
        names.append(details.get("device_name", g.name))
    return f"{len(gpus)} GPU: " + ", ".join(names)


# ------------------------------------------------------------------ multi-worker

CLI = SourceLoc("<command line>")


@dataclass(frozen=True)
class Worker:
    """This process's place in a TF_CONFIG cluster: worker `index` of `workers`; worker 0
    is the chief, the only one that writes the run directory."""

    workers: tuple[str, ...]
    index: int

    @property
    def chief(self) -> bool:
        return self.index == 0

    @property
    def count(self) -> int:
        return len(self.workers)

    def text(self) -> str:
        return f"worker {self.index}/{self.count} ({self.workers[self.index]})"


def tf_config(workers: str, task_index: int | None) -> str:
    """The TF_CONFIG JSON of `--workers HOST:PORT,HOST:PORT --task-index I`."""
    hosts = [w.strip() for w in workers.split(",") if w.strip()]
    bad = [h for h in hosts if h.count(":") != 1 or not h.rsplit(":", 1)[1].isdigit()
           or not 0 < int(h.rsplit(":", 1)[1]) < 65536]
    if not hosts or bad:
        raise SpecError.at(CLI, f"--workers: expected HOST:PORT,HOST:PORT, found {workers!r}",
                           hint="e.g. --workers 10.0.0.1:12345,10.0.0.2:12345 (the same list, "
                                "in the same order, on every worker)")
    if len(set(hosts)) != len(hosts):
        raise SpecError.at(CLI, f"--workers lists an address twice: {workers!r}",
                           hint="give each worker its own HOST:PORT")
    if task_index is None or not 0 <= task_index < len(hosts):
        raise SpecError.at(CLI, f"--task-index must be 0..{len(hosts) - 1} with {len(hosts)} "
                           f"--workers, found {task_index}",
                           hint="start one `netspec fit` per worker, each with its own "
                                "--task-index (0 is the chief, which writes the run)")
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker",
                                                              "index": task_index}})


def worker_role(strategy: str) -> Worker | None:
    """This process's Worker under strategy multi_worker (from TF_CONFIG), else None."""
    if strategy != "multi_worker":
        return None
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise SpecError.at(CLI, "strategy multi_worker needs the cluster: TF_CONFIG is not set",
                           hint="pass --workers HOST:PORT,HOST:PORT --task-index I, or set "
                                "TF_CONFIG as for tf.distribute")
    try:
        cfg = json.loads(raw)
        workers = tuple(cfg["cluster"]["worker"])
        task = cfg["task"]
        index = int(task["index"])
        kind = task.get("type", "worker")
    except (ValueError, KeyError, TypeError):
        raise SpecError.at(SourceLoc("TF_CONFIG"), "TF_CONFIG is not a cluster description",
                           hint='expected {"cluster": {"worker": ["HOST:PORT", ...]}, '
                                '"task": {"type": "worker", "index": I}}') from None
    if set(cfg["cluster"]) - {"worker"} or kind != "worker" or not 0 <= index < len(workers):
        raise SpecError.at(SourceLoc("TF_CONFIG"), "netspec runs clusters of workers only "
                           f"(worker 0 is the chief); found jobs {sorted(cfg['cluster'])}, "
                           f"task {kind} {index}",
                           hint="list every machine under cluster.worker and give each its "
                                "index")
    return Worker(workers, index)


def use_multi_worker_steps(model: Any, strategy: Any, batch: Any) -> None:
    """Let Keras' `fit` train under MultiWorkerMirroredStrategy.

    Keras 3's TF trainer cannot: before the first step it reduces a distributed input
    batch with `strategy.reduce` (which takes a tensor, not an (x, y) structure), and its
    train function reduces scalar logs with axis=0 (tensorflow/tensorflow#72388). So the
    model is built here from one local `batch`, and its train function is replaced by the
    same `train_step` run on every replica with the logs averaged over replicas; the
    gradients are all-reduced by the optimizer as in any tf.distribute strategy.
    """
    import tensorflow as tf

    with strategy.scope():
        model._symbolic_build(data_batch=batch)  # metric/loss state, outside replica context
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    @tf.function
    def train_function(iterator: Any) -> dict[str, Any]:
        logs = strategy.run(model.train_step, args=(next(iterator),))
        return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

    model.train_function = train_function


def weights_digest(model: Any) -> str:
    """sha256 of every weight's bytes (first 16 hex digits): equal on all workers."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(w.tobytes())
    return h.hexdigest()[:16]


def step_digests() -> Any:
    """A Keras callback that hashes the weights after every training step, so two
    workers can show they held identical weights at each step, not only at the end
    (`.text()`: the number of steps and one digest over the sequence)."""
    import keras

    class StepDigests(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.chain = hashlib.sha256()
            self.steps = 0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.chain.update(weights_digest(self.model).encode())
            self.steps += 1

        def text(self) -> str:
            return f"{self.steps} step weights digest {self.chain.hexdigest()[:16]}"

    return StepDigests()
