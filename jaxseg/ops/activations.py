"""Activations whose derivatives keep a vmapped axis where it is.

``jax.nn.relu``'s derivative selects between the cotangent and a zero array built without the
mapped axis; under ``jax.vmap`` that moves the mapped axis to the front, which undoes a
population's member-beside-channels layout (:func:`jaxseg.ops.member_conv.members_beside_channels`)
and costs a transpose of the whole map each way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ['relu']


@jax.custom_jvp
def relu(x: jax.Array) -> jax.Array:
  r"""Rectified linear unit, :math:`\max(x, 0)`, with derivative :math:`[x > 0]`.

  Elementwise, on NHWC activations or any array. Agrees with ``torch.nn.functional.relu`` and
  ``jax.nn.relu`` in values and derivative (0 at ``x = 0``), except that the
  derivative multiplies the tangent by the 0/1 mask instead of selecting it, so a NaN or
  infinite tangent at ``x <= 0`` gives NaN where ``jax.nn.relu`` gives 0 (the step is not finite
  either way). Under ``vmap`` the multiply keeps the mapped axis in place (module docstring);
  with the pools' derivatives and ``member_conv``'s layout it took LeNet-5's population of 8
  from ~23 to ~21 ms a step (issue 16).

  Args:
    x: any array.

  Returns:
    ``max(x, 0)``, shape and dtype of ``x``.

  Example:
    >>> relu(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    >>> jax.grad(lambda v: relu(v).sum())(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 1.0]
  """
  return jnp.maximum(x, 0)


relu.defjvps(lambda tangent, _, x: tangent * jnp.greater(x, 0).astype(tangent.dtype))
