"""runtime/train/losses.py and runtime/train/targets.py on tiny hand-made maps (TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from compiler.losses import LOSSES  # noqa: E402
from runtime.train import targets  # noqa: E402
from runtime.train.losses import IMPLEMENTED, make_loss  # noqa: E402

pytestmark = pytest.mark.keras

S = 8  # input side; maps below are 8×8 (identity scale) or 4×4 (half)


def y_true(*points: tuple[float, float, float]) -> np.ndarray:
    """One example [1, K, 3] from (x, y, visible) triples in input pixels."""
    return np.array([points], np.float32)


def one_hot_pred(yt: np.ndarray, h: int, w: int) -> np.ndarray:
    return targets.one_hot_maps(yt, S, (h, w)).numpy()


def value(name: str, yt: np.ndarray, pred: np.ndarray, **args: object) -> np.ndarray:
    fn = make_loss(name, input_size=S, out_shape=(None, *pred.shape[1:]), **args)
    return fn(tf.constant(yt), tf.constant(pred, tf.float32)).numpy()


def has_kernels() -> bool:
    try:
        from compiler.kernels import named_kernel  # noqa: F401
    except ImportError:
        return False
    return True


needs_kernels = pytest.mark.skipif(
    not has_kernels(), reason="compiler.kernels.named_kernel (LGCN kernel) is not there yet")


def test_loss_names_match_compiler_metadata() -> None:
    assert frozenset(LOSSES) == IMPLEMENTED


# ---- targets ------------------------------------------------------------------------------

def test_pixel_index_half_resolution() -> None:
    # x = 5 on an 8-px input is map x (5.5)/2 - 0.5 = 2.25 -> pixel 2; y = 2.9 -> 1.2 -> 1.
    index, valid = targets.pixel_index(y_true((5.0, 2.9, 1), (0, 0, 0), (9.0, 1.0, 1)), S, (4, 4))
    np.testing.assert_array_equal(index.numpy(), [[1 * 4 + 2, 0, 0]])
    np.testing.assert_array_equal(valid.numpy(), [[1, 0, 0]])  # hidden; off the map (x=9)


def test_one_hot_maps_and_nan_labels() -> None:
    maps = targets.one_hot_maps(y_true((3.0, 6.0, 1), (np.nan, np.nan, 0)), S, (8, 8)).numpy()
    assert maps.shape == (1, 8, 8, 2)
    assert maps[0, 6, 3, 0] == 1.0 and maps[..., 0].sum() == 1.0
    assert maps[..., 1].sum() == 0.0  # NaN coordinates of a hidden landmark are harmless


def test_gaussian_peak_and_value() -> None:
    maps = targets.gaussian_maps(y_true((5.0, 2.0, 1), (1.0, 1.0, 0)), S, (8, 8), sigma=1.5,
                                 amplitude=10.0).numpy()
    assert np.unravel_index(np.argmax(maps[0, :, :, 0]), (8, 8)) == (2, 5)
    assert maps[0, 2, 5, 0] == pytest.approx(10.0)
    assert maps[0, 3, 7, 0] == pytest.approx(10.0 * np.exp(-(1 + 4) / (2 * 1.5**2)), rel=1e-5)
    assert maps[..., 1].max() == 0.0


def test_gaussian_peak_at_right_pixel_half_resolution() -> None:
    # x = 4.6 -> map (5.1)/2 - 0.5 = 2.05, y = 1.2 -> 0.35: nearest pixel (row 0, col 2).
    maps = targets.gaussian_maps(y_true((4.6, 1.2, 1)), S, (4, 4), sigma=1.0).numpy()
    assert np.unravel_index(np.argmax(maps[0, :, :, 0]), (4, 4)) == (0, 2)


def test_bilinear_splat_weights_and_border() -> None:
    splat = targets.bilinear_splat(
        y_true((2.25, 5.5, 1), (7.5, 3.0, 1), (4.0, 4.0, 0)), S, (8, 8)).numpy()[0]
    np.testing.assert_allclose(splat[..., 0].sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        [splat[5, 2, 0], splat[5, 3, 0], splat[6, 2, 0], splat[6, 3, 0]],
        [0.75 * 0.5, 0.25 * 0.5, 0.75 * 0.5, 0.25 * 0.5], rtol=1e-6)
    assert splat[..., 1].sum() == pytest.approx(0.5)  # half of it falls off the right edge
    assert splat[3, 7, 1] == pytest.approx(0.5)
    assert splat[..., 2].sum() == 0.0


def test_kernel_splat_equals_convolution() -> None:
    from scipy.signal import convolve2d

    kernel = np.random.default_rng(0).uniform(0, 1, (5, 5))  # asymmetric: checks the flip
    yt = y_true((5.3, 2.7, 1), (0.2, 7.4, 1), (3.0, 3.0, 0))
    got = targets.kernel_splat(yt, S, (8, 8), kernel).numpy()[0]
    splat = targets.bilinear_splat(yt, S, (8, 8)).numpy()[0]
    for k in range(3):
        np.testing.assert_allclose(got[..., k], convolve2d(splat[..., k], kernel, mode="same"),
                                   atol=1e-6)
    big = np.random.default_rng(1).uniform(0, 1, (21, 21))  # larger than the map
    got = targets.kernel_splat(yt, S, (8, 8), big).numpy()[0]
    np.testing.assert_allclose(got[..., 0], convolve2d(splat[..., 0], big, mode="same"),
                               atol=1e-5)


# ---- spatial_softmax_nll ------------------------------------------------------------------

def test_nll_perfect_prediction_is_zero() -> None:
    yt = y_true((5.0, 2.0, 1), (1.0, 6.0, 1))
    assert value("spatial_softmax_nll", yt, one_hot_pred(yt, 8, 8)) == pytest.approx([0.0])


def test_nll_uniform_is_k_log_hw() -> None:
    yt = y_true((5.0, 2.0, 1), (1.0, 6.0, 1), (3.0, 3.0, 1))
    got = value("spatial_softmax_nll", yt, np.full((1, 4, 4, 3), 1 / 16))
    assert got == pytest.approx([3 * np.log(16)], rel=1e-6)
    got = value("spatial_softmax_nll", yt, np.zeros((1, 4, 4, 3)), from_logits=True)
    assert got == pytest.approx([3 * np.log(16)], rel=1e-6)
    got = value("spatial_softmax_nll", yt, np.full((1, 4, 4, 3), 1 / 16), sum_over_keypoints=False)
    assert got == pytest.approx([np.log(16)], rel=1e-6)


def test_nll_picks_the_gt_pixel() -> None:
    pred = np.full((1, 4, 4, 1), 0.5 / 15)
    pred[0, 1, 2, 0] = 0.5  # the pixel of input (5, 2.9) at half resolution
    assert value("spatial_softmax_nll", y_true((5.0, 2.9, 1)), pred) == pytest.approx(
        [np.log(2)], rel=1e-6)


def test_nll_masked_keypoint_changes_nothing() -> None:
    yt = y_true((5.0, 2.0, 1), (1.0, 6.0, 0))
    pred = np.full((1, 8, 8, 2), 1 / 64)
    base = value("spatial_softmax_nll", yt, pred)
    pred2 = pred.copy()
    pred2[..., 1] = 0.0  # garbage on the hidden landmark's channel
    assert value("spatial_softmax_nll", yt, pred2) == pytest.approx(base)
    assert base == pytest.approx([2 * np.log(64)], rel=1e-6)  # mean over 1 visible, ×K=2


def test_nll_keypoint_weights() -> None:
    yt = y_true((5.0, 2.0, 1), (1.0, 6.0, 1))
    pred = np.full((1, 8, 8, 2), 1 / 64)
    got = value("spatial_softmax_nll", yt, pred, keypoint_weights=[1.0, 0.0])
    assert got == pytest.approx([np.log(64)], rel=1e-6)  # (1·log64 + 0) / 2 visible × 2


# ---- all losses: masking, all-masked batches, gradients -----------------------------------

def pred_for(name: str, rng: np.random.Generator) -> np.ndarray:
    if LOSSES[name].kind == "coords":
        return rng.uniform(0, 1, (2, 4)).astype(np.float32)
    if LOSSES[name].kind == "rar_steps":  # [B, T, K, 7]: 2 steps of pack_step
        from runtime.numerics.rar_references import random_pack

        return random_pack(rng, 2, 2, 2, S)
    pred = rng.uniform(0.01, 1, (2, 8, 8, 2)).astype(np.float32)
    return pred / pred.sum(axis=(1, 2), keepdims=True) if name == "spatial_softmax_nll" else pred


def loss_args(name: str) -> dict[str, object]:
    return {"kernel_size": 5} if name == "lgcn_weighted_l2" else {}


def all_losses() -> list[object]:
    """The landmark losses (identity_xent scores people: tests/runtime/test_identities.py)."""
    return [pytest.param(n, marks=needs_kernels) if n == "lgcn_weighted_l2" else n
            for n in sorted(LOSSES) if LOSSES[n].kind != "classes"]


@pytest.mark.parametrize("name", all_losses())
def test_all_masked_batch_is_zero_with_finite_gradient(name: str) -> None:
    pred = tf.Variable(pred_for(name, np.random.default_rng(0)))
    yt = tf.constant(np.array([[[np.nan, np.nan, 0], [2, 3, 0]]] * 2, np.float32))
    fn = make_loss(name, input_size=S, out_shape=pred.shape, **loss_args(name))
    with tf.GradientTape() as tape:
        loss = fn(yt, pred)
    grad = tape.gradient(loss, pred)
    np.testing.assert_array_equal(loss.numpy(), [0.0, 0.0])
    assert grad is None or np.all(grad.numpy() == 0.0)


@pytest.mark.parametrize("name", all_losses())
def test_masked_keypoint_changes_nothing_and_gradient_is_finite(name: str) -> None:
    if name == "rar_attention":
        pytest.skip("the attention policy is a softmax over every landmark, hidden or not, and "
                    "its REINFORCE value may be negative; tests/runtime/test_rar_losses.py "
                    "checks that hidden landmarks add no reward and are never the target")
    rng = np.random.default_rng(1)
    pred = pred_for(name, rng)
    yt = np.array([[[5.0, 2.0, 1], [1.0, 6.0, 0]], [[3.5, 3.5, 1], [7.0, 0.0, 1]]], np.float32)
    fn = make_loss(name, input_size=S, out_shape=pred.shape, **loss_args(name))
    var = tf.Variable(pred)
    with tf.GradientTape() as tape:
        base = fn(tf.constant(yt), var)
    grad = tape.gradient(base, var).numpy()
    assert base.shape == (2,) and np.all(np.isfinite(base.numpy())) and (base.numpy() > 0).all()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
    hidden_slot = {"coords": (0, slice(2, 4)), "rar_steps": (0, slice(None), 1)
                   }.get(LOSSES[name].kind, (0, ..., 1))
    assert np.all(grad[hidden_slot] == 0.0)  # no gradient into the hidden landmark's output
    changed = pred.copy()
    changed[hidden_slot] = rng.uniform(0.01, 1, changed[hidden_slot].shape)
    yt2 = yt.copy()
    yt2[0, 1, :2] = (-40.0, 100.0)  # and its label can be anything
    np.testing.assert_allclose(fn(tf.constant(yt2), tf.constant(changed)).numpy(),
                               base.numpy(), rtol=1e-6)


# ---- heatmap_l2, sigmoid_xent, coord_l2 ----------------------------------------------------

def test_heatmap_l2_values() -> None:
    yt = y_true((5.0, 2.0, 1), (1.0, 6.0, 1))
    target = targets.gaussian_maps(yt, S, (8, 8), sigma=2.0, amplitude=3.0).numpy()
    assert value("heatmap_l2", yt, target, sigma=2.0, amplitude=3.0) == pytest.approx([0.0])
    expected = np.mean(target**2, axis=(1, 2)).mean()  # zero prediction
    got = value("heatmap_l2", yt, np.zeros_like(target), sigma=2.0, amplitude=3.0)
    assert got == pytest.approx([expected], rel=1e-5)


@pytest.mark.parametrize(("target", "pos_weight"), [("gaussian", "balanced"), ("disk", 2.5)])
def test_sigmoid_xent_matches_numpy(target: str, pos_weight: object) -> None:
    yt = y_true((5.0, 2.0, 1), (1.4, 6.2, 1))
    logits = np.random.default_rng(3).normal(0, 2, (1, 8, 8, 2))
    if target == "gaussian":
        t = targets.gaussian_maps(yt, S, (8, 8), sigma=1.5).numpy()
    else:
        t = targets.disk_maps(yt, S, (8, 8), 1.5).numpy()
        assert t[0, :, :, 0].sum() == 9.0  # the 3×3 pixels within 1.5 px of (5, 2)
    pw = (64 - t.sum(axis=(1, 2))) / t.sum(axis=(1, 2)) if pos_weight == "balanced" \
        else np.full((1, 2), pos_weight)
    sig = 1 / (1 + np.exp(-logits))
    xent = -(pw[:, None, None, :] * t * np.log(sig) + (1 - t) * np.log(1 - sig))
    got = value("sigmoid_xent", yt, logits, target=target, sigma=1.5, pos_weight=pos_weight)
    assert got == pytest.approx([xent.mean()], rel=1e-4)


def test_coord_l2_values() -> None:
    yt = y_true((4.0, 2.0, 1), (6.0, 8.0, 1), (1.0, 1.0, 0))
    pred = np.array([[0.5 + 0.1, 0.25, 0.75, 1.0 - 0.2, 9.0, 9.0]], np.float32)
    assert value("coord_l2", yt, pred) == pytest.approx([0.5 * (0.01 + 0.04)], rel=1e-5)
    assert value("coord_l2", yt, pred, normalize="visible") == pytest.approx(
        [0.5 * 0.05 / 4], rel=1e-5)


# ---- lgcn_weighted_l2 ----------------------------------------------------------------------

@needs_kernels
def test_lgcn_weights_and_values() -> None:
    from compiler.kernels import named_kernel

    kernel = named_kernel("lgcn", 5)
    # Landmark 0 fully inside (n = 1), landmark 1 half off the right edge (n = 0.5),
    # landmark 2 unlabelled (weight 0): mean n = 0.5, so w = 0.1 + 0.25 + n.
    yt = y_true((3.0, 3.0, 1), (7.5, 3.0, 1), (2.0, 2.0, 0))
    target = targets.kernel_splat(yt, S, (8, 8), kernel).numpy()
    assert value("lgcn_weighted_l2", yt, target, kernel_size=5) == pytest.approx([0.0])
    sse = (target**2).sum(axis=(1, 2))[0]
    expected = 0.05 * (1.35 * sse[0] + 0.85 * sse[1])
    got = value("lgcn_weighted_l2", yt, np.zeros_like(target), kernel_size=5)
    assert got == pytest.approx([expected], rel=1e-5)
    assert target[0, 3, 3, 0] == pytest.approx(1.0)  # peak of a unit-centre kernel


@needs_kernels
def test_lgcn_absent_landmarks_weigh_a_tenth_against_an_empty_target() -> None:
    # eq. 3 with L = 1, V = 0: an ABSENT point (outside the crop, or a background crop's)
    # weighs 1/10 + 1/2N sum_k V and its target map is all zero.
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    sse = (pred**2).sum(axis=(1, 2))[0]
    background = y_true((0.0, 0.0, -1), (0.0, 0.0, -1), (0.0, 0.0, -1))
    got = value("lgcn_weighted_l2", background, pred, kernel_size=5)
    assert got == pytest.approx([0.05 * 0.1 * sse.sum()], rel=1e-5)
    # one visible point (n = 1, so the mean n is 1/3) beside an absent and an unlabelled one
    from compiler.kernels import named_kernel

    yt = y_true((3.0, 3.0, 1), (50.0, 3.0, -1), (2.0, 2.0, 0))
    target = targets.kernel_splat(yt, S, (8, 8), named_kernel("lgcn", 5)).numpy()
    assert not target[..., 1:].any()
    err = ((pred - target) ** 2).sum(axis=(1, 2))[0]
    expected = 0.05 * ((1 + 0.1 + 0.5 / 3) * err[0] + (0.1 + 0.5 / 3) * err[1])
    assert value("lgcn_weighted_l2", yt, pred, kernel_size=5) == pytest.approx(
        [expected], rel=1e-5)


@pytest.mark.parametrize("name", ["heatmap_l2", "spatial_softmax_nll", "sigmoid_xent"])
def test_absent_points_are_ignored_by_the_other_losses(name: str) -> None:
    pred = np.random.default_rng(1).random((1, 8, 8, 2)).astype(np.float32) + 0.01
    unlabelled = value(name, y_true((3.0, 3.0, 1), (5.0, 5.0, 0)), pred)
    absent = value(name, y_true((3.0, 3.0, 1), (5.0, 5.0, -1)), pred)
    assert absent == pytest.approx(unlabelled)


# ---- make_loss errors and Keras use --------------------------------------------------------

def test_make_loss_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="did you mean 'heatmap_l2'"):
        make_loss("heatmap_l3", input_size=S, out_shape=(None, 8, 8, 2))
    with pytest.raises(ValueError, match="unknown param 'sigm'"):
        make_loss("heatmap_l2", input_size=S, out_shape=(None, 8, 8, 2), sigm=1.0)
    with pytest.raises(ValueError, match="needs coordinates"):
        make_loss("coord_l2", input_size=S, out_shape=(None, 8, 8, 2))
    with pytest.raises(ValueError, match="static map shape"):
        make_loss("heatmap_l2", input_size=S, out_shape=(None, None, None, 2))


def test_out_shape_without_batch_dim() -> None:
    yt = y_true((5.0, 2.0, 1))
    fn = make_loss("spatial_softmax_nll", input_size=S, out_shape=(8, 8, 1))
    assert fn(yt, one_hot_pred(yt, 8, 8)).numpy() == pytest.approx([0.0])


def test_keras_compile_and_fit_single_landmark() -> None:
    # K = 1: Keras squeezes y_pred [B, H, W, 1] to [B, H, W] before calling a loss function.
    import keras

    inp = keras.Input((S, S, 1))
    out = keras.layers.Conv2D(1, 3, padding="same")(inp)
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss=make_loss("spatial_softmax_nll", input_size=S,
                                                  out_shape=out.shape, from_logits=True))
    x = np.random.default_rng(0).normal(size=(4, S, S, 1)).astype(np.float32)
    y = np.array([[[3.0, 4.0, 1]]] * 4, np.float32)
    hist = model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))


@pytest.mark.parametrize("name", ["spatial_softmax_nll", "heatmap_l2", "sigmoid_xent"])
def test_a_landmark_subset_scores_the_chosen_labels_in_order(name: str) -> None:
    """args.landmarks [2, 0] on 3 labelled points equals the loss on the labels (p2, p0)."""
    full = y_true((1.0, 2.0, 1.0), (5.0, 5.0, 1.0), (6.0, 1.0, 1.0))
    chosen = full[:, [2, 0]]
    pred = np.random.default_rng(0).random((1, S, S, 2)).astype(np.float32)
    if name == "spatial_softmax_nll":
        pred = pred / pred.sum(axis=(1, 2), keepdims=True)
    want = value(name, chosen, pred)
    got = value(name, full, pred, landmarks=[2, 0])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(value(name, full[:, [0, 2]], pred), want)  # order matters
