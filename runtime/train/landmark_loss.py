"""The Keras `Loss` a trained run's model.keras names: one netspec loss, any backend.

On TensorFlow it runs the reference implementation (runtime/train/losses.py), elsewhere
the keras.ops one (runtime/train/portable_losses.py), which the tests hold equal to it in
value and gradient. This module imports no TensorFlow, so the registration hook
(netspec/_keras_hook.py) works on every backend and a model.keras trained on one backend
loads on another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras

LossFn = Callable[[Any, Any], Any]


def per_example_loss(name: str, *, input_size: int, out_shape: Sequence[int | None],
                     **args: Any) -> LossFn:
    """`fn(y_true, y_pred) -> [B]` for the active backend (the arguments of make_loss)."""
    if keras.backend.backend() == "tensorflow":
        from runtime.train.losses import make_loss

        return make_loss(name, input_size=input_size, out_shape=out_shape, **args)
    from runtime.train.portable_losses import make_portable_loss

    return make_portable_loss(name, input_size=input_size, out_shape=out_shape, **args)


@keras.saving.register_keras_serializable(package="netspec")
class LandmarkLoss(keras.losses.Loss):
    """A named netspec loss as a Keras `Loss` whose config rebuilds it, so a trained run's
    model.keras loads with its compile config (`keras.models.load_model` after `import
    netspec`) and can train on. Keras averages the per-example values over the batch.

    `penalty` (fit's L2 term, a callable of no arguments) is added to every example's
    loss in training but is not saved: it refers to the model's own variables, and a
    reloaded model's loss is the data term alone.
    """

    def __init__(self, loss: str, input_size: int, out_shape: Sequence[int | None],
                 args: Mapping[str, Any] | None = None, name: str | None = None,
                 reduction: str = "sum_over_batch_size", dtype: Any = None) -> None:
        super().__init__(name=name or loss, reduction=reduction, dtype=dtype)
        self.loss_name, self.input_size = loss, int(input_size)
        self.out_shape = [None if d is None else int(d) for d in out_shape]
        self.args = dict(args or {})
        self.per_example = per_example_loss(loss, input_size=self.input_size,
                                            out_shape=self.out_shape, **self.args)
        self.penalty: Callable[[], Any] | None = None

    def call(self, y_true: Any, y_pred: Any) -> Any:
        per_example = self.per_example(y_true, y_pred)
        return per_example if self.penalty is None else per_example + self.penalty()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "loss": self.loss_name, "input_size": self.input_size,
                "out_shape": self.out_shape, "args": self.args}
