"""`netspec fit`: train a spec on faces, with validation, checkpoints and resume.

RUN/ holds spec.resolved.yaml, checkpoints/ (weights + optimizer state, see Note
[Checkpoint commit point] in runtime/train/callbacks.py), state.json, model.keras (best by
the monitored validation figure), metrics.jsonl (one JSON object per epoch) and
tensorboard/. `resume=True` continues a killed run from its last complete epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
import hashlib
import json
import logging
from pathlib import Path
import shutil
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any
import warnings

import numpy as np

from compiler.api import Spec, expanded_document
from compiler.diagnostics import SourceLoc, SpecError
from compiler.dump import dump_spec
from runtime.atomic import atomic_write_json, atomic_write_text
from runtime.data.config import DataConfig
from runtime.datasets import (
    backgrounds,
    check_clip_outputs,
    clip_length,
    explain_pipeline_error,
    load_clip_source,
    load_faces,
    spec_data_config,
    split,
    split_clips,
)
from runtime.evaluate.eval_config import EvalConfig, eval_config
from runtime.evaluate.metrics import format_figure
from runtime.run_dir import (
    SPEC_FILE,
    check_output_dir,
    committed_checkpoint,
    ensure_output_dir,
    read_state,
    same_data,
)
from runtime.train import devices
from runtime.train.model_memory import check_fits_in_memory, is_out_of_memory, out_of_memory_error
from runtime.train.train_config import TrainConfig, train_config

if TYPE_CHECKING:
    from runtime.train.model_setup import Objective

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    run_dir: Path
    epochs_done: int
    best: float | None
    best_epoch: int | None
    stopped: str  # "completed" | "early_stopping" | "time_budget"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # noqa: T201 - user-facing progress lines


def resolve_run_dir(run_dir: Path, *, explicit: bool, resume: bool) -> Path:
    """A fresh run never overwrites another: default dirs get a numeric suffix."""
    if resume or not (run_dir / "state.json").exists():
        return run_dir
    if explicit:
        raise SpecError.at(SourceLoc(str(run_dir)), "this run directory already holds a run",
                           hint="pass --resume to continue it, or -o NEW_DIR for a new run")
    n = 2
    while (run_dir.parent / f"{run_dir.name}_{n}" / "state.json").exists():
        n += 1
    return run_dir.parent / f"{run_dir.name}_{n}"


def _configs(spec: Spec, data: str | None, data_format: str | None,
             device: dict[str, Any], resume: bool = False
             ) -> tuple[DataConfig, TrainConfig, EvalConfig]:
    dcfg = spec_data_config(spec, data, data_format)
    tsec = spec.section("train")
    tcfg = train_config(tsec, tsec.loc, check_paths=not resume)  # a resume ignores init_from
    ecfg = eval_config(spec.section("eval"), spec.section("eval").loc)
    flags = {k: v for k, v in device.items() if v and v != "default"}
    return dcfg, replace(tcfg, **flags), ecfg


# What a resume may change: how long the run goes on, not what it trains.
RESUMABLE_CHANGES = ("train.epochs", "train.max_minutes", "train.patience")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: leaf} of nested mappings (lists and empty mappings are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def spec_differences(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every leaf that differs (lists are leaves)."""
    a, b = _flat(old), _flat(new)
    missing = object()
    return [(k, a.get(k, missing), b.get(k, missing)) for k in sorted(set(a) | set(b), key=str)
            if a.get(k, missing) != b.get(k, missing)]


