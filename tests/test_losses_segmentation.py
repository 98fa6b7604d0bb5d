"""Tests for jaxseg.losses.segmentation against NumPy loops and PyTorch's F.cross_entropy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.losses import segmentation as seg_losses


def _numpy_cross_entropy(logits, labels, *, ignore_label=255, weights=None, normalize=True):
  """Explicit loop over pixels: -w[y] log softmax(z)[y], summed, divided as documented."""
  n, h, w, c = logits.shape
  total, weight_sum = 0.0, 0.0
  for b in range(n):
    for i in range(h):
      for j in range(w):
        y = labels[b, i, j]
        if y == ignore_label:
          continue
        z = logits[b, i, j].astype(np.float64)
        log_prob = z[y] - np.log(np.sum(np.exp(z - z.max()))) - z.max()
        wy = 1.0 if weights is None else weights[y]
        total += -wy * log_prob
        weight_sum += wy
  if normalize:
    return total / weight_sum if weight_sum > 0 else 0.0
  return total / n


def _random_case(seed, shape=(2, 5, 7), num_classes=4, ignore_fraction=0.3):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=shape + (num_classes,)).astype(np.float32) * 3
  labels = rng.integers(0, num_classes, size=shape)
  labels[rng.random(shape) < ignore_fraction] = 255
  return logits, labels.astype(np.int32)


@pytest.mark.parametrize('normalize', [True, False])
@pytest.mark.parametrize('use_weights', [False, True])
def test_cross_entropy_matches_numpy_loop(normalize, use_weights):
  logits, labels = _random_case(0)
  weights = np.array([0.5, 2.0, 1.0, 3.0], np.float32) if use_weights else None
  got = seg_losses.segmentation_cross_entropy(
    jnp.asarray(logits), jnp.asarray(labels), class_weights=weights, normalize=normalize
  )
  want = _numpy_cross_entropy(logits, labels, weights=weights, normalize=normalize)
  np.testing.assert_allclose(float(got), want, rtol=1e-5)


@pytest.mark.parametrize('use_weights', [False, True])
def test_cross_entropy_matches_torch(use_weights):
  torch = pytest.importorskip('torch')
  logits, labels = _random_case(1, shape=(3, 6, 4), num_classes=5)
  weights = np.array([0.2, 1.0, 4.0, 0.7, 1.5], np.float32) if use_weights else None
  want = torch.nn.functional.cross_entropy(
    torch.from_numpy(logits).permute(0, 3, 1, 2),
    torch.from_numpy(labels).long(),
    weight=None if weights is None else torch.from_numpy(weights),
    ignore_index=255,
  )
  got = seg_losses.segmentation_cross_entropy(
    jnp.asarray(logits), jnp.asarray(labels), class_weights=weights
  )
  np.testing.assert_allclose(float(got), want.item(), rtol=1e-5)


def test_gradient_matches_torch_and_is_zero_at_ignored_pixels():
  torch = pytest.importorskip('torch')
  logits, labels = _random_case(2, shape=(1, 4, 4), num_classes=3)
  grad = jax.grad(lambda z: seg_losses.segmentation_cross_entropy(z, jnp.asarray(labels)))(
    jnp.asarray(logits)
  )
  t_logits = torch.from_numpy(logits).requires_grad_()
  torch.nn.functional.cross_entropy(
    t_logits.permute(0, 3, 1, 2), torch.from_numpy(labels).long(), ignore_index=255
  ).backward()
  np.testing.assert_allclose(np.asarray(grad), t_logits.grad.numpy(), rtol=1e-5, atol=1e-7)
  assert np.all(np.asarray(grad)[labels == 255] == 0)


def test_unnormalised_loss_is_the_sum_for_batch_of_one():
  logits, labels = _random_case(3, shape=(1, 3, 3))
  summed = seg_losses.segmentation_cross_entropy(
    jnp.asarray(logits), jnp.asarray(labels), normalize=False
  )
  per_pixel, valid = seg_losses.pixelwise_cross_entropy(jnp.asarray(logits), jnp.asarray(labels))
  np.testing.assert_allclose(float(summed), float(per_pixel.sum()), rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(valid), labels != 255)


def test_all_ignored_gives_zero_not_nan():
  labels = jnp.full((1, 2, 2), 255, jnp.int32)
  assert float(seg_losses.segmentation_cross_entropy(jnp.ones((1, 2, 2, 3)), labels)) == 0.0


def test_custom_ignore_label():
  logits, labels = _random_case(4)
  labels = np.where(labels == 255, 0, labels + 1).astype(np.int32)  # 0 is now "ignore"
  logits = np.concatenate([logits, logits[..., :1]], axis=-1)
  got = seg_losses.segmentation_cross_entropy(
    jnp.asarray(logits), jnp.asarray(labels), ignore_label=0
  )
  np.testing.assert_allclose(
    float(got), _numpy_cross_entropy(logits, labels, ignore_label=0), rtol=1e-5
  )


def test_auxiliary_loss_adds_weighted_upsampled_term():
  logits, labels = _random_case(5, shape=(1, 4, 6), num_classes=3)
  aux = np.random.default_rng(6).normal(size=(1, 2, 3, 3)).astype(np.float32)
  total, parts = seg_losses.segmentation_loss(
    jnp.asarray(logits), jnp.asarray(labels), aux_logits=jnp.asarray(aux), aux_weight=0.4
  )
  upsampled = jax.image.resize(jnp.asarray(aux), (1, 4, 6, 3), 'bilinear')
  want_aux = _numpy_cross_entropy(np.asarray(upsampled), labels)
  want_main = _numpy_cross_entropy(logits, labels)
  np.testing.assert_allclose(float(parts['aux_ce']), want_aux, rtol=1e-5)
  np.testing.assert_allclose(float(total), want_main + 0.4 * want_aux, rtol=1e-5)


def test_auxiliary_upsampling_matches_torch_interpolate():
  torch = pytest.importorskip('torch')
  aux = np.random.default_rng(7).normal(size=(1, 3, 5, 2)).astype(np.float32)
  got = seg_losses.resize_logits(jnp.asarray(aux), (9, 16))
  want = torch.nn.functional.interpolate(
    torch.from_numpy(aux).permute(0, 3, 1, 2), size=(9, 16), mode='bilinear', align_corners=False
  )
  np.testing.assert_allclose(np.asarray(got), want.permute(0, 2, 3, 1).numpy(), atol=1e-5)


def test_bad_arguments_raise():
  logits = jnp.zeros((1, 2, 2, 3))
  with pytest.raises(ValueError, match='labels must lie in'):
    seg_losses.segmentation_cross_entropy(logits, jnp.array([[[0, 3], [1, 2]]]))
  with pytest.raises(ValueError, match='must match labels shape'):
    seg_losses.segmentation_cross_entropy(logits, jnp.zeros((1, 2, 3), jnp.int32))
  with pytest.raises(TypeError, match='integer'):
    seg_losses.segmentation_cross_entropy(logits, jnp.zeros((1, 2, 2)))
  with pytest.raises(ValueError, match='class_weights'):
    seg_losses.segmentation_cross_entropy(
      logits, jnp.zeros((1, 2, 2), jnp.int32), class_weights=[1.0, 2.0]
    )
  with pytest.raises(ValueError, match='aux_weight'):
    seg_losses.segmentation_loss(logits, jnp.zeros((1, 2, 2), jnp.int32), aux_weight=-1.0)
  with pytest.raises(TypeError, match="ignore_label must be an int, got 'void'"):
    seg_losses.segmentation_cross_entropy(
      logits, jnp.zeros((1, 2, 2), jnp.int32), ignore_label='void'
    )


def test_out_of_range_label_under_jit_is_nan_not_clipped():
  loss = jax.jit(seg_losses.segmentation_cross_entropy)(
    jnp.zeros((1, 1, 2, 3)), jnp.array([[[0, 7]]])
  )
  assert np.isnan(float(loss))
