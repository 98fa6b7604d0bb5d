"""Pooling layers (Flax Linen, no parameters) over `jaxseg.ops`."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax

from jaxseg import ops


class MaxPool(nn.Module):
  r"""Max pooling layer: `jaxseg.ops.max_pool`.

  :math:`y_{n,i,j,c} = \max_{u,v} \tilde x_{n,\, s i + u,\, s j + v,\, c}` with :math:`-\infty`
  padding. The counterpart of `torch.nn.MaxPool2d`; `ceil_mode=True` is Caffe's rounding.

  Attributes:
    window: int or `(kh, kw)`.
    stride: int or `(sh, sw)`; `None` means `window`.
    padding: int, `(ph, pw)`, `((top, bottom), (left, right))`, `'SAME'` or `'VALID'`.
    ceil_mode: round the output size up, as Caffe does.

  Example:
    >>> MaxPool(3, stride=2, ceil_mode=True).apply({}, jnp.ones((1, 112, 112, 64))).shape
    (1, 56, 56, 64)
  """

  window: Any
  _: dataclasses.KW_ONLY
  stride: Any = None
  padding: Any = 0
  ceil_mode: bool = False

  def __call__(self, x: jax.Array) -> jax.Array:
    """Pools `x` of shape `(N, H, W, C)`."""
    return ops.max_pool(
      x, self.window, stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode
    )


class AvgPool(nn.Module):
  r"""Average pooling layer: `jaxseg.ops.avg_pool`.

  :math:`y_{n,i,j,c}` is the mean of the window, dividing by its size with padding if
  `count_include_pad`. The counterpart of `torch.nn.AvgPool2d`; `ceil_mode=True` is Caffe's.

  Attributes:
    window: int or `(kh, kw)`.
    stride: int or `(sh, sw)`; `None` means `window`.
    padding: int, `(ph, pw)`, `((top, bottom), (left, right))`, `'SAME'` or `'VALID'`.
    ceil_mode: round the output size up, as Caffe does.
    count_include_pad: divide by the window size including zero padding.

  Example:
    >>> AvgPool(2).apply({}, jnp.ones((1, 4, 4, 3))).shape
    (1, 2, 2, 3)
  """

  window: Any
  _: dataclasses.KW_ONLY
  stride: Any = None
  padding: Any = 0
  ceil_mode: bool = False
  count_include_pad: bool = True

  def __call__(self, x: jax.Array) -> jax.Array:
    """Pools `x` of shape `(N, H, W, C)`."""
    return ops.avg_pool(
      x,
      self.window,
      stride=self.stride,
      padding=self.padding,
      ceil_mode=self.ceil_mode,
      count_include_pad=self.count_include_pad,
    )
