"""runtime.quiet_tf: TensorFlow's native start-up banner is dropped, nothing else is."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[2]
BANNER = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
          "STDERR\nI0000 00:00:1795399894.932527     771 cudart_stub.cc:31] Could not find "
          "cuda drivers on your machine, GPU will not be used.\n")


def run_with_fake_tensorflow(tmp_path: Path, body: str, level: str | None = None
                             ) -> subprocess.CompletedProcess[str]:
    """Import a stand-in `tensorflow` (writes to fd 2 like the real one) the quiet way."""
    pkg = tmp_path / "tensorflow"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(f"import os\nos.write(2, {BANNER.encode()!r})\n{body}\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    code = ("from runtime.quiet_tf import import_tensorflow\n"
            "import_tensorflow()\nprint('imported')")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)


def test_banner_dropped_other_messages_kept(tmp_path: Path) -> None:
    r = run_with_fake_tensorflow(tmp_path, "os.write(2, b'a real warning\\n')")
    assert r.returncode == 0 and r.stdout == "imported\n"
    assert r.stderr == "a real warning\n"


def test_failed_import_shows_everything(tmp_path: Path) -> None:
    r = run_with_fake_tensorflow(tmp_path, "raise ImportError('libcudart missing')")
    assert r.returncode != 0
    assert BANNER in r.stderr and "ImportError: libcudart missing" in r.stderr


def test_log_level_zero_keeps_the_banner(tmp_path: Path) -> None:
    r = run_with_fake_tensorflow(tmp_path, "", level="0")
    assert r.returncode == 0 and r.stderr == BANNER


@pytest.mark.keras
def test_netspec_compile_prints_no_banner(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    r = subprocess.run([sys.executable, "-m", "netspec", "compile", "specs/rcn_4branch.yaml",
                        "-o", str(tmp_path / "out")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "absl::InitializeLog" not in r.stderr and "cudart_stub" not in r.stderr


def run_python(tmp_path: Path | None, code: str, level: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    """`python -c code` with the repo (and a stand-in tensorflow in tmp_path) importable."""
    paths = [str(tmp_path)] if tmp_path is not None else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(REPO)])}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)


def fake_tensorflow(tmp_path: Path, body: str = "") -> Path:
    pkg = tmp_path / "tensorflow"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(f"import os\nos.write(2, {BANNER.encode()!r})\n{body}\n")
    return tmp_path


def test_import_netspec_quiets_a_later_tensorflow_import(tmp_path: Path) -> None:
    fake_tensorflow(tmp_path, "os.write(2, b'a real warning\\n')")
    code = ("import os, sys, netspec\nassert 'tensorflow' not in sys.modules\n"
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])\nimport tensorflow\nprint('imported')")
    r = run_python(tmp_path, code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "3\nimported\n"  # the CLI's default level, set without importing TF
    assert r.stderr == "a real warning\n"


def test_import_netspec_keeps_the_banner_at_level_zero(tmp_path: Path) -> None:
    fake_tensorflow(tmp_path)
    r = run_python(tmp_path, "import os, netspec, tensorflow\n"
                             "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])", level="0")
    assert r.returncode == 0 and r.stdout == "0\n" and r.stderr == BANNER


def test_import_netspec_shows_everything_when_tensorflow_fails(tmp_path: Path) -> None:
    fake_tensorflow(tmp_path, "raise ImportError('libcudart missing')")
    r = run_python(tmp_path, "import netspec, tensorflow")
    assert r.returncode != 0
    assert BANNER in r.stderr and "ImportError: libcudart missing" in r.stderr


@pytest.mark.keras
def test_import_netspec_then_keras_prints_no_banner() -> None:
    code = "import netspec, keras\nkeras.layers.Dense(2)(keras.ops.zeros((1, 3)))"
    quiet, loud = (subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
                        "PYTHONPATH": str(REPO), **level})
        for level in ({}, {"TF_CPP_MIN_LOG_LEVEL": "0"}))
    out_q, err_q = quiet.communicate(timeout=300)
    out_l, err_l = loud.communicate(timeout=300)
    assert quiet.returncode == 0 and loud.returncode == 0, err_q + err_l
    assert "absl::InitializeLog" not in err_q and ".cc:" not in err_q, err_q
    assert "absl::InitializeLog" in err_l  # TF_CPP_MIN_LOG_LEVEL=0 still shows it
