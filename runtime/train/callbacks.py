"""Keras callbacks of a run: validation NME, atomic checkpoints, metrics log, budget.

Note [Checkpoint commit point]: weights + optimizer state go to one backend-neutral file
(runtime/train/checkpoints.py, written to a temporary name and renamed), and
RUN/state.json - the record a resume trusts - is replaced atomically only after
that, so a crash at any moment leaves the last complete epoch intact.
"""

from __future__ import annotations

from collections.abc import Callable
import math
from pathlib import Path
import sys
import time
from typing import Any

import keras
import numpy as np

from runtime.atomic import append_jsonl, atomic_save_model, atomic_write_json


class Validation(keras.callbacks.Callback):
    """Adds the validation logs (`val_loss`, `val_nme`, ...) of `validate(model)` to each
    epoch's logs; it runs first, so the checkpoint, early-stopping and TensorBoard
    callbacks after it see them."""

    def __init__(self, validate: Callable[[Any], dict[str, Any]]) -> None:
        super().__init__()
        self._validate = validate

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs.update(self._validate(self.model))


class RunRecorder(keras.callbacks.Callback):
    """Per epoch: metrics.jsonl line, checkpoint, best model.keras, state.json."""

    def __init__(self, run_dir: Path, save: Callable[[int], str], monitor: str,
                 state: dict[str, Any], lr_at: Callable[[int], float]) -> None:
        super().__init__()
        self.run_dir, self.save, self.monitor = run_dir, save, monitor
        self.state = state
        self._lr_at = lr_at
        self._t0 = self._first_step = self._last_step = time.time()
        self._steps = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.model.optimizer.learning_rate.assign(self._lr_at(epoch))
        self._t0 = time.time()
        self._steps, self._first_step, self._last_step = 0, self._t0, self._t0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._last_step = time.time()
        self._steps += 1
        if self._steps == 1:
            self._first_step = self._last_step

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        if "loss" in logs and not _finite_number(logs["loss"]):
            return  # NaNGuard stops the run; the last committed epoch stays the one to resume
        # seconds: the whole epoch; train_seconds: its training steps only (no validation),
        # of which first_step_seconds (tracing/compilation on a fresh process)
        record = {"epoch": epoch + 1, "seconds": round(time.time() - self._t0, 2),
                  "lr": float(self._lr_at(epoch)), "steps": self._steps,
                  "train_seconds": round(self._last_step - self._t0, 3),
                  "first_step_seconds": round(self._first_step - self._t0, 3)}
        record.update({k: float(v) for k, v in logs.items() if _finite_number(v)})
        value = logs.get(self.monitor)
        improved = value is not None and math.isfinite(float(value)) and (
            self.state["best"] is None or float(value) < self.state["best"])
        if improved:
            atomic_save_model(self.model, self.run_dir / "model.keras")
            self.state.update(best=float(value), best_epoch=epoch + 1)
        record["best"] = bool(improved)
        append_jsonl(self.run_dir / "metrics.jsonl", record)
        self.state["checkpoint"] = self.save(epoch + 1)
        self.state["epoch"] = epoch + 1
        self.state["iterations"] = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        atomic_write_json(self.run_dir / "state.json", self.state)


class TimeBudget(keras.callbacks.Callback):
    """Stops training after `minutes` of wall clock (checked after every batch)."""

    def __init__(self, minutes: float) -> None:
        super().__init__()
        self.deadline = time.time() + minutes * 60

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if time.time() > self.deadline:
            self.model.stop_training = True


class NaNGuard(keras.callbacks.Callback):
    """Stops with a clear message instead of training on with a NaN loss.

    Reading the loss waits for the device to finish the step, so it is read at most every
    `every` seconds (and at each epoch's end): on a GPU a per-batch read would keep the
    host from queueing the next steps while one runs."""

    def __init__(self, every: float = 0.25) -> None:
        super().__init__()
        self.hit_nan = False
        self.every, self._last = every, 0.0

    def _check(self, logs: dict[str, Any] | None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(np.asarray(loss, np.float64)):
            self.hit_nan = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._check(logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._check(logs)


def _finite_number(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


class EpochProgress(keras.callbacks.Callback):
    """What `fit` shows while it trains: a per-batch bar on a terminal (stderr), and one
    line per epoch everywhere, NME/FR/AUC in percent (metrics.jsonl keeps fractions).

    It runs after Validation and RunRecorder, so the line has the validation figures and
    knows whether the epoch improved the monitored one."""

    def __init__(self, epochs: int, steps: int | None, monitor: str,
                 state: dict[str, Any]) -> None:
        super().__init__()
        self.epochs, self.steps, self.monitor, self.state = epochs, steps, monitor, state
        self._bar: Any = None
        self._t0 = time.time()
        self._shown = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        from runtime.progress import Bar

        self._t0 = time.time()
        self._bar = Bar(self.steps, f"epoch {epoch + 1}/{self.epochs}", "batch")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._bar is None:
            return
        now = time.monotonic()  # the loss is read (a device sync) a few times a second only
        if now - self._shown < 0.25:
            self._bar.update()
            return
        self._shown = now
        loss = (logs or {}).get("loss")
        self._bar.update(**({"loss": f"{float(loss):.4g}"} if _finite_number(loss) else {}))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
        line = epoch_line(epoch + 1, self.epochs, dict(logs or {}), time.time() - self._t0,
                          self.state.get("best_epoch") == epoch + 1, self.monitor)
        print(line, file=sys.stderr, flush=True)  # noqa: T201 - user-facing progress


def epoch_line(epoch: int, epochs: int, logs: dict[str, Any], seconds: float, best: bool,
               monitor: str) -> str:
    """'epoch 3/30: loss 12.3, val_loss 13.1, val_nme 9.73 %, ... 41 s, best val_nme'."""
    from runtime.evaluate.metrics import format_figure

    keys = ["loss", *sorted(k for k in logs if k.endswith("_loss") and k != "loss"),
            "val_nme", "val_fr_010", "val_auc_008"]
    parts = [f"{k} {format_figure(k, logs[k])}" for k in dict.fromkeys(keys)
             if _finite_number(logs.get(k))]
    tail = f", new best {monitor}" if best else ""
    return f"epoch {epoch}/{epochs}: {', '.join(parts)} ({seconds:.1f} s){tail}"
