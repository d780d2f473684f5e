"""A compiled, trainable Keras model for a spec: losses per output, optimizer, L2 groups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
from typing import Any

from compiler.api import Spec
from compiler.diagnostics import SourceLoc, SpecError
from runtime.train.train_config import TrainConfig


def make_optimizer(cfg: TrainConfig) -> Any:
    import keras

    clip = {"clipnorm": cfg.clipnorm, "clipvalue": cfg.clipvalue}
    if cfg.optimizer == "adadelta":
        return keras.optimizers.Adadelta(cfg.learning_rate, rho=cfg.rho, epsilon=cfg.epsilon,
                                         **clip)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2,
                                     epsilon=cfg.epsilon, **clip)
    return keras.optimizers.SGD(cfg.learning_rate, momentum=cfg.momentum,
                                nesterov=cfg.nesterov, **clip)


def learning_rate_at(cfg: TrainConfig, epoch: int) -> float:
    """The schedule as a pure function of the (0-based) epoch, so resumed runs agree."""
    lr = cfg.learning_rate
    if cfg.warmup_epochs and epoch < cfg.warmup_epochs:
        return lr * (epoch + 1) / cfg.warmup_epochs
    e = epoch - cfg.warmup_epochs
    if cfg.schedule == "step":
        return lr * cfg.decay_rate ** sum(1 for b in cfg.decay_epochs if epoch >= b)
    if cfg.schedule == "exponential":
        return lr * cfg.decay_rate ** e
    if cfg.schedule == "cosine":
        span = max(1, cfg.epochs - cfg.warmup_epochs)
        return lr * 0.5 * (1 + math.cos(math.pi * min(e, span) / span))
    return lr


def _l2_groups(model: Any, groups: dict[str, float], loc: SourceLoc) -> list[tuple[float, Any]]:
    from compiler.ir import spec_name

    terms = []
    for prefix, coef in groups.items():
        matched = [layer for layer in model.layers
                   if spec_name(layer.name).startswith(prefix) and getattr(layer, "kernel", None)
                   is not None]
        if not matched:
            raise SpecError.at(loc, f"train.l2: no layer with weights starts with '{prefix}'",
                               hint="prefixes match spec layer names, e.g. enc or br1")
        terms += [(float(coef), layer.kernel) for layer in matched]
    return terms


@dataclass(frozen=True)
class Objective:
    """What `model.compile` minimises, kept to score validation data in the same terms:
    per-output losses `fn(y_true, y_pred) -> [B]` (without L2), their weights, and the
    L2 terms (coefficient, kernel variable)."""

    losses: dict[str, Callable[[Any, Any], Any]]
    weights: dict[str, float]
    l2_terms: list[tuple[float, Any]]

    def l2_penalty(self) -> float:
        import keras

        return float(sum(c * float(keras.ops.sum(keras.ops.square(w)))
                         for c, w in self.l2_terms))


def load_initial_weights(model: Any, spec: Spec, cfg: TrainConfig) -> None:
    """Weights from trained runs before training: `train.init_from` (warm start) and the
    module instances' `weights_from` (see runtime/train/initial_weights.py)."""
    from runtime.train.initial_weights import initial_weights

    initial_weights(model, spec.graph, init_from=cfg.init_from,
                    checkpoint=cfg.init_from_checkpoint, partial=cfg.init_partial,
                    loc=spec.section("train").loc_of("init_from"))


def build_model(spec: Spec, cfg: TrainConfig, input_size: int, *, mixed_precision: bool | str,
                xla: bool, initial_weights: bool = True) -> tuple[Any, Objective]:
    """Lower, load initial weights from trained runs (unless `initial_weights` is False: a
    resume restores its own checkpoint), freeze `trainable: false` layers, attach
    per-output losses (each builds its target from y_true) and compile."""
    import keras

    from compiler.lower_keras import lower_to_keras
    from runtime.train.initial_weights import freeze
    from runtime.train.landmark_loss import LandmarkLoss

    model = lower_to_keras(spec.graph, mixed_precision=mixed_precision)
    if initial_weights:
        load_initial_weights(model, spec, cfg)
    freeze(model, spec.graph)  # before compile, so the train step leaves them alone
    types = spec.graph.types()
    losses, weights = {}, {}
    for o in spec.graph.outputs:
        if o.loss is None:
            continue
        try:
            out_shape = types[o.source].shape  # type: ignore[union-attr]  # batch: None
            losses[o.name] = LandmarkLoss(o.loss, input_size, out_shape, dict(o.loss_args))
        except ValueError as e:
            raise SpecError.at(o.loc, f"output '{o.name}': {e}") from None
        weights[o.name] = o.weight
    if not losses:
        raise SpecError.at(SourceLoc(spec.file), "no output has a loss, so nothing can be "
                                                 "trained", hint="add loss: to an output")
    terms = _l2_groups(model, dict(cfg.l2 or {}), spec.section("train").loc) if cfg.l2 else []
    # validation scores per example in the same terms, so it keeps the un-reduced losses
    objective = Objective({n: fn.per_example for n, fn in losses.items()}, dict(weights), terms)
    if terms:
        first = next(iter(losses))
        scale = 1.0 / max(weights[first], 1e-12)

        def penalty() -> Any:
            return scale * sum(c * keras.ops.sum(keras.ops.square(w)) for c, w in terms)

        losses[first].penalty = penalty
    optimizer = make_optimizer(cfg)
    if mixed_precision == "mixed_float16" or mixed_precision is True:  # float16 underflows:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)   # dynamic loss scaling
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights,
                  jit_compile=jit_setting(xla))
    return model, objective


def jit_setting(xla: bool) -> bool | str:
    """model.compile's jit_compile: XLA on TensorFlow only when asked (--xla); on JAX always
    (an eager JAX step is ~100x slower); on PyTorch torch.compile when asked."""
    import keras

    if keras.backend.backend() == "jax":
        return True
    return bool(xla)
