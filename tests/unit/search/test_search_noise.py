"""Measuring the objective's noise and stopping relative to it (issue 17)."""

from __future__ import annotations

import pytest

from compiler.diagnostics import SpecError
from runtime.search import format_report, load_search_config, run_search
from tests.unit.search.search_objectives import NOISE_SD, SIMPLEX3, eq4, noisy_eq4


def noisy_config(k: float, replicates: int = 30, max_trials: int = 50):
    return load_search_config({**SIMPLEX3, "phi": {"noise": k},
                               "noise": {"replicates": replicates}, "max_trials": max_trials})


def test_replicates_measure_the_noise_and_phi_follows_it() -> None:
    result = run_search(noisy_config(2.0), noisy_eq4)
    reps = [r for r in result.records if r.kind == "replicate"]
    assert [r.trial for r in reps] == list(range(16, 46))
    assert [r.seed for r in reps] == list(range(1, 31))
    assert all(r.point == result.records[0].point for r in reps)
    noise = result.noise
    assert noise is not None and noise.runs == 31 and noise.trial == 1
    assert abs(noise.sd - NOISE_SD) / NOISE_SD < 0.3
    assert result.phi == pytest.approx(2.0 * noise.sd)
    assert result.converged and len(result.records) == 46  # the first proposal
    assert result.reason.endswith(f"< phi = 2 x noise sd {noise.sd:.4g} = "
                                  f"{2 * noise.sd:.4g}")
    assert result.surrogate is not None and result.surrogate.n_points == 15  # no replicates
    text = format_report(result)
    assert f"noise: sd {noise.sd:.4g} of the objective from 31 runs of trial 1's point" in text
    assert "(15 initial, 30 noise replicates, 1 proposal)" in text


def test_a_phi_far_below_the_noise_does_not_stop_on_the_first_proposal() -> None:
    strict = run_search(noisy_config(0.01, max_trials=47), noisy_eq4)
    assert not strict.converged and strict.reason == "trial budget spent (max_trials = 47)"
    assert strict.phi == pytest.approx(0.01 * strict.noise.sd)


def test_an_absolute_phi_below_the_noise_is_flagged_in_the_report() -> None:
    cfg = load_search_config({**SIMPLEX3, "phi": 0.01, "noise": {"replicates": 3},
                              "max_trials": 20})
    text = format_report(run_search(cfg, noisy_eq4))
    assert "phi (stop when |f_hat_min - f_min| < phi): 0.01" in text
    assert "note: phi is below the noise sd" in text


def test_relative_phi_needs_replicates_and_a_seeded_objective() -> None:
    with pytest.raises(SpecError, match=r"phi.*needs the noise measured from 3 runs or more"):
        load_search_config({**SIMPLEX3, "phi": {"noise": 1.0}})
    with pytest.raises(SpecError, match="max_trials.*initial design and the noise replicates"):
        load_search_config({**SIMPLEX3, "phi": 1.0, "noise": {"replicates": 5},
                            "max_trials": 20})
    with pytest.raises(SpecError, match="the objective takes no seed"):
        run_search(noisy_config(1.0, replicates=2, max_trials=20), eq4)


def test_failed_replicates_leave_a_relative_phi_unset() -> None:
    def flaky(point: dict[str, float], trial: int, seed: int) -> float:
        if trial == 1 or seed > 0:
            raise RuntimeError("diverged")
        return eq4(point, trial)

    result = run_search(noisy_config(1.0, replicates=2, max_trials=20), flaky)
    assert not result.converged and result.noise is None
    assert result.reason == ("phi = {noise: 1} needs the noise, but only 0 of the 3 runs of "
                             "trial 1's point succeeded")
