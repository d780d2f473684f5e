"""Initial weights from trained runs (runtime/train/initial_weights.py): `train.init_from` (warm
start, best or last checkpoint, partial), per-layer `init_from` by mapped names, frozen
layers and BatchNorm statistics, and the TF-free run-folder checks of `netspec check`.

Source runs are made by hand (a saved model.keras, a checkpoint, spec.resolved.yaml and
state.json, as `netspec fit` writes them) with weights shifted away from any fresh
initialisation, so equal weights can only come from copying.
"""

from __future__ import annotations

from dataclasses import replace
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.api import Spec, load_spec_text
from compiler.diagnostics import SpecError

TINY = """
version: 1
name: tiny
inputs:
  image: {shape: [16, 16, 1]}
layers:
  - {name: conv1, op: conv2d, in: [image], filters: %(f1)s, kernel_size: 3}
  - {name: bn1, op: batch_norm, in: [conv1], momentum: 0.5}
  - {name: %(c2)s, op: conv2d, in: [bn1], filters: 5, kernel_size: 3}
  - {name: bn2, op: batch_norm, in: [%(c2)s], momentum: 0.5}
  - {name: prob, op: spatial_softmax, in: [bn2]}
outputs:
  heatmaps: {from: prob, loss: spatial_softmax_nll}
train: {optimizer: adam, learning_rate: 0.01}
"""


def tiny(f1: int = 4, c2: str = "conv2", train: dict[str, Any] | None = None) -> Spec:
    text = TINY % {"f1": f1, "c2": c2}
    return load_spec_text(text, "tiny.yaml", [f"train.{k}={v}" for k, v in
                                              (train or {}).items()])


def weights(model: Any, name: str) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_layer(name).get_weights()]


def build(spec: Spec) -> Any:
    from runtime.train.model_setup import build_model
    from runtime.train.train_config import train_config

    cfg = train_config(spec.section("train"), spec.section("train").loc)
    return build_model(spec, cfg, 16, mixed_precision=False, xla=False)[0]


def make_run(path: Path, spec_text: str, shift: float, ckpt_shift: float | None = None
             ) -> Any:
    """A trained-looking run: model.keras with every weight + `shift`; optionally a
    checkpoint ckpt-1 whose weights are + `ckpt_shift` instead."""
    import tensorflow as tf

    from compiler.lower_keras import lower_to_keras

    spec = load_spec_text(spec_text, "tiny.yaml")
    model = lower_to_keras(spec.graph)
    base = model.get_weights()
    path.mkdir(parents=True)
    (path / "spec.resolved.yaml").write_text(spec_text)
    state: dict[str, Any] = {"epoch": 1, "best": 0.1, "best_epoch": 1}
    if ckpt_shift is not None:
        model.set_weights([w + ckpt_shift for w in base])
        prefix = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                            str(path / "checkpoints"), 2).save(1)
        state["checkpoint"] = prefix
    model.set_weights([w + shift for w in base])
    model.save(path / "model.keras")
    (path / "state.json").write_text(json.dumps(state))
    return model


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    run = tmp_path_factory.mktemp("init") / "src"
    return run, make_run(run, TINY % {"f1": 4, "c2": "conv2"}, 1.0, ckpt_shift=2.0)


# ------------------------------------------------------------------ TF-free checks


