"""VGG (Simonyan & Zisserman, 2015), configurations A, B, D and E, with and without batch norm.

Stacks of ``3 x 3`` convolutions (padding 1, ReLU) separated by ``2 x 2`` max pooling, then the
fully connected head fc6-fc7-fc8 of :func:`jaxseg.models.convolutionalize.classifier_head`.
The options the segmentation networks need are here too: FCN's ``first_conv_padding=100`` and
Caffe ``ceil_mode`` pooling, and DeepLab's ``output_stride`` 8 or 16 (the pools after that
stride keep the resolution and the convolutions after them are dilated).

Module names follow Caffe (``conv1_1`` ... ``conv5_3``, ``fc6`` ... ``fc8``); batch-norm
variants add ``bn1_1`` ... after each convolution.
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax

from jaxseg.models.convolutionalize import classifier_head
from jaxseg.models.registry import register_model
from jaxseg.nn import BatchNorm, Conv, MaxPool

# Output channels of the convolutions of each of the five stages.
VGG11_STAGES = ((64,), (128,), (256, 256), (512, 512), (512, 512))
VGG13_STAGES = ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512))
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG19_STAGES = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)

_OUTPUT_STRIDES = (8, 16, 32)


class VGG(nn.Module):
  """VGG network.

  Attributes:
    stage_features: output channels of each convolution, one tuple per stage (5 stages).
    num_classes: classes of fc8.
    batch_norm: a batch norm after each convolution (torchvision's ``vgg*_bn``).
    output_stride: 32, 16 or 8. Pools whose nominal stride would exceed it become ``3 x 3``
      stride-1 pad-1 max pools (DeepLab's choice, which keeps the size) and every later
      convolution, the convolutional fc6 included, is dilated by the stride skipped so far.
    first_conv_padding: padding of conv1_1 (FCN's Caffe models use 100).
    pool_window, pool_stride, pool_padding, ceil_mode: the stride-2 max pools.
    include_top: if False, ``__call__`` returns the pool5 map instead of logits.
    dropout_rate: dropout after fc6 and fc7.
    fc_features: width of fc6 and fc7.
    convolutional: run the head as convolutions (see ``convolutionalize``).
    dtype: compute dtype (parameters stay float32).
  """

  stage_features: Sequence[Sequence[int]]
  num_classes: int = 1000
  batch_norm: bool = False
  output_stride: int = 32
  first_conv_padding: int = 1
  pool_window: int = 2
  pool_stride: int = 2
  pool_padding: int = 0
  ceil_mode: bool = False
  include_top: bool = True
  dropout_rate: float = 0.5
  fc_features: int = 4096
  convolutional: bool = False
  dtype: Any = None

  head_window = 7  # fc6 reads a 7 x 7 map (after adaptive pooling in the dense form)

  def _check(self, x: jax.Array) -> None:
    if self.output_stride not in _OUTPUT_STRIDES:
      raise ValueError(
        f'VGG: output_stride must be one of {_OUTPUT_STRIDES}, got {self.output_stride!r}'
      )
    if len(self.stage_features) != 5:
      raise ValueError(f'VGG: stage_features must have 5 stages, got {self.stage_features!r}')
    if x.ndim != 4:
      raise ValueError(f'VGG: x must be an NHWC batch (4-D), got shape {x.shape}')

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """Applies the network.

    Args:
      x: ``(N, H, W, 3)`` images.
      train: batch statistics for batch norm, dropout on.

    Returns:
      ``(output, endpoints)``: ``output`` is ``(N, num_classes)`` logits, the
      ``(N, h, w, num_classes)`` score map when ``convolutional``, or the pool5 map when
      ``include_top=False``. ``endpoints`` holds ``stride2`` ... ``stride32`` (the output of
      each pool, named by its nominal stride), ``pool3``, ``pool4``, ``pool5``, ``features``
      (pool5).
    """
    self._check(x)
    endpoints = {}
    stride, dilation = 1, 1
    for stage, features in enumerate(self.stage_features, start=1):
      for index, width in enumerate(features, start=1):
        padding = self.first_conv_padding if (stage, index) == (1, 1) else dilation
        x = Conv(
          width,
          3,
          padding=padding,
          dilation=dilation,
          dtype=self.dtype,
          name=f'conv{stage}_{index}',
        )(x)
        if self.batch_norm:
          x = BatchNorm(use_running_average=not train, dtype=self.dtype, name=f'bn{stage}_{index}')(
            x
          )
        x = nn.relu(x)
      if stride * 2 <= self.output_stride:
        stride *= 2
        x = MaxPool(
          self.pool_window,
          stride=self.pool_stride,
          padding=self.pool_padding,
          ceil_mode=self.ceil_mode,
          name=f'pool{stage}',
        )(x)
      else:
        dilation *= 2
        x = MaxPool(3, stride=1, padding=1, name=f'pool{stage}')(x)
      endpoints[f'stride{2**stage}'] = x
      if stage >= 3:
        endpoints[f'pool{stage}'] = x
    endpoints['features'] = x
    if not self.include_top:
      return x, endpoints
    logits = classifier_head(
      x,
      window=self.head_window,
      fc_features=self.fc_features,
      num_classes=self.num_classes,
      dropout_rate=self.dropout_rate,
      convolutional=self.convolutional,
      dilation=dilation,
      train=train,
      dtype=self.dtype,
    )
    return logits.astype('float32'), endpoints


vgg11 = register_model('vgg11')(functools.partial(VGG, stage_features=VGG11_STAGES))
vgg13 = register_model('vgg13')(functools.partial(VGG, stage_features=VGG13_STAGES))
vgg16 = register_model('vgg16')(functools.partial(VGG, stage_features=VGG16_STAGES))
vgg19 = register_model('vgg19')(functools.partial(VGG, stage_features=VGG19_STAGES))
vgg11_bn = register_model('vgg11_bn')(functools.partial(vgg11, batch_norm=True))
vgg13_bn = register_model('vgg13_bn')(functools.partial(vgg13, batch_norm=True))
vgg16_bn = register_model('vgg16_bn')(functools.partial(vgg16, batch_norm=True))
vgg19_bn = register_model('vgg19_bn')(functools.partial(vgg19, batch_norm=True))
