"""The embedded default dataset: procedurally drawn faces with exact landmarks.

Needs no download: numpy only, deterministic from a seed, prefix-stable (the first k
faces of n are `synthetic_faceset(k)`), about 10,000 80x80 faces in a few seconds.
Each face is drawn in a canonical frame (eye line v = 0, eye midpoint u = 0, about
one unit between the eyes) from random shape parameters; the same parameters give
the 68 iBUG points, so landmarks sit exactly on the drawn features. A random
similarity transform (scale, rotation, shift) maps the face into the image.
`synthetic_clips` draws short clips of one face each, moving smoothly (for clip specs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compiler.diagnostics import SourceLoc
from runtime.data.errors import DataError
from runtime.data.records import FaceSet

CHUNK = 64  # faces drawn per random stream; fixed so results are prefix-stable
SCHEMES = ("5pt", "68pt")
FIVE_FROM_68 = (30, 48, 54)  # nose tip, mouth corners; eyes use the iris centres
(BG, NECK, SKIN, HAIR, BROW, LASH, SCLERA, IRIS, PUPIL, SHADOW, HIGHLIGHT, NOSTRIL,
 LIPS, MOUTH, TEETH) = range(15)


@dataclass(frozen=True)
class _Face:
    """Per-face shape parameters in canonical units, each shaped (B, 1, 1)."""

    ex: np.ndarray  # half the distance between the eye centres
    eye_w: np.ndarray  # eye width (corner to corner)
    eye_up: np.ndarray  # upper-lid height above the eye line
    eye_lo: np.ndarray  # lower-lid depth below it
    iris_r: np.ndarray
    gaze_u: np.ndarray
    gaze_v: np.ndarray
    brow_v: np.ndarray  # brow height above the eye line
    brow_arch: np.ndarray
    brow_th: np.ndarray
    nose_tip: np.ndarray  # tip v
    nose_drop: np.ndarray  # tip to subnasale
    nose_w: np.ndarray  # half-width of the nostril wings
    mouth_v: np.ndarray
    mouth_w: np.ndarray  # half-width
    lip_up: np.ndarray
    lip_lo: np.ndarray
    opening: np.ndarray  # half-height of the open mouth (0 = closed)
    smile: np.ndarray  # corners raised by this much
    teeth: np.ndarray  # bool: show upper teeth when open
    head_v: np.ndarray  # head ellipse centre
    head_a: np.ndarray  # half-width
    head_top: np.ndarray  # upper half-height
    head_jaw: np.ndarray  # lower half-height
    hairline: np.ndarray
    hair: np.ndarray  # bool
    yaw: np.ndarray  # inner features shift sideways by this (nose most)


def _draw_face(rng: np.random.Generator, b: int) -> _Face:
    def u(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, (b, 1, 1)).astype(np.float32)

    opening = np.maximum(u(-0.06, 0.13), 0.0)
    return _Face(
        ex=u(0.46, 0.54), eye_w=u(0.35, 0.45), eye_up=u(0.065, 0.12), eye_lo=u(0.04, 0.075),
        iris_r=u(0.08, 0.1), gaze_u=u(-0.035, 0.035), gaze_v=u(-0.015, 0.015),
        brow_v=u(0.2, 0.3), brow_arch=u(0.02, 0.07), brow_th=u(0.04, 0.075),
        nose_tip=u(0.5, 0.64), nose_drop=u(0.07, 0.1), nose_w=u(0.13, 0.19),
        mouth_v=u(0.95, 1.08), mouth_w=u(0.27, 0.37), lip_up=u(0.04, 0.07),
        lip_lo=u(0.05, 0.09), opening=opening, smile=u(-0.04, 0.08),
        teeth=u(0, 1) < 0.5, head_v=u(0.25, 0.38), head_a=u(0.9, 1.05),
        head_top=u(1.1, 1.3), head_jaw=u(1.05, 1.2), hairline=u(-0.6, -0.4),
        hair=u(0, 1) < 0.85, yaw=u(-0.07, 0.07),
    )


# ---- feature geometry: the same curves give the landmarks and the drawn masks ----

def _eye_cx(f: _Face, side: int) -> np.ndarray:
    return side * f.ex + 0.6 * f.yaw


def _lids(f: _Face, u: np.ndarray, cx: np.ndarray) -> tuple[np.ndarray, ...]:
    t = (u - cx) / (f.eye_w / 2)
    bulge = np.maximum(1 - t * t, 0.0)
    return t, -f.eye_up * bulge, f.eye_lo * bulge


def _brow_curve(f: _Face, u: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    cx = _eye_cx(f, side) + side * 0.04
    t = (u - cx) / (0.6 * f.eye_w + 0.05)
    return t, -f.brow_v - f.brow_arch * np.maximum(1 - t * t, 0.0)


def _mouth(f: _Face, u: np.ndarray) -> tuple[np.ndarray, ...]:
    """t across the mouth, the lip seam, and outer-upper/lower, inner-upper/lower v."""
    t = (u - 0.7 * f.yaw) / f.mouth_w
    seam = f.mouth_v - f.smile * t * t
    outer = np.maximum(1 - t * t, 0.0)
    tau = t / 0.85
    inner = np.maximum(1 - tau * tau, 0.0)
    return (t, seam, seam - (f.opening + f.lip_up) * outer,
            seam + (f.opening + f.lip_lo) * outer,
            seam - f.opening * inner, seam + f.opening * inner)


def _jaw_point(f: _Face, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.sin(phi)
    return f.head_a * np.cos(phi), f.head_v + s * np.where(s > 0, f.head_jaw, f.head_top)


def _points68(f: _Face) -> np.ndarray:
    """Canonical (B, 68, 2) points in iBUG order (0-based indices: jaw 0-16, ...)."""
    b = f.ex.shape[0]
    g = {k: getattr(f, k)[:, :, 0] for k in f.__dataclass_fields__}  # (B, 1)
    fg = _Face(**g)
    pts = np.zeros((b, 68, 2))
    phi = np.linspace(np.pi + 0.2, -0.2, 17)[None, :]
    pts[:, 0:17, 0], pts[:, 0:17, 1] = _jaw_point(fg, phi)
    for side, lo in ((-1, 17), (1, 22)):  # image-left brow outer->inner, right inner->outer
        t = np.array([-1, -0.5, 0, 0.5, 1.0])[None, :] * 0.9
        cx = _eye_cx(fg, side) + side * 0.04
        u = cx + t * (0.6 * fg.eye_w + 0.05)
        pts[:, lo:lo + 5, 0], pts[:, lo:lo + 5, 1] = u, _brow_curve(fg, u, side)[1]
    tip_u, top = fg.yaw, 0.6 * fg.yaw
    a = np.linspace(0, 1, 4)[None, :]  # bridge 27-30 from between the eyes to the tip
    pts[:, 27:31, 0] = top + a * (tip_u - top)
    pts[:, 27:31, 1] = 0.02 + a * (fg.nose_tip - 0.02)
    s = np.array([-1, -0.5, 0, 0.5, 1.0])[None, :]
    pts[:, 31:36, 0] = tip_u + s * fg.nose_w * 0.85
    pts[:, 31:36, 1] = fg.nose_tip + fg.nose_drop - 0.04 * s * s
    for lo, side, order in ((36, -1, (-1, -1 / 3, 1 / 3, 1, 1 / 3, -1 / 3)),
                            (42, 1, (-1, -1 / 3, 1 / 3, 1, 1 / 3, -1 / 3))):
        cx = _eye_cx(fg, side)
        t = np.array(order)[None, :]
        u = cx + t * fg.eye_w / 2
        _, up, low = _lids(fg, u, cx)
        pts[:, lo:lo + 6, 0] = u
        pts[:, lo:lo + 6, 1] = np.where(np.arange(6) < 4, up, low)
        pts[:, lo + 3, 1] = pts[:, lo, 1] = 0.0
    mt = np.array([-1, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3, 0, -1 / 3, -2 / 3])
    u = 0.7 * fg.yaw + mt[None, :] * fg.mouth_w
    _, seam, up, low, _, _ = _mouth(fg, u)
    pts[:, 48:60, 0], pts[:, 48:60, 1] = u, np.where(np.arange(12) < 7, up, low)
    pts[:, 48, 1], pts[:, 54, 1] = seam[:, 0], seam[:, 6]
    it = np.array([-1, -0.5, 0, 0.5, 1, 0.5, 0, -0.5]) * 0.85
    u = 0.7 * fg.yaw + it[None, :] * fg.mouth_w
    _, seam, _, _, iup, ilo = _mouth(fg, u)
    pts[:, 60:68, 0], pts[:, 60:68, 1] = u, np.where(np.arange(8) < 5, iup, ilo)
    pts[:, 60, 1], pts[:, 64, 1] = seam[:, 0], seam[:, 4]
    return pts


def _iris_centres(f: _Face) -> np.ndarray:
    cx = np.stack([_eye_cx(f, -1), _eye_cx(f, 1)], axis=1)[:, :, 0, 0] + f.gaze_u[:, :, 0]
    return np.stack([cx, np.broadcast_to(f.gaze_v[:, :, 0], cx.shape)], axis=-1)


# ---- painting: each feature is a mask evaluated in a pixel window around it ----

Mask = Callable[[np.ndarray, np.ndarray], np.ndarray]
Group = tuple[tuple[float, float] | None, float, list[tuple[int, Mask]]]


def _features(f: _Face) -> list[Group]:
    """Feature groups: (canonical window centre, None = full frame; window radius;
    [(label, mask of canonical u, v)] in painting order)."""
    def head(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        b = np.where(v > f.head_v, f.head_jaw, f.head_top)
        return (u / f.head_a) ** 2 + ((v - f.head_v) / b) ** 2 <= 1

    def neck(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return (np.abs(u) < 0.5 * f.head_a) & (v > f.head_v)

    def hair(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        big = (u / (1.08 * f.head_a)) ** 2 + ((v - f.head_v) / (1.1 * f.head_top)) ** 2 <= 1
        return f.hair & big & (v < f.hairline + 0.35 * (u / f.head_a) ** 2) & (v < f.head_v)

    groups: list[Group] = [(None, 0.0, [(NECK, neck), (SKIN, head), (HAIR, hair)])]
    for side in (-1, 1):
        cx = _eye_cx(f, side)

        def brow(u: np.ndarray, v: np.ndarray, side: int = side) -> np.ndarray:
            t, curve = _brow_curve(f, u, side)
            th = f.brow_th * (1.15 - 0.3 * np.abs(t + 0.5 * side))
            return (np.abs(t) <= 1) & (np.abs(v - curve) <= th / 2)

        def lash(u: np.ndarray, v: np.ndarray, cx: np.ndarray = cx) -> np.ndarray:
            t, up, low = _lids(f, u, cx)
            return (np.abs(t) <= 1.08) & (v >= up - 0.035) & (v <= low + 0.012)

        def sclera(u: np.ndarray, v: np.ndarray, cx: np.ndarray = cx) -> np.ndarray:
            t, up, low = _lids(f, u, cx)
            return (np.abs(t) <= 1) & (v >= up) & (v <= low)

        def iris(u: np.ndarray, v: np.ndarray, cx: np.ndarray = cx, k: float = 1.0
                 ) -> np.ndarray:
            d2 = (u - cx - f.gaze_u) ** 2 + (v - f.gaze_v) ** 2
            return sclera(u, v, cx) & (d2 <= (k * f.iris_r) ** 2)

        def pupil(u: np.ndarray, v: np.ndarray, cx: np.ndarray = cx) -> np.ndarray:
            return iris(u, v, cx, 0.45)

        eye_c = (side * 0.5, 0.0)
        groups += [((side * 0.5, -0.3), 0.5, [(BROW, brow)]),
                   (eye_c, 0.4, [(LASH, lash), (SCLERA, sclera), (IRIS, iris),
                                 (PUPIL, pupil)])]

    def shadow(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        wing = ((u - f.yaw) / (1.05 * f.nose_w)) ** 2 + (
            (v - f.nose_tip - 0.5 * f.nose_drop) / (0.9 * f.nose_drop + 0.03)) ** 2 <= 1
        a = np.clip(v / f.nose_tip, 0, 1)
        side_line = np.abs(u - (0.6 * f.yaw + a * 0.4 * f.yaw) - 0.07) < 0.022
        return wing | (side_line & (v > 0.15) & (v < f.nose_tip))

    def highlight(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return ((u - f.yaw) / 0.055) ** 2 + ((v - f.nose_tip) / 0.035) ** 2 <= 1

    def nostril(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        dv = (v - f.nose_tip - f.nose_drop + 0.03) / 0.024
        du = np.abs(u - f.yaw) - 0.5 * f.nose_w
        return (du / (0.28 * f.nose_w)) ** 2 + dv * dv <= 1

    def lips(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        t, _, up, low, _, _ = _mouth(f, u)
        return (np.abs(t) <= 1) & (v >= up) & (v <= low)

    def mouth(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        t, seam, _, _, iup, ilo = _mouth(f, u)
        closed = np.abs(v - seam) <= 0.014
        return (np.abs(t) <= 0.85) & (((v >= iup) & (v <= ilo)) | closed)

    def teeth(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        t, seam, _, _, iup, _ = _mouth(f, u)
        return f.teeth & (f.opening > 0.04) & (np.abs(t) <= 0.7) & (v >= iup) & (
            v <= 0.5 * (iup + seam))

    return groups + [
        ((0.0, 0.45), 0.5, [(SHADOW, shadow), (HIGHLIGHT, highlight), (NOSTRIL, nostril)]),
        ((0.0, 1.02), 0.5, [(LIPS, lips), (MOUTH, mouth), (TEETH, teeth)])]


@dataclass(frozen=True)
class _Pose:
    """Canonical -> pixel similarity: p = centre + scale * R(angle) (u, v)."""

    scale: np.ndarray  # (B,)
    angle: np.ndarray
    cx: np.ndarray
    cy: np.ndarray

    def forward(self, pts: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.angle)[:, None], np.sin(self.angle)[:, None]
        u, v = pts[..., 0] * self.scale[:, None], pts[..., 1] * self.scale[:, None]
        return np.stack([self.cx[:, None] + c * u - s * v,
                         self.cy[:, None] + s * u + c * v], axis=-1)


def _draw_pose(rng: np.random.Generator, b: int, size: int, pts: np.ndarray) -> _Pose:
    """Random scale/rotation/shift, then shifted (or shrunk) so all points fit inside."""
    scale = rng.uniform(0.14, 0.28, b) * size  # pixels per canonical unit (~ eye distance)
    angle = np.clip(rng.normal(0, 0.2, b), -0.55, 0.55)
    cx = size * (0.5 + rng.normal(0, 0.05, b))
    cy = size * (0.4 + rng.normal(0, 0.05, b))
    pose = _Pose(scale, angle, cx, cy)
    lo, hi = 1.0, size - 2.0
    p = pose.forward(pts)
    span = (p.max(axis=1) - p.min(axis=1)).max(axis=1)
    shrink = np.minimum(1.0, (hi - lo) / np.maximum(span, 1e-6))
    pose = _Pose(scale * shrink, angle, cx, cy)
    p = pose.forward(pts)
    shift = np.maximum(lo - p.min(axis=1), 0) - np.maximum(p.max(axis=1) - hi, 0)
    return _Pose(scale * shrink, angle, cx + shift[:, 0], cy + shift[:, 1])


def _paint(labels: np.ndarray, pose: _Pose, f: _Face) -> None:
    """Writes each feature's label where its mask holds (painter's order).

    Label pixel (i, j) is centred at image point (j - 0.5, i - 0.5): `_finish` box-
    filters 2x2 neighbours down to the image grid. Small feature groups are evaluated
    only in a pixel window around them: the per-pixel work is what costs.
    """
    b, side = labels.shape[0], labels.shape[1]
    c = np.cos(pose.angle).astype(np.float32)[:, None, None]
    s = np.sin(pose.angle).astype(np.float32)[:, None, None]
    k = (1.0 / pose.scale).astype(np.float32)[:, None, None]
    rows = np.arange(b)
    for centre, radius, masks in _features(f):
        if centre is None:
            w, ox, oy = side, np.zeros(b, int), np.zeros(b, int)
        else:
            pc = pose.forward(np.broadcast_to(np.array(centre), (b, 1, 2)))[:, 0] + 0.5
            w = min(side, 2 * int(np.ceil(radius * pose.scale.max())) + 3)
            ox = np.clip(np.rint(pc[:, 0]).astype(int) - w // 2, 0, side - w)
            oy = np.clip(np.rint(pc[:, 1]).astype(int) - w // 2, 0, side - w)
        grid = np.arange(w, dtype=np.float32) - 0.5
        x0 = (ox - pose.cx).astype(np.float32)[:, None, None]  # float32 keeps it fast
        y0 = (oy - pose.cy).astype(np.float32)[:, None, None]
        dx, dy = (x0 + grid[None, None, :]) * k, (y0 + grid[None, :, None]) * k
        u, v = c * dx + s * dy, c * dy - s * dx
        if centre is None:
            for label, mask in masks:
                labels[mask(u, v)] = label
            continue
        views = np.lib.stride_tricks.sliding_window_view(
            labels, (w, w), axis=(1, 2), writeable=True)
        window = views[rows, oy, ox]
        for label, mask in masks:
            window[mask(u, v)] = label
        views[rows, oy, ox] = window


def _palette(rng: np.random.Generator, b: int) -> np.ndarray:
    """(B, labels, 3) RGB colours: skin tone, hair, eyes, lips, background."""
    def rgb(lo: tuple[float, ...], hi: tuple[float, ...]) -> np.ndarray:
        t = rng.uniform(0, 1, (b, 1))
        return np.asarray(lo) + t * (np.asarray(hi) - np.asarray(lo)) + rng.normal(0, 8, (b, 3))

    skin = rgb((80, 52, 36), (240, 205, 180))
    hair = rgb((20, 15, 12), (200, 170, 110)) * rng.choice([1.0, 0.4], (b, 1), p=[.6, .4])
    pal = np.zeros((b, 15, 3))
    pal[:, BG] = rng.uniform(0, 255, (b, 3))
    pal[:, NECK], pal[:, SKIN], pal[:, HAIR] = skin * 0.78, skin, hair
    pal[:, BROW] = np.minimum(hair, skin) * 0.55
    pal[:, LASH] = skin * 0.25
    pal[:, SCLERA] = rgb((185, 180, 175), (245, 245, 240))
    pal[:, IRIS] = rgb((25, 15, 10), (80, 105, 130))
    pal[:, PUPIL] = rng.uniform(5, 30, (b, 1))
    pal[:, SHADOW], pal[:, HIGHLIGHT], pal[:, NOSTRIL] = skin * 0.8, skin * 1.12, skin * 0.35
    pal[:, LIPS] = skin * np.array([0.85, 0.55, 0.55]) + np.array([25, 0, 5])
    pal[:, MOUTH] = rgb((30, 8, 10), (90, 30, 35))
    pal[:, TEETH] = rgb((190, 185, 170), (240, 235, 225))
    gray = rng.uniform(0, 1, b) < 0.15
    lum = pal @ np.array([0.299, 0.587, 0.114])
    pal[gray] = lum[gray][..., None]
    return pal.astype(np.float32)


def _finish(rng: np.random.Generator, labels: np.ndarray, pal: np.ndarray, per: int = 1
            ) -> np.ndarray:
    """Colours the label map, adds background texture, lighting and noise, and box-
    filters 2x2 neighbours (anti-aliasing; see `_paint`). Works channel by channel:
    numpy is slow on a trailing axis of 3. Texture, lighting and noise level are drawn
    once per `per` consecutive images (the frames of a clip); the noise itself per image."""
    b, side = labels.shape[:2]
    n = b // per

    def each(a: np.ndarray) -> np.ndarray:
        return a if per == 1 else np.repeat(a, per, axis=0)

    knots = np.linspace(0, 1, side)[:, None] * 3 - np.arange(4)[None, :]
    up = np.maximum(1 - np.abs(knots), 0).astype(np.float32)  # (side, 4) linear weights
    tex = each(up @ rng.normal(0, 45, (n, 4, 4)).astype(np.float32) @ up.T)  # blotches
    ramp = np.linspace(-0.5, 0.5, side, dtype=np.float32)
    gx, gy = (each(g) for g in rng.uniform(-0.35, 0.35, (2, n, 1, 1)).astype(np.float32))
    gain = each(rng.uniform(0.75, 1.2, (n, 1, 1)).astype(np.float32))
    light = (0.25 * gain) * (1 + gx * ramp[None, None, :] + gy * ramp[None, :, None])
    sigma = each(rng.uniform(4, 30, (n, 1, 1)).astype(np.float32))  # noise amplitude
    noise = np.frombuffer(rng.bytes(labels.size), np.uint8).reshape(labels.shape)
    noise = noise * (0.25 / 255 * sigma) - 0.125 * sigma + 0.125  # + rounding
    noise += (labels == BG) * (0.25 * tex)
    flat = (labels + (np.arange(b) * pal.shape[1])[:, None, None]).ravel()
    out = np.empty((b, side - 1, side - 1, 3), np.uint8)
    for ch in range(3):
        img = np.take(pal[:, :, ch].ravel(), flat, mode="clip").reshape(labels.shape)
        img *= light
        img += noise
        img = img[:, :-1] + img[:, 1:]
        img = img[:, :, :-1] + img[:, :, 1:]
        out[..., ch] = np.clip(img, 0, 255, out=img)
    return out


def _chunk(seed: int, index: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CHUNK faces from their own random stream: images, 68 points, 5 points."""
    rng = np.random.default_rng([seed, index])
    face = _draw_face(rng, CHUNK)
    canon = _points68(face)
    pts5 = np.concatenate([_iris_centres(face), canon[:, FIVE_FROM_68]], axis=1)
    pose = _draw_pose(rng, CHUNK, size, np.concatenate([canon, pts5], axis=1))
    labels = np.zeros((CHUNK, size + 1, size + 1), np.uint8)
    _paint(labels, pose, face)
    images = _finish(rng, labels, _palette(rng, CHUNK))
    return images, pose.forward(canon), pose.forward(pts5)


