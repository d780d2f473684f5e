"""A search driver for test_search_ray: `python ray_driver.py HEAD OUT_DIR LOG_DIR`.

Runs a 4-trial study (3 initial trials, 2 at a time, then 1 proposal) of the slow eq. 4
objective on the Ray cluster at HEAD, logging to OUT_DIR/study.jsonl; a test kills it
part way and runs it again to resume.
"""

from __future__ import annotations

import functools
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo, for `tests.*`

from runtime.search import run_search  # noqa: E402
from tests.distributed.ray_objectives import slow_eq4  # noqa: E402
from tests.unit.search.search_objectives import config  # noqa: E402

TRIAL_SECONDS = 1.5


def main(head: str, out_dir: str, log_dir: str) -> None:
    cfg = config(initial={"count": 3}, max_trials=4, phi=1e6, workers=2, executor="ray",
                 address=head, resources={"cpus": 1})
    result = run_search(cfg, functools.partial(slow_eq4, log_dir, TRIAL_SECONDS),
                        out_dir=out_dir)
    print(f"{len(result.records)} trials: {result.reason}")  # noqa: T201 - read by the test


if __name__ == "__main__":
    main(*sys.argv[1:4])
