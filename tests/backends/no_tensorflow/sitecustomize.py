"""Put on PYTHONPATH, this makes TensorFlow (and what imports it) unimportable for the whole
process: `import tensorflow` raises ImportError, so a test proves the jax/torch runtime
never needs it (a GPU machine with JAX or PyTorch has no TensorFlow)."""

import sys

for _name in ("tensorflow", "tf2onnx", "tensorflow_datasets", "tf_keras"):
    sys.modules[_name] = None  # type: ignore[assignment]
