"""Refine ops against Keras and numpy: shape table, lstm_cell = Keras LSTMCell, Gamma on
hand-made shapes, the attention choice, and one RAR refinement step of specs/rar.yaml
moving the points by exactly alpha * Gamma * R; the spec's model saves and reloads."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from runtime.numerics import rar_references as ref
from tests.keras.op_harness import assert_lowering_matches, make_params

pytestmark = pytest.mark.keras

keras = pytest.importorskip("keras")

from compiler.api import load_spec  # noqa: E402
from compiler.lower_keras import lower_to_keras  # noqa: E402
from compiler.ops import DEFAULT_OPS  # noqa: E402

SPEC = Path(__file__).resolve().parents[2] / "specs" / "rar.yaml"
TINY = ("widths=[4, 8]", "convs=[1, 1]", "deconv_width=4", "sip_width=4", "a_units=8",
        "r_units=8", "size=32")

ROWS = [
    ("lstm_cell", {"units": 3}, [(5,), (6,)]),
    ("attention_choice", {}, [(7,)]),
    ("attention_choice", {"mode": "argmax"}, [(4,)]),
    ("attention_weights", {"radius": 0.2}, [(6, 2), (6,)]),
    ("attention_weights", {"mode": "uniform", "kappa": 0.5}, [(6, 2)]),
    ("weight_points", {}, [(5, 3), (5,)]),
    ("pack_step", {}, [(4, 2), (4, 2), (4,)]),
    ("pack_step", {}, [(4, 2), (4, 2), (4,), (4,), (4,)]),
    ("stack_steps", {}, [(4, 7), (4, 7), (4, 7)]),
]


@pytest.mark.parametrize(("op", "raw", "shapes"), ROWS)
def test_shape_rule_matches_keras(op: str, raw: dict, shapes: list) -> None:
    assert_lowering_matches(op, raw, shapes)


def test_lstm_cell_is_keras_lstm_cell() -> None:
    cell = DEFAULT_OPS.get("lstm_cell").lower(make_params("lstm_cell", {"units": 4}), "c")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5)).astype("float32")
    state = rng.standard_normal((3, 8)).astype("float32")
    ours = keras.ops.convert_to_numpy(cell([x, state]))
    ref_cell = keras.layers.LSTMCell(4)
    ref_cell.build((3, 5))
    assert cell.bias.numpy()[4:8].tolist() == [1.0] * 4  # unit forget bias, as Keras
    ref_cell.set_weights([w.numpy() for w in (cell.kernel, cell.recurrent_kernel, cell.bias)])
    h, (h2, c) = ref_cell(x, [state[:, :4], state[:, 4:]])
    np.testing.assert_allclose(ours[:, :4], keras.ops.convert_to_numpy(h), atol=1e-6)
    np.testing.assert_allclose(ours[:, 4:], keras.ops.convert_to_numpy(c), atol=1e-6)


def _gamma(raw: dict, points: np.ndarray, choice: np.ndarray | None = None) -> np.ndarray:
    layer = DEFAULT_OPS.get("attention_weights").lower(make_params("attention_weights", raw), "g")
    ins = [points.astype("float32")] + ([] if choice is None else [choice.astype("float32")])
    return keras.ops.convert_to_numpy(layer(ins))


def test_gamma_on_a_hand_made_shape() -> None:
    # a 4 x 3 box: sqrt(w h)^2 = 12, radius 0.5 -> D^2 = 3, 4 D^2 = 12
    pts = np.array([[[0, 0], [4, 0], [0, 3], [4, 3]]], np.float64)
    choice = np.array([[1, 0, 0, 0]])
    want = 2.0 * np.exp(-np.array([0.0, 16.0, 9.0, 25.0]) / 12.0)
    got = _gamma({"kappa": 2.0, "radius": 0.5}, pts, choice)
    np.testing.assert_allclose(got[0], want, rtol=1e-6)
    np.testing.assert_allclose(got, ref.attention_weights(pts, choice, 2.0, 0.5), rtol=1e-6)
    # the centre moves with the choice; uniform mode ignores it
    moved = _gamma({"kappa": 2.0, "radius": 0.5}, pts, np.array([[0, 0, 0, 1]]))
    np.testing.assert_allclose(moved[0], want[::-1], rtol=1e-6)
    np.testing.assert_allclose(_gamma({"mode": "uniform", "kappa": 0.7}, pts), 0.7)


def test_gamma_random_shapes_and_a_collapsed_one() -> None:
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 80, (5, 68, 2))
    choice = np.eye(68)[rng.integers(0, 68, 5)]
    np.testing.assert_allclose(_gamma({"radius": 0.15}, pts, choice),
                               ref.attention_weights(pts, choice, 1.0, 0.15), rtol=1e-5)
    same = np.full((1, 5, 2), 3.0)  # every point at one place: D = 0, still finite
    np.testing.assert_allclose(_gamma({}, same, np.eye(5)[[2]]), 1.0)


def test_attention_choice_samples_in_training_and_takes_the_argmax_otherwise() -> None:
    layer = DEFAULT_OPS.get("attention_choice").lower(
        make_params("attention_choice", {"seed": 3}), "a")
    logits = np.tile(np.array([[0.0, math.log(3.0), -50.0]], np.float32), (4000, 1))
    drawn = keras.ops.convert_to_numpy(layer(logits, training=True))
    assert set(drawn.sum(1)) == {1.0} and drawn[:, 2].sum() == 0
    assert drawn[:, 1].mean() == pytest.approx(0.75, abs=0.03)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(logits[:2])),
                                  [[0, 1, 0], [0, 1, 0]])
    argmax = DEFAULT_OPS.get("attention_choice").lower(
        make_params("attention_choice", {"mode": "argmax"}), "b")
    assert keras.ops.convert_to_numpy(argmax(logits, training=True))[:, 1].all()


def _tiny(*sets: str) -> tuple:
    spec = load_spec(SPEC, [*TINY, *sets])
    return spec, lower_to_keras(spec.graph)


def _taps(model: object, names: list[str]) -> object:
    return keras.Model(model.input, [model.get_layer(n).output for n in names])


def test_one_refinement_step_moves_the_points_by_alpha_gamma_r() -> None:
    spec, model = _tiny("steps=1", "robust_init=false", "alpha=0.25")
    rng = np.random.default_rng(2)
    image = rng.standard_normal((3, 32, 32, 1)).astype("float32")
    r_out = model.get_layer("rec__s1__r_out")  # starts at zero (identity); give it weights
    assert not r_out.kernel.numpy().any()
    r_out.kernel.assign(rng.standard_normal(r_out.kernel.shape).astype("float32"))
    taps = _taps(model, ["s0", "rec__s1__gamma", "rec__s1__r_pts", "rec__s1__s_out", "final"])
    s0, gamma, r, s1, final = (keras.ops.convert_to_numpy(v) for v in taps({"image": image}))
    ds = s1 - s0
    np.testing.assert_allclose(ds, 0.25 * 32 * gamma[..., None] * r, atol=1e-4)
    assert np.abs(ds).max() > 1e-3  # the points did move
    np.testing.assert_allclose(final, s1.reshape(3, -1) / 32, atol=1e-6)
    assert ((gamma > 0) & (gamma <= 1.0 + 1e-6)).all()
    assert np.isclose(gamma.max(1), 1.0).all()  # kappa at the attention centre


def test_no_steps_scores_the_initial_shape() -> None:
    spec, model = _tiny("steps=0", "robust_init=false")
    assert {o.name: o.loss for o in spec.graph.outputs} == {
        "heatmaps": "spatial_softmax_nll", "refine": None, "attention": None, "final": None}
    image = np.random.default_rng(3).standard_normal((2, 32, 32, 1)).astype("float32")
    taps = _taps(model, ["sd", "final"])
    sd, final = (keras.ops.convert_to_numpy(v) for v in taps({"image": image}))
    np.testing.assert_allclose(final, sd.reshape(2, -1) / 32, atol=1e-6)


@pytest.mark.parametrize("attention", ["learned", "none"])
def test_the_model_saves_and_reloads(attention: str, tmp_path: Path) -> None:
    import netspec  # noqa: F401 - registers the custom layers for loading

    _, model = _tiny("steps=2", f"attention={attention}")
    image = np.random.default_rng(4).standard_normal((2, 32, 32, 1)).astype("float32")
    path = tmp_path / "rar.keras"
    model.save(path)
    again = keras.models.load_model(path)
    image = {"image": image}
    for name, value in model(image, training=False).items():
        np.testing.assert_allclose(keras.ops.convert_to_numpy(again(image)[name]),
                                   keras.ops.convert_to_numpy(value), atol=1e-6, err_msg=name)
