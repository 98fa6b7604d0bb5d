"""GoogLeNet / Inception v1 (Szegedy et al., 2015), as in the paper and as in torchvision.

Paper (Table 1, Caffe's ``bvlc_googlenet``): conv 7x7/2 (64) - max pool 3x3/2 - LRN -
conv 1x1 (64) - conv 3x3 (192) - LRN - max pool - inception 3a, 3b - max pool - 4a ... 4e -
max pool - 5a, 5b - global average pool - dropout 0.4 - fc. Each inception module concatenates
a 1x1 branch, a 1x1 reduction + 3x3, a 1x1 reduction + 5x5 and a 3x3 max pool + 1x1
projection. Every convolution has a bias and a ReLU; max pools round up (Caffe). Two auxiliary
classifiers read 4a and 4d: 5x5/3 average pool, 1x1 conv (128), fc 1024, dropout 0.7, fc; the
paper adds their losses with weight 0.3 during training
(:func:`jaxseg.losses.classification_loss_with_aux`).

``torchvision_compatible=True`` builds ``torchvision.models.googlenet``: every convolution is
conv (no bias) + batch norm (eps 1e-3) + ReLU, the "5x5" branch uses a 3x3 kernel, no LRN,
the last stride-2 pool is 2x2, dropout 0.2 and the auxiliary heads pool adaptively to 4x4. Module
names are torchvision's (``conv1``, ``conv2`` = the paper's 3x3_reduce, ``conv3``,
``inception3a``, ``aux1``, ``fc``). Torchvision's pretrained weights expect its
``transform_input`` re-normalisation, which is preprocessing and not done here.
"""

import functools
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg import ops
from jaxseg.models.convolutionalize import adaptive_avg_pool
from jaxseg.models.registry import register_model
from jaxseg.nn import AvgPool, BatchNorm, Conv, Dense, Dropout, LocalResponseNorm, MaxPool

# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of each module, paper Table 1.
INCEPTION_CONFIGS = {
  '3a': (64, 96, 128, 16, 32, 32),
  '3b': (128, 128, 192, 32, 96, 64),
  '4a': (192, 96, 208, 16, 48, 64),
  '4b': (160, 112, 224, 24, 64, 64),
  '4c': (128, 128, 256, 24, 64, 64),
  '4d': (112, 144, 288, 32, 64, 64),
  '4e': (256, 160, 320, 32, 128, 128),
  '5a': (256, 160, 320, 32, 128, 128),
  '5b': (384, 192, 384, 48, 128, 128),
}


class ConvUnit(nn.Module):
  """Convolution + ReLU (paper), or convolution without bias + batch norm + ReLU (torchvision).

  Submodules ``conv`` and ``bn`` mirror torchvision's ``BasicConv2d``.
  """

  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  batch_norm: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    x = Conv(
      self.features,
      self.kernel_size,
      stride=self.stride,
      padding=self.padding,
      use_bias=not self.batch_norm,
      dtype=self.dtype,
      name='conv',
    )(x)
    if self.batch_norm:
      x = BatchNorm(use_running_average=not train, epsilon=1e-3, dtype=self.dtype, name='bn')(x)
    return nn.relu(x)


