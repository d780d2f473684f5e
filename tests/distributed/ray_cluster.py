"""A real Ray head on 127.0.0.1 for the tests, started once per test session.

`ray start --head --block` runs as a child process with two CPUs; tests and the driver
subprocesses they start join it by address. SIGTERM to that process stops the whole
cluster (it owns the GCS, raylet and workers), so no Ray process outlives the session.
The cluster uses Ray's token authentication with a token of its own, set in this
process's environment (RAY_AUTH_MODE / RAY_AUTH_TOKEN) so the drivers inherit it.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """'127.0.0.1:PORT' of a 2-CPU, 0-GPU Ray cluster (skipped when ray is missing)."""
    # before ray is imported: it reads the auth settings once per process
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    pytest.importorskip("ray", reason="ray is in the test extra: pip install -e '.[test]'")
    port = free_port()
    # a short temp dir: Ray's unix sockets must fit in 107 bytes
    temp = Path("/tmp") / f"nsray{os.getpid()}"
    log = tmp_path_factory.mktemp("ray") / "head.log"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with open(log, "wb") as out:
        head = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
             "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + START_TIMEOUT_S
    while not _listening(port):
        if head.poll() is not None or time.time() > deadline:
            head.kill()
            pytest.fail(f"the Ray head did not start: {log.read_text()[-2000:]}")
        time.sleep(0.3)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)  # Ray's session logs and sockets
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
