"""Initial weights from trained runs, and frozen layers.

Two ways a model starts from weights another `netspec fit` learnt, both matched by spec
layer name with every weight shape checked:

- `train.init_from: RUN` (warm start, staged training): the whole model starts from
  RUN's best epoch (`RUN/model.keras`) or its last checkpoint (`init_from_checkpoint:
  last`). Layers only one side has are an error unless `train.init_partial: true`.
- per-layer `init_from` of the IR (a module instance's `weights_from: RUN`): each such
  layer takes the weights of the named layer of that run; RCN's joint denoising model is
  two trained runs composed this way, neither retrained.

A `--resume` skips both: the run's own checkpoint holds every weight (see runtime/train/fit.py).
`trainable: false` layers are frozen before compile; a frozen BatchNormalization also
runs in inference mode, so its moving statistics stay as loaded.

The folder checks here are TF-free (`netspec check` runs them); Keras loads lazily.
"""

from __future__ import annotations

from collections.abc import Callable
import difflib
from pathlib import Path
import sys
from typing import Any

from compiler.diagnostics import SourceLoc, SpecError
from compiler.ir import Graph, Node, keras_name, spec_name

RUN_HINT = ("give the -o directory of a `netspec fit` that finished an epoch (relative "
             "paths are from the current directory)")
_MAX_LISTED = 12


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # noqa: T201 - user-facing note


def run_folder_problem(path: str, checkpoint: str = "best") -> str | None:
    """Why `path` cannot give initial weights (None: it can), without loading anything."""
    from runtime.run_dir import MODEL_FILE, SPEC_FILE, STATE_FILE

    p = Path(path)
    if not p.exists():
        return f"run directory '{path}' does not exist"
    if not p.is_dir():
        return f"'{path}' is a file, not a run directory"
    if not (p / SPEC_FILE).is_file():
        return f"'{path}' is not a netspec run (no {SPEC_FILE})"
    if not (p / STATE_FILE).is_file():
        return f"'{path}' was never trained (no {STATE_FILE}: a `netspec compile` output?)"
    if checkpoint == "best" and not (p / MODEL_FILE).is_file():
        return f"'{path}' has no {MODEL_FILE} yet (no epoch has finished)"
    return None


def _check_run(path: str, checkpoint: str, loc: SourceLoc, what: str) -> Path:
    problem = run_folder_problem(path, checkpoint)
    if problem:
        raise SpecError.at(loc, f"{what}: {problem}", hint=RUN_HINT)
    return Path(path)


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED
                    else "")


def weight_layers(model: Any) -> dict[str, Any]:
    """{spec name: Keras layer} of the layers that own weights (a shared layer once)."""
    return {spec_name(layer.name): layer for layer in model.layers if layer.weights}


def _shapes(layer: Any) -> list[tuple[int, ...]]:
    return [tuple(w.shape) for w in layer.weights]


def _shown_shapes(layer: Any) -> str:
    parts = [f"{w.name} {list(w.shape)}" for w in layer.weights]
    return ", ".join(parts) if parts else "no weights"


# ------------------------------------------------------------------ loading a run's model

def load_source_model(run: Path, checkpoint: str, loc: SourceLoc) -> tuple[Any, str]:
    """(uncompiled Keras model, 'the best epoch (3)'-style description) of a trained run."""
    from runtime.run_dir import load_run_model, require_trained

    state = require_trained(run)
    if checkpoint == "best":
        return load_run_model(run), f"model.keras, the best epoch ({state.get('best_epoch')})"
    return _checkpoint_model(run, state, loc), f"the checkpoint of epoch {state['epoch']}"


def _checkpoint_model(run: Path, state: dict[str, Any], loc: SourceLoc) -> Any:
    """RUN's spec lowered afresh, its weights restored from RUN's last committed checkpoint."""
    from compiler.lower_keras import lower_to_keras
    from runtime.run_dir import committed_checkpoint, load_run_spec
    from runtime.train.checkpoints import load_into

    prefix = committed_checkpoint(run, state)
    model = lower_to_keras(load_run_spec(run).graph)
    try:
        load_into(model, prefix, optimizer=False)
    except Exception as e:  # noqa: BLE001 - numpy, zip and TF raise many kinds
        raise SpecError.at(loc, f"cannot read the weights of checkpoint {prefix}: it is "
                                "damaged or not of the run's spec",
                           notes=(f"{type(e).__name__}: {str(e).strip()[:300]}",),
                           hint="use train.init_from_checkpoint: best (RUN/model.keras)"
                           ) from None
    return model


# ------------------------------------------------------------------ train.init_from

