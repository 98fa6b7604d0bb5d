"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), as in the lecture's table, and torchvision's.

The lecture's network (``alexnet``), input ``227 x 227 x 3``:

=========  ============================================  ==============
layer      operation                                      output
=========  ============================================  ==============
conv1      96 x 11x11, stride 4, pad 0                   55 x 55 x 96
pool1      max 3x3, stride 2                             27 x 27 x 96
norm1      local response normalisation                  27 x 27 x 96
conv2      256 x 5x5, pad 2                              27 x 27 x 256
pool2      max 3x3, stride 2                             13 x 13 x 256
norm2      local response normalisation                  13 x 13 x 256
conv3      384 x 3x3, pad 1                              13 x 13 x 384
conv4      384 x 3x3, pad 1                              13 x 13 x 384
conv5      256 x 3x3, pad 1                              13 x 13 x 256
pool5      max 3x3, stride 2                             6 x 6 x 256
fc6, fc7   4096, ReLU, dropout 0.5                       4096
fc8        1000                                          1000
=========  ============================================  ==============

``groups=2`` splits conv2, conv4 and conv5 into the paper's two GPU streams (each reads only
half of its input channels). The normalisation is the paper's (Sec. 3.3),
``b = a / (k + alpha * sum_window a^2)^beta`` with ``k=2, n=5, alpha=1e-4, beta=0.75``; jaxseg's
LRN divides alpha by n (as Caffe and PyTorch), so it is given ``alpha = n * 1e-4``.

``torchvision_compatible=True`` builds ``torchvision.models.alexnet`` instead (64-192-384-256-256
channels, conv1 padding 2, no normalisation, input 224) for weight import.
"""

import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax

from jaxseg.models.convolutionalize import classifier_head
from jaxseg.models.registry import register_model
from jaxseg.nn import Conv, LocalResponseNorm, MaxPool

LECTURE_FEATURES = (96, 256, 384, 384, 256)
TORCHVISION_FEATURES = (64, 192, 384, 256, 256)


class AlexNet(nn.Module):
  """AlexNet.

  Attributes:
    num_classes: classes of fc8.
    groups: 1 (single stream) or 2 (conv2, conv4 and conv5 split in two groups).
    torchvision_compatible: torchvision's layout (see the module docstring).
    conv_features: channels of conv1..conv5; None picks the variant's.
    fc_features: width of fc6 and fc7.
    dropout_rate: dropout after fc6 and fc7.
    include_top: if False, ``__call__`` returns the pool5 map.
    convolutional: run the head as convolutions (fc6 a 6x6 convolution).
    dtype: compute dtype.
  """

  num_classes: int = 1000
  groups: int = 1
  torchvision_compatible: bool = False
  conv_features: Optional[Sequence[int]] = None
  fc_features: int = 4096
  dropout_rate: float = 0.5
  include_top: bool = True
  convolutional: bool = False
  dtype: Any = None

  head_window = 6  # fc6 reads a 6 x 6 map

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """Applies the network.

    Args:
      x: ``(N, 227, 227, 3)`` images (``224`` for the torchvision variant).
      train: dropout on.

    Returns:
      ``(output, endpoints)``: logits ``(N, num_classes)`` (a score map when
      ``convolutional``, the pool5 map when ``include_top=False``); endpoints ``stride4``
      (conv1), ``stride8`` (norm1), ``stride16`` (norm2), ``stride32`` (pool5) and
      ``features`` (pool5).
    """
    if self.groups not in (1, 2):
      raise ValueError(f'AlexNet: groups must be 1 or 2, got {self.groups!r}')
    if x.ndim != 4:
      raise ValueError(f'AlexNet: x must be an NHWC batch (4-D), got shape {x.shape}')
    tv = self.torchvision_compatible
    widths = self.conv_features or (TORCHVISION_FEATURES if tv else LECTURE_FEATURES)
    if len(widths) != 5:
      raise ValueError(f'AlexNet: conv_features must have 5 entries, got {widths!r}')
    conv = functools.partial(Conv, dtype=self.dtype)
    pool = functools.partial(MaxPool, 3, stride=2)
    # The paper's alpha=1e-4 multiplies the plain sum; jaxseg's LRN divides alpha by size.
    norm = functools.partial(LocalResponseNorm, size=5, alpha=5 * 1e-4, beta=0.75, k=2.0)
    endpoints = {}

    x = nn.relu(conv(widths[0], 11, stride=4, padding=2 if tv else 0, name='conv1')(x))
    endpoints['stride4'] = x
    x = pool(name='pool1')(x)
    if not tv:
      x = norm(name='norm1')(x)
    endpoints['stride8'] = x
    x = nn.relu(conv(widths[1], 5, padding=2, groups=self.groups, name='conv2')(x))
    x = pool(name='pool2')(x)
    if not tv:
      x = norm(name='norm2')(x)
    endpoints['stride16'] = x
    x = nn.relu(conv(widths[2], 3, padding=1, name='conv3')(x))
    x = nn.relu(conv(widths[3], 3, padding=1, groups=self.groups, name='conv4')(x))
    x = nn.relu(conv(widths[4], 3, padding=1, groups=self.groups, name='conv5')(x))
    x = pool(name='pool5')(x)
    endpoints['stride32'] = endpoints['features'] = x
    if not self.include_top:
      return x, endpoints
    logits = classifier_head(
      x,
      window=self.head_window,
      fc_features=self.fc_features,
      num_classes=self.num_classes,
      dropout_rate=self.dropout_rate,
      convolutional=self.convolutional,
      dilation=1,
      train=train,
      dtype=self.dtype,
    )
    return logits.astype('float32'), endpoints


alexnet = register_model('alexnet')(AlexNet)
alexnet_torchvision = register_model('alexnet_torchvision')(
  functools.partial(AlexNet, torchvision_compatible=True)
)
