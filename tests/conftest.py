"""Shared fixtures: the read-only face data beside the repo, skipped when absent, and
`--update-goldens`, which rewrites the golden files under tests/golden/ instead of
comparing against them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.distributed.ray_cluster import ray_head  # noqa: F401 - one Ray head per session

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NETSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/golden/** from the current compiler output "
                          "(then review the diff) instead of comparing")


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared face data not found at {SHARED_DATA} (set NETSPEC_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
