"""RAR's robust initial shape in numpy (runtime/shapes/robust_init.py): alignment undoes a
similarity, K-means finds planted clusters, RANSAC recovers a shape through planted outliers
that plain least squares cannot, and the op's parameter checks (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.api import load_spec_text
from compiler.diagnostics import SpecError
from compiler.ops.robust_shape import EYES_BY_K, hypothesis_pairs
from runtime.evaluate.metrics import _EYES
from runtime.shapes import robust_init as ri

K = 68


def _rotate(shape: np.ndarray, theta: float, scale: float, shift: tuple[float, float]
            ) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return shape @ np.array([[c, s], [-s, c]]) * scale + np.asarray(shift)


def _face(rng: np.random.Generator) -> np.ndarray:
    """A 68-point shape whose outer eye corners (36, 45) are 40 px apart."""
    shape = rng.normal(size=(K, 2)) * 20.0
    shape[36], shape[45] = (-20.0, 0.0), (20.0, 0.0)
    return shape


def test_similarity_fit_and_alignment_undo_a_known_similarity() -> None:
    rng = np.random.default_rng(0)
    base = _face(rng)
    moved = _rotate(base, 0.7, 2.5, (30.0, -12.0))
    a, b = ri.similarity_fit(base, moved)
    assert abs(abs(a) - 2.5) < 1e-9 and abs(np.angle(a) - 0.7) < 1e-9
    np.testing.assert_allclose(ri.apply_similarity(a, b, base), moved, atol=1e-9)
    # aligned copies of one shape coincide, also with missing points
    shapes = np.stack([_rotate(base, t, s, (t * 50, s)) for t, s in
                       ((0.0, 1.0), (0.9, 0.5), (-1.2, 3.0), (2.0, 1.7))])
    vis = np.ones((4, K), bool)
    vis[1, :20] = False
    vis[3, 40:] = False
    al = ri.align_shapes(shapes, vis)
    for s in al.shapes:
        np.testing.assert_allclose(s, al.mean, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(al.mean), 1.0, atol=1e-9)
    assert ri.similarity_fit(np.zeros((K, 2)), moved) is None  # no spread: no fit


def _clusters(rng: np.random.Generator, n: int = 240, c: int = 3
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = _face(rng)
    protos = [base + rng.normal(size=(K, 2)) * 6.0 for _ in range(c)]
    labels = np.arange(n) % c
    shapes = np.stack([_rotate(protos[lab] + rng.normal(size=(K, 2)) * 0.5,
                               rng.uniform(-0.6, 0.6), rng.uniform(0.5, 2.0),
                               tuple(rng.uniform(-80, 80, 2))) for lab in labels])
    return shapes, labels, np.stack(protos)


def test_kmeans_recovers_planted_clusters_under_similarities_and_missing_points() -> None:
    rng = np.random.default_rng(1)
    shapes, labels, protos = _clusters(rng)
    vis = rng.random(labels.shape + (K,)) > 0.15
    al = ri.align_shapes(shapes, vis)
    centres, found, _ = ri.kmeans(al.shapes, vis, 3, seed=0)
    # every planted cluster is one found cluster (up to relabelling)
    pairs = {(int(a), int(b)) for a, b in zip(labels, found, strict=True)}
    assert len(pairs) == 3 and len({b for _, b in pairs}) == 3
    again = ri.kmeans(al.shapes, vis, 3, seed=0)
    np.testing.assert_array_equal(again[1], found)  # seeded: deterministic
    rep = ri.representative_shapes(shapes, vis, 3, seed=0)
    assert rep.templates.shape == (3, K, 2) and rep.templates.dtype == np.float32
    assert sorted(rep.counts.tolist()) == [80, 80, 80]
    # placed at the training shapes' mean size and position (the frame the op fits from)
    sizes = [np.linalg.norm(s - s.mean(axis=0)) for s in shapes]
    for t in rep.templates:
        np.testing.assert_allclose(np.linalg.norm(t - t.mean(axis=0)), np.mean(sizes),
                                   rtol=0.02)
        np.testing.assert_allclose(t.mean(axis=0), shapes.mean(axis=(0, 1)), atol=2.0)
    for t in rep.templates:  # each template is one planted prototype up to a similarity
        errs = [np.abs(ri.apply_similarity(*ri.similarity_fit(p, t), p) - t).max()
                for p in protos]
        assert min(errs) < 0.5, errs
    with pytest.raises(ValueError, match="at least 5"):
        ri.representative_shapes(shapes[:4], vis[:4], 5)


def test_ransac_recovers_a_shape_through_planted_outliers() -> None:
    rng = np.random.default_rng(2)
    _, _, protos = _clusters(rng, n=30)
    templates = np.stack([_rotate(p, 0.1 * i, 1.0 + 0.1 * i, (i, -i))
                          for i, p in enumerate(protos)])
    truth = _rotate(protos[1], -0.4, 1.6, (120.0, 90.0))
    sd = truth + rng.normal(size=truth.shape) * 0.5
    thrown = rng.choice(K, 20, replace=False)
    sd[thrown] += rng.uniform(40, 120, (20, 2)) * rng.choice([-1, 1], (20, 2))
    iod = np.linalg.norm(truth[36] - truth[45])
    pairs = hypothesis_pairs(K, len(templates), 64, 0)
    fit = ri.ransac_fit(sd, templates, pairs, 0.08, (36, 45))
    assert fit.template == 1
    assert not fit.inliers[thrown].any() and fit.inliers.sum() >= 40
    err = np.linalg.norm(fit.shape - truth, axis=1).mean() / iod
    assert err < 0.02, err
    # least squares on all 68 points is dragged off by the 20 outliers
    a, b = ri.similarity_fit(templates[1], sd)
    ls_err = np.linalg.norm(ri.apply_similarity(a, b, templates[1]) - truth, axis=1).mean() / iod
    assert ls_err > 5 * err and ls_err > 0.05, (ls_err, err)
    # unfilled (zero) templates: no valid hypothesis, S_0 = S_d
    none = ri.ransac_fit(sd, np.zeros_like(templates), pairs, 0.08, (36, 45))
    assert none.template == -1
    np.testing.assert_array_equal(none.shape, sd)


def test_hypotheses_are_fixed_by_the_seed_and_never_repeat_a_point() -> None:
    p = hypothesis_pairs(68, 8, 64, 3)
    assert p.shape == (8, 64, 2) and p.dtype == np.int32
    assert (p[..., 0] != p[..., 1]).all() and p.min() >= 0 and p.max() < 68
    np.testing.assert_array_equal(p, hypothesis_pairs(68, 8, 64, 3))
    assert not np.array_equal(p, hypothesis_pairs(68, 8, 64, 4))
    # the threshold's unit is netspec eval's inter-ocular distance
    assert {k: v for k, v in EYES_BY_K.items()} == {
        k: (a[0], b[0]) for k, (a, b) in _EYES["inter_ocular"].items()}


SPEC = """version: 1
name: t
inputs: {image: {shape: [16, 16, 5]}}
layers:
  - {name: sd, op: argmax_points, in: [image], input_size: 16}
  - {name: s0, op: robust_init_shape, in: [sd]%s}
