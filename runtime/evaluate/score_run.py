"""`netspec eval`: score a trained run on landmark data (NME, FR, AUC, CED plot).

NME is computed in the network's crop frame: crop and resize scale predictions and
ground truth alike, so the normalised error equals the one in source pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import json
from pathlib import Path
import sys
from typing import Any

import numpy as np

from compiler.api import Spec
from compiler.diagnostics import SourceLoc, SpecError
from runtime.atomic import atomic_write_json
from runtime.datasets import clip_length, explain_pipeline_error, load_faces, spec_data_config
from runtime.evaluate.eval_config import eval_config
from runtime.run_dir import (
    ensure_output_dir,
    load_run_model,
    load_run_spec,
    require_trained,
    same_data,
)

_KEYS = ("nme", "fr_008", "fr_010", "auc_008", "auc_010", "n")
SPLITS = ("val", "train", "all")
EVAL_SET_SECTIONS = ("data", "eval")  # `netspec eval --set` may change only these


def bad_eval_overrides(overrides: list[str] | tuple[str, ...]) -> list[str]:
    """The --set values eval cannot take (params and train.* change the trained model)."""
    bad = []
    for text in overrides:
        section, _, rest = text.split("=", 1)[0].strip().partition(".")
        if section not in EVAL_SET_SECTIONS or not rest:
            bad.append(text)
    return bad


def _set_keys(overrides: list[str] | tuple[str, ...]) -> set[str]:
    return {text.split("=", 1)[0].strip() for text in overrides}


@dataclass(frozen=True)
class Scored:
    """Which rows of the data eval scores, and how many of them the run trained on."""

    faces: Any  # FaceSet
    split: str
    text: str  # "the last 1000 rows, held out from training", ...
    trained_on: int | None  # scored rows the run trained on (None: other data)


def _rows(n: int, n_val: int, split: str, limit: int | None) -> range:
    rows = {"val": range(n - n_val, n), "train": range(0, n - n_val), "all": range(0, n)}[split]
    return rows[:limit] if limit is not None else rows


def _n_val(n: int, val_split: int | float) -> int:
    return int(round(n * val_split)) if isinstance(val_split, float) else int(val_split)


def scored_rows(faces: Any, dcfg: Any, split: str, run_dcfg: Any, same: bool) -> Scored:
    """The `split` rows of `faces` under `dcfg` (eval's data config); with `same` data,
    also count those the run (`run_dcfg`: its data config) trained on."""
    n = len(faces)
    n_val = _n_val(n, dcfg.val_split)
    if n_val >= n and split != "all":
        raise SpecError.at(SourceLoc("data.val_split"),
                           f"val_split {dcfg.val_split} leaves no training rows in "
                           f"'{faces.name}' ({n} rows)", hint="lower data.val_split")
    rows = _rows(n, n_val, split, dcfg.limit)
    text = {"val": f"the last {n_val} rows (data.val_split), held out from training",
            "train": f"the first {n - n_val} rows, the training split",
            "all": f"all {n} rows, training and held-out"}[split]
    if dcfg.limit is not None and dcfg.limit < len(_rows(n, n_val, split, None)):
        text += f", at most data.limit = {dcfg.limit}"
    trained = None
    if same:
        run_val = _n_val(n, run_dcfg.val_split)
        trained_rows = _rows(n, run_val, "train", run_dcfg.limit) if run_val < n else range(0)
        lo, hi = max(rows.start, trained_rows.start), min(rows.stop, trained_rows.stop)
        trained = max(0, hi - lo)
    return Scored(faces.subset(slice(rows.start, rows.stop)), split, text, trained)


def scored_clips(spec: Spec, dcfg: Any, split: str, run_dcfg: Any, same: bool, length: int
                 ) -> tuple[Scored, Any]:
    """(what is scored, the scoring ClipSet) for a clip spec: the `split` people's clips
    ('val': those fit held out, by person, never by frame), tiled so that every frame is
    scored once; with `same` data, also count the scored frames the run trained on."""
    from runtime.data import clips as clip_sets
    from runtime.datasets import load_clip_source, split_clips

    source = load_clip_source(spec, dcfg, length)
    rows = clip_sets.split_rows(source, dcfg, split)
    scoring = source.clipset(rows, length, tile=True)
    if dcfg.limit is not None:
        scoring = clip_sets.limited(scoring, dcfg.limit)
    if len(scoring) == 0:
        raise SpecError.at(SourceLoc(str(dcfg.dataset)), f"split '{split}' of "
                           f"'{source.faces.name}' has no clip of {length} frames to score",
                           hint="try --split all, or lower data.val_split")
    frames = np.unique(scoring.windows[scoring.score])
    people = len(set(scoring.groups))
    text = {"val": f"{people} held-out people/clips (data.val_split), {len(frames)} frames, "
                   "held out from training",
            "train": f"{people} training people/clips, {len(frames)} frames",
            "all": f"all {people} people/clips, {len(frames)} frames"}[split]
    if dcfg.limit is not None:
        text += f", at most data.limit = {dcfg.limit} clips"
    trained = None
    if same:
        try:
            run_train, _ = split_clips(source, run_dcfg, length)
            trained = int(np.isin(frames, run_train.windows).sum())
        except SpecError:  # the run's split cannot be rebuilt: nothing known was trained on
            trained = 0
    return Scored(source.faces.subset(frames), split, text, trained), scoring.compact()


def evaluate_run(run_dir: Path, *, data: str | None = None, data_format: str | None = None,
                 normalizer: str | None = None, as_json: bool = False,
                 split_name: str | None = None, shape_model: bool = False,
                 overrides: list[str] | tuple[str, ...] = (), **_: Any) -> dict[str, Any]:
    """Score the run's best model; by default on the held-out split of the data it trained
    on (RUN/state.json), without the training-time data.limit (--set data.limit=N caps)."""
    from runtime.evaluate.ced_plot import save_ced_plot
    from runtime.evaluate.metrics import nme, summarize

    split_name = split_name or "val"
    if split_name not in SPLITS:
        raise SpecError.at(SourceLoc("--split"), f"unknown split '{split_name}'",
                           hint=f"one of {', '.join(SPLITS)}")
    bad = bad_eval_overrides(overrides)
    if bad:
        raise SpecError.at(SourceLoc("--set"), f"eval cannot change '{bad[0]}'",
                           hint="eval takes --set data.KEY=V and eval.KEY=V only; params and "
                                "train.* define the trained model")
    run_spec = load_run_spec(run_dir)
    spec = load_run_spec(run_dir, overrides) if overrides else run_spec
    state = require_trained(run_dir)
    ecfg = eval_config(spec.section("eval"), spec.section("eval").loc)
    if normalizer is not None:
        ecfg = _with_normalizer(ecfg, normalizer)
    keys = _set_keys(overrides)
    run_data, run_format = state.get("data"), state.get("data_format")
    if data is None and "data.dataset" not in keys and run_data is not None:
        data, data_format = run_data, data_format or run_format
    dcfg = spec_data_config(spec, data, data_format)
    run_dcfg = spec_data_config(run_spec, run_data, run_format) if run_data else None
    dropped_limit = None
    if "data.limit" not in keys and dcfg.limit is not None and split_name != "train":
        dropped_limit, dcfg = dcfg.limit, replace(dcfg, limit=None)
    dcfg = replace(dcfg, augment={**dict(dcfg.augment or {}), "enabled": False})
    out_dir = ensure_output_dir(Path(run_dir) / "eval", flag="RUN/eval")
    model = load_run_model(run_dir, spec)
    same = run_dcfg is not None and same_data(str(dcfg.dataset), str(run_data))
    length = clip_length(spec.graph)
    from runtime.backend import require_tensorflow
    from runtime.data.config import points_input

    if length is not None or points_input(spec.graph) is not None:
        require_tensorflow("eval of a clip or keypoint-input spec", SourceLoc(spec.file))
    if length is None:
        scored = scored_rows(load_faces(spec, dcfg), dcfg, split_name, run_dcfg, same)
    else:  # clip specs: the split's people, every frame of their clips scored once
        scored, clips = scored_clips(spec, dcfg, split_name, run_dcfg, same, length)
    shape = run_shape_model(run_dir, spec, ecfg, state) if shape_model or ecfg.shape_model \
        else None
    try:
        if length is None:
            pred, fitted, gt = predict_points(spec, model, scored.faces, dcfg, ecfg, shape)
        else:
            windows: list = []
            pred, fitted, gt = predict_clip_points(spec, model, clips, dcfg, ecfg, shape,
                                                   windows=windows)
    except Exception as e:  # noqa: BLE001 - only a lazily decoded bad image is translated
        explain_pipeline_error(dcfg, e)
        raise
    _fail_if_empty(len(pred), str(dcfg.dataset))
    visible = gt[..., 2] > 0.5
    result = summarize(pred, gt[..., :2], visible, ecfg.normalizer)
    curves = {spec.name: nme(pred, gt[..., :2], visible, ecfg.normalizer)}
    if shape is not None:
        result["shape_model"] = summarize(fitted, gt[..., :2], visible, ecfg.normalizer)
        curves[f"{spec.name} + shape model"] = nme(fitted, gt[..., :2], visible, ecfg.normalizer)
    if length is not None and windows:
        from runtime.evaluate.video_metrics import clip_figures

        wp = np.concatenate([w[0] for w in windows])
        wg = np.concatenate([w[1] for w in windows])
        result["video"] = clip_figures(wp, wg[..., :2], wg[..., 2] > 0.5, ecfg.normalizer)
    result.update(normalizer=ecfg.normalizer, data=str(dcfg.dataset), split=split_name,
                  split_rows=scored.text, trained_faces_scored=scored.trained_on,
                  run_data=run_data, limit=dcfg.limit)
    _warn(scored, dcfg, run_data, same, dropped_limit, len(scored.faces))
    tag = Path(str(dcfg.dataset)).stem or "data"
    plot = out_dir / f"ced_{tag}_{split_name}.png"
    save_ced_plot(curves, plot, normalizer=ecfg.normalizer)
    atomic_write_json(out_dir / f"{tag}_{split_name}.json", result)
    if as_json:
        brief = {k: result[k] for k in _KEYS}
        brief.update(data=result["data"], split=split_name, normalizer=ecfg.normalizer,
                     trained_faces_scored=scored.trained_on)
        if shape is not None:
            brief["shape_model"] = {k: result["shape_model"][k] for k in _KEYS}
        if "video" in result:
            brief["video"] = result["video"]
        print(json.dumps(brief))  # noqa: T201 - CLI output
    else:
        print(format_report(result, plot))  # noqa: T201
    return result


def _warn(scored: Scored, dcfg: Any, run_data: str | None, same: bool,
          dropped_limit: int | None, n_scored: int) -> None:
    """stderr notes on what was scored: training faces, other data, a dropped limit."""
    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)  # noqa: T201 - user-facing notes

    if scored.trained_on:
        say(f"warning: {scored.trained_on} of the {n_scored} scored faces were used to train "
            f"this run (--split {scored.split}): these figures are optimistic, not a held-out "
            "result; --split val scores only the held-out faces")
    elif not same and run_data is not None:
        say(f"note: scoring {dcfg.dataset}, not the data this run trained on ({run_data}); "
            f"--split {scored.split} scores {scored.text}")
    if dropped_limit is not None and dropped_limit < n_scored:
        say(f"note: the run's data.limit = {dropped_limit} (a training-time cap) is not "
            f"applied: every face of the {scored.split} split is scored "
            "(--set data.limit=N to cap it)")


def _with_normalizer(ecfg: Any, normalizer: str) -> Any:
    """Re-validate with the --normalizer value (a typo gets the did-you-mean)."""
    fields = {f: getattr(ecfg, f) for f in ecfg.__dataclass_fields__}
    return eval_config({**fields, "normalizer": normalizer}, SourceLoc("--normalizer"))


def format_report(r: dict[str, Any], plot: Path) -> str:
    """The human report; NME, FR and AUC in percent (the --json output keeps fractions)."""
    from runtime.evaluate.metrics import format_figure as f

    lines = [f"scored {r['data']}, split {r['split']} ({r.get('split_rows', r['split'])}): "
             f"{r['n']} faces, NME / {r['normalizer']}",
             f"  NME      {f('nme', r['nme'])}",
             f"  FR@0.08  {f('fr_008', r['fr_008'])}    FR@0.10  {f('fr_010', r['fr_010'])}",
             f"  AUC@0.08 {f('auc_008', r['auc_008'])}    AUC@0.10 {f('auc_010', r['auc_010'])}",
             "  per landmark (NME %): " + " ".join(f"{100 * v:.1f}" for v in r["per_landmark"]),
             f"  CED plot: {plot}"]
    if "video" in r:
        v = r["video"]
        lines.insert(-1, f"  per clip ({v['clips']} windows): NME mean "
                         f"{f('nme', v['clip_nme_mean'])}, median "
                         f"{f('nme', v['clip_nme_median'])}, worst {f('nme', v['clip_nme_worst'])}")
        lines.insert(-1, f"  temporal jitter (predicted minus true frame-to-frame motion, "
                         f"{v['jitter_pairs']} frame pairs): {f('nme', v['jitter'])}")
    if "shape_model" in r:
        m = r["shape_model"]
        lines.insert(-1, f"  with the PCA shape model: NME {f('nme', m['nme'])}   "
                         f"FR@0.08 {f('fr_008', m['fr_008'])}   "
                         f"AUC@0.08 {f('auc_008', m['auc_008'])}")
    return "\n".join(lines)


def _fail_if_empty(n: int, where: str) -> None:
    if n == 0:
        raise SpecError.at(SourceLoc(where), "no faces could be scored",
                           hint="check the data path and format")


# --- LGCN: scoring after the PCA shape-model fit (runtime/shapes/shape_model.py) -----------------

def run_shape_model(run_dir: Path, spec: Spec, ecfg: Any, state: dict[str, Any]) -> Any:
    """RUN/shape_model.npz (written by `netspec fit` when eval.shape_model is on); for older
    runs it is fitted now on the run's training split and saved."""
    from runtime.datasets import split
    from runtime.shapes.shape_model import SHAPE_MODEL_FILE, ShapeModel, save_training_shape_model

    path = Path(run_dir) / SHAPE_MODEL_FILE
    if not path.exists():
        dcfg = spec_data_config(spec, state.get("data"), state.get("data_format"))
        train = split(load_faces(spec, dcfg), dcfg)[0]
        save_training_shape_model(Path(run_dir), train, dcfg, ecfg)
    try:
        model = ShapeModel.load(path)
    except Exception as e:  # noqa: BLE001 - np.load raises many kinds for a damaged file
        raise SpecError.at(SourceLoc(str(path)), "cannot read the shape model: the file is "
                                                 "truncated or not a netspec shape model",
                           notes=(f"{type(e).__name__}: {str(e)[:200]}",),
                           hint=f"delete {path.name}; eval fits it again from the run's "
                                "training split") from None
    return model.truncated(min(model.n_components, ecfg.shape_model_components))


def predict_points(spec: Spec, model: Any, faces: Any, dcfg: Any, ecfg: Any,
                   shape: Any = None, batch_size: int = 64
                   ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(decoded points, points after the shape-model fit or None, ground truth [N,K,3]) in
    the crop frame for every usable row; the network runs once per batch."""
    from runtime.evaluate.decode import decode, map_to_image
    from runtime.evaluate.eval_config import decoded_output
    from runtime.shapes.shape_model import fit_batch, scaled_windows

    out_name, kind = decoded_output(spec, ecfg)
    if shape is not None and kind != "heatmap":
        raise SpecError.at(SourceLoc(spec.file), f"the shape model is fitted to heat-maps, but "
                                                 f"output '{out_name}' gives coordinates",
                           hint="set eval.shape_model: false for this spec")
    from runtime.data.config import points_input

    if points_input(spec.graph) is not None:  # a denoiser: the shapes, corrupted as in fit
        from runtime.data.shape_pipeline import make_shape_dataset

        ds = make_shape_dataset(faces, dcfg, training=False, batch_size=batch_size,
                                input_name=spec.graph.inputs[0].name)
    else:
        ds = _image_batches(faces, dcfg, batch_size, spec.graph.inputs[0].name)
    from runtime.progress import Bar

    preds, fits, gts = [], [], []
    bar = Bar(-(-len(faces) // batch_size), "eval", "batch")
    for x, y in ds:
        bar.update()
        out = np.asarray(model.predict_on_batch(x)[out_name])
        preds.append(decode(kind, out, dcfg.size, refine=ecfg.refine))
        gts.append(np.asarray(y["landmarks"])[..., :3])  # a denoiser's 4th channel: its mask
        if shape is not None:
            h, w = out.shape[1:3]
            p = fit_batch(shape, out, windows=scaled_windows(max(h, w)))
            fits.append(np.stack([map_to_image(p[..., 0], dcfg.size, w),
                                  map_to_image(p[..., 1], dcfg.size, h)], axis=-1))
    bar.close()
    fitted = np.concatenate(fits) if shape is not None else None
    return np.concatenate(preds), fitted, np.concatenate(gts)


def _image_batches(faces: Any, dcfg: Any, batch_size: int, input_name: str) -> Any:
    """({input: images}, {"landmarks": [b, K, 3]}) batches of every usable row, in order:
    tf.data on TensorFlow, the device feed (runtime/data/device_feed.py) elsewhere."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from runtime.data.pipeline import make_dataset

        return make_dataset(faces, dcfg, training=False, batch_size=batch_size,
                            input_name=input_name)
    from runtime.data.device_feed import make_feed, split_batches

    try:
        feed = make_feed(faces, dcfg, training=False)
    except ValueError as e:
        raise SpecError.at(SourceLoc(str(dcfg.dataset)), str(e)) from None
    return (({input_name: x}, {"landmarks": y}) for x, y in split_batches(feed, batch_size))


def predict_clip_points(spec: Spec, model: Any, clips: Any, dcfg: Any, ecfg: Any,
                        shape: Any = None, batch_size: int = 16, windows: list | None = None
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """`predict_points` for a clip spec on a scoring ClipSet: the network runs on its
    windows, points are decoded per frame and only each window's scored frames are kept,
    so every frame counts once. `windows`, when given, receives (points [N, T, K, 2],
    labels [N, T, K, 3]) of every frame of each batch of windows, for the video figures."""
    from runtime.data.pipeline import make_window_dataset
    from runtime.evaluate.decode import map_to_image
    from runtime.evaluate.eval_config import decoded_output
    from runtime.progress import Bar
    from runtime.shapes.shape_model import fit_batch, scaled_windows
    from runtime.train.fit import decode_frames

    out_name, kind = decoded_output(spec, ecfg)
    if shape is not None and kind != "heatmap":
        raise SpecError.at(SourceLoc(spec.file), f"the shape model is fitted to heat-maps, but "
                                                 f"output '{out_name}' gives coordinates",
                           hint="set eval.shape_model: false for this spec")
    try:
        ds, usable = make_window_dataset(clips.faces, clips.windows, dcfg, training=False,
                                         batch_size=batch_size,
                                         input_name=spec.graph.inputs[0].name)
    except ValueError as e:
        raise SpecError.at(SourceLoc(str(dcfg.dataset)), str(e)) from None
    score = clips.score[usable]
    preds, fits, gts, done = [], [], [], 0
    bar = Bar(-(-len(usable) // batch_size), "eval", "batch")
    for x, y in ds:
        bar.update()
        out = np.asarray(model.predict_on_batch(x)[out_name])
        labels = y["landmarks"].numpy()
        keep = score[done:done + len(labels)]
        done += len(labels)
        points, gt = decode_frames(kind, out, dcfg.size, ecfg.refine, labels, keep)
        preds.append(points)
        gts.append(gt)
        if windows is not None:
            every, _ = decode_frames(kind, out, dcfg.size, ecfg.refine, labels, None)
            windows.append((every.reshape(*labels.shape[:2], *every.shape[1:]), labels))
        if shape is not None:
            maps = out.reshape(-1, *out.shape[2:])[keep.ravel()]
            h, w = maps.shape[1:3]
            p = fit_batch(shape, maps, windows=scaled_windows(max(h, w)))
            fits.append(np.stack([map_to_image(p[..., 0], dcfg.size, w),
                                  map_to_image(p[..., 1], dcfg.size, h)], axis=-1))
    bar.close()
    fitted = np.concatenate(fits) if shape is not None else None
    return np.concatenate(preds), fitted, np.concatenate(gts)
