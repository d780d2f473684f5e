"""specs/lgcn.yaml: the paper's architecture, its ablation overrides, Keras lowering,
save/load, and a 2-step fit + eval (with the PCA shape model) on HELEN faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.api import Spec, load_spec
from compiler.kernels import lgcn_kernel

pytestmark = pytest.mark.keras

keras = pytest.importorskip("keras")

SPEC = Path(__file__).resolve().parents[2] / "specs" / "lgcn.yaml"
# a narrow, low-resolution LGCN so lowering and steps take seconds on a CPU
SMALL = ["filters=8", "local_depth=3", "local_wide=1", "global_depth=2", "size=32",
         "kernel_size=9", "dilation=2"]


def spec(*overrides: str) -> Spec:
    return load_spec(SPEC, list(overrides))


def nodes(s: Spec, prefix: str = "") -> dict:
    return {n.name: n for n in s.graph.nodes if n.name.startswith(prefix)}


def outputs(s: Spec) -> dict:
    return {o.name: o for o in s.graph.outputs}


def test_paper_architecture() -> None:
    s = spec()
    convs = [nodes(s)[f"local{i}.conv"] for i in range(1, 16)]
    assert [c.params.kernel_size for c in convs] == [5] * 5 + [3] * 10
    assert {c.params.filters for c in convs} == {128}
    assert "local16.conv" not in nodes(s)
    assert all(nodes(s)[f"local{i}.drop"].params.rate == 0.1 for i in range(1, 16))
    head = nodes(s)["local.out"]
    assert (head.params.filters, head.params.kernel_size, head.params.activation) == (68, 1, None)
    blur = nodes(s)["local.map"]
    assert (blur.op, blur.params.kernel, blur.params.size, blur.params.scale) == \
        ("kernel_conv", "lgcn", 45, 0.01)
    glob = [nodes(s)[f"global{j}.conv"] for j in range(1, 8)]
    assert {(g.params.kernel_size, g.params.dilation_rate) for g in glob} == {(3, 4)}
    assert glob[0].inputs == ("local.map",) and "global8.conv" not in nodes(s)
    assert nodes(s)["omega"].op == "add"
    assert nodes(s)["omega"].inputs == ("local.map", "global.out")
    outs = outputs(s)
    assert (outs["local"].source, outs["heatmaps"].source) == ("local.map", "omega")
    for o in outs.values():
        assert o.loss == "lgcn_weighted_l2" and o.weight == 1.0
        assert o.loss_args == {"kernel": "lgcn", "kernel_size": 45, "scale": 0.05}
    assert s.graph.node("omega").out.shape == (None, 96, 96, 68)
    assert s.section("eval")["output"] == "heatmaps" and s.section("eval")["shape_model"]
    assert s.section("data")["normalize"] == "lgcn"


def test_ablation_overrides() -> None:
    no_k = spec("kernel_conv=false")
    assert nodes(no_k)["local.map"].op == "identity"
    assert not any(n.op == "kernel_conv" for n in no_k.graph.nodes)
    assert outputs(no_k)["heatmaps"].loss_args["kernel_size"] == 1  # plain GT splat target

    no_g = spec("global_subnet=false")
    assert not nodes(no_g, "global")
    assert nodes(no_g)["omega"].op == "identity"
    assert outputs(no_g)["local"].weight == 0.0  # one loss term only

    k21 = spec("kernel_size=21")
    assert nodes(k21)["local.map"].params.size == 21
    assert outputs(k21)["local"].loss_args["kernel_size"] == 21

    xent = spec("loss=xent")
    assert {o.loss for o in xent.graph.outputs} == {"sigmoid_xent"}
    assert outputs(xent)["heatmaps"].loss_args["target"] == "gaussian"

    side = spec("side_head=true")
    assert side.graph.node("global.in").out.shape == (None, 96, 96, 136)
    assert nodes(side)["side.map"].op == "kernel_conv"

    narrow = spec("filters=32", "local_depth=6", "global_depth=3")
    assert len(nodes(narrow, "global")) == 3 * 4 + 1 and nodes(narrow)["local6.conv"]
    assert nodes(narrow)["local6.conv"].params.filters == 32


def _small_model(*overrides: str):  # noqa: ANN202
    from compiler.lower_keras import lower_to_keras

    s = spec(*SMALL, *overrides)
    return s, lower_to_keras(s.graph)


def test_small_lowering_computes_eq_2() -> None:
    from scipy.signal import correlate2d

    s, model = _small_model()
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")
    taps = keras.Model(model.input, {n: model.get_layer(n).output for n in
                                     ("local__out", "local__map", "global__out", "omega")})
    t = {k: keras.ops.convert_to_numpy(v) for k, v in taps({"image": x}, training=False).items()}
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model({"image": x}).items()}
    np.testing.assert_allclose(out["heatmaps"], t["local__map"] + t["global__out"], rtol=1e-5,
                               atol=1e-6)
    kern = lgcn_kernel(9) * 0.01
    blurred = correlate2d(t["local__out"][0, :, :, 5], kern, mode="same")
    np.testing.assert_allclose(t["local__map"][0, :, :, 5], blurred, rtol=1e-4, atol=1e-6)
    assert not model.get_layer("local__map").weights
    from compiler.format import param_summary
    from compiler.ops import DEFAULT_OPS

    assert model.count_params() == param_summary(s.graph, DEFAULT_OPS)[0]


def test_save_load_round_trip(tmp_path: Path) -> None:
    import compiler.keras_layers  # noqa: F401 - registers the custom layers

    _, model = _small_model("side_head=true")
    x = np.random.default_rng(1).normal(size=(1, 32, 32, 1)).astype("float32")
    before = model({"image": x}, training=False)
    model.save(tmp_path / "lgcn.keras")
    back = keras.models.load_model(tmp_path / "lgcn.keras", compile=False)
    after = back({"image": x}, training=False)
    for name in ("local", "heatmaps"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(after[name]),
                                   keras.ops.convert_to_numpy(before[name]), rtol=1e-6)


def test_keras_predictor_runs_the_trained_weights_at_any_size() -> None:
    """runtime.predict.multiface rebuilds the fully-convolutional net per input size with the
    trained weights: at the training size it equals the model, other sizes just work."""
    from runtime.data.normalize import normalize
    from runtime.predict.multiface import keras_predictor

    s, model = _small_model()
    for name in ("local__out", "global__out"):  # non-zero heads (zeros-initialised)
        layer = model.get_layer(name)
        layer.set_weights([np.random.default_rng(7).normal(size=w.shape).astype("float32")
                           * 0.1 for w in layer.get_weights()])
    predict = keras_predictor(model, s)
    image = np.random.default_rng(3).uniform(0, 255, (32, 32, 3)).astype("float32")
    gray = image @ np.array([0.2989, 0.5870, 0.1140], np.float32)[:, None]
    expected = model({"image": np.asarray(normalize(gray[None], "lgcn"))}, training=False)
    np.testing.assert_allclose(predict(image), keras.ops.convert_to_numpy(
        expected["heatmaps"])[0], rtol=1e-4, atol=1e-5)
    assert predict(np.zeros((40, 56, 1), np.float32)).shape == (40, 56, 68)


@pytest.mark.parametrize("ablation", [(), ("kernel_conv=false",), ("global_subnet=false",),
                                      ("kernel_size=7",), ("loss=xent",)],
                         ids=lambda a: a[0] if a else "default")
def test_ablations_compile_with_their_losses(ablation: tuple[str, ...]) -> None:
    """Each ablation lowers and compiles with its losses, and the losses are finite and
    positive on its outputs (the training step itself runs in the HELEN fit below)."""
    from runtime.train.losses import make_loss
    from runtime.train.model_setup import build_model
    from runtime.train.train_config import train_config

    s = spec(*SMALL, *ablation)
    tcfg = train_config(s.section("train"), s.section("train").loc)
    model, _objective = build_model(s, tcfg, 32, mixed_precision=False, xla=False)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 32, 32, 1)).astype("float32") * 0.1
    y = np.concatenate([rng.uniform(4, 28, (2, 68, 2)), np.ones((2, 68, 1))], -1)
    out = model({"image": x}, training=True)
    for o in s.graph.outputs:
        fn = make_loss(o.loss, input_size=32, out_shape=(None, 32, 32, 68), **o.loss_args)
        value = keras.ops.convert_to_numpy(fn(y.astype("float32"), out[o.name]))
        assert value.shape == (2,) and np.all(np.isfinite(value)) and np.all(value > 0)


@pytest.mark.slow
@pytest.mark.data
def test_two_step_fit_and_eval_on_helen(shared_data: Path, tmp_path: Path) -> None:
    from runtime.evaluate.score_run import evaluate_run
    from runtime.shapes.shape_model import ShapeModel
    from runtime.train.fit import fit_spec

    overrides = [*SMALL, "train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8",
                 "train.val_examples=16", "data.limit=16"]
    run = tmp_path / "run"
    result = fit_spec(spec(*overrides), run, data=str(shared_data / "helen68"),
                      overrides=overrides, quiet=True)
    assert result.epochs_done == 1
    assert (run / "model.keras").exists()
    sm = ShapeModel.load(run / "shape_model.npz")
    assert sm.n_components == 12 and sm.n_landmarks == 68
    report = evaluate_run(run, data=str(shared_data / "helen68"), split_name="val",
                          as_json=True, overrides=["data.limit=16"])
    assert report["n"] == 16 and np.isfinite(report["nme"])
    assert report["shape_model"]["n"] == 16 and np.isfinite(report["shape_model"]["nme"])

    from runtime.predict.multiface import predict_multiface_run

    image = sorted((shared_data / "helen68" / "trainset").glob("*.jpg"))[0]
    done = predict_multiface_run(run, [image], tmp_path / "faces")
    assert done[0][0] == image
    assert (tmp_path / "faces" / f"{image.stem}.faces.json").exists()
