"""`python -m netspec fit` then `netspec eval --json`, end to end, on a small RCN.

A 4-branch RCN with 8 filters per conv at 40x40 trains for a few dozen steps through the
real tf.data pipeline: validation NME must fall, the run directory must hold everything
fit promises, and eval (by default: the held-out split of the data the run trained on)
must print its JSON and agree with the best epoch's validation NME (same faces, same model).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.keras]

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/rcn_4branch.yaml"
SMALL = [f"{k}=[8,8,8,8,8,8,8]" for k in ("enc_filters", "conv1_filters", "conv2_filters")]
# Adam converges in fewer steps than the spec's AdaDelta; augmentation is kept but milder
# (no mirror / occluder) so a few dozen steps measurably lower NME
QUICK = [*SMALL, "size=40", "train.optimizer=adam", "train.learning_rate=0.002",
         "train.batch_size=16"]
EVAL_KEYS = {"nme", "fr_008", "fr_010", "auc_008", "n"}


def netspec(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NETSPEC_DEBUG": ""}
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def sets(values: list[str]) -> list[str]:
    return [a for v in values for a in ("--set", v)]


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stderr[-4000:]}"
    assert "Traceback" not in r.stderr
    return r


def metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def fit_then_eval(run: Path, data: str, *, epochs: int, steps: int, n_val: int,
                  extra: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any],
                                             dict[str, Any]]:
    values = [*QUICK, *extra, f"train.epochs={epochs}", f"train.steps_per_epoch={steps}",
              f"data.val_split={n_val}", f"train.val_examples={n_val}"]
    r = ok(netspec("fit", SPEC, "-o", str(run), "--data", data, *sets(values)))
    assert f"{n_val} val faces" in r.stderr and "completed" in r.stderr
    check_run_dir(run, epochs)
    m = metrics(run)
    state = json.loads((run / "state.json").read_text())
    check_state(state, m, epochs, steps)

    # no --data / --split: eval scores the held-out split of the data the run trained on
    e = ok(netspec("eval", str(run), "--json"))
    result = json.loads(e.stdout.strip().splitlines()[-1])
    assert set(result) >= EVAL_KEYS, result
    assert (result["data"], result["split"], result["n"]) == (data, "val", n_val)
    assert result["trained_faces_scored"] == 0 and "warning" not in e.stderr
    for key in ("fr_008", "fr_010", "auc_008"):
        assert 0.0 <= result[key] <= 1.0, result
    assert result["fr_010"] <= result["fr_008"]
    # model.keras is the best epoch; eval scores the same faces the fit validated on
    assert math.isclose(result["nme"], state["best"], rel_tol=2e-3), (result, state)
    assert (run / "eval" / f"{Path(data).stem}_val.json").is_file()
    assert list((run / "eval").glob("ced_*_val.png"))
    return m, state, result


def check_run_dir(run: Path, epochs: int) -> None:
    for name in ("model.keras", "metrics.jsonl", "state.json", "spec.resolved.yaml"):
        assert (run / name).is_file(), name
    ckpt = run / "checkpoints"
    assert (ckpt / f"ckpt-{epochs}.npz").is_file()  # runtime/train/checkpoints.py
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files of atomic writes left behind: {leftovers}"
    events = list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} >= {"train", "validation"}, events


def check_state(state: dict[str, Any], m: list[dict[str, Any]], epochs: int,
                steps: int) -> None:
    assert [r["epoch"] for r in m] == list(range(1, epochs + 1))
    for r in m:
        for key in ("loss", "val_loss", "val_nme", "lr", "seconds"):
            assert math.isfinite(r[key]), r
    assert state["epoch"] == epochs and state["stopped"] == "completed"
    assert state["iterations"] == epochs * steps
    nmes = [r["val_nme"] for r in m]
    assert state["best"] == pytest.approx(min(nmes))
    assert state["best_epoch"] == 1 + nmes.index(min(nmes))
    assert state["checkpoint"].endswith(f"ckpt-{epochs}")


def test_fit_and_eval_on_synthetic_faces(tmp_path: Path) -> None:
    m, _state, result = fit_then_eval(tmp_path / "run", "synthetic", epochs=3, steps=10,
                                      n_val=128, extra=["data.limit=512"])
    first, last = m[0], m[-1]
    assert last["loss"] < first["loss"]
    assert last["val_nme"] < 0.8 * first["val_nme"], [r["val_nme"] for r in m]
    assert result["nme"] < first["val_nme"]


def test_fit_and_eval_on_mtfl(tmp_path: Path, shared_data: Path) -> None:
    mtfl = shared_data / "mtfl"
    if not (mtfl / "train.txt").is_file():
        pytest.skip(f"MTFL not found at {mtfl}")
    mild = ["data.augment.rotation=10", "data.augment.occlusion=false",
            "data.augment.mirror=false", "data.limit=1500"]
    m, _state, result = fit_then_eval(tmp_path / "run", str(mtfl), epochs=4, steps=15,
                                      n_val=256, extra=mild)
    first, last = m[0], m[-1]
    assert last["loss"] < first["loss"]
    assert last["val_nme"] < 0.8 * first["val_nme"], [r["val_nme"] for r in m]
    assert result["nme"] < 0.8 * first["val_nme"]
