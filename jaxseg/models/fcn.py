"""Fully convolutional networks (Long, Shelhamer & Darrell, CVPR 2015): FCN-32s, -16s and -8s.

A classifier made convolutional scores every position of a coarse map; learned skips from
pool4 and pool3 refine it; transposed convolutions upsample the scores back to the input:

* FCN-32s: ``score_fr`` upsampled 32x (kernel 64, stride 32).
* FCN-16s: ``score_fr`` upsampled 2x (kernel 4) + ``score_pool4``, then 16x (kernel 32).
* FCN-8s: the FCN-16s fusion upsampled 2x (kernel 4) + ``score_pool3``, then 8x (kernel 16).

On VGG, fc6 is a 7x7 convolution and fc7 a 1x1 one (4096 channels, dropout 0.5). Score layers
start at zero; upsampling kernels start bilinear and are either constant (``learn_upsampling=
False``: no parameter) or learned.

Two ways of aligning the maps:

* default: the input is padded (bottom/right, zeros = the normalised mean) to a multiple of 32,
  so every map is an exact fraction of it; fc6 is padded 'SAME' and each transposed
  convolution (kernel ``2f``, stride ``f``, padding ``f/2``) multiplies the size by exactly
  ``f`` with pixel centres aligned; the output is cropped back to the input size.
* ``caffe_compat=True``: the reference Caffe nets: conv1_1 padded by 100, ceil-mode pooling,
  fc6 unpadded, unpadded transposed convolutions and Caffe's ``Crop`` offsets (32s: 19;
  16s: 5 and 27; 8s: 5, 9 and 31), so pretrained Caffe weights give the published outputs.

Other backbones (``resnet*``) score their ``stride32`` / ``stride16`` / ``stride8`` endpoints
directly (no fc6/fc7).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg import ops
from jaxseg.models.registry import get_model, register_model
from jaxseg.nn import Conv, ConvTranspose, Dropout, initializers

# Caffe Crop offsets of the reference nets (after conv1_1's padding of 100).
CAFFE_OFFSETS = {
  32: {'upscore': 19},
  16: {'score_pool4': 5, 'upscore16': 27},
  8: {'score_pool4': 5, 'score_pool3': 9, 'upscore8': 31},
}
_VARIANTS = (32, 16, 8)
# FCN-8s "at-once": skips scaled down so that all streams can be learned together.
AT_ONCE_SCALES = {'pool4': 0.01, 'pool3': 1e-4}


def build_backbone(
  parent: nn.Module,
  name: str,
  *,
  width_divisor: int = 1,
  output_stride: int = 32,
  options: Mapping[str, Any] | None = None,
  dtype: Any = None,
  module_name: str = 'backbone',
) -> nn.Module:
  """A registered classification network as a segmentation backbone (``include_top=False``).

  Call it inside a compact ``__call__`` with ``parent=self``: the backbone becomes the
  submodule ``module_name`` of ``parent`` (its parameters live under that name).

  Args:
    parent: the module that owns the backbone.
    name: registry name, e.g. ``'vgg16'`` or ``'resnet101'``.
    width_divisor: divide every channel count by this (VGG ``stage_features``, ResNet
      ``num_filters``): narrow networks for tests and CPU demos.
    output_stride: 8, 16 or 32.
    options: further keyword options of the backbone (e.g. ``multi_grid``, ``ceil_mode``).
    dtype: compute dtype.
    module_name: the submodule's name.

  Returns:
    The backbone module; calling it returns ``(features, endpoints)``.
  """
  if not isinstance(width_divisor, int) or width_divisor < 1:
    raise ValueError(f'width_divisor must be a positive int, got {width_divisor!r}.')
  options = dict(options or {})
  if width_divisor > 1:
    probe = get_model(name, parent=None)  # read the default widths without binding a child
    if hasattr(probe, 'stage_features') and 'stage_features' not in options:
      options['stage_features'] = tuple(
        tuple(max(1, c // width_divisor) for c in stage) for stage in probe.stage_features
      )
    elif hasattr(probe, 'num_filters') and 'num_filters' not in options:
      options['num_filters'] = max(1, probe.num_filters // width_divisor)
    else:
      raise ValueError(f'width_divisor is not supported for backbone {name!r}.')
  module = get_model(
    name, include_top=False, output_stride=output_stride, dtype=dtype, parent=None, **options
  )
  return module.clone(parent=parent, name=module_name)


def check_input(x: Any, owner: str) -> None:
  """Raises ValueError unless ``x`` is an NHWC batch; ``owner`` names the model in the message."""
  if getattr(x, 'ndim', None) != 4:
    raise ValueError(
      f'{owner}: x must be an NHWC batch (N, H, W, 3), got shape {getattr(x, "shape", None)}.'
    )


def check_num_classes(num_classes: Any, owner: str) -> None:
  """Raises ValueError unless ``num_classes`` is a positive int (bools excluded)."""
  if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
    raise ValueError(f'{owner}: num_classes must be a positive int, got {num_classes!r}.')


def _is_vgg(backbone: nn.Module) -> bool:
  return hasattr(backbone, 'stage_features')


def _pad_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
  height, width = x.shape[1:3]
  pad_h, pad_w = -height % multiple, -width % multiple
  if pad_h == 0 and pad_w == 0:
    return x
  return jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))


class FCN(nn.Module):
  """FCN-32s, -16s or -8s.

  Attributes:
    num_classes: classes scored per pixel (21 for PASCAL VOC).
    variant: 32, 16 or 8: the finest skip used.
    backbone: registry name of the backbone (``'vgg16'``; ``'resnet50'`` etc. also work).
    backbone_options: extra keyword options of the backbone.
    width_divisor: divide every channel count (backbone and fc6/fc7) by this.
    fc_features: width of fc6 and fc7 on VGG backbones (4096).
    dropout_rate: dropout after fc6 and fc7.
    learn_upsampling: learn the transposed-convolution kernels (bilinear start); False keeps
      them constant bilinear with no parameter.
    caffe_compat: reproduce the reference Caffe nets' padding of 100 and crop offsets (VGG).
    at_once: scale pool4 by 0.01 and pool3 by 1e-4 before scoring them (FCN-8s at-once).
    dtype: compute dtype (parameters stay float32).

  Example:
    >>> model = FCN(num_classes=21, variant=8)   # also get_model('fcn8s')
    >>> x = jnp.zeros((1, 97, 131, 3))            # any size in, the same size out
    >>> (logits, _), _ = jax.eval_shape(model.init_with_output, jax.random.key(0), x)
    >>> logits.shape
    (1, 97, 131, 21)
  """

  num_classes: int = 21
  variant: int = 32
  backbone: str = 'vgg16'
  backbone_options: Any = None
  width_divisor: int = 1
  fc_features: int = 4096
  dropout_rate: float = 0.5
  learn_upsampling: bool = False
  caffe_compat: bool = False
  at_once: bool = False
  dtype: Any = None

  def _check(self, x: jax.Array) -> None:
    if self.variant not in _VARIANTS:
      raise ValueError(f'FCN: variant must be one of {_VARIANTS}, got {self.variant!r}.')
    check_num_classes(self.num_classes, 'FCN')
    if self.caffe_compat and not self.backbone.startswith('vgg'):
      raise ValueError(f'FCN: caffe_compat needs a VGG backbone, got {self.backbone!r}.')
    check_input(x, 'FCN')

  def _upsample(self, x: jax.Array, factor: int, name: str) -> jax.Array:
    """Bilinear-initialised transposed convolution by ``factor`` (kernel ``2 factor``)."""
    padding = 0 if self.caffe_compat else factor // 2
    return ConvTranspose(
      self.num_classes,
      2 * factor,
      stride=factor,
      padding=padding,
      kernel_init='bilinear',
      frozen=not self.learn_upsampling,
      use_bias=False,
      dtype=self.dtype,
      name=name,
    )(x)

  def _score(self, x: jax.Array, name: str, scale: float = 1.0) -> jax.Array:
    if scale != 1.0:
      x = x * scale
    return Conv(self.num_classes, 1, kernel_init=initializers.zeros, dtype=self.dtype, name=name)(x)

  def _align(self, x: jax.Array, reference: jax.Array, layer: str) -> jax.Array:
    """Caffe: crop at the reference net's offset. Default: maps already agree."""
    if self.caffe_compat:
      offset = CAFFE_OFFSETS[self.variant][layer]
      return ops.crop_like(x, reference, offset=(offset, offset))
    return x

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """Scores every pixel.

    Args:
      x: ``(N, H, W, 3)`` normalised images, any ``H, W`` (at least 1).
      train: dropout on, batch statistics for batch-norm backbones.

    Returns:
      ``(logits, endpoints)``: ``(N, H, W, num_classes)`` float32 logits and the backbone's
      endpoints plus ``score_fr`` (and ``fuse_pool4``, ``fuse_pool3`` for 16s/8s).
    """
    self._check(x)
    height, width = x.shape[1:3]
    options = dict(self.backbone_options or {})
    if self.caffe_compat:
      options.update(first_conv_padding=100, ceil_mode=True)
    net = build_backbone(
      self,
      self.backbone,
      width_divisor=self.width_divisor,
      output_stride=32,
      options=options,
      dtype=self.dtype,
    )
    inputs = x if self.caffe_compat else _pad_to_multiple(x, 32)
    features, endpoints = net(inputs, train=train)
    endpoints = dict(endpoints)
    if _is_vgg(net):
      fc_width = max(1, self.fc_features // self.width_divisor)
      y = Conv(fc_width, 7, padding=0 if self.caffe_compat else 3, dtype=self.dtype, name='fc6')(
        features
      )
      y = Dropout(self.dropout_rate, deterministic=not train)(nn.relu(y))
      y = Conv(fc_width, 1, dtype=self.dtype, name='fc7')(y)
      y = Dropout(self.dropout_rate, deterministic=not train)(nn.relu(y))
      pool4, pool3 = endpoints['pool4'], endpoints['pool3']
    else:
      y = features
      pool4, pool3 = endpoints['stride16'], endpoints['stride8']
    score = self._score(y, 'score_fr')
    endpoints['score_fr'] = score
    if self.variant == 32:
      score = self._upsample(score, 32, 'upscore')
      final_layer = 'upscore'
    else:
      score = self._upsample(score, 2, 'upscore2')
      skip = self._score(pool4, 'score_pool4', AT_ONCE_SCALES['pool4'] if self.at_once else 1.0)
      score = score + self._align(skip, score, 'score_pool4')
      endpoints['fuse_pool4'] = score
      if self.variant == 16:
        score = self._upsample(score, 16, 'upscore16')
        final_layer = 'upscore16'
      else:
        score = self._upsample(score, 2, 'upscore_pool4')
        skip = self._score(pool3, 'score_pool3', AT_ONCE_SCALES['pool3'] if self.at_once else 1.0)
        score = score + self._align(skip, score, 'score_pool3')
        endpoints['fuse_pool3'] = score
        score = self._upsample(score, 8, 'upscore8')
        final_layer = 'upscore8'
    if self.caffe_compat:
      score = self._align(score, x, final_layer)
    else:
      score = score[:, :height, :width]
    return score.astype(jnp.float32), endpoints


fcn32s = register_model('fcn32s')(functools.partial(FCN, variant=32))
fcn16s = register_model('fcn16s')(functools.partial(FCN, variant=16))
fcn8s = register_model('fcn8s')(functools.partial(FCN, variant=8))
