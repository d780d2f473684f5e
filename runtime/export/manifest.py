"""DIR/manifest.json: what an exported artefact expects and returns, so it can be used
without netspec (input name/shape/dtype/values, crop rule, landmark order, decoding).

Plain JSON, no TensorFlow: `read_manifest` checks the keys netspec itself relies on and
names the file and key when one is missing or wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compiler.diagnostics import SourceLoc, SpecError

MANIFEST = "manifest.json"
VERSION = 1
FORMATS = ("savedmodel", "tflite", "onnx")
ARTEFACTS = {"savedmodel": "model.savedmodel", "tflite": "model.tflite", "onnx": "model.onnx"}

_LANDMARK_NAMES = {
    "5pt": ["left_eye", "right_eye", "nose", "left_mouth_corner", "right_mouth_corner"],
}
_NORMALISATION = {
    "lcn": "RCN local contrast normalisation per channel: v = x - G*x, "
           "out = (v / max(sqrt(G*v^2), mean std) + 2.5) / 5, G = 9x9 Gaussian sigma 1.591 px",
    "per_image": "(x - mean) / max(std, 1) over each image",
    "scale": "x / 255",
    "lgcn": "(x / 128 - 1) * 0.1",
}


def landmark_names(scheme: str | None, k: int) -> list[str]:
    """Names in output order: MTFL's 5 points, iBUG's 68 (point_1..68), else point_i."""
    names = _LANDMARK_NAMES.get(scheme or "")
    if names is not None and len(names) == k:
        return list(names)
    return [f"point_{i + 1}" for i in range(k)]


def build_manifest(*, fmt: str, quantize: str | None, spec_name: str, run: str,
                   epoch: int | None, size: int, channels: int, normalize: str, crop: str,
                   crop_ratio: float, antialias: bool, scheme: str | None, output: str,
                   kind: str, output_shape: tuple[int, ...], points: str | None,
                   refine: str, n_landmarks: int, input_name: str, batch: int | None = None,
                   quantization: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of one export (every value JSON-native). `batch`: the artefact's fixed
    batch size (a TFLite graph the converter could only take at batch 1), None for any;
    `quantization`: what `quantize` turned to int8 / float16 and how it was calibrated."""
    outputs: dict[str, Any] = {output: {
        "shape": [batch, *output_shape], "dtype": "float32", "kind": kind,
        "meaning": ("heat maps [B, H, W, K], one per landmark; the face score is the mean "
                    "over landmarks of max(map) / sum(max(map, 0))") if kind == "heatmap"
        else "coordinates [B, 2K]: x0, y0, x1, y1, ... divided by the input side"}}
    if points is not None:
        outputs[points] = {
            "shape": [batch, n_landmarks, 2], "dtype": "float32", "kind": "points",
            "meaning": "landmarks (x, y) in input pixels, 0-based, pixel centres at integers",
            "decoding": ({"from": output, "argmax": "per map, first maximum",
                          "refine": refine, "window": "3x3, edge-replicated, offsets clipped "
                                                      "to +-0.5 px, none at the border",
                          "to_input": "x = (x_map + 0.5) * S / W - 0.5"}
                         if kind == "heatmap" else {"from": output, "to_input": "value * S"})}
    return {
        "netspec_export": VERSION, "format": fmt, "artefact": ARTEFACTS[fmt],
        "quantize": quantize, "quantization": quantization, "model": spec_name, "run": run,
        "epoch": epoch,
        "input": {"name": input_name, "shape": [batch, size, size, channels],
                  "dtype": "float32", "layout": "NHWC",
                  "batch": "any" if batch is None else
                  f"{batch} only: run larger batches one image at a time",
                  "values": "raw pixel values 0..255 of the crop (not normalised)",
                  "channels": "gray (BT.601 luma)" if channels == 1 else "RGB",
                  "normalisation": {"method": normalize, "in_graph": True,
                                    "formula": _NORMALISATION.get(normalize, normalize)}},
        "crop": {"rule": crop, "crop_ratio": crop_ratio, "square": _crop_text(crop, crop_ratio),
                 "resize": f"affine warp to {size}x{size}, bilinear"
                           + (", box-filtered first when shrinking by >= 2x" if antialias
                              else ""),
                 "pixels": "0-based, pixel centres at integers; source -> input: "
                           "x' = (x - cx) * S / side + (S - 1) / 2",
                 "antialias": antialias},
        "landmarks": {"scheme": scheme, "count": n_landmarks,
                      "order": landmark_names(scheme, n_landmarks)},
        "outputs": outputs,
    }


def _crop_text(crop: str, ratio: float) -> str:
    if crop == "landmarks":
        return (f"square on the centre of the landmarks' bounding box, side = its longer side "
                f"x {ratio:g}")
    if crop == "box":
        return f"square on the centre of the face box, side = its longer side x {ratio:g}"
    return ("the whole image padded to a square (centred, side = the longer image side): the "
            "model was trained on images that are already face crops")


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> Path:
    from runtime.atomic import atomic_write_json

    path = Path(out_dir) / MANIFEST
    atomic_write_json(path, manifest)
    return path


def is_export_dir(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def read_manifest(export_dir: Path) -> dict[str, Any]:
    """The manifest of an export folder, checked; a SpecError naming the problem."""
    import json

    path = Path(export_dir) / MANIFEST
    where = SourceLoc(str(path))
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError.at(SourceLoc(str(export_dir)), f"not a netspec export (no {MANIFEST})",
                           hint="pass the -o folder of `netspec export`") from None
    except (OSError, ValueError) as e:
        raise SpecError.at(where, f"cannot read the manifest: {e}",
                           hint="re-run `netspec export`") from None
    if not isinstance(data, dict) or data.get("netspec_export") != VERSION:
        raise SpecError.at(where, f"not a version-{VERSION} netspec export manifest",
                           hint="re-run `netspec export` with this netspec")
    problems = []
    if data.get("format") not in FORMATS:
        problems.append(f"format: expected one of {', '.join(FORMATS)}, found "
                        f"{data.get('format')!r}")
    inp = data.get("input")
    if not isinstance(inp, dict) or not isinstance(inp.get("shape"), list) \
            or len(inp["shape"]) != 4 or not isinstance(inp.get("name"), str):
        problems.append("input: expected {name, shape: [null, S, S, C], ...}")
    outs = data.get("outputs")
    if not isinstance(outs, dict) or not outs:
        problems.append("outputs: expected a mapping of output names")
    if problems:
        raise SpecError.at(where, "the manifest is damaged: " + "; ".join(problems),
                           hint="re-run `netspec export`")
    artefact = Path(export_dir) / str(data.get("artefact"))
    if not artefact.exists():
        raise SpecError.at(where, f"the artefact {artefact.name} named by the manifest is "
                                  "missing", hint="re-run `netspec export`")
    return data


def raw_output(manifest: dict[str, Any]) -> tuple[str, str]:
    """(name, kind) of the exported model output that predict decodes."""
    for name, o in manifest["outputs"].items():
        if o.get("kind") in ("heatmap", "coords"):
            return name, o["kind"]
    raise SpecError.at(SourceLoc(MANIFEST), "the manifest lists no heatmap or coords output",
                       hint="re-run `netspec export`")
