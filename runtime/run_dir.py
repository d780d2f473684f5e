"""Reading back what `netspec fit` wrote, with located errors for damaged run folders.

A run folder is user data: state.json, the checkpoints and model.keras may be truncated
by a full disk, edited by hand or copied from another run. Every reader here turns such
damage into a SpecError naming the file, what is wrong and how to recover, so neither
`eval`, `predict` nor `fit --resume` ever reports it as a netspec bug or trusts it.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import math
import os
from pathlib import Path
import tempfile
from typing import Any

from compiler.api import Spec, load_spec
from compiler.diagnostics import SourceLoc, SpecError

STATE_FILE = "state.json"
SPEC_FILE = "spec.resolved.yaml"
MODEL_FILE = "model.keras"
CHECKPOINTS = "checkpoints"
_STATE_HINT = ("state.json is written by `netspec fit` after each epoch and was damaged or "
               "edited since; restore it, or start a new run with -o NEW_DIR")
_MONITORS = ("val_loss", "val_nme")


def _where(path: Path) -> SourceLoc:
    return SourceLoc(str(path))


# ------------------------------------------------------------------ state.json

def read_state(run_dir: Path) -> dict[str, Any] | None:
    """RUN/state.json checked field by field (None when the run has none)."""
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise SpecError.at(_where(path), "state.json is not text (binary or corrupt content)",
                           hint=_STATE_HINT) from None
    except json.JSONDecodeError as e:
        raise SpecError.at(SourceLoc(str(path), e.lineno, e.colno),
                           f"state.json is not valid JSON ({e.msg}): the file is truncated or "
                           "was edited", hint=_STATE_HINT) from None
    except OSError as e:
        raise SpecError.at(_where(path), f"cannot read state.json: {e.strerror or e}") from None
    if not isinstance(state, dict):
        raise SpecError.at(_where(path), f"state.json must hold a JSON object, found "
                                         f"{type(state).__name__}", hint=_STATE_HINT)
    problems = _state_problems(state)
    if problems:
        raise SpecError.at(_where(path), problems[0], hint=_STATE_HINT,
                           notes=tuple(problems[1:]))
    return state


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _state_problems(s: dict[str, Any]) -> list[str]:
    out = []
    epoch = s.get("epoch")
    if not _is_int(epoch) or epoch < 0:
        out.append(f"'epoch' must be a whole number >= 0 (epochs trained), found {epoch!r}")
        epoch = None
    best = s.get("best")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))
                             or not math.isfinite(best)):
        out.append(f"'best' must be a finite number or null, found {best!r}")
    best_epoch = s.get("best_epoch")
    if best_epoch is not None and (not _is_int(best_epoch) or best_epoch < 1
                                   or (epoch is not None and best_epoch > epoch)):
        out.append(f"'best_epoch' must be a whole number in 1..epoch ({epoch}) or null, "
                   f"found {best_epoch!r}")
    if (best is None) != (best_epoch is None):
        out.append(f"'best' ({best!r}) and 'best_epoch' ({best_epoch!r}) must both be set or "
                   "both be null")
    for key in ("checkpoint", "data", "data_format", "stopped", "backend"):
        if s.get(key) is not None and not isinstance(s[key], str):
            out.append(f"'{key}' must be a string or null, found {s[key]!r}")
    if s.get("monitor") is not None and s["monitor"] not in _MONITORS:
        out.append(f"'monitor' must be one of {', '.join(_MONITORS)}, found {s['monitor']!r}")
    iterations = s.get("iterations")
    if iterations is not None and (not _is_int(iterations) or iterations < 0):
        out.append(f"'iterations' must be a whole number >= 0, found {iterations!r}")
    overrides = s.get("overrides")
    if overrides is not None and (not isinstance(overrides, list)
                                  or not all(isinstance(o, str) for o in overrides)):
        out.append(f"'overrides' must be a list of KEY=VALUE strings, found {overrides!r}")
    return out


def committed_checkpoint(run_dir: Path, state: dict[str, Any]) -> str:
    """The checkpoint file (RUN/checkpoints/ckpt-N.npz) of the epoch state.json committed;
    a run written before that format has a tf.train one, whose prefix is returned.

    state.json names it; it must be the one of its `epoch` and be on disk.
    The name is looked up inside RUN/checkpoints, so a moved run folder still resumes.
    """
    path = Path(run_dir) / STATE_FILE
    epoch, named = state["epoch"], state.get("checkpoint")
    if not named:
        raise SpecError.at(_where(path), f"state.json records {epoch} trained epoch(s) but "
                                         "names no checkpoint", hint=_STATE_HINT)
    expected = f"ckpt-{epoch}"
    if Path(named).name.removesuffix(".npz") != expected:
        raise SpecError.at(_where(path), f"state.json records epoch {epoch} but names "
                                         f"checkpoint '{Path(named).name}' (expected "
                                         f"'{expected}')", hint=_STATE_HINT)
    folder = Path(run_dir) / CHECKPOINTS
    neutral = folder / f"{expected}.npz"
    if neutral.is_file():
        return str(neutral)
    index = folder / f"{expected}.index"  # tf.train, before the .npz format
    if index.is_file() and folder.is_dir() and any(folder.glob(expected + ".data-*")):
        return str(folder / expected)
    raise SpecError.at(_where(path), f"the checkpoint of epoch {epoch} that state.json "
                                     f"names is missing ({neutral})",
                       hint="the run cannot be resumed; start a new run with -o NEW_DIR "
                            "(model.keras, the best epoch's model, is still usable)")


# ------------------------------------------------------------------ spec and model

def load_run_spec(run_dir: Path, overrides: Sequence[str] = ()) -> Spec:
    """The spec a run trained (RUN/spec.resolved.yaml), with `overrides` applied."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise SpecError.at(_where(run_dir), "run directory not found",
                           hint="pass the -o directory of `netspec fit` (default runs/<spec>)")
    if not run_dir.is_dir():
        raise SpecError.at(_where(run_dir), "expected a run directory, found a file",
                           hint="pass the -o directory of `netspec fit` (default runs/<spec>)")
    if not (run_dir / SPEC_FILE).is_file():
        raise SpecError.at(_where(run_dir), f"not a netspec run (no {SPEC_FILE})",
                           hint="pass the -o directory of `netspec fit`")
    return load_spec(run_dir / SPEC_FILE, overrides)


