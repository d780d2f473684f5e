"""Numpy references for the TensorFlow pipeline, target and loss ops, and the checks that
compare the two (used by tests/numerics and `netspec doctor`)."""
