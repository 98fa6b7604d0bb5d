"""jaxseg.ops.member_conv: a population's convolutions, one plain convolution per member."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import ops
from jaxseg.ops import member_conv

MEMBERS = 3


def _loss(params, images):
  """Two convolutions: the first on the shared images, the second on per-member activations."""
  h = jax.nn.relu(ops.conv2d(images, params['w1'], params['b1'], padding=1))
  h = ops.conv2d(h, params['w2'], stride=2, dilation=1)
  return jnp.mean(jnp.tanh(h) ** 2)


def _members_and_images():
  keys = jax.random.split(jax.random.key(0), 4)
  params = {
    'w1': jax.random.normal(keys[0], (MEMBERS, 3, 3, 2, 4)),
    'b1': jax.random.normal(keys[1], (MEMBERS, 4)),
    'w2': jax.random.normal(keys[2], (MEMBERS, 3, 3, 4, 5)) / 4,
  }
  return params, jax.random.normal(keys[3], (2, 9, 9, 2))


def _per_member_grads(params, images):
  def member(p, x):
    with member_conv.per_member_convolutions():
      return jax.value_and_grad(_loss)(p, x)

  return jax.jit(jax.vmap(member, in_axes=(0, None)))


def test_values_and_gradients_equal_each_member_alone():
  params, images = _members_and_images()
  losses, grads = _per_member_grads(params, images)(params, images)
  for k in range(MEMBERS):
    alone = jax.tree.map(lambda a, k=k: a[k], params)
    loss, grad = jax.value_and_grad(_loss)(alone, images)
    np.testing.assert_allclose(losses[k], loss, rtol=1e-6)
    jax.tree.map(
      lambda a, b, k=k: np.testing.assert_allclose(a[k], b, rtol=1e-5, atol=1e-6), grads, grad
    )


def test_no_grouped_convolution_is_left_in_the_program():
  params, images = _members_and_images()
  grouped = f'feature_group_count = {MEMBERS}'
  plain = jax.jit(jax.vmap(jax.value_and_grad(_loss), in_axes=(0, None)))
  assert grouped in plain.lower(params, images).as_text()  # what vmap alone makes
  text = _per_member_grads(params, images).lower(params, images).as_text()
  assert 'convolution' in text and grouped not in text
