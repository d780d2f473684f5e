"""Synthetic objectives and configs for the search tests (top-level, so picklable)."""

from __future__ import annotations

import math
from typing import Any

from runtime.search import SearchConfig, load_search_config

# The paper's eq. 4 (Table 2 fit), with its printed 4-decimal coefficients.
EQ4 = {"1": 36.6191, "b2": -15.9662, "b3": -1.6210, "b4": -13.9947,
       "b2^2": 14.6877, "b3^2": -2.9474, "b4^2": 8.2006}
SIMPLEX3 = {"params": {"b2": [0, 1], "b3": [0, 1], "b4": [0, 1]},
            "constraints": [{"sum": ["b2", "b3", "b4"], "le": 1.0}]}


def eq4(point: dict[str, float], trial: int) -> float:
    b2, b3, b4 = point["b2"], point["b3"], point["b4"]
    return (EQ4["1"] + EQ4["b2"] * b2 + EQ4["b3"] * b3 + EQ4["b4"] * b4
            + EQ4["b2^2"] * b2 ** 2 + EQ4["b3^2"] * b3 ** 2 + EQ4["b4^2"] * b4 ** 2)


def quartic(point: dict[str, float], trial: int) -> float:
    """Not a quadratic: a degree-2 fit keeps mispredicting its minimum."""
    x, y = point["x"], point["y"]
    return (x - 0.3) ** 4 + 3 * (y - 0.6) ** 4 + 0.2 * math.sin(7 * x)


def fails_on_trial_3(point: dict[str, float], trial: int) -> float:
    if trial == 3:
        raise RuntimeError("out of memory")
    return eq4(point, trial)


def config(**overrides: Any) -> SearchConfig:
    raw: dict[str, Any] = {**SIMPLEX3, "phi": 0.01}
    raw.update(overrides)
    return load_search_config(raw)


NOISE_SD = 0.3


def noisy_eq4(point: dict[str, float], trial: int, seed: int) -> float:
    """eq. 4 plus N(0, NOISE_SD) noise fixed by (seed, point), like a training run: the
    same seed at the same point gives the same value, another seed another one."""
    import numpy as np

    key = [seed, *(int(round(v * 1e6)) for v in point.values())]
    return eq4(point, trial) + float(np.random.default_rng(key).normal(0.0, NOISE_SD))
