"""The spec commands as a user runs them (`python -m netspec ...` in a subprocess):
exit codes 0 ok / 1 spec error / 2 usage, output, and no tracebacks.

All commands start at once (concurrently) and each test checks one result.
"""

from __future__ import annotations

from functools import cache
import os
from pathlib import Path
import subprocess
import sys
import tempfile

import pytest

REPO = Path(__file__).resolve().parents[2]
BROKEN = "tests/golden/errors/shape_concat_odd_pool.yaml"
OUT = Path(tempfile.mkdtemp(prefix="netspec_cli_"))
COMMANDS: dict[str, list[str]] = {
    "check": ["check", "specs/rcn_6branch.yaml"],
    "check_bad_set": ["check", "specs/rcn_6branch.yaml", "--set", "brnches=4"],
    "check_broken": ["check", BROKEN],
    "check_missing": ["check", "specs/nope.yaml"],
    "check_no_spec": ["check"],
    "show": ["show", "specs/rcn_6branch.yaml"],
    "show_broken": ["show", BROKEN],
    "expand": ["expand", "specs/sumnet_5branch.yaml"],
    "expand_broken": ["expand", BROKEN],
    "ops": ["ops"],
    "ops_one": ["ops", "conv2d"],
    "ops_unknown": ["ops", "nonexistent"],
    "graph_html": ["graph", "specs/rcn_6branch.yaml", "-o", str(OUT / "g.html")],
    "graph_dot": ["graph", "specs/rcn_6branch.yaml", "-o", str(OUT / "g.dot")],
    "graph_bad_format": ["graph", "specs/rcn_6branch.yaml", "-o", str(OUT / "g.txt")],
    "graph_broken": ["graph", BROKEN, "-o", str(OUT / "b.html")],
    "diff": ["diff", "specs/rcn_5branch.yaml", "specs/rcn_6branch.yaml"],
    "diff_broken": ["diff", "specs/rcn_6branch.yaml", BROKEN],
    "diff_same": ["diff", "specs/rcn_6branch.yaml", "specs/rcn_6branch.yaml"],
    "unknown_command": ["chekc", "specs/rcn_6branch.yaml"],
}


@cache
def results() -> dict[str, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NETSPEC_DEBUG": ""}
    procs = {k: subprocess.Popen([sys.executable, "-m", "netspec", *argv], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, argv in COMMANDS.items()}
    out = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        out[key] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


def run(key: str, code: int) -> subprocess.CompletedProcess[str]:
    r = results()[key]
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == code, (key, r.returncode, r.stderr)
    return r


@pytest.mark.parametrize(("key", "code"), [
    ("check", 0), ("show", 0), ("expand", 0), ("ops", 0), ("ops_one", 0),
    ("graph_html", 0), ("graph_dot", 0), ("diff", 1), ("diff_same", 0), ("diff_broken", 2),
    ("check_bad_set", 1), ("check_broken", 1), ("check_missing", 1), ("show_broken", 1),
    ("expand_broken", 1), ("graph_broken", 1),
    ("check_no_spec", 2), ("ops_unknown", 2), ("graph_bad_format", 2),
    ("unknown_command", 2),
])
def test_exit_codes(key: str, code: int) -> None:
    run(key, code)


def test_check_summary() -> None:
    out = run("check", 0).stdout
    assert out.startswith("specs/rcn_6branch.yaml: ok: 40 layers, 333,333 params, ")
    assert "outputs: heatmaps float32[?, 80, 80, 5]" in out


def test_spec_errors_go_to_stderr_with_locations() -> None:
    r = run("check_broken", 1)
    assert r.stdout == ""
    assert r.stderr.startswith("tests/golden/errors/shape_concat_odd_pool.yaml:11:5: error: ")
    for key in ("show_broken", "expand_broken", "graph_broken"):
        assert run(key, 1).stderr == r.stderr
    assert run("diff_broken", 2).stderr == r.stderr  # diff(1)'s "trouble"
    assert not (OUT / "b.html").exists()


def test_missing_spec_file_is_a_clear_error() -> None:
    assert run("check_missing", 1).stderr == (
        "specs/nope.yaml: error: spec file not found\n"
        "  hint: check the path; specs live in specs/, e.g. specs/rcn_6branch.yaml\n")


def test_bad_override_names_the_param() -> None:
    assert run("check_bad_set", 1).stderr == (
        "--set brnches=4: error: unknown param 'brnches'\n"
        "  hint: did you mean 'branches'?\n")


def test_show_prints_the_ir_table() -> None:
    out = run("show", 0).stdout
    assert out == (REPO / "tests/golden/ir/rcn_6branch.txt").read_text()


def test_expand_prints_yaml_that_checks() -> None:
    out = run("expand", 0).stdout
    assert out == (REPO / "tests/golden/expanded/sumnet_5branch.yaml").read_text()


def test_ops() -> None:
    assert "conv2d" in run("ops", 0).stdout and "spatial_softmax" in run("ops", 0).stdout
    assert run("ops_one", 0).stdout.startswith("conv2d  (conv; exactly 1 input)")
    assert run("ops_unknown", 2).stderr.startswith("netspec: unknown op 'nonexistent'")


def test_graph_files() -> None:
    assert run("graph_html", 0).stdout == f"wrote {OUT / 'g.html'}\n"
    html = (OUT / "g.html").read_text()
    dot = (OUT / "g.dot").read_text()
    for name in ("image", "enc6.conv", "br1.cat", "head.prob"):
        assert f">{name}</text>" in html and f'"{name}"' in dot
    assert "unknown graph format '.txt'" in run("graph_bad_format", 2).stderr


def test_diff() -> None:
    assert run("diff_same", 0).stdout == (
        "specs are identical (graph and data/train/eval/search sections)\n")
    lines = run("diff", 1).stdout.splitlines()
    assert lines[:2] == ["--- specs/rcn_5branch.yaml", "+++ specs/rcn_6branch.yaml"]
    assert "+ enc6.pool: max_pool2d(enc5.conv) float32[?, 2, 2, 48]" in lines


def test_usage_errors_print_usage() -> None:
    for key in ("check_no_spec", "unknown_command"):
        assert "usage: netspec" in run(key, 2).stderr


@pytest.mark.parametrize("argv", [
    ["check"], ["check", "specs/rcn_6branch.yaml", "--bogus"], ["show"], ["expand"],
    ["expand", "a.yaml", "b.yaml"], ["ops", "conv2d", "dense"], ["graph", "specs/rcn_6branch.yaml"],
    ["diff", "specs/rcn_6branch.yaml"], ["check", "specs/rcn_6branch.yaml", "--set"],
])
def test_usage_errors_exit_2_for_every_command(argv: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main  # in-process: argparse exits before any spec is read

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: netspec" in capsys.readouterr().err
