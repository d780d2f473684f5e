"""Backend-neutral checkpoints: a model's variables and its optimizer's state in one .npz.

RUN/checkpoints/ckpt-N.npz holds every model variable (weights, BatchNorm statistics,
dropout seed states) and every optimizer variable (iterations, learning rate, moments) as
numpy arrays in creation order, plus a JSON header of their paths, shapes and dtypes.
Keras creates both lists in the same order on every backend for the same spec, so a run
trained on TensorFlow resumes on JAX and the other way round. The file is written to a
temporary name, fsynced and renamed (Note [Checkpoint commit point] in
runtime/train/callbacks.py): a crash leaves the previous checkpoint and state.json intact.

Runs written before this format (tf.train checkpoints: ckpt-N.index + ckpt-N.data-*)
still resume and warm-start on the TensorFlow backend (`restore_legacy`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from compiler.diagnostics import SourceLoc, SpecError
from runtime.atomic import atomic_write_file

FORMAT = 1
SUFFIX = ".npz"
_HEADER = "__netspec_checkpoint__"


def checkpoint_path(folder: Path, epoch: int) -> Path:
    return Path(folder) / f"ckpt-{epoch}{SUFFIX}"


def _described(variables: list[Any]) -> list[dict[str, Any]]:
    return [{"path": str(getattr(v, "path", getattr(v, "name", i))),
             "shape": [int(d) for d in v.shape], "dtype": str(np.dtype(_dtype(v)))}
            for i, v in enumerate(variables)]


def _dtype(v: Any) -> str:
    d = str(getattr(v, "dtype", "float32"))
    return d.replace("<dtype: '", "").replace("'>", "")


def _values(variables: list[Any]) -> list[np.ndarray]:
    import keras

    return [np.asarray(keras.ops.convert_to_numpy(v.value)) for v in variables]


def save_checkpoint(model: Any, folder: Path, epoch: int, keep: int | None = None) -> Path:
    """Write ckpt-`epoch`.npz atomically; then keep only the `keep` newest checkpoints."""
    import keras

    path = checkpoint_path(folder, epoch)
    model_vars = list(model.variables)
    optimizer = getattr(model, "optimizer", None)
    opt_vars = list(optimizer.variables) if optimizer is not None else []
    header = {"format": FORMAT, "epoch": int(epoch), "backend": keras.backend.backend(),
              "model": _described(model_vars), "optimizer": _described(opt_vars)}
    arrays = {f"m{i:05d}": a for i, a in enumerate(_values(model_vars))}
    arrays.update({f"o{i:05d}": a for i, a in enumerate(_values(opt_vars))})
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode(), np.uint8)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a name
            np.savez(fh, **arrays)

    atomic_write_file(path, write)
    if keep:
        for old in sorted(checkpoint_epochs(folder))[:-keep]:
            checkpoint_path(folder, old).unlink(missing_ok=True)
    return path


def checkpoint_epochs(folder: Path) -> list[int]:
    """Epochs that have a checkpoint file in `folder`."""
    out = []
    for p in Path(folder).glob(f"ckpt-*{SUFFIX}"):
        n = p.name[len("ckpt-"):-len(SUFFIX)]
        if n.isdigit():
            out.append(int(n))
    return sorted(out)


def read_checkpoint(path: Path) -> tuple[dict[str, Any], list[np.ndarray], list[np.ndarray]]:
    """(header, model arrays, optimizer arrays); ValueError for a damaged file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z[_HEADER]).decode())
            model = [z[f"m{i:05d}"] for i in range(len(header["model"]))]
            opt = [z[f"o{i:05d}"] for i in range(len(header["optimizer"]))]
    except (OSError, KeyError, ValueError, EOFError) as e:
        raise ValueError(f"not a readable netspec checkpoint ({type(e).__name__}: "
                         f"{str(e).strip()[:200]})") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"checkpoint format {header.get('format')!r}, this netspec reads "
                         f"format {FORMAT}")
    return header, model, opt


def _assign(variables: list[Any], arrays: list[np.ndarray], what: str) -> None:
    if len(variables) != len(arrays):
        raise ValueError(f"{what}: the checkpoint holds {len(arrays)} variables, the model "
                         f"has {len(variables)}")
    for v, a in zip(variables, arrays, strict=True):
        if tuple(v.shape) != a.shape:
            raise ValueError(f"{what} variable {getattr(v, 'path', v.name)}: shape "
                             f"{tuple(v.shape)} in the model, {a.shape} in the checkpoint")
    for v, a in zip(variables, arrays, strict=True):
        v.assign(a.astype(np.dtype(_dtype(v)), copy=False))


def load_into(model: Any, path: Path | str, *, optimizer: bool = True) -> None:
    """Assign ckpt-N.npz (or a legacy tf.train prefix) to `model` and, with `optimizer`,
    to its optimizer (built beforehand). Raises whatever the file's damage causes."""
    path = Path(path)
    if path.suffix != SUFFIX:
        restore_legacy(model, str(path), optimizer=optimizer)
        return
    _, model_arrays, opt_arrays = read_checkpoint(path)
    _assign(list(model.variables), model_arrays, "model")
    if optimizer:
        _assign(list(model.optimizer.variables), opt_arrays, "optimizer")


def restore_checkpoint(model: Any, path: Path | str, epoch: int) -> None:
    """Resume: model and optimizer state of epoch `epoch`; a located error, not a
    traceback, for a damaged or foreign file."""
    try:
        load_into(model, path)
    except Exception as e:  # noqa: BLE001 - numpy, zip and TF raise many kinds
        raise SpecError.at(SourceLoc(str(path)), f"cannot restore the checkpoint of epoch "
                                                 f"{epoch}: it is truncated, damaged or from "
                                                 "another model",
                           notes=(f"{type(e).__name__}: {str(e).strip()[:300]}",),
                           hint="start a new run with -o NEW_DIR (model.keras, the best "
                                "epoch's model, is still usable for eval and predict)"
                           ) from None


def restore_legacy(model: Any, prefix: str, *, optimizer: bool) -> None:
    """A tf.train checkpoint of a run written before the .npz format (TensorFlow only)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError("this run's checkpoint is a tf.train checkpoint (written by an "
                         "older netspec), which only the tensorflow backend reads; resume "
                         "it with --backend tensorflow")
    import tensorflow as tf

    parts = {"model": model}
    if optimizer:
        parts["optimizer"] = model.optimizer
    status = tf.train.Checkpoint(**parts).restore(prefix)
    if optimizer:
        status.assert_existing_objects_matched()
    else:
        status.expect_partial().assert_existing_objects_matched()
