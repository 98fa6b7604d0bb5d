"""Fully connected layer (Flax Linen)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxseg.nn import initializers
from jaxseg.nn._dtypes import cast_for_compute
from jaxseg.ops import _validation as v


class Dense(nn.Module):
  r"""Fully connected layer over the last axis: :math:`y = x W + b`.

  The counterpart of `torch.nn.Linear` (weight stored transposed, `(in, out)`, here) and Caffe's
  InnerProduct. Leading axes are batch axes.

  Attributes:
    features: number of outputs.
    use_bias: add a learned `bias` of shape `(features,)`.
    kernel_init: initializer of `kernel` `(in, features)` (LeCun normal by default).
    bias_init: initializer of `bias` (zeros).
    dtype: compute dtype; `None` promotes input and parameters.
    param_dtype: storage dtype of the parameters.

  Example:
    >>> layer = Dense(10)
    >>> y, variables = layer.init_with_output(jax.random.key(0), jnp.ones((2, 84)))
    >>> y.shape, variables['params']['kernel'].shape
    ((2, 10), (84, 10))
  """

  features: int
  _: dataclasses.KW_ONLY
  use_bias: bool = True
  kernel_init: Callable[..., jax.Array] = initializers.lecun_normal()
  bias_init: Callable[..., jax.Array] = initializers.zeros
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the layer to `x` of shape `(..., in)`; returns `(..., features)`."""
    # Checked before the initialiser divides by a fan of 0.
    v.check_positive_int(self.features, 'Dense features')
    if getattr(x, 'ndim', 0) < 1:
      raise ValueError(f'Dense input x must have at least one axis, got {x!r}.')
    kernel = self.param('kernel', self.kernel_init, (x.shape[-1], self.features), self.param_dtype)
    bias = (
      self.param('bias', self.bias_init, (self.features,), self.param_dtype)
      if self.use_bias
      else None
    )
    x, kernel, bias = cast_for_compute(x, kernel, bias, dtype=self.dtype)
    y = lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))
    return y if bias is None else y + bias
