"""optax transformations that mix dtypes, traced under JAX's standard dtype promotion.

The test suite runs with ``jax_numpy_dtype_promotion='strict'``, so that an implicit mix of
dtypes in jaxseg is an error. Three optax 0.2.8 transformations jaxseg uses mix a float with
their int32 step counter, correctly (the result is the intended float32) but implicitly:

- Adam's and AdamW's bias correction (``optax.tree.bias_correction``: ``1 - decay ** count``);
- ``optax.MultiSteps``' running mean of gradients (``acc + (grad - acc) / (n_acc + 1)``);
- ``optax.contrib.reduce_on_plateau``'s running mean of the metric (``count * avg_value``);
- the learning-rate schedules (``warmup_cosine_decay_schedule``: ``jnp.minimum(count,
  float(decay_steps))``; the joined and polynomial ones likewise), called with the int32 count.

:func:`standard_promotion` wraps those transformations and :func:`standard_promotion_schedule`
the schedules, where they are built; nothing else is exempt.
"""

import jax
import optax

__all__ = ['standard_promotion', 'standard_promotion_schedule']


def standard_promotion(tx) -> optax.GradientTransformationExtraArgs:
  """``tx`` with its ``init`` and ``update`` traced under JAX's standard dtype promotion.

  Args:
    tx: an optax transformation (``init`` and ``update(updates, state, params, **extra)``) from
      the list in this module's docstring.

  Returns:
    A ``GradientTransformationExtraArgs`` that computes exactly what ``tx`` does, whatever
    promotion mode the caller traces under.

  Example:
    >>> tx = standard_promotion(optax.adam(0.1))
    >>> params = {'w': jnp.ones(2)}
    >>> with jax.numpy_dtype_promotion('strict'):
    ...   updates, _ = tx.update(params, tx.init(params), params)
    >>> bool(jnp.allclose(updates['w'], -0.1, atol=1e-5))  # Adam's first step: -lr * sign(g)
    True
  """

  def init(params):
    with jax.numpy_dtype_promotion('standard'):
      return tx.init(params)

  def update(updates, state, params=None, **extra_args):
    with jax.numpy_dtype_promotion('standard'):
      return tx.update(updates, state, params, **extra_args)

  return optax.GradientTransformationExtraArgs(init, update)


def standard_promotion_schedule(schedule: optax.Schedule) -> optax.Schedule:
  """``schedule`` (step count -> value) traced under JAX's standard dtype promotion.

  Args:
    schedule: an optax schedule, called with the optimizer's int32 update count.

  Returns:
    A schedule with the same values whatever promotion mode the caller traces under.

  Example:
    >>> lr = standard_promotion_schedule(optax.cosine_decay_schedule(1.0, decay_steps=10))
    >>> with jax.numpy_dtype_promotion('strict'):
    ...   value = lr(jnp.int32(5))
    >>> round(float(value), 4)
    0.5
  """

  def standard(count):
    with jax.numpy_dtype_promotion('standard'):
      return schedule(count)

  return standard
