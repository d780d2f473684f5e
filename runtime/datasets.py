"""From a spec's `data:` section (plus `--data`) to train/validation FaceSets."""

from __future__ import annotations

from dataclasses import replace

from compiler.api import Spec
from compiler.diagnostics import SourceLoc, SpecError
from runtime.data.config import DataConfig, data_config
from runtime.data.records import FaceSet

SYNTHETIC = "synthetic"
SYNTHETIC_FACES = 3000  # embedded set: 2000 train + the spec's 1000 validation rows


def spec_data_config(spec: Spec, data: str | None = None, data_format: str | None = None
                     ) -> DataConfig:
    """The validated data section; `--data`/`--format` replace dataset/format."""
    section = spec.section("data")
    overrides = {}
    if data is not None:
        overrides["dataset"] = data
        if data_format is None and data != section.get("dataset"):
            overrides["format"] = None
    if data_format is not None:
        overrides["format"] = data_format
    cfg = data_config(section, loc=section.loc, **overrides)
    image = spec.graph.inputs[0].out
    if image is not None and image.rank == 4 and (image.shape[1], image.shape[3]) != (
            cfg.size, cfg.channels):
        raise SpecError.at(section.loc, f"data produces {cfg.size}x{cfg.size}x{cfg.channels} "
                           f"images but input '{spec.graph.inputs[0].name}' is {image}",
                           hint="set data.size / data.channels to match the input "
                                "(e.g. size: $size)")
    return cfg


def n_landmarks(spec: Spec) -> int | None:
    value = spec.params.get("n_landmarks")
    return value if isinstance(value, int) else None


def load_faces(spec: Spec, cfg: DataConfig) -> FaceSet:
    """Read the data set (or draw the embedded synthetic faces) and check its scheme."""
    k = n_landmarks(spec)
    if cfg.dataset == SYNTHETIC:
        from runtime.data.synthetic import synthetic_faceset

        scheme = cfg.scheme or ("68pt" if k == 68 else "5pt")
        faces = synthetic_faceset(SYNTHETIC_FACES, scheme=scheme, size=cfg.size, seed=cfg.seed)
    else:
        from runtime.data.readers import load_faceset

        faces = load_faceset(cfg.dataset, cfg.format, on_error=cfg.on_error)
        if cfg.scheme and faces.scheme != cfg.scheme:
            faces = replace(faces, scheme=cfg.scheme)
    if k is not None and faces.n_landmarks != k:
        raise SpecError.at(SourceLoc(str(cfg.dataset)),
                           f"the data has {faces.n_landmarks} landmarks per face but the "
                           f"spec predicts n_landmarks = {k}",
                           hint="use a spec for this landmark scheme (e.g. rcn_300w for 68 "
                                "points) or --set n_landmarks=...")
    return faces


def explain_pipeline_error(cfg: DataConfig, err: BaseException) -> None:
    """After tf.data failed (`err`): raise the reader's DataError (file:line) for the first
    image that cannot be decoded, if that is the cause; else return (caller re-raises).

    Images are decoded lazily by the pipeline, so a truncated JPEG only shows up mid-run
    as a TensorFlow InvalidArgumentError that names no file; re-reading the list with
    image verification finds the row (cost paid only on failure).
    """
    if cfg.dataset == SYNTHETIC or type(err).__name__ != "InvalidArgumentError":
        return
    from runtime.data.readers import load_faceset

    load_faceset(cfg.dataset, cfg.format, on_error=cfg.on_error, verify_images=True)


def backgrounds(train: FaceSet, cfg: DataConfig, loc: SourceLoc | None = None
                ) -> FaceSet | None:
    """The background crops of `data.negatives` for `train` (None when it is off); `loc`
    (the spec's data section) places errors."""
    from runtime.data.config import negatives_config

    neg = negatives_config(cfg)
    if neg is None or neg.fraction <= 0.0:
        return None
    from runtime.data.negatives import background_faceset

    return background_faceset(train, neg, size=cfg.size, crop_ratio=cfg.crop_ratio,
                              seed=cfg.seed, loc=loc)


def split(faces: FaceSet, cfg: DataConfig) -> tuple[FaceSet, FaceSet]:
    from runtime.data.pipeline import split_faceset

    try:
        return split_faceset(faces, cfg)
    except ValueError as e:
        raise SpecError.at(SourceLoc("data.val_split"), str(e)) from None
