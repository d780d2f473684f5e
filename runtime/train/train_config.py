"""The `train:` section of a spec, as a validated, documented dataclass.

It derives from OpParams so `compiler.params.coerce_params` reports unknown keys
(with did-you-mean), wrong types and out-of-range values at the spec's file:line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from compiler.diagnostics import SourceLoc, SpecError
from compiler.params import OpParams, param, section_config


@dataclass(frozen=True)
class TrainConfig(OpParams):
    """Solver, schedule, regularisation, stopping and device settings."""

    optimizer: Literal["adadelta", "adam", "sgd"] = param(
        "adadelta", "AdaDelta is RCN's solver (rho 0.95, no learning rate to tune)")
    learning_rate: float = param(1.0, "base learning rate (1.0 for AdaDelta)", min=0.0)
    rho: float = param(0.95, "AdaDelta decay", min=0.0, max=1.0)
    epsilon: float = param(1e-7, "optimizer epsilon (RCN's AdaDelta used 1e-8)", min=0.0)
    momentum: float = param(0.9, "SGD momentum", min=0.0, max=1.0)
    nesterov: bool = param(False, "SGD Nesterov momentum")
    beta_1: float = param(0.9, "Adam beta_1", min=0.0, max=1.0)
    beta_2: float = param(0.999, "Adam beta_2", min=0.0, max=1.0)
    schedule: Literal["constant", "step", "cosine", "exponential"] = param(
        "constant", "learning-rate schedule over epochs")
    decay_epochs: tuple[int, ...] = param((), "epochs at which 'step' multiplies the rate by "
                                              "decay_rate", min=1)
    decay_rate: float = param(0.1, "factor per step / per epoch ('exponential')", min=0.0)
    warmup_epochs: int = param(0, "linear warm-up epochs before the schedule", min=0)
    l2: Mapping[str, float] | None = param(
        None, "L2 per layer group: {name prefix: coefficient}, e.g. {enc: 1e-6, br: 1e-12}; "
              "adds coef x sum(kernel^2) of every layer whose name starts with the prefix")
    clipnorm: float | None = param(None, "clip each gradient to this L2 norm", min=0.0)
    clipvalue: float | None = param(None, "clip gradient values to [-v, v]", min=0.0)
    batch_size: int = param(64, "examples per step (global, across replicas)", min=1)
    epochs: int = param(30, "passes over the training set", min=1)
    steps_per_epoch: int | None = param(None, "cap steps per epoch (null: the whole set)", min=1)
    max_minutes: float | None = param(None, "stop after this wall-clock budget (the best "
                                            "model so far is kept)", min=0.0)
    monitor: Literal["val_loss", "val_nme"] = param(
        "val_nme", "validation figure that picks the best model and drives early stopping")
    patience: int | None = param(None, "early stopping: epochs without improvement "
                                       "(null: off)", min=1)
    val_examples: int | None = param(2000, "validation faces scored each epoch for val_loss "
                                           "and val_nme, in one prediction pass (null: all)",
                                     min=1)
    seed: int = param(0, "seed of weights, shuffling and augmentation", min=0)
    mixed_precision: bool = param(False, "float16 compute with float32 heads (GPU)")
    xla: bool = param(False, "compile the train step with XLA")
    strategy: Literal["default", "mirrored", "multi_worker"] = param(
        "default", "tf.distribute strategy: mirrored = all local GPUs, multi_worker = "
                   "TF_CONFIG cluster")
    keep_checkpoints: int = param(2, "checkpoints kept in RUN/checkpoints", min=1)
    # staged training (runtime/train/initial_weights.py); ignored by --resume, whose checkpoint wins
    init_from: str | None = param(
        None, "warm start: initial weights of every layer from this trained run directory "
              "(matched by layer name, shapes checked; relative to the current directory)")
    init_from_checkpoint: Literal["best", "last"] = param(
        "best", "which weights of init_from: best = RUN/model.keras (the best epoch), "
                "last = the last committed checkpoint in RUN/checkpoints")
    init_partial: bool = param(
        False, "allow init_from between models whose layers differ: layers the run lacks "
               "start fresh, the run's extra layers are ignored (both listed as a note)")

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.schedule == "step" and not self.decay_epochs:
            out.append(("decay_epochs", "schedule 'step' needs decay_epochs, e.g. [10, 20]"))
        for prefix, coef in (self.l2 or {}).items():
            if not isinstance(coef, (int, float)) or isinstance(coef, bool) or coef < 0:
                out.append(("l2", f"coefficient of '{prefix}' must be a number >= 0, "
                                  f"found {coef!r}"))
        return out


def train_config(raw: Mapping[str, Any] | None, loc: SourceLoc, *,
                 check_paths: bool = True) -> TrainConfig:
    """The validated `train:` section. `check_paths` also checks that `init_from` names a
    trained run folder (TF-free, so `netspec check` reports it); a resume, which ignores
    init_from, passes False."""
    cfg = section_config(TrainConfig, raw, loc, "train")
    if check_paths and cfg.init_from is not None:
        from runtime.train.initial_weights import RUN_HINT, run_folder_problem

        problem = run_folder_problem(cfg.init_from, cfg.init_from_checkpoint)
        if problem:
            key_loc = getattr(raw, "loc_of", None)
            raise SpecError.at(key_loc("init_from") if key_loc else loc,
                               f"train: key 'init_from': {problem}", hint=RUN_HINT)
    return cfg
