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

import functools
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
    raise ValueError(
      f'{owner}: rates must be a non-empty sequence of positive ints, got {rates!r}.'
    )
  return rates


def conv_bn_relu(
  x: jax.Array,
  features: int,
  kernel_size: int,
  *,
  name: str,
  train: bool,
  rate: int = 1,
  dtype: Any = None,
) -> jax.Array:
  """Bias-free convolution (``'same'`` padding, dilation ``rate``), batch norm, ReLU.

  The unit of DeepLab v3/v3+'s heads. Call it inside a compact ``__call__``: the layers
  become the caller's submodules ``name`` and ``name + '_bn'``.
  """
  if rate == 1:
    x = Conv(
      features, kernel_size, padding=kernel_size // 2, use_bias=False, dtype=dtype, name=name
    )(x)
  else:
    x = AtrousConv(
      features,
      kernel_size,
      rate=rate,
      padding=rate * (kernel_size // 2),
      use_bias=False,
      dtype=dtype,
      name=name,
    )(x)
  x = BatchNorm(use_running_average=not train, dtype=dtype, name=f'{name}_bn')(x)
  return nn.relu(x)


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
      total = total + AtrousConv(
        self.num_classes,
        3,
        rate=rate,
        padding=rate,
        kernel_init=initializers.normal(0.01),
        dtype=self.dtype,
        name=f'rate{rate}',
      )(x)
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
    unit = functools.partial(conv_bn_relu, features=self.features, train=train, dtype=self.dtype)
    branches = [unit(x, kernel_size=1, name='conv1x1')]
    branches += [unit(x, kernel_size=3, name=f'atrous{rate}', rate=rate) for rate in rates]
    pooled = unit(ops.global_avg_pool(x, keepdims=True), kernel_size=1, name='pool')
    branches.append(jnp.broadcast_to(pooled, x.shape[:3] + (self.features,)))
    y = unit(jnp.concatenate(branches, axis=-1), kernel_size=1, name='project')
    return Dropout(self.dropout_rate, deterministic=not train)(y)