def _shown(key: str, value: Any) -> str:
    if type(value) is object:
        return "(unset)"
    if key == "layers":
        return f"{len(value)} layers" if isinstance(value, list) else repr(value)
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _check_resume_spec(run_dir: Path, resolved: str, data: str | None, run_data: str | None
                       ) -> list[str]:
    """Refuse a resume that would train something else; return the allowed changes as
    'train.epochs 2 -> 4' lines (raising the epochs, time budget or patience is fine)."""
    import yaml

    old_path = run_dir / SPEC_FILE
    if not old_path.exists():
        return []
    try:
        old = yaml.safe_load(old_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        raise SpecError.at(SourceLoc(str(old_path), mark.line + 1 if mark else 0),
                           "the run's resolved spec is not valid YAML: the file is truncated "
                           "or was edited", hint="restore it, or start a new run with -o "
                                                 "NEW_DIR") from None
    new = yaml.safe_load(resolved)
    diffs = spec_differences(old if isinstance(old, dict) else {"spec": old}, new)
    if data is not None and run_data is not None and data != run_data \
            and not same_data(data, run_data):
        diffs.append(("--data", run_data, data))
    refused = [d for d in diffs if d[0] not in RESUMABLE_CHANGES]
    if refused:
        lines = [f"{k}: {_shown(k, a)} (this run) vs {_shown(k, b)} (now)"
                 for k, a, b in refused[:12]]
        if len(refused) > 12:
            lines.append(f"... and {len(refused) - 12} more")
        graph = any(k == "layers" or k.startswith(("inputs", "outputs", "params"))
                    for k, _, _ in refused)
        raise SpecError.at(SourceLoc(str(old_path)), "--resume with a spec that differs from "
                           f"the one this run was started with ({len(refused)} "
                           f"difference{'s' if len(refused) > 1 else ''})",
                           notes=tuple(lines),
                           hint="resume with the same spec, --set values and --data (only "
                                f"{', '.join(RESUMABLE_CHANGES)} may change), or start a new "
                                "run with -o NEW_DIR"
                                + (f"; `netspec diff {old_path} SPEC` shows the layer changes"
                                   if graph else ""))
    return [f"{k} {_shown(k, a)} -> {_shown(k, b)}" for k, a, b in diffs]


def _label_keys(spec: Spec) -> dict[str, str]:
    """{trained output: the label it is scored against}: the landmarks, or the person's
    class id for an identity loss (runtime/data/identities.py)."""
    from compiler.losses import CLASSES, LOSSES
    from runtime.data.records import IDENTITY_KEY, LABEL_KEY

    return {o.name: IDENTITY_KEY if LOSSES[o.loss].kind == CLASSES else LABEL_KEY
            for o in spec.graph.outputs if o.loss is not None}


def _with_targets(ds: Any, keys: dict[str, str]) -> Any:
    return ds.map(lambda x, y: (x, {o: y[k] for o, k in keys.items()}))


def _identities(spec: Spec, train: Any, run_dir: Path, state: dict[str, Any]
                ) -> list[str] | None:
    """The training people as identity classes (None without an identity loss); checks
    each identity output's class count and writes RUN/identities.json."""
    from compiler.losses import CLASSES, LOSSES
    from runtime.data.identities import IDENTITIES_FILE, identity_table, save_identities

    heads = [o for o in spec.graph.outputs if o.loss and LOSSES[o.loss].kind == CLASSES]
    if not heads:
        return None
    if not hasattr(train, "windows"):
        raise SpecError.at(heads[0].loc, f"output '{heads[0].name}' has an identity loss, but "
                           "the data are still images without people",
                           hint="identity classes come from clip sets (a clip input "
                                "[T, S, S, C] on video frames, e.g. ../shared/data/ytf68)")
    table = identity_table(train)
    for head in heads:
        n = spec.graph.node(head.source).out.shape[-1]  # type: ignore[union-attr]
        if n != len(table):
            raise SpecError.at(head.loc, f"output '{head.name}' scores {n} identity classes, "
                               f"but the training split has {len(table)} people",
                               hint=f"set the class count to the training people, e.g. "
                                    f"--set n_identities={len(table)}")
    saved = Path(run_dir) / IDENTITIES_FILE
    if state.get("epoch") and saved.is_file():
        old = json.loads(saved.read_text()).get("classes")
        if old != table:
            raise SpecError.at(SourceLoc(str(saved)), "--resume with other training people "
                               "than the run's identity classes",
                               hint="resume with the data and data.val_split the run had")
    save_identities(run_dir, table)
    return table


def _collect(ds: Any, input_name: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    xs, ys, n = [], [], 0
    for x, y in ds:
        xs.append(x[input_name].numpy())
        ys.append(y["landmarks"].numpy())
        n += len(xs[-1])
        if limit is not None and n >= limit:
            break
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x[:limit], y[:limit]) if limit else (x, y)


def make_validator(x: np.ndarray, y: np.ndarray, input_name: str, output: str, kind: str,
                   size: int, ecfg: EvalConfig, batch_size: int, objective: Objective,
                   frames: np.ndarray | None = None, local: bool = False,
                   landmark_outputs: set[str] | None = None
                   ) -> Callable[[Any], dict[str, float]]:
    """A function model -> the epoch's validation logs on a fixed validation array, from
    one prediction pass: `val_loss` (and `val_<output>_loss` for several outputs) in the
    compiled objective's terms, plus `val_nme`, `val_fr_010`, `val_auc_008` from the
    decoded points. (Keras' own validation pass would predict everything a second time.)

    Clips (x [N, T, S, S, C], y [N, T, K, 3]): points are decoded per frame and scored
    over the frames `frames` [N, T] marks (each held-out frame once), so val_nme means
    what it means for images; the losses are the objective's per-clip means.

    `local`: predict in this process alone (multi-worker runs: every worker scores the
    whole validation array with its copy of the weights, which are the same on all)."""
    from runtime.evaluate.decode import decode
    from runtime.evaluate.metrics import summarize

    def validate(model: Any) -> dict[str, float]:
        preds = (predict_locally(model, {input_name: x}, batch_size) if local
                 else model.predict({input_name: x}, batch_size=batch_size, verbose=0))
        if y.ndim == 4:  # clips: per-frame decoding over the scored frames
            points, gt = decode_frames(kind, preds[output], size, ecfg.refine, y, frames)
        else:
            points, gt = decode(kind, preds[output], size, refine=ecfg.refine), y
        s = summarize(points, gt[..., :2], gt[..., 2] > 0.5, ecfg.normalizer)
        logs = {"val_nme": s["nme"], "val_fr_010": s["fr_010"], "val_auc_008": s["auc_008"]}
        total = objective.l2_penalty()
        for name, fn in objective.losses.items():
            if landmark_outputs is not None and name not in landmark_outputs:
                continue  # identity: held-out people have no training class (loss 0)
            per_example = np.concatenate([
                np.asarray(fn(y[i:i + batch_size], preds[name][i:i + batch_size]))
                for i in range(0, len(y), batch_size)])
            value = float(per_example.mean())
            total += objective.weights[name] * value
            if len(objective.losses) > 1:
                logs[f"val_{name}_loss"] = value
        logs["val_loss"] = total
        return logs

    return validate


def predict_locally(model: Any, inputs: dict[str, np.ndarray], batch_size: int
                    ) -> dict[str, np.ndarray]:
    """{output: predictions} from plain model calls, batch by batch, outside any
    distribution strategy (Keras' predict would shard the array over the workers)."""
    n = len(next(iter(inputs.values())))
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, n, batch_size):
        out = model({k: v[i:i + batch_size] for k, v in inputs.items()}, training=False)
        for name, value in out.items():
            parts.setdefault(name, []).append(np.asarray(value))
    return {name: np.concatenate(v) for name, v in parts.items()}


