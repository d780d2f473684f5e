"""Layering: the spec front end never needs TensorFlow/Keras.

1. In a fresh interpreter, `netspec check` (and the other spec-only commands) run
   and leave no tensorflow/keras module imported.
2. Statically, no module of compiler/ (outside compiler/keras_layers/) imports
   tensorflow, keras, runtime or netspec at module level; imports inside functions
   (lazy Keras lowering) and under `if TYPE_CHECKING:` are fine.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
import subprocess
import sys

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "tf_keras", "jax", "torch")
FORBIDDEN_IN_COMPILER = ("tensorflow", "keras", "runtime", "netspec")

_PROBE = """
import contextlib, io, json, sys
import compiler.api, netspec.cli
spec = compiler.api.load_spec("specs/rcn_6branch.yaml")
codes = {}
with contextlib.redirect_stdout(io.StringIO()):
    for argv in (["check", "specs/rcn_6branch.yaml"], ["show", "specs/rcn_6branch.yaml"],
                 ["expand", "specs/rcn_6branch.yaml"], ["ops", "conv2d"],
                 ["diff", "specs/rcn_5branch.yaml", "specs/rcn_6branch.yaml"]):
        codes[argv[0]] = netspec.cli.main(argv)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in %r)
print(json.dumps({"layers": len(spec.graph.nodes), "codes": codes, "heavy": heavy}))
""".replace("%r", repr(HEAVY))


def test_spec_commands_import_no_tensorflow() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout.strip().splitlines()[-1])
    assert found["layers"] == 40
    assert found["codes"] == {"check": 0, "show": 0, "expand": 0, "ops": 0, "diff": 1}
    assert found["heavy"] == [], f"spec-only commands imported {found['heavy']}"


def _module_level_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of imports that run when the module is imported."""
    found: list[tuple[int, str]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue  # runs only when called
            if isinstance(node, ast.Import):
                found.extend((node.lineno, a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0 and node.module:
                    found.append((node.lineno, node.module))
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if children:
                        visit([c for c in children if isinstance(c, ast.stmt)]
                              + [s for h in children if isinstance(h, ast.ExceptHandler)
                                 for s in h.body])

    visit(tree.body)
    return found


def compiler_modules() -> list[Path]:
    root = REPO / "compiler"
    return sorted(p for p in root.rglob("*.py") if "keras_layers" not in p.relative_to(root).parts)


def test_compiler_core_has_no_module_level_heavy_imports() -> None:
    modules = compiler_modules()
    assert len(modules) > 15 and REPO / "compiler" / "api.py" in modules
    bad = []
    for path in modules:
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in _module_level_imports(tree):
            if module.split(".")[0] in FORBIDDEN_IN_COMPILER:
                bad.append(f"{path.relative_to(REPO)}:{line}: import {module}")
    assert not bad, "module-level imports the compiler core must not have:\n" + "\n".join(bad)


def test_the_ast_check_can_fail() -> None:
    tree = ast.parse("import os\nfrom keras import layers\ntry:\n    import tensorflow as tf\n"
                     "except ImportError:\n    import runtime.x\n"
                     "def f():\n    import keras\n"
                     "class C:\n    from netspec import cli\n"
                     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import keras\n")
    assert [m for _, m in _module_level_imports(tree)] == [
        "os", "keras", "tensorflow", "runtime.x", "netspec", "typing"]
