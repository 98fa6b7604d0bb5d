"""Atrous spatial pyramid pooling: DeepLab's multi-rate context heads.

* :class:`ASPPClassifier` (DeepLab v2, Chen et al. 2017, Sec. 3.3): one 3x3 atrous convolution
  per rate, each producing class scores, summed. ASPP-L uses rates (6, 12, 18, 24) and ASPP-S
  (2, 4, 8, 12).
* :class:`ASPP` (DeepLab v3, Chen et al. 2017, Sec. 3.3): a 1x1 branch, three 3x3 atrous
  branches and an image-pooling branch, each 256 channels with batch norm and ReLU,
  concatenated and projected by a 1x1 convolution (256, batch norm, ReLU).

Layout NHWC; kernels HWIO.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg import ops
from jaxseg.nn import AtrousConv, BatchNorm, Conv, Dropout, initializers

ASPP_L_RATES = (6, 12, 18, 24)
ASPP_S_RATES = (2, 4, 8, 12)


def _check_rates(rates: Any, owner: str) -> tuple[int, ...]:
  rates = tuple(rates)
  if not rates or any(not isinstance(r, int) or isinstance(r, bool) or r < 1 for r in rates):
    raise ValueError(f'{owner}: rates must be a non-empty sequence of positive ints, '
                     f'got {rates!r}.')
  return rates


class ASPPClassifier(nn.Module):
  r"""DeepLab v2's ASPP: :math:`z = \sum_r \operatorname{conv}^{3\times3}_{\text{rate } r}(x)`.

  Each branch is a 3x3 atrous convolution to ``num_classes`` channels with bias (padding =
  rate, so the size is kept), initialised N(0, 0.01) as in DeepLab's prototxt.

  Attributes:
    num_classes: output channels.
    rates: atrous rates, one branch each (``ASPP_L_RATES`` or ``ASPP_S_RATES``).
    dtype: compute dtype.

  Example:
    >>> head = ASPPClassifier(num_classes=21, rates=ASPP_S_RATES)
    >>> jax.eval_shape(head.init_with_output, jax.random.key(0), jnp.ones((1, 9, 9, 8)))[0].shape
    (1, 9, 9, 21)
  """
  num_classes: int
  rates: Sequence[int] = ASPP_L_RATES
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """``(N, h, w, C)`` features -> ``(N, h, w, num_classes)`` summed branch scores."""
    rates = _check_rates(self.rates, 'ASPPClassifier')
    total = 0
    for rate in rates:
      total = total + AtrousConv(self.num_classes, 3, rate=rate, padding=rate,
                                 kernel_init=initializers.normal(0.01), dtype=self.dtype,
                                 name=f'rate{rate}')(x)
    return total


class ASPP(nn.Module):
  """DeepLab v3's ASPP with image-level features.

  Branches on ``(N, h, w, C)`` features, each conv (no bias) + batch norm + ReLU with
  ``features`` channels:

  * ``conv1x1``: a 1x1 convolution;
  * ``atrous<r>``: a 3x3 convolution of rate ``r`` for each rate;
  * ``pool``: global average pooling, a 1x1 convolution, then broadcast back to ``h x w``
    (bilinear upsampling of a 1x1 map is a broadcast).

  The ``1 + len(rates) + 1`` maps are concatenated and projected by ``project`` (1x1, batch
  norm, ReLU, then dropout).

  Attributes:
    features: channels of every branch and of the output (256).
    rates: atrous rates: (6, 12, 18) at output stride 16, doubled at 8.
    dropout_rate: dropout after the projection (0 in the paper; torchvision uses 0.5).
    dtype: compute dtype.

  Example:
    >>> aspp = ASPP(features=16, rates=(1, 2, 3))
    >>> out, _ = jax.eval_shape(aspp.init_with_output, jax.random.key(0), jnp.ones((2, 5, 7, 8)))
    >>> out.shape
    (2, 5, 7, 16)
  """
  features: int = 256
  rates: Sequence[int] = (6, 12, 18)
  dropout_rate: float = 0.0
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """``(N, h, w, C)`` -> ``(N, h, w, features)``."""
    rates = _check_rates(self.rates, 'ASPP')

    def conv_bn_relu(y, kernel_size, name, rate=1):
      if rate == 1:
        y = Conv(self.features, kernel_size, padding=kernel_size // 2, use_bias=False,
                 dtype=self.dtype, name=name)(y)
      else:
        y = AtrousConv(self.features, kernel_size, rate=rate, padding=rate, use_bias=False,
                       dtype=self.dtype, name=name)(y)
      y = BatchNorm(use_running_average=not train, dtype=self.dtype, name=f'{name}_bn')(y)
      return nn.relu(y)

    branches = [conv_bn_relu(x, 1, 'conv1x1')]
    branches += [conv_bn_relu(x, 3, f'atrous{rate}', rate) for rate in rates]
    pooled = conv_bn_relu(ops.global_avg_pool(x, keepdims=True), 1, 'pool')
    branches.append(jnp.broadcast_to(pooled, x.shape[:3] + (self.features,)))
    y = conv_bn_relu(jnp.concatenate(branches, axis=-1), 1, 'project')
    return Dropout(self.dropout_rate, deterministic=not train)(y)
