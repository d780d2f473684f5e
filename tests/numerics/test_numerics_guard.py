"""The numerics guard: every TF op of the data pipeline, the targets and the losses equals
its numpy reference at the shapes production uses (runtime/numerics/checks.py).

A kernel bug in a dependency shows here as a failing test named after the op and shape,
not as a segfault in the first epoch or silently wrong training inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

pytestmark = pytest.mark.keras

from runtime.numerics import checks  # noqa: E402 - after the marker, as other keras tests

CASES = checks.all_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}[{c[1]}]" for c in CASES])
def test_op_matches_numpy_reference(case: checks.Case) -> None:
    result = checks.run_case(case)
    assert result.ok, (f"{result.name} at {result.shape}: max abs error {result.max_error:.4g} "
                       f"> tolerance {result.tolerance:.4g} {result.error}")


def test_guard_covers_every_pipeline_target_and_loss_op() -> None:
    from runtime.train.losses import IMPLEMENTED

    names = {c[0] for c in CASES}
    for loss in IMPLEMENTED:
        assert any(n.startswith(f"losses.{loss}") for n in names), loss
    for method in checks.NORMALIZE_METHODS:
        assert f"normalize.{method}" in names
    for op in ("jitter_from_uniforms", "crop_matrices @ jitter", "warp_transforms", "warp",
               "transform_landmarks", "occlude"):
        assert f"augment.{op}" in names
    for op in ("pixel_index", "one_hot_maps", "gaussian_maps", "disk_maps", "bilinear_splat",
               "kernel_splat"):
        assert f"targets.{op}" in names


def test_a_wrong_op_fails_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import runtime.data.normalize as normalize

    real = normalize.lcn
    monkeypatch.setattr(normalize, "lcn", lambda x, *a, **k: real(x, *a, **k) * 1.001)
    case = next(c for c in checks.all_cases(quick=True) if c[0] == "normalize.lcn")
    result = checks.run_case(case)
    assert not result.ok and result.max_error > result.tolerance


# The blur LCN used before the fix: a rank-4 batch matmul against a broadcast [n, n] band.
# On AVX-512 CPUs, TensorFlow 2.19-2.21 send it to oneDNN 3.7's brg_matmul:avx512_core,
# which returns wrong values and then writes out of bounds.
OLD_LCN = """
import tensorflow as tf
import runtime.data.normalize as N
from runtime.numerics import checks

def old_lcn(images, size=N.LCN_SIZE, sigma=N.LCN_SIGMA):
    x = tf.convert_to_tensor(images, tf.float32)
    rows = tf.constant(N.blur_matrix(x.shape[1], size, sigma))
    cols = tf.constant(N.blur_matrix(x.shape[2], size, sigma))
    blur = lambda t: tf.matmul(tf.matmul(rows, t), cols, transpose_b=True)
    xt = tf.transpose(x, [0, 3, 1, 2])
    v = xt - blur(xt)
    std = tf.sqrt(tf.maximum(blur(tf.square(v)), 0.0))
    mean_std = tf.reduce_mean(std, axis=[1, 2, 3], keepdims=True)
    return tf.transpose((v / tf.maximum(tf.maximum(std, mean_std), 1e-6) + 2.5) / 5.0,
                        [0, 2, 3, 1])

N.lcn = old_lcn
bad = [r for r in map(checks.run_case, checks.normalize_cases(checks.QUICK_IMAGE_SHAPES))
       if not r.ok]
print("FAILED", [f"{r.name}[{r.shape}] {r.max_error:.3g}" for r in bad], flush=True)
raise SystemExit(1 if bad else 0)
"""


def _onednn_avx512() -> str | None:
    """None when the buggy kernel can run here, else why the old formula cannot fail."""
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") == "0" or os.environ.get("ONEDNN_MAX_CPU_ISA"):
        return "oneDNN is off or capped by the environment"
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists() or " avx512f" not in cpuinfo.read_text():
        return "this CPU has no AVX-512, where oneDNN's faulty kernel is not used"
    return None


@pytest.mark.slow
def test_the_old_lcn_formula_fails_the_guard(repo: Path) -> None:
    why = _onednn_avx512()
    if why:
        pytest.skip(why)
    proc = subprocess.run([sys.executable, "-c", OLD_LCN], cwd=repo, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    # wrong values (exit 1, the checks name them) or a crash (killed by a signal)
    assert proc.returncode == 1 or proc.returncode < 0, proc.stdout + proc.stderr[-2000:]
    if proc.returncode == 1:
        assert "normalize.lcn" in proc.stdout
