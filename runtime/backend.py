"""Which Keras backend a command runs on: `--backend`, else KERAS_BACKEND, else tensorflow.

Keras reads KERAS_BACKEND once, when it is first imported, so the choice is made before
anything imports Keras (the CLI calls `select_backend` first thing in fit, eval, predict
and search). TensorFlow stays the default and the reference; on jax and torch the runtime
never imports TensorFlow (tests/backends/ run a fit with TensorFlow unimportable).
"""

from __future__ import annotations

import importlib.util
import os
import sys

from compiler.diagnostics import SourceLoc, SpecError

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"
_PACKAGE = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
_EXTRA = {"tensorflow": "pip install -e .", "jax": "pip install -e '.[backends]'",
          "torch": "pip install torch (https://pytorch.org for the CUDA build)"}


def requested(flag: str | None = None) -> str:
    """The backend a command asks for: the flag, else KERAS_BACKEND, else tensorflow."""
    name = flag or os.environ.get("KERAS_BACKEND") or DEFAULT
    if name not in BACKENDS:
        where = "--backend" if flag else "KERAS_BACKEND"
        raise SpecError.at(SourceLoc("<command line>"), f"{where}: unknown Keras backend "
                           f"'{name}'", hint=f"one of {', '.join(BACKENDS)}")
    return name


def select_backend(flag: str | None = None) -> str:
    """Make `flag` (or the environment's choice) the Keras backend of this process, before
    Keras is imported; a clear error when its package is missing or Keras already runs on
    another backend."""
    name = requested(flag)
    if "keras" in sys.modules:
        import keras

        active = keras.backend.backend()
        if active != name:
            raise SpecError.at(SourceLoc("--backend"), f"Keras already runs on '{active}' in "
                               f"this process, so it cannot switch to '{name}'",
                               hint="choose the backend before importing Keras: "
                                    f"KERAS_BACKEND={name}, or netspec ... --backend {name}")
        return name
    if importlib.util.find_spec(_PACKAGE[name]) is None:
        raise SpecError.at(SourceLoc("--backend"), f"the '{name}' backend needs the "
                           f"'{_PACKAGE[name]}' package, which is not installed",
                           hint=_EXTRA[name])
    os.environ["KERAS_BACKEND"] = name
    return name


def active() -> str:
    """The backend Keras runs on (imports Keras)."""
    import keras

    return keras.backend.backend()


def is_tensorflow() -> bool:
    return active() == "tensorflow"


def require_tensorflow(what: str, loc: SourceLoc) -> None:
    """A located error when `what` (a part still built on tf.data or tf ops) is asked for
    on another backend."""
    name = active()
    if name != "tensorflow":
        raise SpecError.at(loc, f"{what} runs on the tensorflow backend only so far; this "
                                f"process runs Keras on '{name}'",
                           hint="rerun with --backend tensorflow (a run trained on any "
                                "backend evaluates and predicts there)")
