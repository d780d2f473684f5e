"""The Information-Synthesis outer search: fit a polynomial to trial losses, minimise it
under linear constraints, evaluate the minimiser, repeat (the paper's Table 1). TF-free.

Names load lazily, so `netspec check` can validate a `search:` section (space.py)
without importing scipy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "Job": "executors", "Outcome": "executors", "call_objective": "executors",
    "run_trials": "executors", "takes_seed": "executors",
    "SearchResult": "loop", "exploration_point": "loop", "initial_jobs": "loop",
    "run_search": "loop", "search_steps": "loop",
    "NoiseEstimate": "noise", "estimate_noise": "noise",
    "Minimum": "minimize", "minimize_surrogate": "minimize", "sample_feasible": "minimize",
    "format_report": "report", "plot_slices": "report", "write_report": "report",
    "InitialDesign": "space", "LinearConstraint": "space", "NoiseDesign": "space",
    "RelativePhi": "space", "SearchConfig": "space",
    "SearchSpace": "space", "TrialBudget": "space", "load_search_config": "space",
    "STUDY_FILE": "study", "StudyLog": "study", "TrialRecord": "study", "read_study": "study",
    "trial_dir": "study",
    "FitQuality": "surrogate", "Surrogate": "surrogate", "fit_surrogate": "surrogate",
    "polynomial_terms": "surrogate",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'runtime.search' has no attribute '{name}'")
    return getattr(import_module(f"runtime.search.{_WHERE[name]}"), name)
