"""Landmark overlays for `netspec predict`: the source image with numbered dots (PIL only).

Dots sit at source-pixel coordinates (0-based, pixel centres at integers) and are
numbered by their index in the JSON `landmarks` list (0-based). Images smaller than
`MIN_SIDE` are enlarged by a whole factor (nearest neighbour) so the numbers stay legible.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIN_SIDE = 256  # smaller images are drawn at an integer upscale
# Distinct, colour-blind friendly dot colours (Okabe-Ito), cycled over the landmarks.
PALETTE = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
           (213, 94, 0), (204, 121, 167), (255, 255, 255))


def overlay_scale(width: int, height: int) -> int:
    """The whole factor an image of this size is enlarged by (1 for most images)."""
    longest = max(width, height, 1)
    return 1 if longest >= MIN_SIDE else math.ceil(MIN_SIDE / longest)


def draw_landmarks(image: Image.Image, points: np.ndarray, *, numbers: bool = True
                   ) -> Image.Image:
    """An RGB copy of `image` with a dot (and its index) at each finite point (K, 2)."""
    factor = overlay_scale(*image.size)
    canvas = image.convert("RGB")
    if factor > 1:
        canvas = canvas.resize((image.width * factor, image.height * factor),
                               Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas)
    radius = max(3.0, max(canvas.size) / 150)
    font = _font(max(11, round(3 * radius + 4)))
    pts = (np.asarray(points, dtype=np.float64).reshape(-1, 2) + 0.5) * factor - 0.5
    for i, (x, y) in enumerate(pts):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        colour = PALETTE[i % len(PALETTE)]
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour,
                     outline=(0, 0, 0), width=max(1, round(radius / 3)))
        if numbers:
            draw.text((x + radius + 1, y - radius - 1), str(i), fill=colour, font=font,
                      anchor="ld", stroke_width=max(1, round(radius / 3)), stroke_fill=(0, 0, 0))
    return canvas


def save_overlay(image_path: Path, points: np.ndarray, out_path: Path) -> None:
    """Read `image_path`, draw `points` (source pixels) on it and save a PNG at `out_path`."""
    with Image.open(image_path) as img:
        img.seek(0)  # first frame of animated formats, as the network saw
        canvas = draw_landmarks(img, points)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_path, format="PNG", compress_level=1)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()
