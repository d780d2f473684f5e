"""Register netspec's custom Keras layers lazily: when Keras is (or gets) imported.

Importing Keras costs seconds, so `import netspec` must not do it; but a user who
loads a `.keras` file needs the custom classes registered: the layers, and the losses a
trained run's model.keras names in its compile config. A meta-path finder runs
the registration right after the `keras` package finishes importing.
"""

from __future__ import annotations

import importlib.machinery
import sys
from types import ModuleType
from typing import Any


def _register() -> None:
    import compiler.keras_layers  # noqa: F401 - decorators register the classes
    import runtime.train.landmark_loss  # noqa: F401 - a trained run's compile config


class _AfterKeras:
    """A meta-path finder (duck-typed: importlib.abc costs ~15 imports at startup)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # find the real spec without recursing into ourselves
        try:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        finally:
            pass
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original_exec = loader.exec_module  # type: ignore[union-attr]

        def exec_then_register(module: ModuleType) -> None:
            original_exec(module)
            _register()

        loader.exec_module = exec_then_register  # type: ignore[method-assign, union-attr]
        return spec


def install_keras_registration_hook() -> None:
    if "keras" in sys.modules:
        _register()
    elif not any(isinstance(f, _AfterKeras) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())
