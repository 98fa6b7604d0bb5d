"""Parameter initializers, `jax.nn.initializers` signature `(key, shape, dtype) -> array`.

Fan-in and fan-out are computed for HWIO kernels (`fan_in = kh * kw * in`,
`fan_out = kh * kw * out`) and `(in, out)` dense kernels.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxseg.ops import bilinear_kernel

Initializer = jax.nn.initializers.Initializer
_MODES = ('fan_in', 'fan_out', 'fan_avg')

zeros = jax.nn.initializers.zeros  # all zeros (biases); jax's, re-exported.


def _check_mode(mode: str) -> None:
  if mode not in _MODES:
    raise ValueError(f'mode must be one of {_MODES}, got {mode!r}.')


def he_normal(*, mode: str = 'fan_in') -> Initializer:
  r"""He (Kaiming) normal initializer: :math:`w \sim \mathcal{N}(0,\, 2 / \text{fan})`.

  Untruncated, as in He et al. (2015), Caffe's "msra" filler and PyTorch's
  `torch.nn.init.kaiming_normal_(nonlinearity='relu')`; torchvision's ResNet uses
  `mode='fan_out'`.

  Args:
    mode: `'fan_in'` (preserves forward variance), `'fan_out'` (backward) or `'fan_avg'`.

  Returns:
    an initializer `(key, shape, dtype=float32) -> array`.

  Example:
    >>> w = he_normal()(jax.random.key(0), (3, 3, 64, 128))   # std sqrt(2 / 576)
  """
  _check_mode(mode)
  return jax.nn.initializers.variance_scaling(2.0, mode, 'normal')


def he_uniform(*, mode: str = 'fan_in') -> Initializer:
  r"""He (Kaiming) uniform initializer: :math:`w \sim U(-b, b)`, :math:`b = \sqrt{6 / \text{fan}}`.

  Agrees with `torch.nn.init.kaiming_uniform_(nonlinearity='relu')`.

  Args:
    mode: `'fan_in'`, `'fan_out'` or `'fan_avg'`.

  Returns:
    an initializer `(key, shape, dtype=float32) -> array`.

  Example:
    >>> w = he_uniform()(jax.random.key(0), (3, 3, 64, 128))   # |w| <= sqrt(6 / 576)
  """
  _check_mode(mode)
  return jax.nn.initializers.variance_scaling(2.0, mode, 'uniform')


def lecun_normal() -> Initializer:
  r"""LeCun normal initializer: truncated normal with variance :math:`1 / \text{fan\_in}`.

  Same as `jax.nn.initializers.lecun_normal` and flax's `Dense` default (the truncated normal's
  standard deviation is corrected so the variance is exactly `1 / fan_in`).

  Returns:
    an initializer `(key, shape, dtype=float32) -> array`.

  Example:
    >>> w = lecun_normal()(jax.random.key(0), (4096, 1000))
  """
  return jax.nn.initializers.variance_scaling(1.0, 'fan_in', 'truncated_normal')


def normal(stddev: float = 1e-2) -> Initializer:
  r"""Gaussian initializer :math:`w \sim \mathcal{N}(0, \text{stddev}^2)`, Caffe's "gaussian".

  Args:
    stddev: standard deviation, e.g. 0.01 for AlexNet and VGG, 0.001 for FCN's score layers.

  Returns:
    an initializer `(key, shape, dtype=float32) -> array`.

  Example:
    >>> w = normal(0.01)(jax.random.key(0), (3, 3, 3, 64))
  """
  if not stddev >= 0:
    raise ValueError(f'stddev must be non-negative, got {stddev!r}.')
  return jax.nn.initializers.normal(stddev)


def constant(value: float) -> Initializer:
  r"""Initializer filling every entry with `value` (Caffe's "constant" filler, e.g. bias 0.1).

  Args:
    value: the fill value.

  Returns:
    an initializer `(key, shape, dtype=float32) -> array`.

  Example:
    >>> constant(0.1)(jax.random.key(0), (3,))
    Array([0.1, 0.1, 0.1], dtype=float32)
  """
  return jax.nn.initializers.constant(value)


def bilinear(key: jax.Array, shape: Any, dtype: Any = jnp.float32) -> jax.Array:
  r"""FCN's bilinear upsampling initializer for `(k, k, C, C)` transposed-convolution kernels.

  :math:`w_{u,v,i,o} = [i = o]\,(1 - |u - c| / f)(1 - |v - c| / f)`, see
  `jaxseg.ops.bilinear_kernel`. Deterministic: `key` is ignored.

  Args:
    key: unused (initializer signature).
    shape: `(k, k, C, C)` (HWIO), square in space and in channels.
    dtype: dtype of the result.

  Returns:
    the kernel `bilinear_kernel(k, C)`.

  Example:
    >>> bilinear(jax.random.key(0), (4, 4, 21, 21)).shape
    (4, 4, 21, 21)
  """
  del key
  shape = tuple(shape)
  if len(shape) != 4 or shape[0] != shape[1] or shape[2] != shape[3]:
    raise ValueError(
      f'the bilinear initializer needs a (k, k, C, C) kernel (square, as many outputs as '
      f'inputs), got shape {shape}.'
    )
  return bilinear_kernel(shape[0], shape[2], dtype=dtype)
