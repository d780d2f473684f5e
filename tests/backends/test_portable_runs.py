"""The runtime on JAX and PyTorch, with TensorFlow unimportable: fit, resume, eval,
predict, data parallelism, and runs that move between backends (checkpoints are
backend-neutral).

Every jax/torch process here runs with tests/backends/no_tensorflow on PYTHONPATH, whose
sitecustomize makes `import tensorflow` fail, as on the GPU machines (JAX and PyTorch, no
TensorFlow). jax comes with the test extra; torch runs where it is installed
(`pip install -e '.[torch]'`: its wheels bring ~3 GB of CUDA libraries, so CI leaves it out).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.keras]


def _backend(name: str, extra: str) -> Any:
    return pytest.param(name, marks=pytest.mark.skipif(
        importlib.util.find_spec(name) is None,
        reason=f"{name} is not installed (pip install -e '.[{extra}]')"))


PORTABLE = [_backend("jax", "backends"), _backend("torch", "torch")]

REPO = Path(__file__).resolve().parents[2]
NO_TF = Path(__file__).resolve().parent / "no_tensorflow"
SPEC = "specs/rcn_4branch.yaml"
STEPS = 3
TINY = [f"{k}=[8,8,8,8,8,8,8]" for k in ("enc_filters", "conv1_filters", "conv2_filters")]
QUICK = [*TINY, "size=40", "train.optimizer=adam", "train.learning_rate=0.003",
         f"train.steps_per_epoch={STEPS}", "train.batch_size=8", "data.limit=64",
         "data.val_split=32", "train.val_examples=32"]


def netspec(backend: str, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NETSPEC_DEBUG": "1",
            "JAX_PLATFORMS": "cpu", **(env or {})}
    base.pop("KERAS_BACKEND", None)
    if backend != "tensorflow":  # prove the path never imports TensorFlow
        base["PYTHONPATH"] = os.pathsep.join([str(NO_TF), str(REPO)])
    return subprocess.run([sys.executable, "-m", "netspec", *args, "--backend", backend],
                          cwd=REPO, env=base, capture_output=True, text=True, timeout=600)


def fit(backend: str, run: Path, epochs: int, *extra: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    sets = [a for v in [*QUICK, f"train.epochs={epochs}"] for a in ("--set", v)]
    r = netspec(backend, "fit", SPEC, "-o", str(run), *sets, *extra, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    return r


def metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def state(run: Path) -> dict[str, Any]:
    return json.loads((run / "state.json").read_text())


def eval_json(backend: str, run: Path) -> dict[str, Any]:
    r = netspec(backend, "eval", str(run), "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


@pytest.fixture(scope="module", params=PORTABLE)
def backend_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[str, Path, str]:
    """(backend, a 2-epoch run trained on it, fit's stderr)."""
    backend = request.param
    run = tmp_path_factory.mktemp(backend) / "run"
    return backend, run, fit(backend, run, 2).stderr


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install -e '.[backends]')")
    run = tmp_path_factory.mktemp("jax") / "run"
    return run, fit("jax", run, 2).stderr


def test_fit_writes_a_complete_run_without_tensorflow(backend_run: tuple[str, Path, str]
                                                      ) -> None:
    backend, run, err = backend_run
    assert f"CPU ({backend})" in err
    for name in ("model.keras", "metrics.jsonl", "state.json", "spec.resolved.yaml",
                 "checkpoints/ckpt-2.npz"):
        assert (run / name).is_file(), name
    s = state(run)
    assert (s["epoch"], s["backend"], s["iterations"]) == (2, backend, 2 * STEPS)
    lines = metrics(run)
    assert [m["epoch"] for m in lines] == [1, 2]
    assert all(np.isfinite(m["loss"]) and np.isfinite(m["val_nme"]) for m in lines)


def test_resume_is_exact(backend_run: tuple[str, Path, str], tmp_path: Path) -> None:
    """Batches are a pure function of (seed, step) and the checkpoint holds the optimizer:
    2 epochs + a resumed third equal 3 unbroken epochs."""
    backend, run, _ = backend_run
    resumed = tmp_path / "resumed"
    import shutil

    shutil.copytree(run, resumed)
    r = fit(backend, resumed, 3, "--resume")
    assert f"resuming {resumed} after epoch 2" in r.stderr
    unbroken = tmp_path / "unbroken"
    fit(backend, unbroken, 3)
    a, b = metrics(resumed), metrics(unbroken)
    assert [m["epoch"] for m in a] == [1, 2, 3] and state(resumed)["iterations"] == 3 * STEPS
    for key in ("loss", "val_loss", "val_nme"):
        np.testing.assert_allclose([m[key] for m in a], [m[key] for m in b], rtol=1e-5,
                                   err_msg=key)