def warm_start(model: Any, run: str, checkpoint: str, partial: bool, loc: SourceLoc, *,
               skip: frozenset[str] | set[str] = frozenset(),
               taken: frozenset[str] | set[str] = frozenset(),
               say: Callable[[str], None] = _say) -> int:
    """Copy every weight of RUN's model into `model`, layer by spec name; return how many
    layers were copied. `skip`: this model's layers that take their weights from elsewhere;
    `taken`: RUN's layers that per-layer init_from already uses (not 'unused')."""
    where = "train.init_from"
    source, described = load_source_model(_check_run(run, checkpoint, loc, where),
                                          checkpoint, loc)
    dst = {k: v for k, v in weight_layers(model).items() if k not in skip}
    src = {k: v for k, v in weight_layers(source).items() if k not in skip | taken}
    common = [k for k in dst if k in src]
    mismatched = [f"'{k}': {_shown_shapes(dst[k])} here, {_shown_shapes(src[k])} in {run}"
                  for k in common if _shapes(dst[k]) != _shapes(src[k])]
    if mismatched:
        raise SpecError.at(loc, f"{where}: {len(mismatched)} layer(s) have other weight shapes "
                                f"than in {run}", notes=tuple(mismatched[:20]),
                           hint="a warm start copies weights layer by layer, so those layers "
                                "must keep their sizes; rename a resized layer to start it "
                                "fresh (with train.init_partial: true)")
    missing = [k for k in dst if k not in src]
    unused = [k for k in src if k not in dst]
    notes = ([f"{len(missing)} layer(s) of this model are not in {run}: {_listed(missing)}"]
             if missing else []) + \
            ([f"{len(unused)} layer(s) of {run} are not in this model: {_listed(unused)}"]
             if unused else [])
    if notes and (not partial or not common):
        resolved = Path(run) / "spec.resolved.yaml"
        raise SpecError.at(loc, f"{where}: this model and {run} do not have the same layers"
                           if common else f"{where}: no layer of this model is in {run}",
                           notes=tuple(notes),
                           hint=("set train.init_partial: true to start the missing layers "
                                 "from fresh weights and ignore the run's extra ones, or "
                                 f"compare the specs: `netspec diff {resolved} SPEC`")
                           if common else "the layers are matched by their spec names")
    for k in common:
        dst[k].set_weights(src[k].get_weights())
    say(f"initial weights: {len(common)} layer(s) from {run} ({described})")
    if missing:  # train.init_partial: allowed, but said
        say(f"note: train.init_partial: {len(missing)} layer(s) of this model are not in "
            f"{run} and start from fresh weights: {_listed(missing)}")
    if unused:
        say(f"note: train.init_partial: {len(unused)} layer(s) of {run} are not in this "
            f"model and are ignored: {_listed(unused)}")
    return len(common)


# ------------------------------------------------------------------ per-layer init_from

def _owners(graph: Graph) -> list[Node]:
    """Nodes with an `init_from` that own their Keras layer (a sharer follows its owner)."""
    return [n for n in graph.nodes if n.init_from is not None and n.share is None]


def copy_layer_weights(model: Any, graph: Graph) -> int:
    """Each node with `init_from = (RUN, name)` takes layer `name`'s weights of RUN's best
    model (each run loaded once); return how many layers were copied. Every unmatched
    name or shape is listed in one error at the first such layer."""
    nodes = _owners(graph)
    sources: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    copied = 0
    in_model = {layer.name for layer in model.layers}
    for node in nodes:
        run, name = node.init_from  # type: ignore[misc]
        if keras_name(node.name) not in in_model:
            continue  # no output depends on it, so the lowering left it out
        layer = model.get_layer(keras_name(node.name))
        if not layer.weights:
            continue  # an activation, a pool: nothing to copy
        if run not in sources:
            path = _check_run(run, "best", node.loc, f"layer '{node.name}': weights_from")
            sources[run] = weight_layers(load_source_model(path, "best", node.loc)[0])
        src = sources[run].get(name)
        if src is None:
            close = difflib.get_close_matches(name, list(sources[run]), n=1)
            problems.append(f"'{node.name}' <- '{name}': {run} has no layer '{name}' with "
                            "weights" + (f" (did you mean '{close[0]}'?)" if close else ""))
        elif _shapes(src) != _shapes(layer):
            problems.append(f"'{node.name}' <- '{name}': {_shown_shapes(layer)} here, "
                            f"{_shown_shapes(src)} in {run}")
        else:
            layer.set_weights(src.get_weights())
            copied += 1
    if problems:
        first = next(n for n in nodes if any(p.startswith(f"'{n.name}' <-") for p in problems))
        raise SpecError.at(first.loc, f"weights_from: {len(problems)} layer(s) cannot take "
                                      "their weights from the trained run",
                           notes=(*problems[:20], *first.scope),
                           hint="an instance's layers must have the names and weight shapes "
                                "of the run's spec layers (train that module as its own spec)")
    return copied


# ------------------------------------------------------------------ together

def freeze(model: Any, graph: Graph) -> None:
    """`trainable: false` layers stop training. The lowering does it too; setting it again
    only for False keeps the two from disagreeing, and must precede model.compile."""
    in_model = {layer.name for layer in model.layers}
    for node in graph.nodes:
        if not node.trainable and node.share is None and keras_name(node.name) in in_model:
            model.get_layer(keras_name(node.name)).trainable = False


def initial_weights(model: Any, graph: Graph, *, init_from: str | None = None,
                    checkpoint: str = "best", partial: bool = False,
                    loc: SourceLoc | None = None,
                    say: Callable[[str], None] = _say) -> None:
    """The warm start (if `init_from`), then the per-layer `init_from` of module
    instances, which win over it (those layers are left out of the warm start)."""
    if init_from is not None:
        owners = _owners(graph)
        here = Path(init_from).resolve()
        taken = {n.init_from[1] for n in owners  # type: ignore[index]
                 if Path(n.init_from[0]).resolve() == here}  # type: ignore[index]
        warm_start(model, init_from, checkpoint, partial, loc or SourceLoc(graph.file),
                   skip={n.name for n in owners}, taken=taken, say=say)
    if _owners(graph):
        n = copy_layer_weights(model, graph)
        runs = sorted({node.init_from[0] for node in _owners(graph)})  # type: ignore[index]
        say(f"initial weights: {n} layer(s) from {', '.join(runs)} (weights_from)")
