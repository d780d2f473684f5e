"""`netspec predict --detect`: faces found by OpenCV's Haar cascade (shipped inside the
opencv-python-headless wheel: nothing is downloaded), each mapped to the square crop the
model was trained on.

A Haar box is not the crop a model saw in training (the landmark box x crop_ratio, the data
set's face box, or a whole pre-cropped face image), so each rule has a measured map from a
Haar box (centre, side) to a training crop: side = K * haar side, centre = haar centre +
(DX, DY) * haar side. Measured on the shared data (see `_MAPS`): median over the
faces the cascade found of the ratio between the training crop and the Haar box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compiler.diagnostics import SourceLoc, SpecError

CASCADE = "haarcascade_frontalface_default.xml"
# rule -> (K, DX, DY) relative to the Haar box side; see the module docstring. 'landmarks'
# is per scheme (the 5-point box is the eye-mouth region, the 68-point box the whole face)
# and is multiplied by the spec's crop_ratio.
# Measured 2026-12-02 (median over faces with exactly one detection, /tmp-free script in
# the export report): MTFL every 10th of the first 4,000 rows (349 of 400 found) and HELEN
# every 4th training image (203 of 218 found).
_MAPS: dict[str, tuple[float, float, float]] = {
    "none": (2.105, -0.038, -0.029),  # MTFL 80x80 crops: the image is 2.1 Haar sides wide
    "landmarks_5pt": (0.410, -0.008, 0.070),  # MTFL 5-point box, before crop_ratio
    "landmarks_68pt": (0.859, 0.001, 0.139),  # HELEN 68-point box, before crop_ratio
    "box": (1.0, 0.0, 0.0),  # a data set's face box is taken to be a detector box
}


def _cascade():  # noqa: ANN202 - cv2.CascadeClassifier
    try:
        import cv2
    except ImportError:
        raise SpecError.at(SourceLoc("--detect"), "--detect needs OpenCV",
                           hint='pip install -e ".[export]" (opencv-python-headless)') from None
    path = Path(cv2.data.haarcascades) / CASCADE
    clf = cv2.CascadeClassifier(str(path))
    if clf.empty():
        raise SpecError.at(SourceLoc(str(path)), "OpenCV's face cascade is missing from the "
                                                 "installed wheel",
                           hint='reinstall: pip install "opencv-python-headless<5" (OpenCV 5 '
                                "dropped the Haar cascades)")
    return clf


def detect_faces(path: Path, *, min_side: int = 24) -> np.ndarray:
    """Face boxes [N, 4] x0, y0, x1, y1 (source pixels), left to right."""
    from PIL import Image

    with Image.open(path) as img:
        img.seek(0)
        gray = np.asarray(img.convert("L"))
    found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                        minSize=(min_side, min_side))
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in np.asarray(found).reshape(-1, 4)],
                     np.float64).reshape(-1, 4)
    return boxes[np.argsort(boxes[:, 0])] if len(boxes) else boxes


def crop_map(rule: str, scheme: str | None) -> tuple[float, float, float]:
    key = f"landmarks_{scheme}" if rule == "landmarks" else rule
    return _MAPS.get(key, _MAPS["box"])


def haar_to_crop(box: np.ndarray, rule: str, crop_ratio: float, scheme: str | None
                 ) -> tuple[float, float, float]:
    """The training crop (cx, cy, side) for one Haar box under the model's crop rule."""
    k, dx, dy = crop_map(rule, scheme)
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0)
    scale = k * (crop_ratio if rule in ("landmarks", "box") else 1.0)
    return (x0 + x1) / 2 + dx * side, (y0 + y1) / 2 + dy * side, side * scale


def detect_clips(clips: list, rule: str, crop_ratio: float, scheme: str | None) -> list:
    """Each one-image clip of predict_files becomes one clip whose frames are its faces (the
    same image, one training crop per Haar box); stems are '<image>_face<i>'."""
    from dataclasses import replace

    out = []
    for clip in clips:
        frame = clip.frames[0]
        boxes = detect_faces(frame.path)
        faces = tuple(replace(frame, crop=haar_to_crop(b, rule, crop_ratio, scheme))
                      for b in boxes)
        out.append(replace(clip, frames=faces,
                           stems=tuple(f"{clip.name}_face{i + 1}" for i in range(len(faces))),
                           boxes=tuple(tuple(float(v) for v in b) for b in boxes),
                           source=frame.path))
    return out
