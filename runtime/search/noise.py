"""The objective's run-to-run noise: one point trained with several seeds.

A trial's objective moves with the training seed (initialisation, shuffling) even at
a fixed point, so a stopping threshold phi below that noise can only be met by luck.
`replicate_jobs` retrains the first initial point with other seeds; `estimate_noise`
turns those runs into sigma_hat, which `phi: {noise: k}` scales.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math

import numpy as np

from runtime.search.executors import Job
from runtime.search.study import TrialRecord


@dataclass(frozen=True)
class NoiseEstimate:
    """Sample standard deviation (ddof 1) of the objective at one point over seeds."""

    sd: float
    runs: int  # successful runs it is computed from
    trial: int  # the trial whose point was replicated
    seeds: tuple[int, ...]
    mean: float

    def text(self, unit: str = "objective") -> str:
        seeds = ", ".join(str(s) for s in self.seeds)
        return (f"noise: sd {self.sd:.4g} of the {unit} from {self.runs} runs of trial "
                f"{self.trial}'s point (seeds {seeds}; mean {self.mean:.4g})")


def replicate_jobs(first: Job, replicates: int, start: int) -> list[Job]:
    """`replicates` reruns of `first` with seeds first.seed + 1, + 2, ...; trial ids from
    `start`. They run in the first batch, beside the initial design."""
    return [Job(start + i, first.point, "replicate", first.seed + 1 + i)
            for i in range(replicates)]


def estimate_noise(records: Sequence[TrialRecord]) -> NoiseEstimate | None:
    """sigma_hat from trial 1 and its replicates; None with fewer than 2 successful runs."""
    first = next((r for r in records if r.kind == "initial"), None)
    if first is None:
        return None
    runs = [r for r in records if r.ok and (r.trial == first.trial or r.kind == "replicate")]
    if len(runs) < 2:
        return None
    values = np.array([r.objective for r in runs], dtype=float)
    sd = float(values.std(ddof=1))
    return NoiseEstimate(sd if math.isfinite(sd) else 0.0, len(runs), first.trial,
                         tuple(r.seed for r in runs), float(values.mean()))
