"""`netspec export`: a trained run as a SavedModel, TFLite or ONNX artefact plus a manifest."""
