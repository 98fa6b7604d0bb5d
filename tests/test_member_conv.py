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


def _per_member_grads(loss):
  def member(p, x):
    with member_conv.per_member_convolutions():
      return jax.value_and_grad(loss)(p, x)

  return jax.jit(jax.vmap(member, in_axes=(0, None)))


def test_values_and_gradients_equal_each_member_alone():
  params, images = _members_and_images()
  losses, grads = _per_member_grads(_loss)(params, images)
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
  text = _per_member_grads(_loss).lower(params, images).as_text()
  assert 'convolution' in text and grouped not in text


def test_large_maps_keep_xla_kernel_gradient_in_a_population():
  # conv2d's kernel gradient by taps (112 x 112 maps, 128 outputs) is a custom JVP that cannot
  # hold a per-member convolution (reverse mode would transpose its custom VJP): a population
  # takes XLA's convolution there, with the same values.
  keys = jax.random.split(jax.random.key(1), 3)
  params = {
    'w1': jax.random.normal(keys[0], (2, 3, 3, 2, 4)) / 4,
    'w2': jax.random.normal(keys[1], (2, 3, 3, 4, 128)) / 8,
  }
  x = jax.random.normal(keys[2], (1, 112, 112, 2))

  def loss(p, x):
    h = ops.conv2d(x, p['w1'], padding=1)
    return jnp.mean(ops.conv2d(h, p['w2'], padding=1) ** 2)

  grads = _per_member_grads(loss)(params, x)[1]
  alone = jax.jit(jax.grad(loss))
  for k in range(2):
    jax.tree.map(
      lambda a, b, k=k: np.testing.assert_allclose(a[k], b, rtol=1e-5, atol=1e-6),
      grads,
      alone(jax.tree.map(lambda a, k=k: a[k], params), x),
    )
