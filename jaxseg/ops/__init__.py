"""Pure convolution, pooling, normalization and resizing ops over `jax.lax`, and a ReLU.

Activations are NHWC, kernels HWIO `(kh, kw, in, out)`, options keyword-only. Every op names the
implementation it agrees with (PyTorch's functional op of the same name, Caffe for ceil-mode
pooling, LRN and Deconvolution) and is tested against it and against naive NumPy loops.
"""

from jaxseg.ops.activations import relu
from jaxseg.ops.conv import atrous_conv2d, conv2d, conv_transpose2d
from jaxseg.ops.density import fixation_density, mit_gaussian_sigma
from jaxseg.ops.normalization import local_response_norm
from jaxseg.ops.pooling import (
  adaptive_avg_pool,
  avg_pool,
  global_avg_pool,
  global_max_pool,
  max_pool,
)
from jaxseg.ops.reference import conv2d_as_matrix, conv2d_vjp
from jaxseg.ops.resize import bilinear_kernel, center_crop, crop_like, resize

__all__ = [
  'adaptive_avg_pool',
  'atrous_conv2d',
  'avg_pool',
  'bilinear_kernel',
  'center_crop',
  'conv2d',
  'conv2d_as_matrix',
  'conv2d_vjp',
  'conv_transpose2d',
  'crop_like',
  'fixation_density',
  'global_avg_pool',
  'global_max_pool',
  'local_response_norm',
  'max_pool',
  'mit_gaussian_sigma',
  'relu',
  'resize',
]
