"""Core and sequence ops against Keras: shapes, values, weight counts, save/load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.ir import TensorType
from compiler.ops import DEFAULT_OPS
from tests.keras.op_harness import assert_lowering_matches, infer, make_params

pytestmark = pytest.mark.keras

ROWS = [
    ("batch_norm", {"axis": 1, "center": False}, (3, 4)),
    ("dropout", {"rate": 0.4}, (5, 5, 2)),
    ("activation", {"activation": "gelu"}, (3, 3, 2)),
    ("dense", {"units": 4, "activation": "relu", "l2": 1e-4}, (5, 6)),
    ("flatten", {}, (4, 5, 3)),
    ("global_max_pool2d", {}, (5, 4, 3)),
    ("lstm", {"units": 3, "return_sequences": True, "go_backwards": True}, (4, 2)),
    ("lstm", {"units": 3, "activation": "relu", "l2": 1e-3}, (4, 2)),
    ("lstm", {"units": 3, "bidirectional": True, "return_sequences": True}, (4, 2)),
    ("lstm", {"units": 5, "bidirectional": True, "l2": 1e-3}, (3, 2)),
    ("conv_lstm2d", {"filters": 2, "kernel_size": [3, 1], "strides": 2, "padding": "valid",
                     "return_sequences": True}, (3, 7, 6, 2)),
    ("conv_lstm2d", {"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (2, 6, 6, 1)),
    ("time_distributed", {"layer": {"op": "global_avg_pool2d"}}, (3, 4, 4, 2)),
    ("time_distributed", {"layer": {"op": "batch_norm"}}, (3, 4, 2)),
]


@pytest.mark.parametrize(("op", "raw", "shape"), ROWS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_shapes_agree_with_keras(op: str, raw: dict[str, Any], shape: tuple) -> None:
    out = assert_lowering_matches(op, raw, [shape])
    assert np.isfinite(out).all()


def _input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, *shape)).astype("float32")


def test_identity_and_dropout_pass_values_through_at_inference() -> None:
    x = _input((4, 3))
    for op, raw in [("identity", {}), ("dropout", {"rate": 0.5}),
                    ("dropout", {"rate": 0.5, "noise": "gaussian"})]:
        np.testing.assert_array_equal(assert_lowering_matches(op, raw, [(4, 3)]), x)


def test_dropout_is_noisy_in_training() -> None:
    import keras

    x = np.ones((2, 64), "float32")
    for noise in ("bernoulli", "gaussian"):
        layer = DEFAULT_OPS.get("dropout").lower(make_params(
            "dropout", {"rate": 0.5, "noise": noise}), "d")
        y = keras.ops.convert_to_numpy(layer(x, training=True))
        assert not np.allclose(y, x)
        assert abs(y.mean() - 1.0) < 0.5  # both keep the expectation at 1
    assert np.isin(y, [0.0, 2.0]).mean() < 0.1  # gaussian: not zero-or-rescaled


def test_values_of_reshaping_and_reducing_ops() -> None:
    x = _input((4, 5, 3))
    np.testing.assert_array_equal(
        assert_lowering_matches("reshape", {"target_shape": [-1, 6]}, [(4, 5, 3)]),
        x.reshape(2, 10, 6))
    np.testing.assert_allclose(
        assert_lowering_matches("global_avg_pool2d", {}, [(4, 5, 3)]), x.mean(axis=(1, 2)),
        rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        assert_lowering_matches("time_slice", {"index": -1}, [(4, 5, 3)]), x[:, -1])
    np.testing.assert_array_equal(
        assert_lowering_matches("time_slice", {"index": 1}, [(4, 5, 3)]), x[:, 1])
    probs = assert_lowering_matches("softmax", {"axis": 1}, [(4, 5, 3)])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_time_distributed_shares_weights_across_steps() -> None:
    import keras

    p = make_params("time_distributed", {"layer": {"op": "dense", "units": 2}})
    layer = DEFAULT_OPS.get("time_distributed").lower(p, "td")
    x = _input((3, 4))
    y = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = layer.layer.get_weights()
    np.testing.assert_allclose(y, x @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_bidirectional_lstm_concatenates_forward_and_backward() -> None:
    import keras

    p = make_params("lstm", {"units": 3, "bidirectional": True})
    layer = DEFAULT_OPS.get("lstm").lower(p, "bi")
    x = _input((5, 2))
    y = keras.ops.convert_to_numpy(layer(x))
    fwd = keras.ops.convert_to_numpy(layer.forward_layer(x))
    bwd = keras.ops.convert_to_numpy(layer.backward_layer(x))
    assert layer.name == "bi" and layer.backward_layer.go_backwards
    np.testing.assert_allclose(y, np.concatenate([fwd, bwd], axis=-1), rtol=1e-6)
    assert not np.allclose(fwd, bwd)  # two directions, two weight sets
    rev = keras.ops.convert_to_numpy(layer.forward_layer(x[:, ::-1]))
    assert not np.allclose(rev, bwd)  # the backward LSTM has its own weights


COUNT_ROWS = [
    ("dense", {"units": 5, "use_bias": False}, (3, 7)),
    ("batch_norm", {"scale": False}, (4, 4, 6)),
    ("lstm", {"units": 6}, (5, 3)),
    ("lstm", {"units": 6, "bidirectional": True}, (5, 3)),
    ("conv_lstm2d", {"filters": 3, "kernel_size": [3, 2]}, (2, 5, 5, 2)),
    ("time_distributed", {"layer": {"op": "dense", "units": 4}}, (3, 5)),
]


@pytest.mark.parametrize(("op", "raw", "shape"), COUNT_ROWS, ids=[r[0] for r in COUNT_ROWS])
def test_count_params_matches_keras(op: str, raw: dict[str, Any], shape: tuple) -> None:
    import keras

    opdef, p = DEFAULT_OPS.get(op), make_params(op, raw)
    layer = opdef.lower(p, "t")
    layer(keras.Input(shape=shape))
    x = (TensorType((None, *shape)),)
    assert opdef.count_params(p, x, infer(op, raw, [shape])) == layer.count_params()


def test_save_load_round_trip(tmp_path: Path) -> None:
    import keras

    import compiler.keras_layers  # noqa: F401 - registers TimeSlice

    def build(op: str, raw: dict[str, Any], name: str) -> Any:
        return DEFAULT_OPS.get(op).lower(make_params(op, raw), name)

    x_in = keras.Input(shape=(5, 4), name="seq")
    h = build("time_distributed", {"layer": {"op": "dense", "units": 3}}, "step__dense")(x_in)
    h = build("lstm", {"units": 2, "return_sequences": True}, "rnn__lstm")(h)
    y = build("time_slice", {"index": -1}, "rnn__last")(h)
    model = keras.Model({"seq": x_in}, {"out": y})
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _input((5, 4))
    want = model.predict({"seq": x}, verbose=0)["out"]
    np.testing.assert_allclose(loaded.predict({"seq": x}, verbose=0)["out"], want, rtol=1e-6)
    assert [layer.name for layer in loaded.layers] == ["seq", "step__dense", "rnn__lstm",
                                                       "rnn__last"]
    assert loaded.get_layer("rnn__last").index == -1


def test_bidirectional_save_load_round_trip(tmp_path: Path) -> None:
    import keras

    x_in = keras.Input(shape=(4, 3), name="seq")
    lstm = DEFAULT_OPS.get("lstm").lower(
        make_params("lstm", {"units": 2, "bidirectional": True, "return_sequences": True}),
        "temporal__lstm")
    model = keras.Model({"seq": x_in}, {"out": lstm(x_in)})
    model.save(tmp_path / "bi.keras")
    loaded = keras.saving.load_model(tmp_path / "bi.keras")
    x = _input((4, 3))
    want = model.predict({"seq": x}, verbose=0)["out"]
    assert want.shape == (2, 4, 4)
    np.testing.assert_allclose(loaded.predict({"seq": x}, verbose=0)["out"], want, rtol=1e-6)
    assert loaded.get_layer("temporal__lstm").count_params() == 2 * 4 * 2 * (3 + 2 + 1)
