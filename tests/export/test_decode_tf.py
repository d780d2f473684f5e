"""The in-graph decoder (runtime/export/decode_tf.py) equals the numpy one on random and
peaked maps, for every refinement, including border and tied peaks."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("tensorflow")

from runtime.evaluate.decode import REFINES, decode  # noqa: E402
from runtime.export import decode_tf  # noqa: E402

pytestmark = pytest.mark.keras


def _maps(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.uniform(0, 1, (3, 20, 24, 4)).astype(np.float32)
    m[0, 0, 5, 0] = 5.0  # top border peak: no y refinement
    m[1, 7, 23, 1] = 5.0  # right border peak
    m[2, :, :, 2] = 0.0  # flat map: first index, no refinement
    m[2, 10, 10, 3] = 3.0
    m[2, 9, 10, 3], m[2, 11, 10, 3], m[2, 10, 9, 3] = 2.0, 1.0, 2.5
    return m


@pytest.mark.parametrize("refine", REFINES)
def test_heatmap_points_match_numpy(refine: str) -> None:
    maps = _maps(1)
    want = decode("heatmap", maps, 40, refine=refine)  # type: ignore[arg-type]
    got = decode_tf.heatmap_points(maps, 40, refine).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_coord_points_match_numpy() -> None:
    y = np.random.default_rng(2).uniform(0, 1, (5, 10)).astype(np.float32)
    np.testing.assert_allclose(decode_tf.coord_points(y, 80).numpy(), decode("coords", y, 80),
                               atol=1e-5)