def test_check_refuses_a_folder_that_is_not_a_trained_run(tmp_path: Path, capsys: Any
                                                          ) -> None:
    from netspec.cli import main
    from runtime.train.train_config import train_config

    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(TINY % {"f1": 4, "c2": "conv2"})
    (tmp_path / "compiled").mkdir()
    (tmp_path / "compiled" / "spec.resolved.yaml").write_text("x")
    (tmp_path / "afile").write_text("x")
    cases = {"nowhere": "does not exist", "afile": "is a file, not a run directory",
             ".": "is not a netspec run (no spec.resolved.yaml)",
             "compiled": "was never trained (no state.json"}
    for name, message in cases.items():
        where = str(tmp_path / name)
        assert main(["check", str(spec_file), "--set", f"train.init_from={where}"]) == 1
        err = capsys.readouterr().err
        assert f"train: key 'init_from': run directory '{where}' {message}" in err \
            or f"train: key 'init_from': '{where}' {message}" in err, err
        assert "Traceback" not in err
    # unknown choice of checkpoint: the schema says so
    assert main(["check", str(spec_file), "--set", "train.init_from_checkpoint=first"]) == 1
    assert "init_from_checkpoint" in capsys.readouterr().err
    # a resume ignores init_from, so it does not need the folder any more
    cfg = train_config({"init_from": str(tmp_path / "nowhere")}, load_spec_text(
        TINY % {"f1": 4, "c2": "conv2"}, "t.yaml").section("train").loc, check_paths=False)
    assert cfg.init_from == str(tmp_path / "nowhere")


# ------------------------------------------------------------------ train.init_from

@pytest.mark.keras
def test_warm_start_copies_every_weight_of_the_best_model(source: tuple[Path, Any],
                                                          capsys: Any) -> None:
    run, trained = source
    model = build(tiny(train={"init_from": run}))
    for layer in ("conv1", "bn1", "conv2", "bn2"):  # BN: gamma, beta and moving statistics
        for got, want in zip(weights(model, layer), weights(trained, layer), strict=True):
            np.testing.assert_array_equal(got, want)
    assert f"initial weights: 4 layer(s) from {run} (model.keras, the best epoch (1))" \
        in capsys.readouterr().err
    fresh = build(tiny())
    assert not np.array_equal(weights(fresh, "conv1")[0], weights(trained, "conv1")[0])


@pytest.mark.keras
def test_warm_start_from_the_last_checkpoint(source: tuple[Path, Any]) -> None:
    run, trained = source
    model = build(tiny(train={"init_from": run, "init_from_checkpoint": "last"}))
    # the checkpoint holds model.keras's weights + 1 (shifts 2 vs 1)
    for layer in ("conv1", "conv2"):
        for got, want in zip(weights(model, layer), weights(trained, layer), strict=True):
            np.testing.assert_allclose(got, want + 1.0, rtol=0, atol=1e-6)


@pytest.mark.keras
def test_shape_mismatch_names_every_layer_and_both_shapes(source: tuple[Path, Any]) -> None:
    run, _ = source
    with pytest.raises(SpecError) as info:
        build(tiny(f1=6, train={"init_from": run}))
    text = str(info.value)
    assert "train.init_from: 3 layer(s) have other weight shapes than in" in text, text
    assert (f"'conv1': kernel [3, 3, 1, 6], bias [6] here, kernel [3, 3, 1, 4], bias [4] in "
            f"{run}") in text
    assert "'bn1': gamma [6]" in text and "'conv2': kernel [3, 3, 6, 5]" in text
    assert "--set" in text.splitlines()[0]  # located at the override that set init_from


@pytest.mark.keras
def test_different_layers_are_an_error_unless_init_partial(source: tuple[Path, Any],
                                                           capsys: Any) -> None:
    run, trained = source
    with pytest.raises(SpecError) as info:
        build(tiny(c2="conv3", train={"init_from": run}))
    text = str(info.value)
    assert f"this model and {run} do not have the same layers" in text
    assert f"1 layer(s) of this model are not in {run}: conv3" in text
    assert f"1 layer(s) of {run} are not in this model: conv2" in text
    assert "train.init_partial: true" in text

    model = build(tiny(c2="conv3", train={"init_from": run, "init_partial": True}))
    np.testing.assert_array_equal(weights(model, "conv1")[0], weights(trained, "conv1")[0])
    assert not np.array_equal(weights(model, "conv3")[0], weights(trained, "conv2")[0])
    err = capsys.readouterr().err
    assert (f"note: train.init_partial: 1 layer(s) of this model are not in {run} and start "
            "from fresh weights: conv3") in err
    assert (f"note: train.init_partial: 1 layer(s) of {run} are not in this model and are "
            "ignored: conv2") in err


# ------------------------------------------------------------------ per-layer init_from


