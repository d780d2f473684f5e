"""netspec: declarative YAML layer graphs compiled to Keras 3 models.

`import netspec` is light (no TensorFlow): it exposes the compiler API and makes
sure netspec's custom Keras layers are registered whenever Keras gets imported,
so `keras.models.load_model("model.keras")` works after `import netspec`, and that
TensorFlow's native start-up banner is filtered as the CLI does (TF_CPP_MIN_LOG_LEVEL=0
keeps it).
"""

from __future__ import annotations

from compiler.api import Spec, expanded_document, load_spec, load_spec_text
from compiler.diagnostics import SpecError
from netspec._keras_hook import install_keras_registration_hook
from runtime.quiet_tf import install_quiet_import_hook

__version__ = "0.1.0"
__all__ = ["Spec", "SpecError", "__version__", "compile_model", "expanded_document",
           "load_spec", "load_spec_text"]

install_quiet_import_hook()  # TensorFlow's C++ banner, as the CLI hides it (not imported here)
install_keras_registration_hook()


def compile_model(spec: Spec, *, mixed_precision: bool = False):  # noqa: ANN201 - keras.Model
    """Lower a checked Spec to a Keras functional model (imports TensorFlow)."""
    from compiler.lower_keras import lower_to_keras

    return lower_to_keras(spec.graph, mixed_precision=mixed_precision)
