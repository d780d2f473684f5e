"""`netspec search` glue without TensorFlow: validating a spec's search section against
the spec, trial overrides, reading a trial's metrics, progress lines, and a whole
search with a stand-in trial (resume, settings check, report)."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
from typing import Any

import pytest

from compiler.api import load_spec
from compiler.diagnostics import SpecError
from runtime.search import command as search_cmd
from runtime.search import read_study
from runtime.search.study import TrialRecord

REPO = Path(__file__).resolve().parents[3]

TINY = """\
version: 1
name: tiny
params:
  n_landmarks: 5
  a: 0.5
  b: 0.5
  unused: 1.0
  label: x
inputs:
  image: {shape: [8, 8, 1]}
layers:
  - {name: f, op: flatten, in: [image]}
  - {name: sa, op: scale, in: [f], value: $a}
  - {name: sb, op: scale, in: [f], value: $b}
  - {name: c, op: concat, in: [sa, sb]}
  - {name: out, op: dense, in: [c], units: 10}
outputs:
  landmarks: {from: out, loss: coord_l2}
train: {epochs: 7}
search:
  params: {a: [0, 1], b: [0, 1]}
  constraints: [{sum: [a, b], le: 1}]
  initial: {count: 6, seed: 0}
  trial: {epochs: 1, objective: val_loss}
  phi: 1.0e-6
  max_trials: 9