class Inception(nn.Module):
  """One inception module: four parallel branches concatenated on channels.

  Attributes:
    branch_features: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) channels.
    large_kernel: kernel of the "5x5" branch (5 in the paper, 3 in torchvision).
    batch_norm: torchvision's conv + BN units.
    dtype: compute dtype.
  """

  branch_features: tuple[int, int, int, int, int, int]
  large_kernel: int = 5
  batch_norm: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    c1, c3r, c3, c5r, c5, cp = self.branch_features
    unit = functools.partial(ConvUnit, batch_norm=self.batch_norm, dtype=self.dtype)
    k = self.large_kernel
    branch1 = unit(c1, 1, name='branch1')(x, train=train)
    branch2 = unit(c3r, 1, name='branch2_reduce')(x, train=train)
    branch2 = unit(c3, 3, padding=1, name='branch2')(branch2, train=train)
    branch3 = unit(c5r, 1, name='branch3_reduce')(x, train=train)
    branch3 = unit(c5, k, padding=k // 2, name='branch3')(branch3, train=train)
    branch4 = MaxPool(3, stride=1, padding=1, ceil_mode=True, name='branch4_pool')(x)
    branch4 = unit(cp, 1, name='branch4')(branch4, train=train)
    return jnp.concatenate([branch1, branch2, branch3, branch4], axis=-1)


class AuxiliaryHead(nn.Module):
  """Auxiliary classifier: pool to 4x4, 1x1 conv (128), fc 1024, dropout 0.7, fc."""

  num_classes: int
  batch_norm: bool = False
  dropout_rate: float = 0.7
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    if self.batch_norm:
      x = adaptive_avg_pool(x, 4)  # torchvision
    else:
      x = AvgPool(5, stride=3, name='pool')(x)  # the paper's 5x5/3 pool: 14x14 -> 4x4
    x = ConvUnit(128, 1, batch_norm=self.batch_norm, dtype=self.dtype, name='conv')(x, train=train)
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(Dense(1024, dtype=self.dtype, name='fc1')(x))
    x = Dropout(self.dropout_rate, deterministic=not train)(x)
    return Dense(self.num_classes, dtype=self.dtype, name='fc2')(x).astype('float32')


class GoogLeNet(nn.Module):
  """GoogLeNet.

  Attributes:
    num_classes: classes of ``fc`` and of the auxiliary heads.
    torchvision_compatible: torchvision's variant (see the module docstring).
    aux_logits: build the two auxiliary classifiers (their logits go to
      ``endpoints['aux1']`` and ``endpoints['aux2']``, in eval too, so ``init`` creates their
      parameters; the loss uses them in training only).
    dropout_rate: before ``fc``; None picks 0.4 (paper) or 0.2 (torchvision).
    include_top: if False, ``__call__`` returns the inception 5b map.
    dtype: compute dtype.
  """

  num_classes: int = 1000
  torchvision_compatible: bool = False
  aux_logits: bool = True
  dropout_rate: Optional[float] = None
  include_top: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """Applies the network.

    Args:
      x: ``(N, 224, 224, 3)`` images.
      train: dropout on; batch statistics in the torchvision variant.

    Returns:
      ``(output, endpoints)``: logits ``(N, num_classes)`` (the 5b map when
      ``include_top=False``); endpoints ``stride2`` (conv1), ``stride4`` (conv3), ``stride8``
      (3b), ``stride16`` (4e), ``stride32`` and ``features`` (5b), and ``aux1``, ``aux2``
      (the auxiliary heads' logits ``(N, num_classes)``, on 4a and 4d) when ``aux_logits``.
    """
    if x.ndim != 4:
      raise ValueError(f'GoogLeNet: x must be an NHWC batch (4-D), got shape {x.shape}')
    tv = self.torchvision_compatible
    unit = functools.partial(ConvUnit, batch_norm=tv, dtype=self.dtype)
    inception = functools.partial(
      Inception, large_kernel=3 if tv else 5, batch_norm=tv, dtype=self.dtype
    )
    pool = functools.partial(MaxPool, 3, stride=2, ceil_mode=True)
    norm = functools.partial(LocalResponseNorm, size=5, alpha=1e-4, beta=0.75)
    endpoints = {}

    x = endpoints['stride2'] = unit(64, 7, stride=2, padding=3, name='conv1')(x, train=train)
    x = pool(name='maxpool1')(x)
    if not tv:
      x = norm(name='norm1')(x)
    x = unit(64, 1, name='conv2')(x, train=train)
    x = unit(192, 3, padding=1, name='conv3')(x, train=train)
    if not tv:
      x = norm(name='norm2')(x)
    endpoints['stride4'] = x
    x = pool(name='maxpool2')(x)
    for name in ('3a', '3b'):
      x = inception(INCEPTION_CONFIGS[name], name=f'inception{name}')(x, train=train)
    endpoints['stride8'] = x
    x = pool(name='maxpool3')(x)
    for name in ('4a', '4b', '4c', '4d', '4e'):
      x = inception(INCEPTION_CONFIGS[name], name=f'inception{name}')(x, train=train)
      if self.aux_logits and name in ('4a', '4d'):
        aux_name = 'aux1' if name == '4a' else 'aux2'
        endpoints[aux_name] = AuxiliaryHead(
          self.num_classes, batch_norm=tv, dtype=self.dtype, name=aux_name
        )(x, train=train)
    endpoints['stride16'] = x
    if tv:  # torchvision's last stride-2 pool is 2x2
      x = MaxPool(2, stride=2, ceil_mode=True, name='maxpool4')(x)
    else:
      x = pool(name='maxpool4')(x)
    for name in ('5a', '5b'):
      x = inception(INCEPTION_CONFIGS[name], name=f'inception{name}')(x, train=train)
    endpoints['stride32'] = endpoints['features'] = x
    if not self.include_top:
      return x, endpoints
    rate = self.dropout_rate if self.dropout_rate is not None else (0.2 if tv else 0.4)
    x = ops.global_avg_pool(x)
    x = Dropout(rate, deterministic=not train)(x)
    logits = Dense(self.num_classes, dtype=self.dtype, name='fc')(x)
    return logits.astype('float32'), endpoints


googlenet = register_model('googlenet')(GoogLeNet)
googlenet_torchvision = register_model('googlenet_torchvision')(
  functools.partial(GoogLeNet, torchvision_compatible=True)
)
