"""The in-memory form every reader produces and every pipeline consumes.

A `FaceSet` is columnar: image sources plus a (N, K, 2) array of landmark pixel
coordinates (0-based x, y in the source image) and a (N, K) visibility mask. Images
are either file paths (decoded lazily in tf.data) or an in-memory uint8 array.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The pipeline's label tensor is [B, K, 3]: x, y in network-input pixels and a state.
# Every loss trains on VISIBLE points only (state > 0.5); LGCN's eq. 3 also weights
# ABSENT ones (labelled, yet not in the crop: pushed outside it, outside the source image,
# or every landmark of a background crop), whose target heat-map is all zero.
VISIBLE = 1.0
ABSENT = -1.0
UNLABELLED = 0.0
LABEL_KEY = "landmarks"  # the labels dict of a batch: points [.., K, 3]
IDENTITY_KEY = "identity"  # clip sets: the person's class id per frame (identities.py)


@dataclass(frozen=True)
class FaceSet:
    name: str  # e.g. "mtfl", "synthetic5"
    scheme: str  # landmark scheme: "5pt" (MTFL order) or "68pt" (iBUG order); sets mirror perm
    landmarks: np.ndarray  # float32 (N, K, 2): x, y in source-image pixels, 0-based
    visible: np.ndarray  # bool (N, K): False = unlabelled / invisible (masked in losses);
    # True with NaN coordinates = labelled as absent (background crops, runtime/data/negatives)
    paths: tuple[str, ...] = ()  # image files (when images is None)
    images: np.ndarray | None = None  # uint8 (N, H, W, C) when held in memory
    boxes: np.ndarray | None = None  # float32 (N, 4) x0, y0, x1, y1 face boxes, if given
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (source, reason) under policy
    image_kinds: tuple[str, ...] = ()  # per path: PIL "format/mode" (readers), or unknown

    def __len__(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def n_landmarks(self) -> int:
        return int(self.landmarks.shape[1])

    def subset(self, index: np.ndarray | slice) -> FaceSet:
        """Rows selected by `index` (used for train/validation splits)."""
        idx = np.arange(len(self))[index]
        return FaceSet(
            name=self.name,
            scheme=self.scheme,
            landmarks=self.landmarks[idx],
            visible=self.visible[idx],
            paths=tuple(self.paths[i] for i in idx) if self.paths else (),
            images=None if self.images is None else self.images[idx],
            boxes=None if self.boxes is None else self.boxes[idx],
            skipped=self.skipped,
            image_kinds=tuple(self.image_kinds[i] for i in idx) if self.image_kinds else (),
        )
