"""Hostile run folders: damaged, edited or foreign files under `netspec eval`, `predict`
and `fit --resume`, and bad `-o` targets.

One tiny run is trained once per module; every case corrupts a copy of it and checks
that the CLI answers with exit 1 (or 2 for usage) and a message that names the file and
says what is wrong, never exit 70 ("internal error"), and never scores or resumes from
something it should not trust. Also: eval's defaults (the run's data, its held-out
split, no training-time data.limit) and the percent convention of fit's epoch lines.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
import shutil
import zipfile

import pytest

pytest.importorskip("tensorflow")

from netspec.cli import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.keras]

SPEC = "specs/rcn_4branch.yaml"
TINY = [f"{k}=[8,8,8,8,8,8,8]" for k in ("enc_filters", "conv1_filters", "conv2_filters")]
QUICK = [*TINY, "size=40", "train.optimizer=adam", "train.learning_rate=0.003",
         "train.steps_per_epoch=2", "train.batch_size=8", "data.limit=64",
         "data.val_split=32", "train.val_examples=32", "train.epochs=2"]
PEAK = """version: 1
name: peak
inputs: {image: {shape: [32, 32, 1]}}
layers: [{name: maps, op: identity, in: [image]}]
outputs: {heat: {from: maps, loss: heatmap_l2}}
data: {size: 32, channels: 1, normalize: scale, crop: none}
"""


def sets(values: list[str]) -> list[str]:
    return [a for v in values for a in ("--set", v)]


def netspec(*argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of an in-process `netspec ...`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def fails(rc_err: tuple[int, str, str], code: int, *needles: str) -> str:
    rc, _, err = rc_err
    assert rc == code, f"exit {rc}, wanted {code}:\n{err[-3000:]}"
    assert "internal error" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(a 2-epoch run of a tiny RCN on synthetic faces, fit's stderr)."""
    run = tmp_path_factory.mktemp("hostile") / "run"
    rc, _, err = netspec("fit", SPEC, "-o", str(run), *sets(QUICK))
    assert rc == 0, err[-3000:]
    return run, err


@pytest.fixture
def run(trained: tuple[Path, str], tmp_path: Path) -> Path:
    """A copy of the trained run to damage."""
    return Path(shutil.copytree(trained[0], tmp_path / "run"))


def edit_state(run: Path, **changes: object) -> None:
    path = run / "state.json"
    state = json.loads(path.read_text())
    state.update(changes)
    path.write_text(json.dumps(state))


def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


# ---------------------------------------------------------------- fit's own output

def test_fit_prints_one_line_per_epoch_in_percent(trained: tuple[Path, str]) -> None:
    _, err = trained
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"], err
    assert all(" %" in line and "val_nme" in line for line in lines), err
    assert "/step" not in err, "Keras' own verbose lines are replaced off a terminal"
    done = next(line for line in err.splitlines() if line.startswith("done in"))
    assert "best val_nme" in done and " % at epoch" in done


# ---------------------------------------------------------------- eval's defaults

def test_eval_defaults_to_the_held_out_split_of_the_runs_data(run: Path) -> None:
    rc, out, err = netspec("eval", str(run))
    assert rc == 0, err
    assert "scored synthetic, split val (the last 32 rows" in out and "warning" not in err
    assert out.count(" %") >= 5, out  # NME, FR and AUC in percent
    result = json.loads((run / "eval" / "synthetic_val.json").read_text())
    assert (result["data"], result["split"], result["n"]) == ("synthetic", "val", 32)
    assert result["trained_faces_scored"] == 0
    assert f"NME      {100 * result['nme']:.2f} %" in out  # JSON keeps the fraction


def test_eval_all_warns_that_training_faces_are_scored(run: Path) -> None:
    rc, out, err = netspec("eval", str(run), "--split", "all", "--set", "data.limit=200",
                           "--json")
    assert rc == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["data"], result["split"], result["n"]) == ("synthetic", "all", 200)
    assert result["trained_faces_scored"] == 64  # the run's data.limit of training rows
    assert "warning: 64 of the 200 scored faces were used to train this run" in err


