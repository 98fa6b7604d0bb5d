"""ResNet v1.5 (He et al., 2016; stride on the 3x3 convolution as torchvision), with dilation.

``resnet18`` and ``resnet34`` stack basic blocks (two 3x3 convolutions), ``resnet50`` to
``resnet152`` bottleneck blocks (1x1, 3x3, 1x1 with 4x expansion). Every convolution is
followed by batch norm and has no bias.

``output_stride`` 16 or 8 (DeepLab) replaces the stride 2 of the last one or two stages by a
dilation of the 3x3 convolutions, for basic and bottleneck blocks alike. As in the atrous
algorithm (and torchvision's ``replace_stride_with_dilation``, TF-slim's ``stack_blocks_dense``),
the first block of a dilated stage keeps the previous rate and the later blocks use the doubled
one, so without multi-grid the network computes the same function, sampled densely: the output
stride 8 map subsampled by 4 equals the output stride 32 map. ``multi_grid`` multiplies the
rates of the last stage's blocks (DeepLabv3, Sec. 3.2; the first block's rate as in TF-slim).

Module names follow torchvision (``conv1``, ``bn1``, ``layer1_0/conv1`` for
``layer1.0.conv1``, ``downsample_conv``/``downsample_bn`` for ``downsample.0``/``.1``, ``fc``)
so its checkpoints map one to one (see ``jaxseg.models.weights``).
"""

import functools
from typing import Any, Optional, Sequence, Type

import flax.linen as nn
import jax

from jaxseg import ops
from jaxseg.models.registry import register_model
from jaxseg.nn import BatchNorm, Conv, Dense, MaxPool

_OUTPUT_STRIDES = (8, 16, 32)


class _Block(nn.Module):
  """Fields and layer factories shared by the residual blocks (see their docstrings)."""

  features: int
  stride: int = 1
  dilation: int = 1
  first_dilation: Optional[int] = None
  dtype: Any = None

  def _layers(self, train: bool):
    """Bias-free convolutions and batch norm, as every ResNet layer uses them."""
    conv = functools.partial(Conv, use_bias=False, dtype=self.dtype)
    norm = functools.partial(BatchNorm, use_running_average=not train, dtype=self.dtype)
    return conv, norm


class BasicBlock(_Block):
  """Two 3x3 convolutions and an identity (or 1x1 projection) shortcut; expansion 1.

  Attributes:
    features: output channels.
    stride: stride of the first 3x3 convolution and of the projection.
    dilation: dilation (and padding) of the second 3x3 convolution, which runs at the block's
      output resolution.
    first_dilation: dilation of the first (strided) 3x3 convolution, which reads the block's
      input; None means `dilation`. It differs from `dilation` in the first block of a stage
      whose stride became a dilation.
    dtype: compute dtype.
  """

  expansion = 1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    conv, norm = self._layers(train)
    d0 = self.first_dilation or self.dilation
    d = self.dilation
    y = conv(self.features, 3, stride=self.stride, padding=d0, dilation=d0, name='conv1')(x)
    y = nn.relu(norm(name='bn1')(y))
    y = conv(self.features, 3, padding=d, dilation=d, name='conv2')(y)
    y = norm(name='bn2')(y)
    return nn.relu(y + _shortcut(x, self.features, self.stride, conv, norm))


class Bottleneck(_Block):
  """1x1 reduce, 3x3 (strided, dilated), 1x1 expand (x4), plus shortcut.

  Attributes:
    features: channels of the 3x3 convolution; the block outputs ``4 * features``.
    stride: stride of the 3x3 convolution (v1.5) and of the projection.
    dilation: unused by the bottleneck's 1x1 convolutions; kept for the common block signature.
    first_dilation: dilation (and padding) of the 3x3 convolution, which reads the block's
      input resolution; None means `dilation`.
    dtype: compute dtype.
  """

  expansion = 4

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    conv, norm = self._layers(train)
    out_features = self.features * self.expansion
    d = self.first_dilation or self.dilation
    y = nn.relu(norm(name='bn1')(conv(self.features, 1, name='conv1')(x)))
    y = conv(self.features, 3, stride=self.stride, padding=d, dilation=d, name='conv2')(y)
    y = nn.relu(norm(name='bn2')(y))
    y = norm(name='bn3')(conv(out_features, 1, name='conv3')(y))
    return nn.relu(y + _shortcut(x, out_features, self.stride, conv, norm))


