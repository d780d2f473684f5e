"""`netspec doctor` exits 0 on a healthy machine and 1, naming the op, when a pipeline op
returns a wrong value (injected into every child process through sitecustomize)."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.keras, pytest.mark.slow]

# Imported by Python at start-up from PYTHONPATH: LCN (through the module attribute that
# `normalize()` calls) comes back 1 % too large, as a miscompiled kernel would make it.
WRONG_LCN = """
import runtime.data.normalize as _n
_real = _n.lcn
_n.lcn = lambda x, *a, **k: _real(x, *a, **k) * 1.01
"""


def _doctor(repo: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), str(repo)])
    return subprocess.run([sys.executable, "-m", "netspec", "doctor"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


def test_doctor_passes_here(repo: Path) -> None:
    proc = _doctor(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for item in ("python:", "tensorflow:", "keras:", "numpy:", "cpu:", "oneDNN:", "gpus:",
                 "graphviz:", "shared data:", "numerics:", "train step:"):
        assert item in proc.stdout
    assert "doctor: all checks passed" in proc.stdout


def test_doctor_names_an_op_that_returns_wrong_values(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(WRONG_LCN)
    proc = _doctor(repo, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert failed and all("numerics: normalize.lcn" in line for line in failed), proc.stdout
    assert "check(s) failed" in proc.stdout
