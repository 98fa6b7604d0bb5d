"""Tests for jaxseg.losses.saliency against NumPy loops and closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.losses import saliency as sal_losses


def _data(seed=0, shape=(3, 4, 5)):
  rng = np.random.default_rng(seed)
  return rng.normal(size=shape).astype(np.float32), rng.random(shape).astype(np.float32)


def test_euclidean_matches_frobenius_loop():
  pred, target = _data()
  expected = 0.0
  for i in range(pred.shape[0]):
    expected += sum((target[i][p] - pred[i][p]) ** 2 for p in np.ndindex(4, 5))
  expected /= pred.shape[0]
  got = sal_losses.euclidean_loss(pred[..., None], target)
  assert float(got) == pytest.approx(expected, rel=1e-6)
  # The Frobenius norm of the difference, image by image.
  frob = np.mean([np.linalg.norm(target[i] - pred[i], 'fro') ** 2 for i in range(3)])
  assert float(got) == pytest.approx(frob, rel=1e-6)


def test_euclidean_gradient_closed_form():
  pred, target = _data(1)
  grad = jax.grad(sal_losses.euclidean_loss)(jnp.asarray(pred), jnp.asarray(target))
  np.testing.assert_allclose(grad, 2 * (pred - target) / pred.shape[0], rtol=1e-5, atol=1e-7)


def test_bce_matches_numpy_definition():
  logits, target = _data(2)
  expected = 0.0
  for idx in np.ndindex(*logits.shape):
    p = 1 / (1 + math.exp(-float(logits[idx])))
    y = float(target[idx])
    expected -= y * math.log(p) + (1 - y) * math.log(1 - p)
  expected /= logits.size
  assert float(sal_losses.saliency_bce(logits, target[..., None])) == pytest.approx(
    expected, rel=1e-5
  )
  # Stable for large logits where the naive form overflows.
  big = sal_losses.saliency_bce(jnp.full((1, 1, 1), 200.0), jnp.zeros((1, 1, 1)))
  assert float(big) == pytest.approx(200.0)


def test_kl_matches_numpy_definition():
  logits, target = _data(3)
  target[0, 0, 0] = 0.0  # 0 log 0 = 0
  expected = 0.0
  for i in range(logits.shape[0]):
    z = logits[i].astype(np.float64).ravel()
    p = np.exp(z - z.max())
    p /= p.sum()
    q = target[i].astype(np.float64).ravel()
    q /= q.sum()
    expected += sum(qq * math.log(qq / pp) for qq, pp in zip(q, p) if qq > 0)
  expected /= logits.shape[0]
  assert float(sal_losses.saliency_kl(logits, target)) == pytest.approx(expected, rel=1e-5)
  # Zero exactly when the softmax equals the normalised target.
  q = target / target.sum(axis=(1, 2), keepdims=True)
  assert float(sal_losses.saliency_kl(np.log(q + 1e-30), target)) == pytest.approx(0.0, abs=1e-5)
  assert float(sal_losses.saliency_kl(logits, np.zeros_like(target))) == 0.0


def test_shape_errors():
  with pytest.raises(ValueError, match='must match target'):
    sal_losses.euclidean_loss(jnp.zeros((2, 4, 4, 1)), jnp.zeros((2, 8, 8)))
  with pytest.raises(ValueError, match=r'pred must have shape \(N, H, W\)'):
    sal_losses.saliency_bce(jnp.zeros((2, 4, 4, 3)), jnp.zeros((2, 4, 4)))
  with pytest.raises(TypeError, match='target must be an array'):
    sal_losses.saliency_kl(jnp.zeros((2, 4, 4)), [[0.0]])
  with pytest.raises(ValueError, match='eps must be a positive number, got -1.0'):
    sal_losses.saliency_kl(jnp.zeros((2, 4, 4)), jnp.zeros((2, 4, 4)), eps=-1.0)
