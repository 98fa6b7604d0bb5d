"""DeepLab v1 (LargeFOV), v2 (ASPP, multi-scale inputs), v3 (ASPP with image pooling) and v3+.

Every model computes class scores at output stride 8 or 16 with atrous convolution and
resizes them bilinearly (half-pixel centres, ``jaxseg.ops.resize``) to the input size, so any
``H x W`` in gives ``H x W`` out. Backbones come from the registry (``include_top=False``).

* ``deeplab_v1`` (Chen et al., ICLR 2015, DeepLab-LargeFOV): VGG16 whose pools are 3x3 with
  padding 1 (stride 2 for pool1-3, 1 for pool4-5), conv5 dilated by 2, fc6 a 3x3 convolution
  of rate 12 with 1024 channels, fc7 1x1 with 1024, dropout 0.5 after both; output stride 8.
  20,505,429 parameters for 21 classes.
* ``deeplab_v2`` (Chen et al., TPAMI 2017): ResNet-101 at output stride 8 and
  :class:`~jaxseg.models.aspp.ASPPClassifier` (ASPP-L by default). With ``input_scales``
  ``(1.0, 0.75, 0.5)`` the shared network sees each scaled input and the scores are fused by a
  pixel-wise max (the per-scale scores are endpoints ``aux_scale<pct>`` for the extra losses).
* ``deeplab_v3`` (Chen et al., 2017): ResNet at output stride 16 (multi-grid (1, 2, 4)) and
  :class:`~jaxseg.models.aspp.ASPP`, rates (6, 12, 18) doubled at output stride 8, then a 1x1
  classifier.
* ``deeplab_v3plus`` (Chen et al., ECCV 2018): the v3 encoder and a decoder: ``stride4``
  projected to 48 channels, concatenated with the ASPP output resized to its size (4x), two
  3x3 convolutions of 256 and a 1x1 classifier, resized to the input (4x).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg import ops
from jaxseg.models.aspp import ASPP, ASPP_L_RATES, ASPPClassifier, conv_bn_relu
from jaxseg.models.fcn import build_backbone, check_input, check_num_classes
from jaxseg.models.registry import get_model, register_model
from jaxseg.nn import AtrousConv, Conv, Dropout, initializers


def _to_input_size(logits: jax.Array, x: jax.Array) -> jax.Array:
  return ops.resize(logits, x.shape[1:3]).astype(jnp.float32)


class DeepLabV1(nn.Module):
  """DeepLab-LargeFOV on VGG16.

  Attributes:
    num_classes: classes (21 for PASCAL VOC).
    fc_features: width of fc6 and fc7 (1024).
    fc6_rate: atrous rate of the 3x3 fc6 (12: the large field of view).
    dropout_rate: dropout after fc6 and fc7.
    width_divisor: divide every channel count by this (narrow test models).
    backbone_options: extra options of the VGG16 backbone.
    dtype: compute dtype.

  Example:
    >>> model = DeepLabV1(num_classes=21)   # get_model('deeplab_v1'): 20,505,429 parameters
    >>> (logits, ends), _ = jax.eval_shape(model.init_with_output, jax.random.key(0),
    ...                                    jnp.zeros((1, 65, 65, 3)))
    >>> logits.shape, ends['scores'].shape   # scores at output stride 8, resized to the input
    ((1, 65, 65, 21), (1, 9, 9, 21))
  """

  num_classes: int = 21
  fc_features: int = 1024
  fc6_rate: int = 12
  dropout_rate: float = 0.5
  width_divisor: int = 1
  backbone_options: Any = None
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """``(N, H, W, 3)`` -> ``((N, H, W, num_classes) float32 logits, endpoints)``."""
    check_input(x, 'DeepLabV1')
    check_num_classes(self.num_classes, 'DeepLabV1')
    options = dict(pool_window=3, pool_stride=2, pool_padding=1)
    options.update(self.backbone_options or {})
    net = build_backbone(
      self,
      'vgg16',
      width_divisor=self.width_divisor,
      output_stride=8,
      options=options,
      dtype=self.dtype,
    )
    features, endpoints = net(x, train=train)
    endpoints = dict(endpoints)
    width = max(1, self.fc_features // self.width_divisor)
    y = AtrousConv(
      width, 3, rate=self.fc6_rate, padding=self.fc6_rate, dtype=self.dtype, name='fc6'
    )(features)
    y = Dropout(self.dropout_rate, deterministic=not train)(nn.relu(y))
    y = Conv(width, 1, dtype=self.dtype, name='fc7')(y)
    y = Dropout(self.dropout_rate, deterministic=not train)(nn.relu(y))
    scores = Conv(
      self.num_classes, 1, kernel_init=initializers.normal(0.01), dtype=self.dtype, name='fc8'
    )(y)
    endpoints['scores'] = scores
    return _to_input_size(scores, x), endpoints


class DeepLabV2(nn.Module):
  """DeepLab v2: a ResNet at output stride 8, ASPP classifiers summed, optional multi-scale.

  Attributes:
    num_classes: classes.
    backbone: registry name of the backbone (``'resnet101'``).
    output_stride: 8 (the paper) or 16.
    rates: ASPP rates (``ASPP_L_RATES`` = (6, 12, 18, 24) or ``ASPP_S_RATES``).
    input_scales: scales of the multi-scale inputs, e.g. ``(1.0, 0.75, 0.5)``; ``()`` or one
      scale of 1.0 runs the plain network. Scores of every scale are resized to those of the
      first scale, fused by a pixel-wise max, then resized to the input.
    width_divisor: divide the backbone's channels by this (narrow test models).
    backbone_options: extra options of the backbone.
    dtype: compute dtype.

  Example:
    >>> model = DeepLabV2(num_classes=21, backbone='resnet18', input_scales=(1.0, 0.75, 0.5))
    >>> (logits, ends), _ = jax.eval_shape(model.init_with_output, jax.random.key(0),
    ...                                    jnp.zeros((1, 65, 65, 3)))
    >>> logits.shape, ends['aux_scale075'].shape   # 49 x 49 input at output stride 8
    ((1, 65, 65, 21), (1, 7, 7, 21))
  """

  num_classes: int = 21
  backbone: str = 'resnet101'
  output_stride: int = 8
  rates: Sequence[int] = ASPP_L_RATES
  input_scales: Sequence[float] = ()
  width_divisor: int = 1
  backbone_options: Any = None
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """``(N, H, W, 3)`` -> ``((N, H, W, num_classes) float32 logits, endpoints)``."""
    check_input(x, 'DeepLabV2')
    check_num_classes(self.num_classes, 'DeepLabV2')
    scales = tuple(float(s) for s in self.input_scales) or (1.0,)
    if any(s <= 0 for s in scales):
      raise ValueError(f'DeepLabV2: input_scales must be positive, got {self.input_scales!r}.')
    net = build_backbone(
      self,
      self.backbone,
      width_divisor=self.width_divisor,
      output_stride=self.output_stride,
      options=self.backbone_options,
      dtype=self.dtype,
    )
    head = ASPPClassifier(self.num_classes, rates=tuple(self.rates), dtype=self.dtype, name='aspp')
    height, width = x.shape[1:3]
    per_scale, endpoints = [], {}
    for scale in scales:
      size = (max(1, round(height * scale)), max(1, round(width * scale)))
      scaled = x if size == (height, width) else ops.resize(x, size)
      features, scale_endpoints = net(scaled, train=train)
      per_scale.append(head(features))
      if not endpoints:
        endpoints = dict(scale_endpoints)
    if len(per_scale) == 1:
      scores = per_scale[0]
    else:
      reference = per_scale[0].shape[1:3]
      resized = [ops.resize(s, reference) for s in per_scale]
      scores = functools.reduce(jnp.maximum, resized)
      for scale, s in zip(scales, per_scale):
        endpoints[f'aux_scale{round(100 * scale):03d}'] = s.astype(jnp.float32)
    endpoints['scores'] = scores
    return _to_input_size(scores, x), endpoints


class DeepLabV3(nn.Module):
  """DeepLab v3 (``decoder=False``) and v3+ (``decoder=True``).

  Attributes:
    num_classes: classes.
    backbone: registry name of the backbone (``'resnet101'``).
    output_stride: 16 or 8.
    multi_grid: unit rates of the last stage's blocks, one per block; ``None`` (default):
      ``(1, 2, 4)`` for a three-block last stage (the paper's ResNets), ``(1, 2)`` for a
      two-block one (ResNet-18/34), i.e. ``2 ** i`` for block ``i``.
    aspp_rates: ASPP rates at output stride 16, multiplied by ``16 / output_stride``.
    aspp_features: channels of the ASPP branches and projection (256).
    aspp_dropout: dropout after the ASPP projection.
    decoder: add v3+'s decoder on the ``stride4`` endpoint.
    low_level_features: decoder's projection of ``stride4`` (48).
    decoder_features: channels of the decoder's two 3x3 convolutions (256).
    width_divisor: divide every channel count (backbone, ASPP, decoder) by this.
    backbone_options: extra options of the backbone.
    dtype: compute dtype.

  Example:
    >>> model = DeepLabV3(num_classes=21, backbone='resnet18', multi_grid=(1, 2), decoder=True)
    >>> (logits, ends), _ = jax.eval_shape(model.init_with_output, jax.random.key(0),
    ...                                    jnp.zeros((1, 65, 65, 3)))
    >>> logits.shape, ends['aspp'].shape, ends['scores'].shape   # stride 16, decoder at 4
    ((1, 65, 65, 21), (1, 5, 5, 256), (1, 17, 17, 21))
  """

  num_classes: int = 21
  backbone: str = 'resnet101'
  output_stride: int = 16
  multi_grid: Sequence[int] | None = None
  aspp_rates: Sequence[int] = (6, 12, 18)
  aspp_features: int = 256
  aspp_dropout: float = 0.0
  decoder: bool = False
  low_level_features: int = 48
  decoder_features: int = 256
  width_divisor: int = 1
  backbone_options: Any = None
  dtype: Any = None

  def _narrow(self, channels: int) -> int:
    return max(1, channels // self.width_divisor)

  def _multi_grid(self) -> tuple[int, ...]:
    if self.multi_grid is not None:
      return tuple(self.multi_grid)
    # The paper's (1, 2, 4) is for three blocks; follow the backbone's last stage.
    stages = getattr(get_model(self.backbone, parent=None), 'stage_sizes', (3,))
    return tuple(2**i for i in range(stages[-1]))

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """``(N, H, W, 3)`` -> ``((N, H, W, num_classes) float32 logits, endpoints)``."""
    owner = 'DeepLabV3Plus' if self.decoder else 'DeepLabV3'
    check_input(x, owner)
    check_num_classes(self.num_classes, owner)
    if self.output_stride not in (8, 16):
      raise ValueError(f'{owner}: output_stride must be 8 or 16, got {self.output_stride!r}.')
    options = dict(multi_grid=self._multi_grid())
    options.update(self.backbone_options or {})
    net = build_backbone(
      self,
      self.backbone,
      width_divisor=self.width_divisor,
      output_stride=self.output_stride,
      options=options,
      dtype=self.dtype,
    )
    features, endpoints = net(x, train=train)
    endpoints = dict(endpoints)
    rates = tuple(r * 16 // self.output_stride for r in self.aspp_rates)
    y = ASPP(
      features=self._narrow(self.aspp_features),
      rates=rates,
      dropout_rate=self.aspp_dropout,
      dtype=self.dtype,
      name='aspp',
    )(features, train=train)
    endpoints['aspp'] = y
    if self.decoder:
      low = conv_bn_relu(
        endpoints['stride4'],
        self._narrow(self.low_level_features),
        1,
        name='decoder_project',
        train=train,
        dtype=self.dtype,
      )
      y = jnp.concatenate([ops.resize(y, low.shape[1:3]), low], axis=-1)
      for name in ('decoder_conv1', 'decoder_conv2'):
        y = conv_bn_relu(
          y, self._narrow(self.decoder_features), 3, name=name, train=train, dtype=self.dtype
        )
    scores = Conv(self.num_classes, 1, dtype=self.dtype, name='classifier')(y)
    endpoints['scores'] = scores
    return _to_input_size(scores, x), endpoints


deeplab_v1 = register_model('deeplab_v1')(DeepLabV1)
deeplab_v2 = register_model('deeplab_v2')(DeepLabV2)
deeplab_v3 = register_model('deeplab_v3')(functools.partial(DeepLabV3, decoder=False))
deeplab_v3plus = register_model('deeplab_v3plus')(functools.partial(DeepLabV3, decoder=True))