def test_eval_scores_the_data_the_run_trained_on(run: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "faces.csv"  # what state.json says the run trained on
    edit_state(run, data=str(elsewhere))
    fails(netspec("eval", str(run)), 1, str(elsewhere))


def test_eval_set_takes_only_data_and_eval_keys(run: Path) -> None:
    for bad in ("size=3", "train.epochs=3", "data=5"):
        fails(netspec("eval", str(run), "--set", bad), 2, f"--set {bad}", "data.KEY")


def test_eval_refuses_an_untrained_model(run: Path, tmp_path: Path) -> None:
    (run / "state.json").unlink()
    fails(netspec("eval", str(run)), 1, f"{run}: error: this model was never trained",
          "netspec fit")
    spec = tmp_path / "peak.yaml"
    spec.write_text(PEAK)
    rc, _, err = netspec("compile", str(spec), "-o", str(tmp_path / "build"))
    assert rc == 0, err
    fails(netspec("eval", str(tmp_path / "build")), 1, "never trained")


# ---------------------------------------------------------------- damaged files

@pytest.mark.parametrize("how", ["truncated", "empty", "foreign_zip"])
def test_damaged_model_keras(run: Path, how: str, tmp_path: Path) -> None:
    model = run / "model.keras"
    if how == "truncated":
        truncate(model, 1000)
    elif how == "empty":
        model.write_bytes(b"")
    else:
        with zipfile.ZipFile(model, "w") as z:
            z.writestr("config.json", "{not json")
    err = fails(netspec("eval", str(run)), 1, f"{model}: error: cannot load the model")
    assert "not found" not in err
    image = tmp_path / "face.png"
    from PIL import Image

    Image.new("L", (48, 48), 128).save(image)
    fails(netspec("predict", str(run), str(image), "-o", str(tmp_path / "out")), 1,
          f"{model}: error: cannot load the model")


def test_model_of_another_spec(run: Path) -> None:
    (run / "spec.resolved.yaml").write_text(PEAK)
    fails(netspec("eval", str(run)), 1, "model.keras: error: the model does not belong to "
                                        "this run's spec")


@pytest.mark.parametrize(("content", "needle"), [
    (None, "state.json is not valid JSON"),  # truncated
    (b"\xff\xfe\x00garbage", "state.json is not text"),
    (b"[1, 2]", "must hold a JSON object, found list"),
    (b'{"epoch": "two"}', "'epoch' must be a whole number >= 0"),
    (b'{"epoch": true}', "'epoch' must be a whole number >= 0"),
    (b'{"epoch": 2, "best": 0.5, "best_epoch": 7}', "'best_epoch' must be a whole number"),
    (b'{"epoch": 2, "best": NaN, "best_epoch": 1}', "'best' must be a finite number"),
    (b'{"epoch": 2, "overrides": "x=1"}', "'overrides' must be a list"),
])
def test_damaged_state_json(run: Path, content: bytes | None, needle: str) -> None:
    state = run / "state.json"
    if content is None:
        truncate(state, 40)
    else:
        state.write_bytes(content)
    before = (run / "metrics.jsonl").read_text()
    fails(netspec("eval", str(run)), 1, f"{state}", needle)
    fails(netspec("fit", SPEC, "-o", str(run), "--resume", *sets(QUICK),
                  "--set", "train.epochs=3"), 1, needle)
    assert (run / "metrics.jsonl").read_text() == before


def test_damaged_spec_resolved_yaml(run: Path) -> None:
    (run / "spec.resolved.yaml").write_bytes(b"version: 1\nlayers: [\x00\xff")
    fails(netspec("eval", str(run)), 1, "spec.resolved.yaml")
    (run / "spec.resolved.yaml").unlink()
    fails(netspec("eval", str(run)), 1, "not a netspec run")


def test_run_directory_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "run"
    f.write_text("x")
    fails(netspec("eval", str(f)), 1, f"{f}: error: expected a run directory")


def test_eval_output_folder_that_is_a_file(run: Path) -> None:
    shutil.rmtree(run / "eval", ignore_errors=True)
    (run / "eval").write_text("in the way")
    fails(netspec("eval", str(run)), 1, "RUN/eval: expected a directory, found a file")


# ---------------------------------------------------------------- fit --resume

def test_resume_refuses_a_negative_epoch(run: Path) -> None:
    edit_state(run, epoch=-4)
    before = (run / "metrics.jsonl").read_text()
    fails(netspec("fit", SPEC, "-o", str(run), "--resume", *sets(QUICK)), 1,
          "state.json: error: 'epoch' must be a whole number >= 0", "found -4")
    assert (run / "metrics.jsonl").read_text() == before


def test_resume_checks_the_checkpoint_state_json_names(run: Path) -> None:
    edit_state(run, epoch=2, checkpoint=str(run / "checkpoints" / "ckpt-1"))
    fails(netspec("fit", SPEC, "-o", str(run), "--resume", *sets(QUICK), "--set",
                  "train.epochs=3"), 1, "records epoch 2 but names checkpoint 'ckpt-1'")
    edit_state(run, epoch=2, checkpoint=None)
    fails(netspec("fit", SPEC, "-o", str(run), "--resume", *sets(QUICK), "--set",
                  "train.epochs=3"), 1, "names no checkpoint")
    edit_state(run, epoch=2, checkpoint="/moved/elsewhere/ckpt-2")
    (run / "checkpoints" / "ckpt-2.npz").unlink()
    fails(netspec("fit", SPEC, "-o", str(run), "--resume", *sets(QUICK), "--set",
                  "train.epochs=3"), 1, "the checkpoint of epoch 2 that state.json names is "
                                         "missing")


def test_resume_from_a_truncated_checkpoint(run: Path) -> None:
    truncate(run / "checkpoints" / "ckpt-2.npz", 3000)
    fails(netspec("fit", SPEC, "-o", str(run), "--resume", *sets(QUICK), "--set",
                  "train.epochs=3"), 1, "ckpt-2.npz: error: cannot restore the checkpoint of "
                                        "epoch 2")


def test_resume_names_the_keys_that_differ(run: Path) -> None:
    err = fails(netspec("fit", SPEC, "-o", str(run), "--resume", *sets(QUICK), "--set",
                        "train.batch_size=4", "--data", "/some/other/faces"), 1,
                "--resume with a spec that differs", "train.batch_size: 8 (this run) vs 4 "
                "(now)", "--data: synthetic (this run) vs /some/other/faces (now)")
    assert "netspec diff" not in err  # nothing in the layers differs


def test_resume_may_raise_the_epoch_count(run: Path) -> None:
    with open(run / "metrics.jsonl", "a") as fh:  # a hand-edited line is dropped, no crash
        fh.write('{"epoch": "x"}\n')
    rc, _, err = netspec("fit", SPEC, "-o", str(run), "--resume", *sets(QUICK),
                         "--set", "train.epochs=3")
    assert rc == 0, err[-3000:]
    assert "resuming with train.epochs 2 -> 3" in err and "after epoch 2" in err
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text()
              .splitlines()]
    assert epochs == [1, 2, 3]
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 3 and state["checkpoint"].endswith("ckpt-3")
    rc, _, err = netspec("fit", SPEC, "-o", str(run), "--resume", *sets(QUICK),
                         "--set", "train.epochs=3")
    assert rc == 0 and "already trained 3 of 3 epochs" in err


