"""Weights computed from the training data, before the first training step of a new run.

RAR's `robust_init_shape` layers hold M representative training shapes (a non-trainable
weight [M, K, 2]); here they are computed from the run's training faces (never the held-out
ones) by runtime/shapes/robust_init.py and written into the built model, so the first step
already starts from robust initial shapes and model.keras / the checkpoints carry them. A
`--resume` skips this: its checkpoint restores the weights the first epoch trained with.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from compiler.diagnostics import SourceLoc, SpecError
from compiler.ir import spec_name


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # noqa: T201 - user-facing note


def robust_init_layers(model: Any) -> list[Any]:
    """Every RobustInitShape layer of `model`, nested models included (each once)."""
    from compiler.keras_layers.robust_shape import RobustInitShape

    found: list[Any] = []
    seen: set[int] = set()

    def walk(layer: Any) -> None:
        for sub in getattr(layer, "layers", ()):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            if isinstance(sub, RobustInitShape):
                found.append(sub)
            walk(sub)

    walk(model)
    return found


def training_shapes(train_faces: Any, dcfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, K, 2), visible (N, K)) of the training faces, as the image pipeline
    frames them (runtime.data.shape_source.crop_shapes: only points on the crop count).

    With data.crop: none the frame depends on each image's size, which only decoding tells;
    the source-image labels are used then: the templates are compared up to a similarity, so
    their frame does not matter, only which points are labelled. Clip sets give the frames
    their training windows use."""
    from runtime.data.records import VISIBLE
    from runtime.data.shape_source import crop_shapes

    faces = train_faces
    if hasattr(train_faces, "windows"):  # a ClipSet: the frames of its windows
        faces = train_faces.faces.subset(np.unique(train_faces.windows))
    if dcfg.crop == "none":
        pts = np.asarray(faces.landmarks, np.float64)
        return pts, np.asarray(faces.visible, bool) & np.isfinite(pts).all(axis=-1)
    shapes, _ = crop_shapes(faces, dcfg)
    return shapes[..., :2].astype(np.float64), shapes[..., 2] == VISIBLE


def fill_robust_templates(model: Any, spec: Any, train_faces: Any, dcfg: Any) -> int:
    """Fill every robust_init_shape layer's templates from the training shapes; returns the
    number of layers filled. SpecError (at the layer) when the data cannot give them."""
    layers = robust_init_layers(model)
    if not layers:
        return 0
    from runtime.shapes.robust_init import representative_shapes, usable_rows

    try:
        pts, vis = training_shapes(train_faces, dcfg)
    except ValueError as e:
        raise SpecError.at(SourceLoc(str(dcfg.dataset)), f"cannot compute the "
                           f"robust_init_shape templates: {e}") from None
    usable = len(usable_rows(vis))
    for layer in layers:
        name = spec_name(layer.name)
        loc = _layer_loc(spec, name)
        m, k = (int(d) for d in layer.templates.shape[:2])
        if pts.shape[1] != k:
            raise SpecError.at(loc, f"robust_init_shape '{name}' has templates of {k} "
                               f"landmarks but the training data has {pts.shape[1]} per face",
                               node=name, hint="give data with as many landmarks as the "
                                               "layer's input points (or change the network)")
        if usable < m:
            raise SpecError.at(loc, f"robust_init_shape '{name}' needs at least {m} training "
                               f"shapes (templates: {m}) that see half their landmarks, the "
                               f"training data has {usable} of {len(vis)}", node=name,
                               hint=f"lower templates (<= {max(usable, 1)}) or train on more "
                                    "faces")
        try:
            rep = representative_shapes(pts, vis, m, seed=layer.seed)
        except ValueError as e:
            raise SpecError.at(loc, f"robust_init_shape '{name}': {e}", node=name) from None
        layer.templates.assign(rep.templates)
        sizes = ", ".join(str(int(c)) for c in rep.counts)
        _say(f"{name}: {m} representative shapes from {rep.used} training shapes "
             f"(K-means on aligned shapes; cluster sizes {sizes})")
    return len(layers)


def _layer_loc(spec: Any, name: str) -> SourceLoc:
    for node in spec.graph.nodes:
        if node.name == name:
            return node.loc
    return SourceLoc(str(spec.file))
