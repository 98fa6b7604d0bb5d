"""Convolution layers (Flax Linen) over `jaxseg.ops`: Conv, ConvTranspose, AtrousConv.

Parameters: `kernel` in HWIO `(kh, kw, in, out)` and `bias` `(out,)`, stored in `param_dtype`
(float32) and cast with the input to the compute `dtype` inside the layer.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg import ops
from jaxseg.nn import initializers
from jaxseg.nn._dtypes import cast_for_compute
from jaxseg.ops import _validation as v

Initializer = Callable[..., jax.Array]


def _in_channels(x: jax.Array, layer: str, features: Any = 1) -> int:
  # features is checked here, before any initialiser divides by a fan of 0 (or XLA sees -3).
  v.check_positive_int(features, f'{layer} features')
  v.check_rank(x, 4, f'{layer} input x', 'NHWC')
  return x.shape[-1]


class Conv(nn.Module):
  r"""2-D convolution layer: `jaxseg.ops.conv2d(x, kernel, bias, ...)`.

  .. math::
    y_{n,i,j,o} = b_o + \sum_{u,v,c} \tilde x_{n,\, s i + d u,\, s j + d v,\, c}\; w_{u,v,c,o}

  The counterpart of `torch.nn.Conv2d` (NHWC/HWIO here) and Caffe's Convolution layer.

  Attributes:
    features: number of output channels `O`.
    kernel_size: int or `(kh, kw)`.
    stride: int or `(sh, sw)`.
    padding: int, `(ph, pw)`, `((top, bottom), (left, right))`, `'SAME'` or `'VALID'`.
    dilation: int or `(dh, dw)`.
    groups: channel groups; `kernel` is `(kh, kw, C / groups, O)`.
    use_bias: add a learned `bias` of shape `(O,)`.
    kernel_init: initializer of `kernel` (He normal, fan-in, by default).
    bias_init: initializer of `bias` (zeros).
    dtype: compute dtype (input and parameters cast to it); `None` promotes them.
    param_dtype: storage dtype of the parameters.

  Example:
    >>> layer = Conv(64, 3, padding=1)
    >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 32, 32, 3)))
    >>> variables['params']['kernel'].shape
    (3, 3, 3, 64)
  """

  features: int
  kernel_size: Any
  _: dataclasses.KW_ONLY
  stride: Any = 1
  padding: Any = 0
  dilation: Any = 1
  groups: int = 1
  use_bias: bool = True
  kernel_init: Initializer = initializers.he_normal()
  bias_init: Initializer = initializers.zeros
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the convolution to `x` of shape `(N, H, W, C)`; returns `(N, H', W', features)`."""
    channels = _in_channels(x, 'Conv', self.features)
    kh, kw = v.pair(self.kernel_size, 'kernel_size')
    if not isinstance(self.groups, int) or self.groups < 1 or channels % self.groups:
      raise ValueError(
        f'groups={self.groups!r} must be a positive int dividing the input channels {channels}.'
      )
    kernel = self.param(
      'kernel', self.kernel_init, (kh, kw, channels // self.groups, self.features), self.param_dtype
    )
    bias = (
      self.param('bias', self.bias_init, (self.features,), self.param_dtype)
      if self.use_bias
      else None
    )
    x, kernel, bias = cast_for_compute(x, kernel, bias, dtype=self.dtype)
    return ops.conv2d(
      x,
      kernel,
      bias,
      stride=self.stride,
      padding=self.padding,
      dilation=self.dilation,
      groups=self.groups,
    )


def _is_bilinear(kernel_init: Any) -> bool:
  return kernel_init == 'bilinear' or kernel_init is initializers.bilinear


class ConvTranspose(nn.Module):
  r"""Transposed convolution ("deconvolution") layer: `jaxseg.ops.conv_transpose2d`.

  Output size per axis :math:`(H - 1) s - p_{lo} - p_{hi} + d (k - 1) + \text{output\_padding}
  + 1`. The counterpart of `torch.nn.ConvTranspose2d` and Caffe's Deconvolution. With
  `kernel_init='bilinear'` the kernel starts as FCN's bilinear upsampling filter (needs
  `features == in channels` and a square kernel); with `frozen=True` too, the layer has no
  parameters at all and always applies the constant bilinear kernel (FCN's final upsampling).

  Attributes:
    features: number of output channels.
    kernel_size: int or `(kh, kw)`.
    stride: int or `(sh, sw)`, the upsampling factor.
    padding: int, `(ph, pw)`, `((top, bottom), (left, right))` or `'VALID'`: cropped from the
      full output, as in PyTorch.
    output_padding: int or `(oh, ow)`, extra rows/columns at the bottom/right.
    dilation: int or `(dh, dw)`.
    use_bias: add a learned `bias`; `None` (default) means `True` unless `frozen`.
    kernel_init: initializer of `kernel` `(kh, kw, in, features)`, or `'bilinear'`.
    bias_init: initializer of `bias`.
    frozen: use the constant bilinear kernel, no parameters (only with `'bilinear'`).
    dtype: compute dtype; `None` promotes input and parameters.
    param_dtype: storage dtype of the parameters.

  Example (FCN-32s' 32x upsampling of 21 class scores):
    >>> up = ConvTranspose(21, 64, stride=32, padding=16, kernel_init='bilinear', frozen=True)
    >>> up.init(jax.random.key(0), jnp.ones((1, 2, 2, 21)))
    {}
  """

  features: int
  kernel_size: Any
  _: dataclasses.KW_ONLY
  stride: Any = 1
  padding: Any = 0
  output_padding: Any = 0
  dilation: Any = 1
  use_bias: bool | None = None
  kernel_init: Initializer | str = initializers.he_normal()
  bias_init: Initializer = initializers.zeros
  frozen: bool = False
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the transposed convolution to `x` `(N, H, W, C)`; returns `(N, H', W', features)`."""
    channels = _in_channels(x, 'ConvTranspose', self.features)
    kh, kw = v.pair(self.kernel_size, 'kernel_size')
    shape = (kh, kw, channels, self.features)
    bilinear = _is_bilinear(self.kernel_init)
    if isinstance(self.kernel_init, str) and not bilinear:
      raise ValueError(f"kernel_init as a string must be 'bilinear', got {self.kernel_init!r}.")
    if self.frozen and not bilinear:
      raise ValueError(f"frozen=True needs kernel_init='bilinear', got {self.kernel_init!r}.")
    use_bias = (not self.frozen) if self.use_bias is None else self.use_bias
    if self.frozen and use_bias:
      raise ValueError('frozen=True has no parameters; it cannot take use_bias=True.')
    init = initializers.bilinear if bilinear else self.kernel_init
    if self.frozen:
      kernel = init(None, shape, self.param_dtype)
    else:
      kernel = self.param('kernel', init, shape, self.param_dtype)
    bias = (
      self.param('bias', self.bias_init, (self.features,), self.param_dtype) if use_bias else None
    )
    x, kernel, bias = cast_for_compute(x, kernel, bias, dtype=self.dtype)
    return ops.conv_transpose2d(
      x,
      kernel,
      bias,
      stride=self.stride,
      padding=self.padding,
      output_padding=self.output_padding,
      dilation=self.dilation,
    )


class AtrousConv(nn.Module):
  r"""Atrous (dilated) convolution layer: `jaxseg.ops.atrous_conv2d` (DeepLab).

  .. math::
    y_{n,i,j,o} = b_o + \sum_{u,v,c} \tilde x_{n,\, i + r u,\, j + r v,\, c}\; w_{u,v,c,o}

  With the default `'SAME'` padding the spatial size is kept. The counterpart of
  `torch.nn.Conv2d(..., dilation=rate, padding=rate * (k - 1) // 2)`.

  Attributes:
    features: number of output channels.
    kernel_size: int or `(kh, kw)`.
    rate: int or `(rh, rw)`, the spacing between kernel taps.
    padding: any `conv2d` padding; `'SAME'` by default.
    use_bias: add a learned `bias`.
    kernel_init: initializer of `kernel` `(kh, kw, in, features)`.
    bias_init: initializer of `bias`.
    dtype: compute dtype; `None` promotes input and parameters.
    param_dtype: storage dtype of the parameters.

  Example (DeepLab-LargeFOV's fc6):
    >>> layer = AtrousConv(1024, 3, rate=12)
    >>> y, _ = layer.init_with_output(jax.random.key(0), jnp.ones((1, 5, 5, 8)))
    >>> y.shape
    (1, 5, 5, 1024)
  """

  features: int
  kernel_size: Any
  _: dataclasses.KW_ONLY
  rate: Any
  padding: Any = 'SAME'
  use_bias: bool = True
  kernel_init: Initializer = initializers.he_normal()
  bias_init: Initializer = initializers.zeros
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the atrous convolution to `x` `(N, H, W, C)`; returns `(N, H', W', features)`."""
    channels = _in_channels(x, 'AtrousConv', self.features)
    kh, kw = v.pair(self.kernel_size, 'kernel_size')
    kernel = self.param(
      'kernel', self.kernel_init, (kh, kw, channels, self.features), self.param_dtype
    )
    bias = (
      self.param('bias', self.bias_init, (self.features,), self.param_dtype)
      if self.use_bias
      else None
    )
    x, kernel, bias = cast_for_compute(x, kernel, bias, dtype=self.dtype)
    return ops.atrous_conv2d(x, kernel, bias, rate=self.rate, padding=self.padding)
