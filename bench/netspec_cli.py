"""What the bench scripts share: where the repository and the shared data are, and one
way to run a netspec command from them (its progress passes through on stderr)."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NETSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def netspec(args: list[str]) -> str:
    """Run a netspec command from the repository root; returns its stdout, and exits
    with its code when it fails."""
    cmd = [sys.executable, "-m", "netspec", *args]
    print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"netspec {args[0]} failed with exit code {proc.returncode}")
    return proc.stdout
