"""jaxseg.ops.relu: jax.nn.relu's values and derivative, with a layout-keeping derivative."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import ops


def test_relu_values_and_derivatives_equal_jax_nn_relu():
  x = jnp.array([-2.0, -0.0, 0.0, 1e-30, 3.0, -np.inf, np.inf])
  np.testing.assert_array_equal(ops.relu(x), jax.nn.relu(x))
  ct = jnp.arange(1.0, 8.0)
  np.testing.assert_array_equal(jax.vjp(ops.relu, x)[1](ct)[0], jax.vjp(jax.nn.relu, x)[1](ct)[0])
  np.testing.assert_array_equal(jax.jvp(ops.relu, (x,), (ct,))[1], [0, 0, 0, 4, 5, 0, 7])
  # The derivative at 0 is 0, as jax.nn.relu's.
  assert float(jax.grad(ops.relu)(0.0)) == 0.0
  x16 = x.astype(jnp.bfloat16)
  assert jax.grad(lambda v: ops.relu(v).sum())(x16).dtype == jnp.bfloat16


def test_relu_nan_tangent_where_inactive_gives_nan():
  """The documented difference from jax.nn.relu: a mask multiply, not a select."""
  x = jnp.array([-1.0, 2.0])
  tangent = jnp.array([np.nan, 1.0])
  np.testing.assert_array_equal(jax.jvp(jax.nn.relu, (x,), (tangent,))[1], [0.0, 1.0])
  np.testing.assert_array_equal(jax.jvp(ops.relu, (x,), (tangent,))[1], [np.nan, 1.0])


def test_relu_gradient_keeps_a_vmapped_axis_in_place():
  """vmapped over an axis other than the first, its gradient moves nothing (jax.nn.relu's
  select against an unbatched zero moves the axis to the front and back)."""
  x = jax.random.normal(jax.random.key(0), (2, 5, 3, 4))
  ct = jax.random.normal(jax.random.key(1), x.shape)

  def batched_vjp(relu):
    return jax.vmap(lambda v, c: jax.vjp(relu, v)[1](c)[0], in_axes=2, out_axes=2)

  def names(relu):
    return {eqn.primitive.name for eqn in jax.make_jaxpr(batched_vjp(relu))(x, ct).eqns}

  assert 'transpose' not in names(ops.relu)
  assert 'transpose' in names(jax.nn.relu)
  np.testing.assert_array_equal(batched_vjp(ops.relu)(x, ct), batched_vjp(jax.nn.relu)(x, ct))


def test_relu_values_and_gradient_equal_torch():
  torch = pytest.importorskip('torch')
  x = np.array([-2.0, -0.0, 0.0, 1e-30, 3.0, -np.inf, np.inf], np.float32)
  x_t = torch.tensor(x, requires_grad=True)
  y_t = torch.nn.functional.relu(x_t)
  ct = np.arange(1.0, 8.0, dtype=np.float32)
  y_t.backward(torch.from_numpy(ct))
  np.testing.assert_array_equal(ops.relu(x), y_t.detach().numpy())
  np.testing.assert_array_equal(jax.vjp(ops.relu, x)[1](ct)[0], x_t.grad.numpy())
