"""Tests of the classification losses against NumPy loops, closed forms and PyTorch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.losses import classification_loss_with_aux, softmax_cross_entropy


def _reference_cross_entropy(logits, labels, smoothing=0.0):
  """-sum_k q_k log softmax(z)_k, one example at a time, in float64."""
  logits = np.asarray(logits, np.float64)
  n, k = logits.shape
  out = np.zeros(n)
  for i in range(n):
    shifted = logits[i] - logits[i].max()
    log_z = np.log(np.sum(np.exp(shifted)))
    for c in range(k):
      target = (1 - smoothing) * (c == labels[i]) + smoothing / k
      out[i] -= target * (shifted[c] - log_z)
  return out


def _batch(seed=0, n=6, k=5, scale=3.0):
  rng = np.random.default_rng(seed)
  return (
    rng.normal(size=(n, k)).astype(np.float32) * scale,
    rng.integers(0, k, size=n).astype(np.int32),
  )


@pytest.mark.parametrize('smoothing', [0.0, 0.1, 0.5, 1.0])
def test_matches_numpy_loop(smoothing):
  logits, labels = _batch()
  np.testing.assert_allclose(
    softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), label_smoothing=smoothing),
    _reference_cross_entropy(logits, labels, smoothing),
    rtol=1e-5,
    atol=1e-6,
  )


@pytest.mark.parametrize('smoothing', [0.0, 0.1, 0.3])
def test_matches_torch_cross_entropy(smoothing):
  torch = pytest.importorskip('torch')
  logits, labels = _batch(seed=1, n=8, k=7)
  expected = torch.nn.functional.cross_entropy(
    torch.from_numpy(logits),
    torch.from_numpy(labels).long(),
    reduction='none',
    label_smoothing=smoothing,
  ).numpy()
  np.testing.assert_allclose(
    softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), label_smoothing=smoothing),
    expected,
    rtol=1e-5,
    atol=1e-6,
  )


def test_uniform_logits_give_log_k():
  loss = softmax_cross_entropy(jnp.zeros((3, 10)), jnp.array([0, 4, 9]), label_smoothing=0.2)
  np.testing.assert_allclose(loss, np.full(3, np.log(10.0)), rtol=1e-6)


def test_large_logits_are_stable():
  logits, labels = _batch(seed=2, scale=1e4)
  loss = softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), label_smoothing=0.1)
  np.testing.assert_allclose(loss, _reference_cross_entropy(logits, labels, 0.1), rtol=1e-5)


def test_gradient_is_softmax_minus_smoothed_target():
  logits, labels = _batch(seed=3)
  eps, k = 0.1, logits.shape[1]
  grad = jax.grad(
    lambda z: jnp.sum(softmax_cross_entropy(z, jnp.asarray(labels), label_smoothing=eps))
  )(jnp.asarray(logits))
  target = (1 - eps) * np.eye(k)[labels] + eps / k
  np.testing.assert_allclose(grad, jax.nn.softmax(logits) - target, rtol=1e-5, atol=1e-6)


def test_bfloat16_logits_give_float32_losses():
  logits, labels = _batch(seed=4)
  loss = softmax_cross_entropy(jnp.asarray(logits, jnp.bfloat16), jnp.asarray(labels))
  assert loss.dtype == jnp.float32
  np.testing.assert_allclose(
    loss,
    _reference_cross_entropy(
      np.asarray(jnp.asarray(logits, jnp.bfloat16).astype(jnp.float32)), labels
    ),
    rtol=1e-5,
  )


@pytest.mark.parametrize(
  'logits,labels,kwargs,error,message',
  [
    (jnp.zeros((2, 3)), jnp.zeros(2), {}, TypeError, 'integer'),
    (jnp.zeros((2, 3)), jnp.zeros(3, jnp.int32), {}, ValueError, 'labels must have shape'),
    (jnp.zeros((2, 3, 4)), jnp.zeros(2, jnp.int32), {}, ValueError, r'\(N, K\)'),
    (
      jnp.zeros((2, 3)),
      jnp.zeros(2, jnp.int32),
      {'label_smoothing': 1.5},
      ValueError,
      'label_smoothing',
    ),
    (jnp.zeros((2, 3)), jnp.array([0, 3]), {}, ValueError, r'labels must lie in \[0, 3\)'),
    (jnp.zeros((2, 3)), jnp.array([-1, 0]), {}, ValueError, r'found \[-1\]'),
  ],
)
def test_rejects_bad_arguments(logits, labels, kwargs, error, message):
  with pytest.raises(error, match=message):
    softmax_cross_entropy(logits, labels, **kwargs)


def test_out_of_range_label_under_jit_is_nan_not_clamped():
  # Traced labels cannot be checked before the computation; the loss must not quietly read
  # another class (gather would clamp 3 to 2).
  losses = jax.jit(softmax_cross_entropy)(jnp.zeros((2, 3)), jnp.array([0, 3]))
  assert np.isfinite(losses[0]) and np.isnan(losses[1])


def test_aux_loss_weights_each_head():
  logits, labels = _batch(seed=5)
  aux1, _ = _batch(seed=6)
  aux2, _ = _batch(seed=7)
  expected = (
    _reference_cross_entropy(logits, labels).mean()
    + 0.3 * _reference_cross_entropy(aux1, labels).mean()
    + 0.3 * _reference_cross_entropy(aux2, labels).mean()
  )
  loss = classification_loss_with_aux(
    jnp.asarray(logits), [jnp.asarray(aux1), jnp.asarray(aux2)], jnp.asarray(labels)
  )
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  only_main = classification_loss_with_aux(jnp.asarray(logits), [], jnp.asarray(labels))
  np.testing.assert_allclose(only_main, _reference_cross_entropy(logits, labels).mean(), rtol=1e-5)


def test_aux_loss_rejects_bad_arguments():
  logits, labels = jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32)
  with pytest.raises(ValueError, match=r'aux_logits\[0\]'):
    classification_loss_with_aux(logits, [jnp.zeros((2, 4))], labels)
  with pytest.raises(ValueError, match='aux_weight'):
    classification_loss_with_aux(logits, [], labels, aux_weight=-1.0)