# ---------------------------------------------------------------- -o and memory

def test_fit_output_that_is_a_file_or_under_one(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    fails(netspec("fit", SPEC, "-o", str(f), *sets(QUICK)), 1,
          f"{f}: error: -o: expected a directory, found a file")
    fails(netspec("fit", SPEC, "-o", str(f / "run"), *sets(QUICK)), 1,
          "-o: cannot create the directory", "is a file")


def test_fit_of_a_model_too_big_for_memory(tmp_path: Path) -> None:
    huge = [f"{k}=[300000,8,8,8,8,8,8]" for k in ("enc_filters", "conv1_filters")]
    err = fails(netspec("fit", SPEC, "-o", str(tmp_path / "run"), *sets([*QUICK[3:], *huge])),
                1, "the model cannot fit in memory", "TB of float32 weights")
    assert "largest layer" in err
    assert not (tmp_path / "run").exists()


def test_out_of_memory_at_build_is_a_located_error() -> None:
    import numpy as np

    from compiler.api import load_spec
    from runtime.train.model_memory import is_out_of_memory, out_of_memory_error

    try:
        np.empty(1 << 62, np.uint8)
    except MemoryError as e:  # numpy's _ArrayMemoryError
        assert is_out_of_memory(e)
        err = out_of_memory_error(load_spec(SPEC, TINY), "adam", e)
        assert "ran out of memory" in str(err) and "specs/rcn_4branch.yaml" in str(err)
    else:  # pragma: no cover - an exabyte was granted
        pytest.skip("the allocation did not fail")
