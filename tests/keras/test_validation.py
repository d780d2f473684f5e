"""fit's single validation pass (runtime.train.fit.make_validator) scores what Keras would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

SPEC = Path(__file__).resolve().parents[2] / "specs" / "lgcn.yaml"
# two trained outputs, an L2 group and non-zero heads, so every term of the loss counts
SMALL = ["filters=8", "local_depth=3", "local_wide=1", "global_depth=2", "size=32",
         "kernel_size=9", "dilation=2", "head_init=he_normal", "train.l2={local1: 0.01}"]


def test_validation_loss_equals_keras_evaluate() -> None:
    from compiler.api import load_spec
    from runtime.evaluate.eval_config import decoded_output, eval_config
    from runtime.train.fit import make_validator
    from runtime.train.model_setup import build_model
    from runtime.train.train_config import train_config

    s = load_spec(SPEC, SMALL)
    tcfg = train_config(s.section("train"), s.section("train").loc)
    ecfg = eval_config(s.section("eval"), s.section("eval").loc)
    model, objective = build_model(s, tcfg, 32, mixed_precision=False, xla=False)
    assert objective.l2_penalty() > 0
    rng = np.random.default_rng(2)
    n = 11  # batches of 4, 4, 3
    x = rng.normal(size=(n, 32, 32, 1)).astype("float32") * 0.1
    states = rng.choice([-1.0, 0.0, 1.0], (n, 68, 1))  # absent, unlabelled, visible
    y = np.concatenate([rng.uniform(4, 28, (n, 68, 2)), states], -1).astype("float32")
    out, kind = decoded_output(s, ecfg)
    logs = make_validator(x, y, "image", out, kind, 32, ecfg, 4, objective)(model)
    ref = model.evaluate({"image": x}, {"local": y, "heatmaps": y}, batch_size=4, verbose=0,
                         return_dict=True)
    assert logs["val_loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert logs["val_local_loss"] != pytest.approx(logs["val_heatmaps_loss"])
    assert logs["val_loss"] == pytest.approx(
        logs["val_local_loss"] + logs["val_heatmaps_loss"] + objective.l2_penalty(), rel=1e-6)
    assert {"val_nme", "val_fr_010", "val_auc_008"} <= set(logs)
