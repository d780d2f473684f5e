"""RAR's losses (runtime/train/rar_losses.py) on hand-made steps and against the loop-style
numpy references of runtime/numerics/rar_references.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from runtime.numerics import rar_references as ref  # noqa: E402
from runtime.train.losses import make_loss  # noqa: E402

pytestmark = pytest.mark.keras

S = 10  # input side


def loss_of(name: str, y: np.ndarray, pack: np.ndarray, **args: object) -> np.ndarray:
    fn = make_loss(name, input_size=S, out_shape=pack.shape[1:], **args)
    return fn(tf.constant(y, tf.float32), tf.constant(pack, tf.float32)).numpy()


def step(s_in: list, s_out: list, gamma: list, logits: list | None = None,
         choice: int | None = None) -> np.ndarray:
    """One step's pack [K, 7] from per-landmark lists."""
    k = len(gamma)
    out = np.zeros((k, 7), np.float32)
    out[:, 0:2], out[:, 2:4], out[:, 4] = s_in, s_out, gamma
    if logits is not None:
        out[:, 5] = logits
    if choice is not None:
        out[choice, 6] = 1.0
    return out


def test_refine_is_the_gamma_weighted_residual_after_each_step() -> None:
    y = np.array([[[2.0, 3.0, 1.0], [5.0, 5.0, 0.0]]])  # landmark 1 invisible
    s1 = step([[0, 0], [9, 9]], [[4, 3], [0, 0]], [0.5, 1.0])
    s2 = step([[4, 3], [0, 0]], [[2, 4], [7, 7]], [1.0, 1.0])
    pack = np.stack([s1, s2])[None]
    # step 1: 0.5^2 * ((2 - 4)^2 + 0) / 10^2; step 2: 1 * (0 + 1) / 100; landmark 1 masked
    assert loss_of("rar_refine", y, pack) == pytest.approx([0.25 * 0.04 + 0.01], rel=1e-6)
    np.testing.assert_allclose(loss_of("rar_refine", y, pack), ref.rar_refine(y, pack, S),
                               rtol=1e-6)


def test_reinforce_uses_discounted_returns_and_masks_hidden_landmarks() -> None:
    y = np.array([[[2.0, 2.0, 1.0], [8.0, 8.0, 0.0]]])
    # step 1 moves landmark 0 from 4 px off to 2 px off (gamma 1): r1 = (16 - 4) / 100;
    # step 2 from 2 px to 1 px: r2 = (4 - 1) / 100. The hidden landmark moves a lot: no reward.
    s1 = step([[6, 2], [0, 0]], [[4, 2], [8, 8]], [1.0, 1.0], [0.0, math.log(3.0)], choice=0)
    s2 = step([[4, 2], [8, 8]], [[3, 2], [0, 0]], [1.0, 1.0], [1.0, 1.0], choice=1)
    pack = np.stack([s1, s2])[None]
    r1, r2, eta = 0.12, 0.03, 0.5
    log_pi = [math.log(0.25), math.log(0.5)]
    want = -((r1 + eta * r2) * log_pi[0] + r2 * log_pi[1])
    got = loss_of("rar_attention", y, pack, discount=eta, baseline="none", normalize=False)
    assert got == pytest.approx([want], rel=1e-5)


def test_reinforce_baseline_is_the_other_examples_mean() -> None:
    rng = np.random.default_rng(3)
    y = np.concatenate([rng.uniform(0, S, (4, 6, 2)), np.ones((4, 6, 1))], -1)
    pack = ref.random_pack(rng, 4, 3, 6, S)
    for args in ({}, {"normalize": False}, {"baseline": "none", "discount": 0.0}):
        np.testing.assert_allclose(loss_of("rar_attention", y, pack, **args),
                                   ref.rar_attention(y, pack, S, **args), rtol=1e-4, atol=1e-6)
    # with the baseline, the advantages of one step sum to zero over the batch: equal
    # log-probabilities everywhere then give a zero total
    flat = pack.copy()
    flat[..., 5] = 0.0
    total = loss_of("rar_attention", y, flat, normalize=False).sum()
    assert abs(total) < 1e-6


def test_reinforce_gradient_reaches_only_the_logits() -> None:
    rng = np.random.default_rng(4)
    y = tf.constant(np.concatenate([rng.uniform(0, S, (3, 5, 2)), np.ones((3, 5, 1))], -1),
                    tf.float32)
    pack = tf.Variable(ref.random_pack(rng, 3, 2, 5, S))
    fn = make_loss("rar_attention", input_size=S, out_shape=(2, 5, 7))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(fn(y, pack))
    grad = tape.gradient(total, pack).numpy()
    assert np.abs(grad[..., 5]).sum() > 0
    assert np.all(grad[..., [0, 1, 2, 3, 4, 6]] == 0.0)


def test_surrogate_targets_the_visible_landmark_with_the_largest_error() -> None:
    y = np.array([[[0.0, 0.0, 1.0], [5.0, 5.0, 0.0], [9.0, 9.0, 1.0]]])
    # errors at the step's input: 1 px, (hidden) 5 px, 3 px -> target landmark 2
    logits = [0.5, 2.0, -1.0]
    pack = step([[1, 0], [0, 0], [9, 6]], [[0, 0], [0, 0], [0, 0]], [1, 1, 1], logits,
                choice=1)[None, None]
    lse = math.log(sum(math.exp(v) for v in logits))
    got = loss_of("rar_attention", y, pack, mode="surrogate")
    assert got == pytest.approx([lse - logits[2]], rel=1e-6)
    hidden = y.copy()
    hidden[..., 2] = 0.0
    assert loss_of("rar_attention", hidden, pack, mode="surrogate") == pytest.approx([0.0])


def test_wrong_output_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"stacked refinement steps \[batch, T, K, 7\]"):
        make_loss("rar_refine", input_size=S, out_shape=(None, 136))