def load_run_model(run_dir: Path, spec: Spec | None = None) -> Any:
    """RUN/model.keras loaded (without compiling), checked against `spec` when given."""
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise SpecError.at(_where(Path(run_dir)), f"the run has no {MODEL_FILE} yet",
                           hint="it is written after the first epoch that improves the "
                                "validation figure; let `netspec fit` finish an epoch")
    import zipfile

    import keras

    import compiler.keras_layers  # noqa: F401 - registers netspec's custom layers

    hint = ("re-run `netspec fit` into a new -o directory, or restore the file; "
            "RUN/checkpoints holds the weights of the last epochs")
    if not zipfile.is_zipfile(path):
        raise SpecError.at(_where(path), "cannot load the model: the file is truncated or not "
                                         "a Keras archive (.keras is a zip file)", hint=hint)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - keras raises many kinds for a damaged archive
        raise SpecError.at(_where(path), "cannot load the model: the archive is damaged or "
                                         "was not written by netspec",
                           notes=(f"keras: {type(e).__name__}: {str(e)[:300]}",),
                           hint=hint) from None
    if spec is not None:
        _check_model_matches(path, model, spec)
    return model


def _check_model_matches(path: Path, model: Any, spec: Spec) -> None:
    """A model.keras copied from another run would be scored with this spec's decoding."""
    wanted_in = {i.name: tuple(i.out.shape[1:]) for i in spec.graph.inputs if i.out}
    ins, outs = getattr(model, "input", None), getattr(model, "output", None)
    if not isinstance(ins, dict) or not isinstance(outs, dict):  # not a netspec model
        ins, outs = {}, {}
    found_in = {name: tuple(t.shape[1:]) for name, t in ins.items()}
    wanted_out, found_out = {o.name for o in spec.graph.outputs}, set(outs)
    if found_in != wanted_in or not wanted_out <= found_out:
        raise SpecError.at(_where(path), "the model does not belong to this run's spec",
                           notes=(f"spec.resolved.yaml: inputs {wanted_in}, outputs "
                                  f"{sorted(wanted_out)}",
                                  f"model.keras: inputs {found_in}, outputs {sorted(found_out)}"),
                           hint="a run folder must hold the spec and model of one `netspec "
                                "fit`; re-run fit into a new -o directory")


def load_run(run_dir: Path, *, trained: bool = False, overrides: Sequence[str] = ()
             ) -> tuple[Spec, Any]:
    """(spec as trained, keras model) of a run directory, with clear errors.

    `trained=True` refuses a folder without a committed epoch (a `netspec compile`
    output: random weights, whose scores would mislead).
    """
    spec = load_run_spec(run_dir, overrides)
    if trained:
        require_trained(run_dir)
    return spec, load_run_model(run_dir, spec)


def require_trained(run_dir: Path) -> dict[str, Any]:
    """state.json of a run with at least one trained epoch, or a SpecError saying why not."""
    state = read_state(run_dir)
    if state is None or state["epoch"] < 1:
        raise SpecError.at(_where(Path(run_dir)), "this model was never trained (no "
                                                  "state.json with a finished epoch): its "
                                                  "scores would be those of random weights",
                           hint="a `netspec compile` output is untrained; train it with "
                                "`netspec fit SPEC -o RUN` and evaluate RUN")
    return state


# ------------------------------------------------------------------ output folders

def ensure_output_dir(path: Path, flag: str = "-o") -> Path:
    """Create `path` as a writable directory, or a SpecError naming it (not an OSError).

    Writability is probed by writing a file: root passes `os.access` on folders it then
    cannot write (read-only mounts), and a failure mid-run loses work.
    """
    path = Path(path)
    check_output_dir(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".netspec-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise SpecError.at(_where(path), f"{flag}: cannot create or write the directory: "
                                         f"{e.strerror or e}",
                           hint=f"give {flag} a directory you can write to") from None
    return path


def check_output_dir(path: Path, flag: str = "-o") -> None:
    """Fail early (before long work) if `path` could not be created as a directory."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise SpecError.at(_where(path), f"{flag}: expected a directory, found a file",
                               hint=f"give {flag} a new or existing directory, not a file")
        if not os.access(path, os.W_OK | os.X_OK):
            raise SpecError.at(_where(path), f"{flag}: the directory is not writable",
                               hint=f"give {flag} a directory you can write to")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise SpecError.at(_where(path), f"{flag}: cannot create the directory: '{parent}' is "
                                         "a file", hint=f"give {flag} a path whose folders "
                                                        "are directories")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SpecError.at(_where(path), f"{flag}: cannot create the directory: '{parent}' is "
                                         "not writable",
                           hint=f"give {flag} a directory you can write to")


def same_data(a: str, b: str | None) -> bool:
    """Whether two data arguments name the same set (a list file inside a folder counts)."""
    if b is None:
        return False
    if "synthetic" in (a, b):
        return a == b
    pa, pb = Path(a).resolve(), Path(b).resolve()
    return pa == pb or pa in pb.parents or pb in pa.parents
