"""Import TensorFlow without its native start-up banner on stderr.

TF 2.21 writes "All log messages before absl::InitializeLog() ..." and CUDA-probing
lines from C++ before any log level applies (TF_CPP_MIN_LOG_LEVEL hides only the later
ones), so the import runs with file descriptor 2 pointed at a temporary file. Afterwards
every captured line that is not such a banner line is written back, and if the import
fails everything captured is, so no real message is lost.

The CLI imports TensorFlow through `import_tensorflow`; `import netspec` installs
`install_quiet_import_hook`, so a Python user's own `import keras` / `import tensorflow`
is just as quiet (netspec itself never imports TensorFlow at that point).
TF_CPP_MIN_LOG_LEVEL=0 keeps everything in both cases.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import importlib.machinery
import os
import re
import sys
import tempfile
from types import ModuleType
from typing import Any

_BANNER = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                     r"|[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]"
                     r"|To enable the following instructions: .*rebuild TensorFlow)")
QUIET_LEVEL = "3"  # TF_CPP_MIN_LOG_LEVEL netspec sets unless the user chose one


def quiet_default() -> None:
    """TensorFlow's later C++ logs (CUDA probing on CPU machines, CPU feature notes)
    drown netspec's own output; keep a level the user set (0 shows them)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LEVEL)


def _wants_banner() -> bool:
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"


@contextmanager
def _banner_filtered() -> Iterator[None]:
    """Run the body with fd 2 captured; write back all but banner lines (all on error)."""
    try:
        sys.stderr.flush()
        saved: int | None = os.dup(2)
    except (OSError, ValueError):  # no real stderr descriptor (embedded, some IDEs)
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            kept = text if failed else "".join(
                line for line in text.splitlines(keepends=True) if not _BANNER.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def import_tensorflow() -> None:
    """Import tensorflow once; TF_CPP_MIN_LOG_LEVEL=0 (or a debugger's stderr) keeps the
    banner."""
    if "tensorflow" in sys.modules or _wants_banner():
        import tensorflow  # noqa: F401
        return
    with _banner_filtered():
        import tensorflow  # noqa: F401


class _QuietTensorFlow:
    """A meta-path finder that runs the `tensorflow` package's import under
    `_banner_filtered` (duck-typed: importlib.abc costs ~15 imports at startup)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:  # noqa: ANN401
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # find the real spec without recursing into ourselves
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or _wants_banner():
            return spec
        original_exec = spec.loader.exec_module

        def exec_quietly(module: ModuleType) -> None:
            with _banner_filtered():
                original_exec(module)

        spec.loader.exec_module = exec_quietly  # type: ignore[method-assign]
        return spec


def install_quiet_import_hook() -> None:
    """`import netspec`: the CLI's quiet default, and a later TensorFlow import (by Keras,
    or the user) filtered like the CLI's; TensorFlow itself is not imported here."""
    quiet_default()
    if "tensorflow" not in sys.modules and \
            not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlow())