def _shortcut(x, out_features, stride, conv, norm):
  """Identity, or a strided 1x1 convolution + batch norm when the shape changes."""
  if stride == 1 and x.shape[-1] == out_features:
    return x
  x = conv(out_features, 1, stride=stride, name='downsample_conv')(x)
  return norm(name='downsample_bn')(x)


class ResNet(nn.Module):
  """ResNet.

  Attributes:
    stage_sizes: blocks per stage (4 stages).
    block: ``BasicBlock`` or ``Bottleneck``.
    num_classes: classes of the final ``fc`` layer.
    num_filters: channels of the stem and of the first stage's 3x3 convolutions (64); stage
      ``i`` uses ``num_filters * 2**i``.
    output_stride: 32, 16 or 8 (see the module docstring for the rates).
    multi_grid: unit rates of the last stage's blocks, one per block; all ones (any length)
      means none.
    include_top: if False, ``__call__`` returns the last feature map.
    dtype: compute dtype.
  """

  stage_sizes: Sequence[int]
  block: Type[nn.Module]
  num_classes: int = 1000
  num_filters: int = 64
  output_stride: int = 32
  multi_grid: Sequence[int] = (1, 1, 1)
  include_top: bool = True
  dtype: Any = None

  def _check(self, x: jax.Array) -> None:
    if self.output_stride not in _OUTPUT_STRIDES:
      raise ValueError(
        f'ResNet: output_stride must be one of {_OUTPUT_STRIDES}, got {self.output_stride!r}'
      )
    grid = tuple(self.multi_grid)
    if not grid or any(not isinstance(m, int) or m < 1 for m in grid):
      raise ValueError(f'ResNet: multi_grid must be positive ints, got {self.multi_grid!r}')
    if len(grid) != self.stage_sizes[-1] and any(m != 1 for m in grid):
      raise ValueError(
        f'ResNet: multi_grid needs one rate per block of the last stage '
        f'({self.stage_sizes[-1]}), got {self.multi_grid!r}'
      )
    if x.ndim != 4:
      raise ValueError(f'ResNet: x must be an NHWC batch (4-D), got shape {x.shape}')

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """Applies the network.

    Args:
      x: ``(N, H, W, 3)`` images.
      train: batch statistics for batch norm (``mutable=['batch_stats']``).

    Returns:
      ``(output, endpoints)``: logits ``(N, num_classes)`` (the last feature map when
      ``include_top=False``); endpoints ``stride2`` (stem convolution), ``stride4`` ...
      ``stride32`` (the output of stages 1-4, named by nominal stride; at output stride 8 the
      last three have size H/8) and ``features`` (stage 4).
    """
    self._check(x)
    endpoints = {}
    x = Conv(
      self.num_filters, 7, stride=2, padding=3, use_bias=False, dtype=self.dtype, name='conv1'
    )(x)
    x = nn.relu(BatchNorm(use_running_average=not train, dtype=self.dtype, name='bn1')(x))
    endpoints['stride2'] = x
    x = MaxPool(3, stride=2, padding=1, name='maxpool')(x)
    current_stride, dilation = 4, 1
    last = len(self.stage_sizes) - 1
    for stage, num_blocks in enumerate(self.stage_sizes):
      stride = 1 if stage == 0 else 2
      first_block_dilation = dilation
      if current_stride * stride > self.output_stride:
        dilation *= stride
        stride = 1
      else:
        current_stride *= stride
      for index in range(num_blocks):
        unit_rate = 1
        if stage == last and any(m != 1 for m in self.multi_grid):
          unit_rate = self.multi_grid[index]
        input_rate = first_block_dilation if index == 0 else dilation
        x = self.block(
          self.num_filters * 2**stage,
          stride=stride if index == 0 else 1,
          dilation=dilation * unit_rate,
          first_dilation=input_rate * unit_rate,
          dtype=self.dtype,
          name=f'layer{stage + 1}_{index}',
        )(x, train=train)
      endpoints[f'stride{4 * 2**stage}'] = x
    endpoints['features'] = x
    if not self.include_top:
      return x, endpoints
    x = ops.global_avg_pool(x)
    logits = Dense(self.num_classes, dtype=self.dtype, name='fc')(x)
    return logits.astype('float32'), endpoints


resnet18 = register_model('resnet18')(
  functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block=BasicBlock)
)
resnet34 = register_model('resnet34')(
  functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=BasicBlock)
)
resnet50 = register_model('resnet50')(
  functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=Bottleneck)
)
resnet101 = register_model('resnet101')(
  functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), block=Bottleneck)
)
resnet152 = register_model('resnet152')(
  functools.partial(ResNet, stage_sizes=(3, 8, 36, 3), block=Bottleneck)
)