def synthetic_faceset(n: int, scheme: str = "5pt", size: int = 80, seed: int = 0) -> FaceSet:
    """`n` drawn faces (uint8 (n, size, size, 3) in memory) with exact landmarks.

    Args:
        n: number of faces.
        scheme: "5pt" (eye centres, nose tip, mouth corners: MTFL order) or "68pt"
            (iBUG order). The same seed draws the same faces for both schemes.
        size: image side in pixels (at least 16).
        seed: random seed; faces are a deterministic function of (seed, index).
    """
    loc = SourceLoc("<synthetic>")
    if scheme not in SCHEMES:
        raise DataError.at(loc, f"unknown landmark scheme {scheme!r}",
                           hint=f"use one of: {', '.join(SCHEMES)}")
    if n < 0 or size < 16:
        raise DataError.at(loc, f"need n >= 0 faces of size >= 16, got n={n}, size={size}")
    parts = [_chunk(seed, i, size) for i in range(-(-n // CHUNK))]
    k = 5 if scheme == "5pt" else 68
    if parts:
        images = np.concatenate([p[0] for p in parts])[:n]
        pts = np.concatenate([p[2] if k == 5 else p[1] for p in parts])[:n]
    else:
        images, pts = np.zeros((0, size, size, 3), np.uint8), np.zeros((0, k, 2))
    return FaceSet(
        name=f"synthetic{k}",
        scheme=scheme,
        landmarks=pts.astype(np.float32),
        visible=np.ones((n, k), bool),
        images=images,
    )


# ---- clips: one face per clip, moving a little from frame to frame ----------------------

CLIP_CHUNK = 16  # clips drawn per random stream (prefix-stable, like CHUNK)
# Expression parameters that move within a clip: (largest change per frame, range).
_MOTION = {"opening": (0.006, 0.0, 0.13), "smile": (0.006, -0.04, 0.08),
           "gaze_u": (0.004, -0.035, 0.035), "gaze_v": (0.002, -0.015, 0.015),
           "yaw": (0.006, -0.07, 0.07), "brow_v": (0.004, 0.2, 0.3)}
# Pose drift per frame: relative scale, rotation (radians), shift (x image size).
_DRIFT_SCALE, _DRIFT_ANGLE, _DRIFT_SHIFT = 0.015, 0.03, 0.012


def _moving_face(rng: np.random.Generator, n: int, length: int) -> _Face:
    """n faces, each repeated over `length` frames with its expression drifting at a
    constant per-clip rate (clipped to the parameter's range): smooth, small motion."""
    base = _draw_face(rng, n)
    t = (np.arange(length, dtype=np.float32) - (length - 1) / 2)[None, :, None, None]
    fields = {}
    for name in base.__dataclass_fields__:
        value = np.repeat(getattr(base, name)[:, None], length, axis=1)  # (n, T, 1, 1)
        if name in _MOTION:
            step, lo, hi = _MOTION[name]
            rate = rng.uniform(-step, step, (n, 1, 1, 1)).astype(np.float32)
            value = np.clip(value + rate * t, lo, hi).astype(np.float32)
        fields[name] = value.reshape(n * length, 1, 1)
    return _Face(**fields)


def _moving_pose(rng: np.random.Generator, n: int, length: int, size: int, pts: np.ndarray
                 ) -> _Pose:
    """Per-frame poses (n * length,): a random start pose drifting at a constant rate, then
    one shrink and shift per clip so that every frame's points fit inside the image."""
    start = _draw_pose(rng, n, size, pts.reshape(n, length, -1, 2)[:, (length - 1) // 2])
    t = np.arange(length) - (length - 1) / 2
    ds, da = rng.uniform(-1, 1, (2, n, 1)) * np.array([_DRIFT_SCALE, _DRIFT_ANGLE])[:, None, None]
    dxy = rng.uniform(-_DRIFT_SHIFT, _DRIFT_SHIFT, (2, n, 1)) * size

    def frames(a: np.ndarray, rate: np.ndarray, relative: bool = False) -> np.ndarray:
        return (a[:, None] * (1 + rate * t) if relative else a[:, None] + rate * t).ravel()

    scale = frames(start.scale, ds, relative=True)
    angle, cx, cy = frames(start.angle, da), frames(start.cx, dxy[0]), frames(start.cy, dxy[1])
    lo, hi = 1.0, size - 2.0
    p = _Pose(scale, angle, cx, cy).forward(pts).reshape(n, -1, 2)
    span = (p.max(axis=1) - p.min(axis=1)).max(axis=1)
    shrink = np.repeat(np.minimum(1.0, (hi - lo) / np.maximum(span, 1e-6)), length)
    # shrink about each clip's mean centre, so the clip's motion keeps its shape
    mx, my = (np.repeat(c.reshape(n, length).mean(1), length) for c in (cx, cy))
    cx, cy = mx + (cx - mx) * shrink, my + (cy - my) * shrink
    p = _Pose(scale * shrink, angle, cx, cy).forward(pts).reshape(n, -1, 2)
    shift = np.maximum(lo - p.min(axis=1), 0) - np.maximum(p.max(axis=1) - hi, 0)
    return _Pose(scale * shrink, angle, cx + np.repeat(shift[:, 0], length),
                 cy + np.repeat(shift[:, 1], length))


def _clip_chunk(seed: int, index: int, length: int, size: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CLIP_CHUNK clips of `length` frames from their own random stream (apart from the
    still faces' streams): images, 68 points, 5 points, frames of a clip consecutive."""
    rng = np.random.default_rng([seed, 1 << 20, length, index])
    face = _moving_face(rng, CLIP_CHUNK, length)
    canon = _points68(face)
    pts5 = np.concatenate([_iris_centres(face), canon[:, FIVE_FROM_68]], axis=1)
    pose = _moving_pose(rng, CLIP_CHUNK, length, size, np.concatenate([canon, pts5], axis=1))
    labels = np.zeros((CLIP_CHUNK * length, size + 1, size + 1), np.uint8)
    _paint(labels, pose, face)
    palette = np.repeat(_palette(rng, CLIP_CHUNK), length, axis=0)
    images = _finish(rng, labels, palette, per=length)
    return images, pose.forward(canon), pose.forward(pts5)


def synthetic_clips(n: int, length: int, scheme: str = "5pt", size: int = 80, seed: int = 0
                    ) -> FaceSet:
    """`n` clips of `length` frames of one drawn face each, as n * length rows: frame t of
    clip c is row c * length + t. Within a clip the face keeps its identity, colours and
    background while its pose (scale, rotation, position) and expression (mouth, smile,
    gaze, yaw, brows) drift a little from frame to frame; landmarks are exact per frame.
    Deterministic from (seed, length) and prefix-stable in the clips."""
    loc = SourceLoc("<synthetic>")
    if scheme not in SCHEMES:
        raise DataError.at(loc, f"unknown landmark scheme {scheme!r}",
                           hint=f"use one of: {', '.join(SCHEMES)}")
    if n < 0 or length < 1 or size < 16:
        raise DataError.at(loc, f"need n >= 0 clips of length >= 1 and size >= 16, got n={n}, "
                                f"length={length}, size={size}")
    parts = [_clip_chunk(seed, i, length, size) for i in range(-(-n // CLIP_CHUNK))]
    k, rows = (5 if scheme == "5pt" else 68), n * length
    if parts:
        images = np.concatenate([p[0] for p in parts])[:rows]
        pts = np.concatenate([p[2] if k == 5 else p[1] for p in parts])[:rows]
    else:
        images, pts = np.zeros((0, size, size, 3), np.uint8), np.zeros((0, k, 2))
    return FaceSet(name=f"synthetic{k}_clips", scheme=scheme, landmarks=pts.astype(np.float32),
                   visible=np.ones((rows, k), bool), images=images)
