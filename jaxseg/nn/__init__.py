"""Flax Linen layers that own parameters and call `jaxseg.ops`.

Activations NHWC, kernels HWIO `(kh, kw, in, out)` named `kernel`, biases `bias`; parameters are
stored in float32 and cast to the compute `dtype` inside each layer.
"""

from jaxseg.nn import initializers
from jaxseg.nn.conv import AtrousConv, Conv, ConvTranspose
from jaxseg.nn.dense import Dense
from jaxseg.nn.initializers import (
  bilinear,
  constant,
  he_normal,
  he_uniform,
  lecun_normal,
  normal,
  zeros,
)
from jaxseg.nn.normalization import BatchNorm, Dropout, LocalResponseNorm
from jaxseg.nn.pooling import AvgPool, MaxPool

__all__ = [
  'AtrousConv',
  'AvgPool',
  'BatchNorm',
  'Conv',
  'ConvTranspose',
  'Dense',
  'Dropout',
  'LocalResponseNorm',
  'MaxPool',
  'bilinear',
  'constant',
  'he_normal',
  'he_uniform',
  'initializers',
  'lecun_normal',
  'normal',
  'zeros',
]