def mapped(spec: Spec, mapping: dict[str, tuple[str, str]],
           frozen: tuple[str, ...] = ()) -> Spec:
    nodes = tuple(replace(n, init_from=mapping.get(n.name, n.init_from),
                          trainable=n.trainable and n.name not in frozen)
                  for n in spec.graph.nodes)
    return replace(spec, graph=replace(spec.graph, nodes=nodes))


@pytest.mark.keras
def test_per_layer_init_from_copies_by_the_mapped_names(source: tuple[Path, Any]) -> None:
    run, trained = source
    # this model's conv3 takes the run's conv2 (a name this model lacks), bn2 its namesake;
    # layers without init_from keep their fresh weights
    spec = mapped(tiny(c2="conv3"), {"conv3": (str(run), "conv2"), "bn2": (str(run), "bn2")})
    model = build(spec)
    for mine, theirs in (("conv3", "conv2"), ("bn2", "bn2")):
        for got, want in zip(weights(model, mine), weights(trained, theirs), strict=True):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(weights(model, "conv1")[0], weights(trained, "conv1")[0])


@pytest.mark.keras
def test_per_layer_init_from_wins_over_the_warm_start(source: tuple[Path, Any]) -> None:
    run, trained = source
    # conv3 <- the run's conv2 by mapping; the rest by the warm start; nothing left over
    spec = mapped(tiny(c2="conv3", train={"init_from": run}), {"conv3": (str(run), "conv2")})
    model = build(spec)
    for mine, theirs in (("conv1", "conv1"), ("conv3", "conv2"), ("bn2", "bn2")):
        for got, want in zip(weights(model, mine), weights(trained, theirs), strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.mark.keras
def test_per_layer_init_from_lists_every_unmatched_name_and_shape(source: tuple[Path, Any]
                                                                  ) -> None:
    run, _ = source
    spec = mapped(tiny(), {"conv1": (str(run), "conv7"), "conv2": (str(run), "conv1"),
                           "prob": (str(run), "nothing")})  # prob: no weights, skipped
    with pytest.raises(SpecError) as info:
        build(spec)
    text = str(info.value)
    assert "tiny.yaml:7" in text.splitlines()[0]  # the first such layer's line
    assert "weights_from: 2 layer(s) cannot take their weights from the trained run" in text
    assert f"'conv1' <- 'conv7': {run} has no layer 'conv7' with weights (did you mean" in text
    assert (f"'conv2' <- 'conv1': kernel [3, 3, 4, 5], bias [5] here, kernel [3, 3, 1, 4], "
            f"bias [4] in {run}") in text
    assert "nothing" not in text


@pytest.mark.keras
def test_frozen_layers_and_their_batch_norm_statistics_do_not_move(source: tuple[Path, Any]
                                                                   ) -> None:
    run, trained = source
    spec = mapped(tiny(), {n: (str(run), n) for n in ("conv1", "bn1", "conv2", "bn2")},
                  frozen=("conv1", "bn1"))
    model = build(spec)
    assert not model.get_layer("conv1").trainable and not model.get_layer("bn1").trainable
    before = {n: weights(model, n) for n in ("conv1", "bn1", "conv2", "bn2")}
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(8, 16, 16, 1)).astype("float32")
    y = np.concatenate([rng.uniform(2, 14, (8, 5, 2)), np.ones((8, 5, 1))], -1)
    model.fit({"image": x}, {"heatmaps": y.astype("float32")}, batch_size=4, epochs=1,
              verbose=0)  # 2 steps in training mode
    for n in ("conv1", "bn1"):  # kernel, bias; gamma, beta, moving mean, moving variance
        for a, b in zip(before[n], weights(model, n), strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(before["bn1"], weights(trained, "bn1"), strict=True):
        np.testing.assert_array_equal(a, b)  # and they are the run's
    # the trainable ones did move, statistics included: the check above can fail
    assert not np.array_equal(before["conv2"][0], weights(model, "conv2")[0])
    assert not np.array_equal(before["bn2"][2], weights(model, "bn2")[2])