"""


def write_spec(tmp_path: Path, text: str = TINY, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------ search_config

def test_shipped_search_specs_validate() -> None:
    cfg, space = search_cmd.search_config(load_spec(REPO / "specs/is_net.yaml"))
    assert space.names == ("beta2", "beta3", "beta4")
    assert [c.text for c in space.constraints] == ["beta2 + beta3 + beta4 <= 1"]
    assert cfg.design.count == 15 and cfg.budget.objective == "val_loss"
    _, space = search_cmd.search_config(load_spec(REPO / "specs/sumnet_search.yaml"))
    assert space.names == ("w1", "w2", "w3", "w4") and len(space.constraints) == 2


def test_a_spec_without_search_section_is_a_located_error() -> None:
    with pytest.raises(SpecError, match="no `search:` section") as err:
        search_cmd.search_config(load_spec(REPO / "specs/is_cnn_baseline.yaml"))
    assert err.value.diagnostics[0].loc.file.endswith("is_cnn_baseline.yaml")


def test_unknown_searched_param_points_at_its_line_with_a_suggestion(tmp_path: Path) -> None:
    path = write_spec(tmp_path, TINY.replace("params: {a: [0, 1], b: [0, 1]}",
                                             "params: {a: [0, 1], bb: [0, 1]}")
                      .replace("sum: [a, b]", "sum: [a, bb]"))
    with pytest.raises(SpecError) as err:
        search_cmd.search_config(load_spec(path))
    (diag,) = err.value.diagnostics
    assert "'bb' is not a param" in diag.message and diag.hint == "did you mean 'b'?"
    assert diag.loc.line == TINY.splitlines().index(
        "  params: {a: [0, 1], b: [0, 1]}") + 1


def test_non_numeric_and_unused_params_are_rejected(tmp_path: Path) -> None:
    text = (TINY.replace("params: {a: [0, 1], b: [0, 1]}",
                         "params: {a: [0, 1], label: [0, 1]}")
            .replace("sum: [a, b]", "sum: [a, label]"))
    with pytest.raises(SpecError, match="only numeric params"):
        search_cmd.search_config(load_spec(write_spec(tmp_path, text)))
    text = (TINY.replace("params: {a: [0, 1], b: [0, 1]}",
                         "params: {a: [0, 1], unused: [0, 1]}")
            .replace("sum: [a, b]", "sum: [a, unused]"))
    with pytest.raises(SpecError, match="changing 'unused' from 0 to 1 changes nothing"):
        search_cmd.search_config(load_spec(write_spec(tmp_path, text)))


def test_section_errors_read_as_search_keys(tmp_path: Path) -> None:
    path = write_spec(tmp_path, TINY.replace("phi: 1.0e-6", "phii: 1.0e-6"))
    with pytest.raises(SpecError) as err:
        search_cmd.search_config(load_spec(path))
    text = str(err.value)
    assert "search: unknown key 'phii'" in text and "did you mean 'phi'?" in text
    line = TINY.splitlines().index("  phi: 1.0e-6") + 1
    assert any(d.loc.line == line for d in err.value.diagnostics)


def test_settings_take_the_command_line_over_the_spec() -> None:
    cfg, _ = search_cmd.search_config(load_spec(REPO / "specs/is_net.yaml"))
    assert search_cmd.settings(cfg) is cfg
    got = search_cmd.settings(cfg, workers=3, executor="process", address=None)
    assert (got.workers, got.executor, got.address) == (3, "local", None)
    assert search_cmd.settings(cfg, executor="ray", address="auto").executor == "ray"
    with pytest.raises(SpecError, match="unknown executor 'rey'"):
        search_cmd.settings(cfg, executor="rey")
    with pytest.raises(SpecError, match="at least 1"):
        search_cmd.settings(cfg, workers=0)


# ------------------------------------------------------------ trial helpers

def test_budget_overrides() -> None:
    assert search_cmd.budget_overrides(3, None, 5, None) == ["train.seed=5", "train.epochs=3"]
    assert search_cmd.budget_overrides(None, 40, 0, None) == [
        "train.seed=0", "train.epochs=1", "train.steps_per_epoch=40"]
    # the spec caps steps per epoch: whole epochs covering the steps
    assert search_cmd.budget_overrides(None, 45, 0, 20) == ["train.seed=0", "train.epochs=3"]
    assert search_cmd.budget_overrides(None, None, 1, None) == ["train.seed=1"]


def test_point_overrides_keep_every_digit_and_load() -> None:
    point = {"beta2": 0.1 + 0.2, "beta3": 0.0, "beta4": 1 / 3}
    sets = search_cmd.point_overrides(point)
    assert sets == ["beta2=0.30000000000000004", "beta3=0.0", "beta4=0.3333333333333333"]
    spec = load_spec(REPO / "specs/is_net.yaml", sets)
    scales = {n.name: n.params.value for n in spec.graph.nodes if n.op == "scale"}
    assert scales == {"syn2.beta": point["beta2"], "syn3.beta": 0.0,
                      "syn4.beta": point["beta4"]}


def test_user_overrides_of_searched_params_are_dropped() -> None:
    got = search_cmd.without_params(["beta2=0.4", "params.beta3=1", "hidden=8",
                                     "train.epochs=2"], ("beta2", "beta3"))
    assert got == ["hidden=8", "train.epochs=2"]


def test_trial_threads_share_the_cores() -> None:
    assert search_cmd.trial_threads(1, "local", cores=8) is None
    assert search_cmd.trial_threads(2, "local", cores=2) == 1
    assert search_cmd.trial_threads(3, "local", cores=8) == 2
    assert search_cmd.trial_threads(4, "local", cores=2) == 1
    assert search_cmd.trial_threads(2, "ray", cores=8) is None
    assert search_cmd.trial_threads(4, "ray", cores=8, ray_cpus=1.5) == 2  # its reservation
    assert search_cmd.trial_threads(1, "ray", ray_cpus=0.25) == 1
    ctx = search_cmd.TrialContext("s.yaml", (), "d", "val_loss", threads=2, cores=8, initial=15)
    assert [ctx.threads_for(t) for t in (1, 15, 16, 30)] == [2, 2, 8, 8]
    assert search_cmd.TrialContext("s.yaml", (), "d", "val_loss").threads_for(16) is None


def test_trial_figures_take_the_best_finite_epoch(tmp_path: Path) -> None:
    rows = [{"epoch": 1, "val_loss": 0.5, "val_nme": 0.2},
            {"epoch": 2, "val_loss": float("nan"), "val_nme": 0.1},
            {"epoch": 3, "val_loss": 0.3, "val_nme": 0.15}]
    (tmp_path / "metrics.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n")
    read = search_cmd.read_metrics(tmp_path)
    assert len(read) == 3
    assert search_cmd.trial_figures(read, "val_loss") == {
        "objective": 0.3, "epochs": 3.0, "val_loss": 0.3, "val_nme": 0.1}
    assert search_cmd.trial_figures(read, "val_nme")["objective"] == 0.1
    assert search_cmd.read_metrics(tmp_path / "missing") == []
    with pytest.raises(ValueError, match="no finite val_loss"):
        search_cmd.trial_figures([{"val_loss": float("inf")}], "val_loss")


def test_progress_lines_track_the_best_running_failed_and_f_hat_min(
        capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.search import Job

    def rec(trial: int, obj: float | None, kind: str = "initial", **kw: Any) -> TrialRecord:
        return TrialRecord(trial, {"a": 0.25, "b": 0.5}, obj, kind,  # type: ignore[arg-type]
                           "ok" if obj is not None else "failed", 0, 12.34, **kw)

    def job(trial: int, kind: str = "initial", **kw: Any) -> Job:
        return Job(trial, (("a", 0.25), ("b", 0.5)), kind, 0, **kw)  # type: ignore[arg-type]

    prog = search_cmd.Progress("val_loss", 9, previous=[rec(1, 0.4)])
    prog.started(job(2))
    prog.started(job(3))
    assert prog.state() == "2 running, 1 finished, 0 failed, f_hat_min -"
    assert capsys.readouterr().err == ""  # initial trials start silently, side by side
    assert prog.line(rec(2, 0.5)) == ("trial   2/9 initial   a=0.2500 b=0.5000  val_loss 0.5  "
                                      "12.3 s  best 0.4 (trial 1)  [1 running, 2 finished, "
                                      "0 failed, f_hat_min -]")
    line = prog.line(rec(3, None, error="RuntimeError: boom"))
    assert "FAILED: RuntimeError: boom" in line and line.endswith(
        "best 0.4 (trial 1)  [0 running, 2 finished, 1 failed, f_hat_min -]")
    prog.started(job(4, "proposal", predicted=0.2, degree=2))
    assert capsys.readouterr().err == ("started trial 4/9 proposal a=0.2500 b=0.5000; 1 running"
                                       ", 2 finished, 1 failed, f_hat_min 0.2 (trial 4)\n")
    line = prog.line(rec(4, 0.25, "proposal", predicted=0.2, degree=2))
    assert "(f_hat 0.2, degree 2)" in line and line.endswith(
        "best 0.25 (trial 4)  [0 running, 3 finished, 1 failed, "
        "f_hat_min 0.2 (trial 4)]")
    # a resumed study starts from its log: the last proposal's f_hat is the minimum
    again = search_cmd.Progress("val_loss", 9, previous=[
        rec(1, 0.4), rec(2, None), rec(3, 0.3, "proposal", predicted=0.28, degree=2)])
    assert again.state() == "0 running, 2 finished, 1 failed, f_hat_min 0.28 (trial 3)"


# ------------------------------------------------------------ a whole search, no TF

def fake_trial(ctx: search_cmd.TrialContext, point: dict[str, float], trial: int
               ) -> dict[str, Any]:
    """Stand-in for run_trial: a quadratic with its minimum at a=0.3, b=0.5."""
    run_dir = Path(ctx.study_dir) / "trials" / f"{trial:03d}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "overrides.json").write_text(json.dumps(list(ctx.overrides)))
    value = 1.0 + (point["a"] - 0.3) ** 2 + 2 * (point["b"] - 0.5) ** 2
    return {"objective": value, "run_dir": str(run_dir), "val_nme": value / 10}


def test_search_spec_runs_reports_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(search_cmd, "run_trial", fake_trial)
    path, out = write_spec(tmp_path), tmp_path / "study"
    sets = ["a=0.9", "train.batch_size=4"]
    result = search_cmd.search_spec(load_spec(path, sets), out, overrides=sets)
    assert result.converged and len(result.records) == 7  # 6 initial + 1 exact proposal
    prop = result.proposal
    assert prop is not None
    assert prop.point["a"] == pytest.approx(0.3, abs=1e-4)
    assert prop.point["b"] == pytest.approx(0.5, abs=1e-4)
    err = capsys.readouterr().err
    assert err.count("\ntrial ") + err.startswith("trial ") == 7
    assert "note: --set a=0.9 is ignored" in err and "f_hat_min (predicted)" in err
    assert "trial   7/9 proposal" in err and "report.txt" in err
    assert (out / "report.txt").read_text().startswith("search over a, b: 7 trials")
    assert (out / "surrogate.png").stat().st_size > 0
    # the trial saw the user's overrides (minus the searched a) and the trial budget
    assert json.loads((out / "trials/001/overrides.json").read_text()) == [
        "train.batch_size=4", "train.seed=0", "train.epochs=1"]
    assert json.loads((out / "search.json").read_text())["objective"] == "val_loss"

    # resume: drop the proposal from the log; only it runs again
    lines = (out / "study.jsonl").read_text().splitlines(keepends=True)
    (out / "study.jsonl").write_text("".join(lines[:6]))
    calls: list[int] = []

    def counting(ctx: Any, point: dict[str, float], trial: int) -> dict[str, Any]:
        calls.append(trial)
        return fake_trial(ctx, point, trial)

    monkeypatch.setattr(search_cmd, "run_trial", counting)
    again = search_cmd.search_spec(load_spec(path, sets), out, overrides=sets)
    assert calls == [7] and again.converged
    assert again.proposal is not None and again.proposal.point == prop.point
    assert "resuming: 6 finished trial(s)" in capsys.readouterr().err
    assert len(read_study(out)) == 7

    # settings that change what a trial measures refuse to resume
    with pytest.raises(SpecError, match=r"other settings \(model, overrides differ\)"):
        search_cmd.search_spec(load_spec(path), out, overrides=[])
    path.write_text(TINY.replace("units: 10}", "units: 10, use_bias: false}"))
    with pytest.raises(SpecError, match=r"model differ"):
        search_cmd.search_spec(load_spec(path, sets), out, overrides=sets)


def test_summary_without_a_proposal() -> None:
    from runtime.search import SearchResult
    from runtime.search.space import SearchSpace

    space = SearchSpace(("a",), (0.0,), (1.0,))
    rec = TrialRecord(1, {"a": 0.5}, 2.0, "initial", "ok", 0, 1.0)
    text = search_cmd.summary(SearchResult(space, (rec,), None, False, "budget spent"),
                              Path("r.txt"), None, 3.2)
    assert text.splitlines() == ["search stopped: budget spent",
                                 "best measured: trial 1 (initial) 2 at a=0.5000",
                                 "1 trials, 3 s; report: r.txt"]


def test_importing_the_command_does_not_import_tensorflow() -> None:
    code = ("import sys, runtime.search.command as m; "
            "m.search_config(__import__('compiler.api').api.load_spec('specs/is_net.yaml')); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
