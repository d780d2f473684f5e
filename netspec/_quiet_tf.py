"""Import TensorFlow without its native start-up banner on stderr.

TF 2.21 writes "All log messages before absl::InitializeLog() ..." and CUDA-probing
lines from C++ before any log level applies (TF_CPP_MIN_LOG_LEVEL hides only the later
ones), so the import runs with file descriptor 2 pointed at a temporary file. Afterwards
every captured line that is not such a banner line is written back, and if the import
fails everything captured is, so no real message is lost.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_BANNER = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                     r"|[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]"
                     r"|To enable the following instructions: .*rebuild TensorFlow)")


def import_tensorflow() -> None:
    """Import tensorflow once; TF_CPP_MIN_LOG_LEVEL=0 (or a debugger's stderr) keeps the
    banner."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        import tensorflow  # noqa: F401
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr descriptor (embedded, some IDEs)
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            import tensorflow  # noqa: F401
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
