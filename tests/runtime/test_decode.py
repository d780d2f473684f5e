"""runtime/evaluate/decode.py: heat-maps and coordinate vectors back to input-image points."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.evaluate.decode import decode, heatmap_peaks, image_to_map, map_to_image


def gaussian_maps(points_xy: list[tuple[float, float]], h: int, w: int,
                  sigma: float = 1.5) -> np.ndarray:
    """[1, H, W, K] Gaussians at map-pixel positions."""
    yy, xx = np.mgrid[0:h, 0:w]
    maps = [np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in points_xy]
    return np.stack(maps, axis=-1)[None]


def test_pixel_convention_round_trip() -> None:
    # An 80-px input and a 40-px map: input pixels 0 and 1 straddle map pixel 0.
    assert image_to_map(0.5, 80, 40) == pytest.approx(0.0)
    assert image_to_map(-0.5, 80, 40) == pytest.approx(-0.5)  # the outer image edge
    assert image_to_map(79.5, 80, 40) == pytest.approx(39.5)
    x = np.array([-0.5, 0.0, 13.25, 79.5])
    np.testing.assert_allclose(map_to_image(image_to_map(x, 80, 20), 80, 20), x)
    assert image_to_map(7.0, 80, 80) == 7.0  # same size: identity


def test_log_quadratic_is_exact_for_gaussians() -> None:
    pts = [(3.3, 4.6), (10.0, 2.0), (6.75, 8.45)]
    xy, peak = heatmap_peaks(gaussian_maps(pts, 12, 14), refine="log_quadratic")
    np.testing.assert_allclose(xy[0], pts, atol=1e-9)
    assert peak.shape == (1, 3) and peak[0, 1] == pytest.approx(1.0)


@pytest.mark.parametrize(("refine", "tol"), [("quadratic", 0.2), ("com", 0.35)])
def test_subpixel_refinement_beats_argmax(refine: str, tol: float) -> None:
    pts = [(3.3, 4.6), (6.75, 8.45)]
    maps = gaussian_maps(pts, 12, 14)
    coarse, _ = heatmap_peaks(maps, refine="none")
    np.testing.assert_array_equal(coarse[0], [[3, 5], [7, 8]])
    fine, _ = heatmap_peaks(maps, refine=refine)
    err_fine = np.abs(fine[0] - pts)
    assert (err_fine < np.abs(coarse[0] - pts)).all()
    assert err_fine.max() < tol  # a 3×3 centre of mass is biased towards the argmax


def test_border_peak_is_not_refined_outwards() -> None:
    maps = np.zeros((1, 5, 5, 1))
    maps[0, 0, 4, 0] = 1.0  # top-right corner
    maps[0, 1, 4, 0] = 0.5
    xy, _ = heatmap_peaks(maps, refine="quadratic")
    assert xy[0, 0, 0] == 4.0  # x on the border: untouched
    assert xy[0, 0, 1] == 0.0  # y on the border too


def test_flat_map_stays_at_argmax() -> None:
    xy, _ = heatmap_peaks(np.ones((2, 6, 6, 3)), refine="quadratic")
    np.testing.assert_array_equal(xy, np.zeros((2, 3, 2)))


def test_decode_heatmap_to_input_pixels() -> None:
    # Landmarks at input pixels (x, y) on an 80-px image, predicted on a 40-px map.
    pts_img = np.array([[20.0, 30.0], [51.5, 11.25]])
    pts_map = image_to_map(pts_img, 80, 40)
    maps = gaussian_maps([tuple(p) for p in pts_map], 40, 40, sigma=1.0)
    out = decode("heatmap", maps, 80, refine="log_quadratic")
    assert out.shape == (1, 2, 2)
    np.testing.assert_allclose(out[0], pts_img, atol=1e-6)


def test_decode_heatmap_same_size_argmax_is_pixel_index() -> None:
    maps = np.zeros((1, 8, 8, 1))
    maps[0, 6, 2, 0] = 1.0  # row 6, column 2
    np.testing.assert_array_equal(decode("heatmap", maps, 8, refine="none"), [[[2.0, 6.0]]])


def test_decode_coords() -> None:
    y = np.array([[0.25, 0.5, 1.0, 0.0]])
    np.testing.assert_allclose(decode("coords", y, 80), [[[20.0, 40.0], [80.0, 0.0]]])


@pytest.mark.parametrize(("kind", "shape"), [("coords", (2, 3)), ("heatmap", (2, 8, 8)),
                                            ("boxes", (2, 4))])
def test_decode_rejects_bad_input(kind: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        decode(kind, np.zeros(shape), 8)


def test_unknown_refine() -> None:
    with pytest.raises(ValueError, match="unknown refine 'gauss'"):
        heatmap_peaks(np.zeros((1, 4, 4, 1)), refine="gauss")  # type: ignore[arg-type]