def decode_frames(kind: str, out: np.ndarray, size: int, refine: Any, y: np.ndarray,
                  frames: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(points [F, K, 2], labels [F, K, 3]) of the frames of clip predictions `out`
    ([N, T, ...]) and labels `y` ([N, T, K, 3]) that `frames` ([N, T] bool; None: all)
    marks, time folded into the batch for the per-frame decoder."""
    from runtime.evaluate.decode import decode

    out = np.asarray(out)
    n, t = y.shape[:2]
    keep = np.ones((n, t), bool) if frames is None else np.asarray(frames, bool)
    points = decode(kind, out.reshape(n * t, *out.shape[2:]), size, refine=refine)
    return points[keep.ravel()], y.reshape(n * t, *y.shape[2:])[keep.ravel()]


def fit_spec(spec: Spec, run_dir: Path, *, data: str | None = None,
             data_format: str | None = None, resume: bool = False,
             overrides: list[str] | tuple[str, ...] = (), device: dict[str, Any] | None = None,
             explicit_dir: bool = True, quiet: bool = False) -> FitResult:
    """Train `spec`; see the module docstring for what RUN/ holds."""
    run_dir = resolve_run_dir(run_dir, explicit=explicit_dir, resume=resume)
    check_output_dir(run_dir)  # a file or an unwritable place fails before any work
    old_state = read_state(run_dir) if resume else None  # validated field by field
    if old_state is not None and data is None and old_state.get("data") is not None:
        # resume on the data the run trained on
        data, data_format = old_state["data"], data_format or old_state.get("data_format")
    dcfg, tcfg, ecfg = _configs(spec, data, data_format, device or {},
                                resume=old_state is not None)
    role = devices.worker_role(tcfg.strategy)  # multi-worker: only the chief writes RUN/
    writer = role is None or role.chief
    resolved = dump_spec(expanded_document(spec))
    state: dict[str, Any] = {"epoch": 0, "best": None, "best_epoch": None,
                             "monitor": tcfg.monitor, "overrides": list(overrides),
                             "data": dcfg.dataset, "data_format": dcfg.format}
    if old_state is not None:
        changes = _check_resume_spec(run_dir, resolved, dcfg.dataset, old_state.get("data"))
        state = {**old_state, "overrides": list(overrides) if changes
                 else old_state.get("overrides", list(overrides))}
        done = state["epoch"]
        if done >= tcfg.epochs:
            _say(f"{run_dir}: already trained {done} of {tcfg.epochs} epochs; nothing to do"
                 + (" (raise it with --resume --set train.epochs=N)" if done == tcfg.epochs
                    else ""))
            return FitResult(run_dir, done, state.get("best"), state.get("best_epoch"),
                             "completed")
        if done:
            committed_checkpoint(run_dir, state)  # named, of its epoch, on disk, or refuse
        for line in changes:
            _say(f"resuming with {line}")
        if changes and tcfg.schedule == "cosine":
            _say("note: the cosine learning-rate schedule now spans the new train.epochs, so "
                 "the remaining epochs follow a different curve than the first ones did")
        if writer:
            _drop_uncommitted_metrics(run_dir / "metrics.jsonl", done)
            for name in ("model.keras", "state.json", "spec.resolved.yaml"):  # a killed
                for tmp in run_dir.glob(f".{name}.*"):                        # write's temp
                    tmp.unlink(missing_ok=True)
    elif resume:
        _say(f"{run_dir}: no state.json yet, so there is nothing to resume; starting a new run")
    check_fits_in_memory(spec, tcfg.optimizer)
    _check_portable_data(spec, dcfg)

    length = clip_length(spec.graph)
    if length is not None:  # clip specs: windows of T frames, held-out people
        train_faces, val_faces = _clip_data(spec, dcfg, length)
        background = None
    else:
        faces = load_faces(spec, dcfg)  # bad data fails before RUN/ is created
        train_faces, val_faces = split(faces, dcfg)
        background = backgrounds(train_faces, dcfg, spec.section("data").loc_of("negatives"))
    if role is not None and tcfg.batch_size % role.count:
        raise SpecError.at(spec.section("train").loc_of("batch_size"), f"train.batch_size "
                           f"{tcfg.batch_size} is the global batch of {role.count} workers, "
                           "so it must be a multiple of the worker count",
                           hint="use e.g. train.batch_size="
                                f"{max(1, tcfg.batch_size // role.count) * role.count}")
    if role is not None and tcfg.max_minutes:
        raise SpecError.at(spec.section("train").loc_of("max_minutes"), "train.max_minutes "
                           "stops a worker by its own clock, so workers would stop at "
                           "different steps and the others wait for ever in a collective",
                           hint="bound a multi-worker fit by train.epochs (and "
                                "train.patience), not by time")
    if writer:
        ensure_output_dir(run_dir)
    try:
        if writer:
            atomic_write_text(run_dir / "spec.resolved.yaml", resolved)
        if ecfg.shape_model and writer:  # LGCN: PCA shape model of the training shapes
            from runtime.shapes.shape_model import save_training_shape_model

            shapes = train_faces if length is None else train_faces.faces.subset(
                np.unique(train_faces.windows))  # clips: their frames
            save_training_shape_model(run_dir, shapes, dcfg, ecfg)
        return _train(spec, run_dir, dcfg, tcfg, ecfg, train_faces, val_faces, state, quiet,
                      background, role)
    except OSError as e:
        if e.filename and _inside(Path(e.filename), run_dir):
            raise SpecError.at(SourceLoc(str(e.filename)), f"cannot write the run: "
                               f"{e.strerror or e}", hint="free disk space or check the "
                               "folder's permissions; --resume continues from the last "
                               "complete epoch") from None
        raise
    except Exception as e:  # noqa: BLE001 - only a bad image or running out of memory
        if is_out_of_memory(e):  # training: activations of a batch, after the build
            raise SpecError.at(SourceLoc(spec.file), "training ran out of memory",
                               notes=(f"{type(e).__name__}: {str(e).strip()[:200]}",),
                               hint=f"lower train.batch_size (now {tcfg.batch_size}) or the "
                                    "input size / layer widths") from None
        explain_pipeline_error(dcfg, e)
        raise


def _clip_data(spec: Spec, dcfg: DataConfig, length: int) -> tuple[Any, Any]:
    """(training, held-out) ClipSets for a clip spec; its outputs must keep the time axis
    and data.negatives (background crops of still images) does not apply."""
    check_clip_outputs(spec, length)
    if dcfg.negatives:
        raise SpecError.at(spec.section("data").loc_of("negatives"),
                           "data.negatives mixes background crops of still images into "
                           f"batches, but this spec's input is a clip of {length} frames",
                           hint="drop data.negatives for clip specs")
    train, val = split_clips(load_clip_source(spec, dcfg, length), dcfg, length)
    return train.compact(), val.compact()


def _clip_datasets(train: Any, val: Any, dcfg: DataConfig, tcfg: TrainConfig,
                   input_name: str, batch: int, start: int,
                   identities: list[str] | None = None) -> tuple[Any, int, Any, Any]:
    """(endless training stream from epoch `start`, steps per epoch, validation stream,
    [N, T] scored-frame mask of its usable windows) for clip specs; with `identities`
    the labels carry each frame's class id too."""
    from runtime.data.identities import row_identities
    from runtime.data.pipeline import batches_per_pass, make_window_dataset

    ids = {}
    if identities is not None:
        ids = {"train": row_identities(train, identities), "val": row_identities(val, identities)}
    try:
        _, usable = make_window_dataset(train.faces, train.windows, dcfg, training=False,
                                        batch_size=batch, input_name=input_name)
        steps = tcfg.steps_per_epoch or batches_per_pass(usable.size, batch, True)
        train_ds, _ = make_window_dataset(train.faces, train.windows, dcfg, training=True,
                                          batch_size=batch, input_name=input_name,
                                          passes=None, start_batch=start * steps,
                                          row_labels=ids.get("train"))
        val_ds, val_usable = make_window_dataset(val.faces, val.windows, dcfg, training=False,
                                                 batch_size=batch, input_name=input_name,
                                                 row_labels=ids.get("val"))
    except ValueError as e:
        raise SpecError.at(SourceLoc(str(dcfg.dataset)), str(e)) from None
    return train_ds, steps, val_ds, val.score[val_usable]


def _check_portable_data(spec: Spec, dcfg: DataConfig) -> None:
    """What the device feed (every backend but TensorFlow) does not serve yet, said before
    any data is read."""
    import keras

    from runtime.data.config import points_input

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    loc = spec.section("data").loc
    what = ("clips of video frames" if clip_length(spec.graph) is not None
            else "keypoints (a shape model)" if points_input(spec.graph) is not None
            else "mixed with background crops (data.negatives)" if dcfg.negatives else None)
    if what is not None:
        raise SpecError.at(loc, f"fit on the {backend} backend trains on still faces only; "
                                f"this spec's data are {what}, which only the tf.data "
                                "pipeline serves so far",
                           hint="use --backend tensorflow for this spec")


def _device_feeds(train_faces: Any, val_faces: Any, dcfg: DataConfig) -> tuple[Any, Any]:
    """(training, validation) DeviceFeeds; decoded faces are kept in NETSPEC_FACE_CACHE
    (a folder) when it is set, so later runs on the same data skip the decoding."""
    import os

    from runtime.data.device_feed import make_feed

    cache_dir = os.environ.get("NETSPEC_FACE_CACHE") or None
    try:
        return (make_feed(train_faces, dcfg, training=True, cache_dir=cache_dir),
                make_feed(val_faces, dcfg, training=False, cache_dir=cache_dir))
    except ValueError as e:
        raise SpecError.at(SourceLoc(str(dcfg.dataset)), str(e)) from None


def _inside(path: Path, folder: Path) -> bool:
    try:
        return folder.resolve() in path.resolve().parents or path.resolve() == folder.resolve()
    except OSError:
        return False


def _drop_uncommitted_metrics(path: Path, epochs: int) -> None:
    """Keep metrics.jsonl lines of committed epochs only (a kill after a line was appended
    but before state.json moved on would otherwise duplicate that epoch on resume)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line torn by the kill
            continue
        epoch = record.get("epoch") if isinstance(record, dict) else None
        if isinstance(epoch, int) and not isinstance(epoch, bool) and 1 <= epoch <= epochs:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


def _shape_datasets(train_faces: Any, val_faces: Any, dcfg: DataConfig, tcfg: TrainConfig,
                    input_name: str, batch: int, start: int) -> tuple[Any, int, Any]:
    """(train stream, batches per epoch, validation batches) of corrupted training shapes
    for a model whose input is keypoints (runtime/data/shape_pipeline.py); the data
    section was checked for it (runtime.data.config.data_config_for_graph)."""
    from runtime.data.pipeline import batches_per_pass
    from runtime.data.shape_pipeline import make_shape_dataset, shape_rows

    steps = tcfg.steps_per_epoch or batches_per_pass(shape_rows(train_faces, dcfg).size,
                                                     batch, True)
    train_ds = make_shape_dataset(train_faces, dcfg, training=True, batch_size=batch,
                                  input_name=input_name, passes=None, start_batch=start * steps)
    val_ds = make_shape_dataset(val_faces, dcfg, training=False, batch_size=batch,
                                input_name=input_name)
    return train_ds, steps, val_ds


def _train(spec: Spec, run_dir: Path, dcfg: DataConfig, tcfg: TrainConfig, ecfg: EvalConfig,
           train_faces: Any, val_faces: Any, state: dict[str, Any], quiet: bool,
           background: Any = None, role: devices.Worker | None = None) -> FitResult:
    import keras

    from runtime.data.config import negatives_config, points_input
    from runtime.data.records import LABEL_KEY
    from runtime.evaluate.eval_config import decoded_output
    from runtime.train.callbacks import EpochProgress, NaNGuard, RunRecorder, TimeBudget, Validation
    from runtime.train.checkpoints import restore_checkpoint, save_checkpoint
    from runtime.train.model_setup import build_model, learning_rate_at

    backend = keras.backend.backend()
    portable = backend != "tensorflow"  # the device feed, not tf.data (device_feed.py)
    strategy = devices.configure(tcfg.seed, tcfg.strategy)
    input_name = spec.graph.inputs[0].name
    outputs = _label_keys(spec)
    batch = min(tcfg.batch_size, len(train_faces))
    neg = negatives_config(dcfg)
    start = int(state.get("epoch", 0))
    clips = hasattr(train_faces, "windows")  # a ClipSet: batches of [B, T, ...] windows
    val_frames = None
    val_arrays = None
    if portable:
        from runtime.data.device_feed import batches_per_pass, training_batches, validation_arrays

        train_feed, val_feed = _device_feeds(train_faces, val_faces, dcfg)
        batch = min(batch, train_feed.n)
        steps = tcfg.steps_per_epoch or batches_per_pass(train_feed, batch)

        def pack(images: Any, landmarks: Any) -> tuple[dict[str, Any], dict[str, Any]]:
            return {input_name: images}, {o: landmarks for o in outputs}

        train_stream = training_batches(train_feed, batch, start * steps, pack)
        val_arrays = validation_arrays(val_feed, batch, tcfg.val_examples)
    elif clips:
        train_ds, steps, val_ds, val_frames = _clip_datasets(
            train_faces, val_faces, dcfg, tcfg, input_name, batch, start,
            _identities(spec, train_faces, run_dir, state))
    elif points_input(spec.graph) is not None:  # a model of shapes alone (a denoiser)
        train_ds, steps, val_ds = _shape_datasets(train_faces, val_faces, dcfg, tcfg,
                                                  input_name, batch, start)
    else:
        from runtime.data.pipeline import make_dataset, make_training_dataset

        # one endless stream, started where the last committed epoch ended (the batches of
        # an unbroken run; Keras keeps the iterator across epochs when steps_per_epoch is
        # given)
        train_ds, steps = make_training_dataset(
            train_faces, dcfg, batch_size=batch, input_name=input_name,
            backgrounds=background, background_fraction=neg.fraction if neg else 0.0,
            passes=None, start_epoch=start, steps_per_epoch=tcfg.steps_per_epoch)
        val_ds = make_dataset(val_faces, dcfg, training=False, batch_size=batch,
                              input_name=input_name)
    try:
        with strategy.scope():
            # weights from other runs only for a fresh start: a resume's checkpoint wins
            model, objective = build_model(
                spec, tcfg, dcfg.size, xla=tcfg.xla, initial_weights=not start,
                mixed_precision=devices.mixed_policy() if tcfg.mixed_precision else False)
            model.optimizer.build(model.trainable_variables)
    except Exception as e:  # noqa: BLE001 - only running out of memory is translated
        if is_out_of_memory(e):
            raise out_of_memory_error(spec, tcfg.optimizer, e) from None
        raise
    if not start:  # weights from the training shapes (RAR's templates); a resume restores them
        from runtime.train.data_init import fill_robust_templates

        fill_robust_templates(model, spec, train_faces, dcfg)
    # multi-worker: every worker saves (the TF pattern), workers other than the chief into
    # a temporary folder deleted at the end; all of them resume from the chief's RUN/
    write_dir = run_dir if role is None or role.chief else Path(
        tempfile.mkdtemp(prefix=f"netspec-worker{role.index}-"))
    if role is not None:
        first = next(iter(_with_targets(train_ds, outputs)))
        devices.use_multi_worker_steps(model, strategy, first)
        _say(_shard_line(strategy, role, train_ds, input_name, batch))

    def save(epoch: int) -> str:
        folder = write_dir / "checkpoints"
        save_checkpoint(model, folder, epoch, keep=tcfg.keep_checkpoints)
        return str(folder / f"ckpt-{epoch}")  # state.json's name: the suffix-free prefix

    if start:
        restore_checkpoint(model, committed_checkpoint(run_dir, state), start)
        if state.get("backend", "tensorflow") != backend:
            _say(f"note: epochs 1-{start} trained on {state.get('backend', 'tensorflow')}; "
                 f"the run goes on on {backend} (checkpoints are backend-neutral)")
        if tcfg.init_from:
            _say(f"note: train.init_from ({tcfg.init_from}) is ignored on --resume: the run "
                 f"continues from its own checkpoint of epoch {start}")
        _say(f"resuming {run_dir} after epoch {start} (best {tcfg.monitor} "
             f"{format_figure(tcfg.monitor, state.get('best'))})")
    state["backend"] = backend
    out_name, kind = decoded_output(spec, ecfg)
    xv, yv = val_arrays or _collect(val_ds, input_name, tcfg.val_examples)
    if val_frames is not None:
        val_frames = val_frames[:len(yv)]
    if not (yv[..., 2] > 0.5).any():
        raise SpecError.at(SourceLoc(str(dcfg.dataset)), f"no landmark of the {len(yv)} "
                           f"validation faces lies inside its {dcfg.size}x{dcfg.size} crop "
                           f"(crop: {dcfg.crop}), so nothing can be learnt or scored",
                           hint="landmarks must be 0-based pixel x, y of their image; check "
                                "the data's coordinates and data.crop / data.crop_ratio")
    validator = make_validator(xv, yv, input_name, out_name, kind, dcfg.size, ecfg, batch,
                               objective, frames=val_frames, local=role is not None,
                               landmark_outputs={o for o, k in outputs.items()
                                                 if k == LABEL_KEY})
    nan_guard = NaNGuard()
    callbacks: list[Any] = [
        Validation(validator),
        RunRecorder(write_dir, save, tcfg.monitor, state, lambda e: learning_rate_at(tcfg, e)),
        nan_guard,
    ]
    if not portable:  # Keras' TensorBoard callback writes through tf.summary
        callbacks.append(keras.callbacks.TensorBoard(str(write_dir / "tensorboard"),
                                                     write_graph=False))
    if not quiet:
        callbacks.append(EpochProgress(tcfg.epochs, steps, tcfg.monitor, state))
    if tcfg.patience:
        callbacks.append(keras.callbacks.EarlyStopping(tcfg.monitor, patience=tcfg.patience))
    steps_seen = devices.step_digests() if role is not None else None
    if steps_seen is not None:
        callbacks.append(steps_seen)
    budget = TimeBudget(tcfg.max_minutes) if tcfg.max_minutes else None
    if budget:
        callbacks.append(budget)
    extra = (f" + {len(background)} background crops ({neg.fraction:.0%} of each batch)"
             if background is not None and neg else "")
    what = "faces" if not clips else (
        f"clips of {train_faces.length} frames ({train_faces.n_frames} / {val_faces.n_frames} "
        f"frames, {len(set(val_faces.groups))} held-out people/clips)")
    _say(f"fit {spec.name}: {len(train_faces)} train / {len(val_faces)} val {what}{extra} "
         f"({dcfg.dataset}), batch {batch}, {tcfg.epochs} epochs, {tcfg.optimizer}, "
         f"{devices.describe_devices()} -> {run_dir}/")
    if not model.trainable_weights:
        _say("note: no weight is trainable (every layer is frozen or has none): each epoch "
             "only scores the model, e.g. a composition of trained runs")
    t0 = time.time()
    with warnings.catch_warnings():  # Keras says so at every end of an unsized dataset
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        warnings.filterwarnings("ignore", message="The model does not have any trainable")
        model.fit(train_stream if portable else _with_targets(train_ds, outputs),
                  epochs=tcfg.epochs,
                  initial_epoch=start, steps_per_epoch=steps,
                  callbacks=callbacks, shuffle=False, verbose=0)
    if nan_guard.hit_nan:
        raise SpecError.at(SourceLoc(str(run_dir)), "the training loss became NaN/inf",
                           hint="lower train.learning_rate, set train.clipnorm, or check the "
                                "data; the last good checkpoint is kept (--resume)")
    done = int(state.get("epoch", start))
    stopped = "completed" if done >= tcfg.epochs else (
        "time_budget" if budget and time.time() > budget.deadline else "early_stopping")
    state["stopped"] = stopped
    atomic_write_json(write_dir / "state.json", state)
    if role is not None:
        _say(f"{role.text()}: weights digest {devices.weights_digest(model)}; "
             f"{steps_seen.text()}")  # type: ignore[union-attr]
        if write_dir != run_dir:
            shutil.rmtree(write_dir, ignore_errors=True)
    _say(f"done in {time.time() - t0:.0f} s: {done} epochs ({stopped}); best {tcfg.monitor} "
         f"{format_figure(tcfg.monitor, state.get('best'))} at epoch {state.get('best_epoch')}; "
         f"model: {run_dir / 'model.keras'}")
    return FitResult(run_dir, done, state.get("best"), state.get("best_epoch"), stopped)


def _shard_line(strategy: Any, role: devices.Worker, train_ds: Any, input_name: str,
                batch: int) -> str:
    """What this worker trains on: its share of each global batch, and a digest of its part
    of the first batch (different on every worker: the data is sharded, not repeated)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dist = strategy.experimental_distribute_dataset(train_ds.take(1).with_options(options))
    x, _ = next(iter(dist))
    local = np.concatenate([np.asarray(v) for v in
                            strategy.experimental_local_results(x[input_name])])
    digest = hashlib.sha256(local.tobytes()).hexdigest()[:16]
    return (f"{role.text()}: {len(local)} of each global batch of {batch} examples here; "
            f"first batch digest {digest}")