outputs:
  shape: {from: s0}
"""


@pytest.mark.parametrize(("extra", "message"), [
    (", templates: 0", "templates"),
    (", hypotheses: 0", "hypotheses"),
    (", inlier_threshold: 0.0", "inlier_threshold"),
    (", inlier_threshold: -0.1", "inlier_threshold"),
    (", eyes: [1, 1]", "two different"),
    (", eyes: [0, 9]", "out of range"),
    (", templates: 2.5", "templates"),
])
def test_bad_params_are_located_spec_errors(extra: str, message: str) -> None:
    with pytest.raises(SpecError) as e:
        load_spec_text(SPEC % extra, "t.yaml")
    text = str(e.value)
    assert message in text and "t.yaml:6" in text, text


def test_shape_rule_needs_two_known_landmarks_and_an_eye_pair() -> None:
    ok = load_spec_text(SPEC % ", templates: 3", "t.yaml")
    assert ok.graph.types()["s0"].shape == (None, 5, 2)
    one = SPEC.replace("[16, 16, 5]", "[16, 16, 1]") % ""
    with pytest.raises(SpecError, match="at least 2"):
        load_spec_text(one, "t.yaml")
    six = SPEC.replace("[16, 16, 5]", "[16, 16, 6]")
    with pytest.raises(SpecError, match="give eyes"):
        load_spec_text(six % "", "t.yaml")
    assert load_spec_text(six % ", eyes: [0, 5]", "t.yaml").graph.types()["s0"].shape == (
        None, 6, 2)
