"""The text report and the PNG of surrogate slices through beta_hat."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

from runtime.search import format_report, run_search, write_report
from tests.unit.search.search_objectives import config, eq4, fails_on_trial_3


def test_report_lists_trials_coefficients_and_beta_hat(tmp_path: Path) -> None:
    result = run_search(config(), fails_on_trial_3)
    text = format_report(result)
    lines = text.splitlines()
    assert lines[0] == "search over b2, b3, b4: 16 trials (15 initial, 1 proposal)"
    assert lines[1] == "constraint: b2 + b3 + b4 <= 1"
    assert lines[2].startswith("stopped: converged at trial 16")
    row3 = next(line for line in lines if line.lstrip().startswith("3  initial"))
    assert "failed" in row3 and row3.endswith("RuntimeError: out of memory")
    assert ("  f = 36.6191 - 15.9662*b2 - 1.621*b3 - 13.9947*b4 + 14.6877*b2^2 - "
            "2.9474*b3^2 + 8.2006*b4^2") in lines
    assert "beta_hat (trial 16) = (b2=0.4014, b3=0.0000, b4=0.5986)" in lines
    assert any(line.startswith("predicted f_hat_min = 27.14, measured f_min = 27.14, gap = ")
               for line in lines)
    assert any(line.startswith("surrogate: degree 2 (per_variable) fitted to f, lstsq on 14 "
                               "points") for line in lines)


def test_write_report_makes_a_png(tmp_path: Path) -> None:
    result = run_search(config(initial={"count": 10}), eq4)
    text, png = write_report(result, tmp_path / "out")
    assert text.read_text() == format_report(result)
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000  # three panels with curves and points


def test_the_search_core_never_imports_tensorflow(repo: Path) -> None:
    code = ("import sys; from tests.unit.search.search_objectives import config, eq4; "
            "from runtime.search import run_search, format_report; "
            "format_report(run_search(config(initial={'count': 8}), eq4)); "
            "sys.exit(sorted({'tensorflow', 'keras'} & set(sys.modules)) or 0)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo)
