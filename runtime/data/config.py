"""The `data:` section of a spec: which faces, how they are cropped, jittered and normalised.

Both dataclasses are `OpParams`, so `compiler.params.coerce_params` validates raw YAML
against them (unknown keys with did-you-mean, types, ranges) and `netspec` can list the
documented fields. Importing this module never imports TensorFlow.

`size` and `channels` default to the spec's image input (`data_config_for_input`), so
a 32x32 spec trains at 32x32 as written, and an explicit value that disagrees with the
input is an error at that value's line (or `--set`), found by `netspec check`.

Note [Nested augment]: `coerce_params` matches a field against its declared type only,
so `DataConfig.augment` (and `negatives`) is kept as a plain mapping (or null = all
defaults / none). `DataConfig.problems()` validates that mapping against `AugmentConfig`
(`NegativesConfig`), which means one `coerce_params(DataConfig, raw, loc)` call reports
mistakes in both levels, and `augment_config(cfg)` (`negatives_config`) turns the mapping
into the typed settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from compiler.diagnostics import Diagnostic, DiagnosticSink, SourceLoc, SpecError
from compiler.ir import Graph, Node, TensorType
from compiler.params import OpParams, coerce_params, param

REFERENCE_SIZE = 80  # occlusion sizes are given at this output side and scale with `size`
_SIZE_BOUNDS = (8, 4096)  # data.size range


@dataclass(frozen=True)
class AugmentConfig(OpParams):
    """Training-time jitter, drawn per image and per epoch (RCN's ranges by default)."""

    enabled: bool = param(True, "apply augmentation to training batches at all")
    scale: float = param(0.1, "zoom factor drawn from U[1-scale, 1+scale] (RCN: ±10%)",
                         min=0.0, max=0.9)
    translate: float = param(0.1, "shift drawn from U[-t, t] x crop side, per axis (RCN: ±10%)",
                             min=0.0, max=1.0)
    rotation: float = param(40.0, "rotation drawn from U[-r, r] degrees about the crop centre "
                                  "(RCN default 40; its released models use 20)",
                            min=0.0, max=180.0)
    occlusion: bool = param(True, "paint one random black rectangle per image (RCN --block_img)")
    occlusion_min: float = param(20.0, f"smallest rectangle side in px at a {REFERENCE_SIZE}px "
                                       "output (scaled with size)", min=0.0)
    occlusion_max: float = param(50.0, f"largest rectangle side in px at a {REFERENCE_SIZE}px "
                                       "output (scaled with size)", min=0.0)
    mirror: bool = param(True, "random horizontal flip; landmark indices follow the scheme's "
                               "mirror permutation")
    mirror_prob: float = param(0.5, "probability of a flip when mirror is on", min=0.0, max=1.0)

    def problems(self) -> list[tuple[str, str]]:
        if self.occlusion_min > self.occlusion_max:
            return [("occlusion_min", f"is {self.occlusion_min}, larger than "
                                      f"occlusion_max {self.occlusion_max}")]
        return []


@dataclass(frozen=True)
class NegativesConfig(OpParams):
    """Background (non-face) training crops with every landmark labelled absent: the
    network learns to stay silent off faces (LGCN section 4.3 added 30,000 non-face
    images; needed for the detector-free `predict --multi-face`)."""

    source: str = param(
        "train", "'train' = squares of the training images that keep clear of the face; "
                 "or a folder of images without faces (every square of them is background)")
    fraction: float = param(0.2, "share of every training batch that is background crops",
                            min=0.0, max=0.9)
    min_scale: float = param(1.0, "smallest square side in source pixels, x data.size",
                             min=0.05)
    max_scale: float = param(4.0, "largest square side in source pixels, x data.size "
                                  "(capped by the image)", min=0.05)
    per_image: int = param(8, "squares drawn per source image (once, from data.seed); the "
                              "training jitter varies them per epoch", min=1, max=1000)
    margin: float = param(0.25, "'train' squares stay this many landmark-box sides clear of "
                                "the landmarks' box (hair, forehead and chin lie outside it)",
                          min=0.0)
    face_parts: float = param(
        0.0, "'train' only: also face_parts x per_image squares per image that show part "
             "of its face zoomed in by part_zoom: at that scale it is no face to the "
             "network, so a large face seen at a too-fine pyramid level stays silent "
             "(not in the paper; for predict --multi-face)", min=0.0, max=10.0)
    part_zoom: tuple[float, float] = param(
        (2.0, 4.0), "zoom range of face-part squares, x the face's training crop (the pyramid "
                    "halves, so anything past ~2x the training scale belongs to a coarser "
                    "level)")

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.min_scale > self.max_scale:
            out.append(("min_scale", f"is {self.min_scale}, larger than max_scale "
                                     f"{self.max_scale}"))
        lo, hi = self.part_zoom
        if not 1.0 < lo <= hi:
            out.append(("part_zoom", f"needs 1 < low <= high, found [{lo}, {hi}]"))
        return out


@dataclass(frozen=True)
class CorruptConfig(OpParams):
    """How a shapes-only model's input is corrupted (RCN section 4's denoising keypoint
    model): per example, `count` keypoints drawn at random are moved anywhere on the
    map, and the loss covers those keypoints only. Training draws a new subset every
    batch (from data.seed, so --resume sees the same batches); validation uses one fixed
    draw per row."""

    count: int = param(35, "keypoints corrupted per example (RCN-300W: 35 of 68)", min=0)
    mode: Literal["uniform", "drop"] = param(
        "uniform", "uniform = move each chosen keypoint to a uniformly random pixel (the "
                   "paper); drop = remove it (its input map is all zeros; the code's "
                   "--dropout_kpts)")
    loss_on: Literal["corrupted", "all"] = param(
        "corrupted", "train on the corrupted keypoints only (the paper) or on all of them "
                     "(the code's --train_all_kpts); validation NME always scores all")


@dataclass(frozen=True)
class DataConfig(OpParams):
    """Where faces come from and how each becomes a `size` x `size` network input."""

    dataset: str = param("synthetic", "'synthetic' or a path to a data set (folder or list file)")
    format: str | None = param(None, "reader to use (null = detect from the path)")
    scheme: str | None = param(None, "landmark scheme, '5pt' or '68pt' (null = from the reader)")
    size: int = param(80, "side of the square network input in pixels (default: the spec's "
                           "image input, else 80)", min=_SIZE_BOUNDS[0], max=_SIZE_BOUNDS[1])
    channels: Literal[1, 3] = param(1, "1 = gray (RCN default; RGB did worse there), 3 = RGB "
                                       "(default: the spec's image input, else 1)")
    crop: Literal["landmarks", "box", "none"] = param(
        "landmarks", "crop around the landmarks' bounding box, the set's face box, or keep the "
                     "whole image (padded to a square)")
    crop_ratio: float = param(
        1.3, "side of the square crop = longer side of the landmark (or face) box x ratio. "
             "RCN: 1.3 for 300-W; for MTFL it added 3.8-4.0 x max(eye distance, eye-mouth "
             "distance) per side, which on the shared 80x80 MTFL crops spans the whole image "
             "(about 4.4 x the 5-point box): use crop: none or crop_ratio ~4.4 there",
        min=0.05, max=100.0)
    normalize: Literal["per_image", "lcn", "scale", "lgcn"] = param(
        "lcn", "lcn = RCN local contrast normalisation (9x9 Gaussian), per_image = "
               "(x - mean) / std per image, scale = x / 255, lgcn = (x / 128 - 1) * 0.1")
    val_split: int | float = param(
        1000, "rows held out for validation, taken from the end: an int = that many rows "
              "(RCN held out the last 1000 MTFL rows), a float in (0, 1) = that fraction",
        min=0)
    limit: int | None = param(None, "use at most this many training rows and this many "
                                    "validation rows (quick runs); null = all", min=1)
    on_error: Literal["raise", "skip"] = param(
        "raise", "an unreadable image or a row without a usable crop: stop, or drop the row")
    shuffle: bool = param(True, "reshuffle the training rows every pass over them (a full "
                                "permutation, drawn from seed and the pass number, so a "
                                "resumed run sees the batches an unbroken one would)")
    seed: int = param(0, "seed of shuffling and augmentation; the same seed gives the same "
                         "batches, also across --resume", min=0)
    deterministic: bool = param(True, "keep element order under parallel decoding "
                                      "(false may be a little faster)")
    antialias: bool = param(True, "box-filter a source image by an integer factor before the "
                                  "warp when the crop shrinks it more than 2x")
    val_jitter: bool = param(False, "jitter validation images once (fixed per row, geometric "
                                    "only), as RCN did; default: no validation jitter")
    augment: Mapping[str, Any] | None = param(
        None, "training augmentation, keys of AugmentConfig (see Note [Nested augment]); "
              "null = defaults")
    negatives: Mapping[str, Any] | None = param(
        None, "background crops mixed into training batches, keys of NegativesConfig "
              "(source, fraction, min_scale, max_scale, per_image, margin); null = none")
    corrupt: Mapping[str, Any] | None = param(
        None, "for a spec whose input is keypoints [K, 2] (trained on shapes alone, no "
              "images): keys of CorruptConfig (count, mode, loss_on); null = defaults")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if isinstance(self.val_split, float) and not 0.0 < self.val_split < 1.0:
            out.append(("val_split", f"a fraction must be in (0, 1), found {self.val_split}"))
        for key, cls, raw in _nested_sections(self):
            _typed, diags = _coerce_nested(cls, key, raw)
            for d in diags:
                msg = d.message.removeprefix(f"{key}: ")
                out.append((key, msg + (f" ({d.hint})" if d.hint else "")))
        return out


_AUGMENT = "augment"
_NEGATIVES = "negatives"
_CORRUPT = "corrupt"


def _nested_sections(cfg: DataConfig) -> tuple[tuple[str, type[OpParams], Any], ...]:
    return ((_AUGMENT, AugmentConfig, cfg.augment), (_NEGATIVES, NegativesConfig, cfg.negatives),
            (_CORRUPT, CorruptConfig, cfg.corrupt))


def _coerce_nested(cls: type[OpParams], key: str, raw: Mapping[str, Any] | None
                   ) -> tuple[OpParams | None, list[Diagnostic]]:
    return coerce_params(cls, dict(raw or {}), SourceLoc(f"<data.{key}>"), section=key)


def augment_config(cfg: DataConfig) -> AugmentConfig:
    """The typed augmentation settings of `cfg`; raises `SpecError` when they are invalid."""
    aug, diags = _coerce_nested(AugmentConfig, _AUGMENT, cfg.augment)
    if aug is None:
        raise SpecError(diags)
    return aug  # type: ignore[return-value]


def negatives_config(cfg: DataConfig) -> NegativesConfig | None:
    """The typed background-crop settings of `cfg` (None when off); `SpecError` if invalid."""
    if cfg.negatives is None:
        return None
    neg, diags = _coerce_nested(NegativesConfig, _NEGATIVES, cfg.negatives)
    if neg is None:
        raise SpecError(diags)
    return neg  # type: ignore[return-value]


def corrupt_config(cfg: DataConfig) -> CorruptConfig:
    """The typed corruption settings of `cfg` (defaults when unset); `SpecError` if invalid."""
    corrupt, diags = _coerce_nested(CorruptConfig, _CORRUPT, cfg.corrupt)
    if corrupt is None:
        raise SpecError(diags)
    return corrupt  # type: ignore[return-value]


def points_input(graph: Graph) -> Node | None:
    """The input of a shapes-only model: the first one, when it is keypoints [B, K, 2]."""
    first = graph.inputs[0] if graph.inputs else None
    if first is None or first.out is None or first.out.rank != 3 or first.out.shape[2] != 2:
        return None
    return first


def data_config(raw: Mapping[str, Any] | None = None, *, loc: SourceLoc | None = None,
                key_locs: Callable[[str], SourceLoc] | None = None,
                **overrides: Any) -> DataConfig:
    """A validated `DataConfig` from a raw mapping (plus keyword overrides), or `SpecError`.

    `key_locs` places each key's diagnostics; by default a mapping's own `loc_of`
    (a spec section's) is used when it has one.
    """
    values = {**dict(raw or {}), **overrides}
    key_locs = key_locs or getattr(raw, "loc_of", None)
    cfg, diags = coerce_params(DataConfig, values, loc or SourceLoc("<data>"), section="data",
                               key_locs=key_locs)
    if cfg is None:
        raise SpecError(diags)
    return cfg  # type: ignore[return-value]


def image_input(graph: Graph) -> Node | None:
    """The input the data pipeline feeds: the first one, when it is an NHWC image."""
    if not graph.inputs:
        return None
    first = graph.inputs[0]
    return first if first.out is not None and first.out.rank == 4 else None


def frame_input(graph: Graph) -> Node | None:
    """The image input the data pipeline fills: the first input, or one frame of it when it
    is a clip (so data.size/channels default to, and are checked against, the frames)."""
    image = image_input(graph)
    first = graph.inputs[0] if graph.inputs else None
    if image is not None or first is None or first.out is None or first.out.rank != 5:
        return image
    b, _t, h, w, c = first.out.shape
    return replace(first, name=f"{first.name}[t]", out=TensorType((b, h, w, c), first.out.dtype))


def input_defaults(image: Node | None) -> dict[str, int]:
    """The `size`/`channels` an image input implies (only values DataConfig accepts)."""
    if image is None or image.out is None:
        return {}
    _b, h, w, c = image.out.shape
    out = {}
    lo, hi = _SIZE_BOUNDS
    if h is not None and (w is None or w == h) and lo <= h <= hi:
        out["size"] = h
    if c in (1, 3):
        out["channels"] = c
    return out


def data_config_for_input(raw: Mapping[str, Any] | None, image: Node | None, *,
                          loc: SourceLoc | None = None, **overrides: Any) -> DataConfig:
    """`data_config` with size/channels defaulting to `image`'s (see `input_defaults`);
    a SpecError naming both places when the data's images cannot feed `image`."""
    raw = raw if raw is not None else {}
    key_locs = getattr(raw, "loc_of", None)
    cfg = data_config({**input_defaults(image), **dict(raw)}, loc=loc, key_locs=key_locs,
                      **overrides)
    if image is not None and image.out is not None:
        _check_matches_input(cfg, raw, image, loc or SourceLoc("<data>"), key_locs)
    return cfg


def data_config_for_graph(raw: Mapping[str, Any] | None, graph: Graph, *,
                          loc: SourceLoc | None = None, **overrides: Any) -> DataConfig:
    """`data_config_for_input` for the graph's image (or clip frame) input, and for a
    keypoints input the checks that shapes-only training needs."""
    cfg = data_config_for_input(raw, frame_input(graph), loc=loc, **overrides)
    points = points_input(graph)
    if points is not None:
        raw = raw if raw is not None else {}
        _check_points_input(cfg, {**dict(raw), **overrides}, points, loc or SourceLoc("<data>"),
                            getattr(raw, "loc_of", None))
    return cfg


def _check_points_input(cfg: DataConfig, raw: Mapping[str, Any], points: Node, loc: SourceLoc,
                        key_locs: Callable[[str], SourceLoc] | None) -> None:
    def at(key: str) -> SourceLoc:
        return key_locs(key) if key_locs and key in raw else loc

    sink = DiagnosticSink()
    notes = (f"input '{points.name}' is {points.out}, declared at {points.loc}: the model "
             "learns from shapes alone, without images",)
    if cfg.crop == "none":
        sink.error(at("crop"), "data.crop is none, but a keypoints input is trained on shapes "
                               "without decoding images, and crop: none places points by the "
                               "image size", notes=notes,
                   hint="use data.crop: landmarks (or box), as the image model it pairs with")
    if cfg.negatives is not None:
        sink.error(at("negatives"), "data.negatives adds background images, but this model "
                                    "reads no images", notes=notes, hint="drop data.negatives")
    corrupt = corrupt_config(cfg)
    k = points.out.shape[1] if points.out is not None else None
    if k is not None and corrupt.count > k:
        sink.error(at("corrupt"), f"data.corrupt.count is {corrupt.count}, but input "
                                  f"'{points.name}' has {k} keypoints", notes=notes,
                   hint=f"corrupt at most {k} (RCN-300W: 35 of 68)")
    sink.raise_if_any()


def _check_matches_input(cfg: DataConfig, raw: Mapping[str, Any], image: Node,
                         loc: SourceLoc, key_locs: Callable[[str], SourceLoc] | None) -> None:
    _b, h, w, c = image.out.shape  # type: ignore[union-attr]
    lo, hi = _SIZE_BOUNDS
    shown = {"size": "x".join("?" if d is None else str(d) for d in (h, w)),
             "channels": f"{c} channel{'s' if c != 1 else ''}"}
    wrong = {"size": any(d is not None and d != cfg.size for d in (h, w)),
             "channels": c is not None and c != cfg.channels}
    unfit = {"size": ("square images" if None not in (h, w) and h != w else
                      f"sides of {lo}-{hi} pixels"),
             "channels": "1 (gray) or 3 (RGB) channels"}
    sink = DiagnosticSink()
    for key in ("size", "channels"):
        if not wrong[key]:
            continue
        if key in raw:
            verb = "is" if key == "size" else "has"
            sink.error(key_locs(key) if key_locs else loc,
                       f"data.{key} is {getattr(cfg, key)}, but input '{image.name}' {verb} "
                       f"{shown[key]}",
                       notes=(f"input '{image.name}' is {image.out}, declared at {image.loc}",),
                       hint=f"drop data.{key} (it defaults to the input's) or make the two "
                            f"agree, e.g. `{key}: ${key}` with a spec param")
        else:
            sink.error(image.loc, f"input '{image.name}' is {image.out}, but the data pipeline "
                                  f"only makes {unfit[key]}",
                       hint="give the image input a square [size, size, 1 or 3] shape")
    sink.raise_if_any()
