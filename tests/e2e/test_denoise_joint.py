"""RCN's denoiser and the joint model, end to end on the embedded 68-point faces: the
denoiser fits on shapes alone and evaluates; the joint spec loads both trained runs,
and its summed logits are the sum of the two runs' own logits on the same input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.keras]

SPECS = Path(__file__).resolve().parents[2] / "specs"
RCN = ["enc_filters=[8,8,8,8,8,8,8]", "conv1_filters=[8,8,8,8,8,8,8]",
       "conv2_filters=[8,8,8,8,8,8,8]", "extra_fine_filters=8", "data.limit=48",
       "data.val_split=16", "train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8"]
TINY = [*RCN, "den_width=8", "den_kernel=5"]  # the denoiser's and the joint's


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from compiler.api import load_spec
    from runtime.train.fit import fit_spec

    root = tmp_path_factory.mktemp("joint")
    out = {}
    for name, sets in (("rcn_300w", RCN), ("rcn_denoise", TINY)):
        out[name] = root / name
        fit_spec(load_spec(SPECS / f"{name}.yaml", sets), out[name], quiet=True)
    joint = [*TINY, f"rcn_run={out['rcn_300w']}", f"denoiser_run={out['rcn_denoise']}"]
    out["joint"] = root / "joint"
    fit_spec(load_spec(SPECS / "rcn_300w_joint.yaml", joint), out["joint"], quiet=True)
    return out


def _layer_model(path: Path, layer: str):
    import keras

    import netspec  # noqa: F401 - registers the custom layers

    model = keras.models.load_model(path / "model.keras", compile=False)
    return keras.Model(model.inputs, model.get_layer(layer).output)


def test_denoiser_fits_on_shapes_and_evaluates(runs: dict[str, Path]) -> None:
    from runtime.evaluate.score_run import evaluate_run

    result = evaluate_run(runs["rcn_denoise"])
    assert result["n"] == 16 and np.isfinite(result["nme"])
    assert {"fr_008", "fr_010", "auc_008"} <= set(result)


def test_joint_logits_are_the_sum_of_the_two_runs(runs: dict[str, Path]) -> None:
    image = np.random.default_rng(0).normal(size=(3, 80, 80, 1)).astype(np.float32)
    joint = _layer_model(runs["joint"], "joint__logits").predict_on_batch(image)
    rcn = _layer_model(runs["rcn_300w"], "head__logits").predict_on_batch(image)
    flat = rcn.reshape(3, 80 * 80, 68).argmax(axis=1)  # the argmax points, row-major ties
    points = np.stack([flat % 80, flat // 80], axis=-1).astype(np.float32)
    den = _layer_model(runs["rcn_denoise"], "den__logits").predict_on_batch(points)
    np.testing.assert_allclose(joint, rcn + den, rtol=1e-4, atol=1e-4)


def test_joint_run_is_frozen_and_evaluates(runs: dict[str, Path]) -> None:
    import keras

    from runtime.evaluate.score_run import evaluate_run

    model = keras.models.load_model(runs["joint"] / "model.keras", compile=False)
    assert not model.trainable_weights  # both parts were loaded, not retrained
    src = keras.models.load_model(runs["rcn_denoise"] / "model.keras", compile=False)
    np.testing.assert_array_equal(model.get_layer("denoise__den__conv1").get_weights()[0],
                                  src.get_layer("den__conv1").get_weights()[0])
    assert np.isfinite(evaluate_run(runs["joint"])["nme"])