def test_a_run_evaluates_and_resumes_on_tensorflow(backend_run: tuple[str, Path, str],
                                                   tmp_path: Path) -> None:
    backend, run, _ = backend_run
    moved = tmp_path / "moved"
    import shutil

    shutil.copytree(run, moved)
    on_jax = eval_json(backend, moved)
    on_tf = eval_json("tensorflow", moved)
    # the same weights through two input paths (device feed vs tf.data): the same crops
    # up to resampling round-off
    assert abs(on_jax["nme"] - on_tf["nme"]) < 2e-3 * max(1.0, on_tf["nme"]), (on_jax, on_tf)
    r = fit("tensorflow", moved, 3, "--resume")
    assert f"epochs 1-2 trained on {backend}; the run goes on on tensorflow" in r.stderr
    s = state(moved)
    assert (s["epoch"], s["backend"], s["iterations"]) == (3, "tensorflow", 3 * STEPS)


@pytest.mark.parametrize("backend", PORTABLE)
def test_a_tensorflow_run_resumes_on_another_backend(backend: str, tmp_path: Path) -> None:
    run = tmp_path / "tf"
    fit("tensorflow", run, 1)
    r = fit(backend, run, 2, "--resume")
    assert f"epochs 1-1 trained on tensorflow; the run goes on on {backend}" in r.stderr
    assert state(run)["iterations"] == 2 * STEPS
    assert [m["epoch"] for m in metrics(run)] == [1, 2]


def test_predict_equals_predict_on_tensorflow(backend_run: tuple[str, Path, str],
                                             tmp_path: Path) -> None:
    from PIL import Image

    backend, run, _ = backend_run
    rng = np.random.default_rng(0)
    image = tmp_path / "face.png"
    Image.fromarray(rng.integers(0, 255, (120, 100, 3), np.uint8)).save(image)
    points = {}
    for name in (backend, "tensorflow"):
        out = tmp_path / name
        r = netspec(name, "predict", str(run), str(image), "-o", str(out))
        assert r.returncode == 0, r.stderr[-3000:]
        index = json.loads((out / "predictions.json").read_text())
        points[name] = np.asarray(index["images"][0]["landmarks"], np.float64)
    assert np.abs(points[backend] - points["tensorflow"]).max() < 0.5  # source pixels


def test_data_parallel_on_two_jax_devices_trains_like_one(jax_run: tuple[Path, str],
                                                          tmp_path: Path) -> None:
    """keras.distribution.DataParallel over 2 host devices: each step's mean gradient is
    the single device's, so the figures agree (up to reduction order)."""
    run, _ = jax_run
    dp = tmp_path / "dp"
    r = fit("jax", dp, 2, "--strategy", "mirrored",
            env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert "CPU (jax, 2 devices)" in r.stderr
    for a, b in zip(metrics(dp), metrics(run), strict=True):
        np.testing.assert_allclose(a["val_nme"], b["val_nme"], rtol=1e-3)
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-3)


@pytest.mark.parametrize("backend", ["tensorflow", *PORTABLE])
def test_mixed_precision_trains_in_bfloat16_on_this_cpu(backend: str, tmp_path: Path) -> None:
    run = tmp_path / "mp"
    fit(backend, run, 1, "--mixed-precision")
    assert np.isfinite(metrics(run)[0]["val_nme"])
    import zipfile

    with zipfile.ZipFile(run / "model.keras") as z:  # the policy devices.mixed_policy chose
        assert "mixed_bfloat16" in z.read("config.json").decode()


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_what_the_device_feed_does_not_serve_is_a_clear_error(tmp_path: Path) -> None:
    r = netspec("jax", "fit", SPEC, "-o", str(tmp_path / "neg"), "--set",
                "data.negatives.fraction=0.2", *[a for v in QUICK for a in ("--set", v)])
    assert r.returncode == 1, r.stderr[-2000:]
    assert "trains on still faces only" in r.stderr and "--backend tensorflow" in r.stderr
    assert "Traceback" not in r.stderr


def test_an_uninstalled_backend_is_a_clear_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here")
    r = netspec("torch", "fit", SPEC, "-o", str(tmp_path / "t"))
    assert r.returncode == 1
    assert "the 'torch' backend needs the 'torch' package" in r.stderr


@pytest.mark.parametrize("backend", ["tensorflow", *PORTABLE])
def test_a_nan_loss_stops_the_run_and_commits_no_nan_epoch(backend: str, tmp_path: Path
                                                           ) -> None:
    run = tmp_path / "nan"
    sets = [*QUICK, "train.epochs=2", "train.optimizer=sgd", "train.learning_rate=1e12"]
    r = netspec(backend, "fit", SPEC, "-o", str(run), *[a for v in sets for a in ("--set", v)])
    assert r.returncode == 1, r.stderr[-2000:]
    assert "the training loss became NaN/inf" in r.stderr and "Traceback" not in r.stderr
    assert not (run / "state.json").exists() and not list(run.glob("checkpoints/*.npz"))
