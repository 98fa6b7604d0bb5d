"""Saliency prediction networks (Pan et al., "Shallow and Deep Convolutional Networks for
Saliency Prediction", CVPR 2016) and a centre-bias baseline.

Both networks regress a saliency map from an image: the lecture's example of a convnet for
regression. Activations NHWC, kernels HWIO. Each ``__call__`` returns ``(map, endpoints)`` with
``map`` of shape ``(N, H', W', 1)``.

Deep ConvNet (``salnet_deep``), as the authors' Caffe deploy prototxt defines it, input
``240 x 320 x 3``:

=========  ==========================================  ==============  ===========
layer      operation                                   output          parameters
=========  ==========================================  ==============  ===========
conv1      96 x 7x7, pad 3, ReLU                       240x320x96           14,208
norm1      LRN size 5, alpha 1e-4, beta 0.75           240x320x96                0
pool1      max 3x3, stride 2, Caffe ceil               120x160x96                0
conv2      256 x 5x5, pad 2, ReLU                      120x160x256         614,656
pool2      max 3x3, stride 2, Caffe ceil               60x80x256                 0
conv3      512 x 3x3, pad 1, ReLU                      60x80x512         1,180,160
conv4      512 x 5x5, pad 2, ReLU                      60x80x512         6,554,112
conv5      512 x 5x5, pad 2, ReLU                      60x80x512         6,554,112
conv6      256 x 7x7, pad 3, ReLU                      60x80x256         6,422,784
conv7      128 x 11x11, pad 5, ReLU                    60x80x128         3,965,056
conv8      32 x 11x11, pad 5, ReLU                     60x80x32            495,648
conv9      1 x 13x13, pad 6 (no ReLU)                  60x80x1               5,409
deconv1    1 x 8x8 transposed, stride 4, pad 2, no     240x320x1                64
           bias
=========  ==========================================  ==============  ===========

25,806,209 parameters, 98.44 MiB of float32 (the lecture's "Deep: Parameters 98.44 MB"). conv1
to conv3 have VGG-CNN-M's shapes and can start from its weights (:func:`load_vgg_cnn_m`).

Shallow ConvNet (``salnet_shallow``), as the paper's figure draws it, input ``96 x 96 x 3``:

=========  ==========================================  ==============  ===========
conv1      32 x 5x5, ReLU                              92x92x32              2,432
pool1      max 2x2, stride 2                           46x46x32                  0
conv2      64 x 3x3, ReLU                              44x44x64             18,496
pool2      max 3x3, stride 2, Caffe ceil               22x22x64                  0
conv3      128 x 3x3, ReLU                             20x20x128            73,856
pool3      max 3x3, stride 2, Caffe ceil               10x10x128                 0
fc1        4608, ReLU                                  4608             58,987,008
maxout     max over 2 pieces                           2304                      0
fc2        2304, reshaped to 48 x 48                   48x48x1           5,310,720
=========  ==========================================  ==============  ===========

64,392,512 parameters, 245.64 MiB of float32. The lecture's table prints 244.64 MB; no rounding
convention (MB or MiB) and no choice of floor or ceil pooling reproduces that figure (floor
pooling gives 9 x 9 x 128 before fc1 and 53,185,856 parameters, 202.89 MiB; decimal megabytes
give 257.57 MB), so we read it as a
typo for 245.64 and implement the paper's layers with Caffe's ceil pooling, which give exactly
245.64 MiB. The authors trained it in Lasagne, whose layers default to ReLU: the convolutions and
fc1 use ReLU, the maxout follows fc1, and fc2 is linear (a regression output), as in their
released ``shallow/train.py`` (imatge-upc/saliency-2016-cvpr). That script differs from the
figure in two places (2 x 2 pooling after conv2 and conv3, 64 filters in conv3); we follow the
figure, which the issue and the lecture's table describe.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import ops
from jaxseg.models.registry import register_model
from jaxseg.nn import Conv, ConvTranspose, Dense, Dropout, LocalResponseNorm, MaxPool

__all__ = [
  'SalNetDeep',
  'SalNetShallow',
  'CenterBias',
  'Maxout',
  'load_vgg_cnn_m',
  'salnet_deep',
  'salnet_shallow',
  'center_bias',
]

DEEP_INPUT_SHAPE = (240, 320, 3)
SHALLOW_INPUT_SHAPE = (96, 96, 3)


class Maxout(nn.Module):
  """Maxout over groups of ``pieces`` consecutive features: ``y_j = max_p x_{j * pieces + p}``.

  Attributes:
    pieces: features per group; the last axis must be divisible by it.

  Example:
    >>> Maxout(pieces=2).apply({}, jnp.array([[1., 3., -2., -5.]]))
    Array([[ 3., -2.]], dtype=float32)
  """

  _: dataclasses.KW_ONLY
  pieces: int = 2

  def __call__(self, x: jax.Array) -> jax.Array:
    """Reduces the last axis ``F`` of ``x`` to ``F // pieces``."""
    features = x.shape[-1]
    if features % self.pieces:
      raise ValueError(
        f'Maxout: the last axis ({features}) must be divisible by pieces={self.pieces}.'
      )
    return jnp.max(x.reshape(x.shape[:-1] + (features // self.pieces, self.pieces)), axis=-1)


class SalNetDeep(nn.Module):
  """The deep saliency ConvNet (see the module docstring for the layer table).

  Attributes:
    features: channels of conv1..conv8 (conv9 has one); the paper's by default.
    pretrained: a VGG-CNN-M ``.npz``/``.safetensors`` file (see :func:`load_vgg_cnn_m`) whose
      conv1..conv3 initialise those layers; ``''``: random initialisation.
    pretrained_bgr_to_rgb: reverse conv1's input channels of the file (True when the data is
      RGB; False with the data pipeline's ``normalization='caffe_bgr'``, which feeds BGR).
    dtype: compute dtype (parameters stay float32).

  Example:
    >>> model = SalNetDeep()
    >>> shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 240, 320, 3)))
    >>> sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(shapes))
    np.int64(25806209)
  """

  features: Sequence[int] = (96, 256, 512, 512, 512, 256, 128, 32)
  pretrained: str = ''
  pretrained_bgr_to_rgb: bool = True
  dtype: Any = None

  kernel_sizes = (7, 5, 3, 5, 5, 7, 11, 11)

  def _initializers(self, index: int) -> dict[str, Any]:
    """Kernel and bias initialisers: He by default, the file's arrays for conv1..3 if given."""
    if not self.pretrained or index >= len(_VGG_CNN_M_LAYERS):
      return {}
    kernel, bias = _vgg_cnn_m_layer(
      self.pretrained,
      _VGG_CNN_M_LAYERS[index],
      (self.kernel_sizes[index],) * 2
      + ((3,) if index == 0 else (self.features[index - 1],))
      + (self.features[index],),
      bgr_to_rgb=self.pretrained_bgr_to_rgb,
    )
    return {
      'kernel_init': lambda key, shape, dtype=jnp.float32: jnp.asarray(kernel, dtype),
      'bias_init': lambda key, shape, dtype=jnp.float32: jnp.asarray(bias, dtype),
    }

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """Applies the network.

    Args:
      x: ``(N, H, W, 3)`` images, ``240 x 320`` in the paper.
      train: unused (no dropout or batch norm); kept for the common model signature.

    Returns:
      ``(map, endpoints)``: ``map`` ``(N, H, W, 1)`` at the input size whatever it is (the
      deconvolution's output, ``endpoints['deconv']``, is bilinearly resized to it when a side
      is not divisible by 4); endpoints ``stride2`` (pool1), ``stride4`` (pool2), ``features``
      (conv8), ``coarse`` (conv9, before upsampling) and ``deconv``.
    """
    del train
    inputs = x
    if len(self.features) != 8:
      raise ValueError(f'features must list 8 channel counts (conv1..conv8), got {self.features}.')
    endpoints = {}
    conv = lambda i: Conv(
      self.features[i],
      self.kernel_sizes[i],  # noqa: E731
      padding=self.kernel_sizes[i] // 2,
      dtype=self.dtype,
      name=f'conv{i + 1}',
      **self._initializers(i),
    )
    x = nn.relu(conv(0)(x))
    x = LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, name='norm1')(x)
    x = MaxPool(3, stride=2, ceil_mode=True, name='pool1')(x)
    endpoints['stride2'] = x
    x = nn.relu(conv(1)(x))
    x = MaxPool(3, stride=2, ceil_mode=True, name='pool2')(x)
    endpoints['stride4'] = x
    for i in range(2, 8):
      x = nn.relu(conv(i)(x))
    endpoints['features'] = x
    x = Conv(1, 13, padding=6, dtype=self.dtype, name='conv9')(x)
    endpoints['coarse'] = x
    y = ConvTranspose(1, 8, stride=4, padding=2, use_bias=False, dtype=self.dtype, name='deconv1')(
      x
    )
    endpoints['deconv'] = y
    if y.shape[1:3] != inputs.shape[1:3]:
      # Sides not divisible by 4 lose pixels to the ceil-mode pools and the stride-4
      # deconvolution (500 x 334 -> 500 x 332): resample to the promised input size.
      y = ops.resize(y, inputs.shape[1:3])
    return y, endpoints


class SalNetShallow(nn.Module):
  """The shallow saliency ConvNet (see the module docstring for the layer table).

  The fully connected layers size themselves from the input, so a narrower or smaller variant
  (for tests and the synthetic experiment) only changes the attributes.

  Attributes:
    features: channels of conv1..conv3.
    hidden: width of fc1 before the maxout (the maxout halves it).
    maxout_pieces: pieces per maxout group.
    fc1_relu: ReLU on fc1 before the maxout (Lasagne's default nonlinearity, as the authors ran).
    output_shape: ``(h, w)`` of the map; fc2 has ``h * w`` units.
    dropout_rate: dropout before fc1 and fc2 (0: none, the default).
    dtype: compute dtype.

  Example:
    >>> model = SalNetShallow()
    >>> shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 96, 96, 3)))
    >>> sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(shapes))
    np.int64(64392512)
  """

  features: Sequence[int] = (32, 64, 128)
  hidden: int = 4608
  maxout_pieces: int = 2
  fc1_relu: bool = True
  output_shape: Sequence[int] = (48, 48)
  dropout_rate: float = 0.0
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """Applies the network.

    Args:
      x: ``(N, H, W, 3)`` images, ``96 x 96`` in the paper.
      train: dropout on (if ``dropout_rate > 0``; needs the ``'dropout'`` rng).

    Returns:
      ``(map, endpoints)``: ``map`` ``(N, h, w, 1)`` with ``(h, w) = output_shape``; endpoints
      ``features`` (pool3) and ``hidden`` (after the maxout).
    """
    if len(self.features) != 3:
      raise ValueError(f'features must list 3 channel counts (conv1..conv3), got {self.features}.')
    if self.hidden % self.maxout_pieces:
      raise ValueError(
        f'hidden={self.hidden} must be divisible by maxout_pieces={self.maxout_pieces}.'
      )
    h, w = (int(v) for v in self.output_shape)
    endpoints = {}
    x = nn.relu(Conv(self.features[0], 5, dtype=self.dtype, name='conv1')(x))
    x = MaxPool(2, stride=2, name='pool1')(x)
    x = nn.relu(Conv(self.features[1], 3, dtype=self.dtype, name='conv2')(x))
    x = MaxPool(3, stride=2, ceil_mode=True, name='pool2')(x)
    x = nn.relu(Conv(self.features[2], 3, dtype=self.dtype, name='conv3')(x))
    x = MaxPool(3, stride=2, ceil_mode=True, name='pool3')(x)
    endpoints['features'] = x
    x = x.reshape(x.shape[0], -1)
    x = Dropout(self.dropout_rate, deterministic=not train, name='dropout1')(x)
    x = Dense(self.hidden, dtype=self.dtype, name='fc1')(x)
    x = nn.relu(x) if self.fc1_relu else x
    x = Maxout(pieces=self.maxout_pieces, name='maxout')(x)
    endpoints['hidden'] = x
    x = Dropout(self.dropout_rate, deterministic=not train, name='dropout2')(x)
    x = Dense(h * w, dtype=self.dtype, name='fc2')(x)
    return x.reshape(x.shape[0], h, w, 1), endpoints


class CenterBias(nn.Module):
  """A centre-bias baseline: the same Gaussian for every image, with a learnable width.

  ``S(y, x) = exp(-((y - c_y)^2 / (2 (s_y H)^2) + (x - c_x)^2 / (2 (s_x W)^2)))`` at pixel
  centres, with ``(c_y, c_x)`` the image centre: a Gaussian stretched to the image's aspect
  ratio, as the MIT benchmark's centre baseline. Fixations in free viewing gather near the centre,
  so this baseline scores well on every metric except shuffled AUC (which is ~0.5 by design).
  The widths ``(s_y, s_x)`` are the only parameters (``log_sigma``, initialised from ``sigma``), so
  the baseline can also be fitted to a dataset by the training engine.

  Attributes:
    sigma: initial ``(s_y, s_x)`` as fractions of the height and width.
    output_shape: ``(h, w)`` of the map; ``None``: the input's.
    dtype: accepted for the common model signature; the map is float32.

  Example:
    >>> model = CenterBias()
    >>> m, _ = model.apply(model.init(jax.random.key(0), jnp.zeros((1, 5, 7, 3))),
    ...                    jnp.zeros((2, 5, 7, 3)))
    >>> m.shape, float(m[0, 2, 3, 0])
    ((2, 5, 7, 1), 1.0)
  """

  sigma: Sequence[float] = (0.25, 0.25)
  output_shape: Sequence[int] | None = None
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False):
    """Returns ``(map, {})``: ``(N, h, w, 1)`` float32, 1 at the centre."""
    del train
    if len(self.sigma) != 2 or min(float(s) for s in self.sigma) <= 0:
      raise ValueError(f'sigma must be two positive fractions of the size, got {self.sigma}.')
    h, w = x.shape[1:3] if self.output_shape is None else tuple(self.output_shape)
    log_sigma = self.param(
      'log_sigma', lambda key, shape: jnp.log(jnp.asarray(self.sigma, jnp.float32)), (2,)
    )
    sy, sx = jnp.exp(log_sigma[0]), jnp.exp(log_sigma[1])
    ys = (jnp.arange(h, dtype=jnp.float32) - (h - 1) / 2) / (sy * h)
    xs = (jnp.arange(w, dtype=jnp.float32) - (w - 1) / 2) / (sx * w)
    gauss = jnp.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
    return jnp.broadcast_to(gauss[None, :, :, None], (x.shape[0], h, w, 1)), {}


def _as_tuples(kwargs: dict, *names: str) -> dict:
  # Configs may hold lists; Flax module attributes must be hashable.
  return {k: tuple(v) if k in names and v is not None else v for k, v in kwargs.items()}


@register_model('salnet_deep')
def salnet_deep(**kwargs) -> SalNetDeep:
  """The deep saliency ConvNet (25,806,209 parameters); ``kwargs`` go to :class:`SalNetDeep`."""
  return SalNetDeep(**_as_tuples(kwargs, 'features'))


@register_model('salnet_shallow')
def salnet_shallow(**kwargs) -> SalNetShallow:
  """The shallow saliency ConvNet (64,392,512 parameters); ``kwargs`` go to
  :class:`SalNetShallow`."""
  return SalNetShallow(**_as_tuples(kwargs, 'features', 'output_shape'))


@register_model('center_bias')
def center_bias(**kwargs) -> CenterBias:
  """The centre-bias Gaussian baseline; ``kwargs`` go to :class:`CenterBias`."""
  return CenterBias(**_as_tuples(kwargs, 'sigma', 'output_shape'))


# ----------------------------------------------------------------------------------------------
# VGG-CNN-M initialisation of the deep network's first three layers.

_VGG_CNN_M_LAYERS = ('conv1', 'conv2', 'conv3')


def _read_arrays(path: str) -> dict[str, np.ndarray]:
  if not isinstance(path, (str, os.PathLike)) or not os.path.exists(path):
    raise ValueError(f'path must be an existing .npz or .safetensors file, got {path!r}.')
  path = os.fspath(path)
  if path.endswith('.npz'):
    with np.load(path) as data:
      return {k: np.asarray(data[k]) for k in data.files}
  if path.endswith('.safetensors'):
    from safetensors.numpy import load_file  # optional dependency, only for this format

    return dict(load_file(path))
  raise ValueError(f'path must end in .npz or .safetensors, got {path!r}.')


def _find(arrays: Mapping[str, np.ndarray], layer: str, kind: str) -> np.ndarray:
  names = {'kernel': ('kernel', 'weight', 'w', '0'), 'bias': ('bias', 'b', '1')}[kind]
  for suffix in names:
    for sep in ('/', '.', '_'):
      if f'{layer}{sep}{suffix}' in arrays:
        return arrays[f'{layer}{sep}{suffix}']
  raise ValueError(
    f'no {kind} for {layer} in the weights file; expected one of '
    f"{[layer + '/' + s for s in names]} (or with '.' or '_'), got keys {sorted(arrays)}."
  )


def load_vgg_cnn_m(params: Mapping[str, Any], path: str, *, bgr_to_rgb: bool = True) -> dict:
  """Returns ``params`` of :class:`SalNetDeep` with conv1..conv3 replaced by VGG-CNN-M's.

  VGG-CNN-M (Chatfield et al., 2014) has conv1 96 x 7x7, conv2 256 x 5x5 and conv3 512 x 3x3,
  the shapes of the deep network's first three layers, which the authors initialised from it.
  The file holds, for each of ``conv1``, ``conv2``, ``conv3``, a kernel named
  ``<layer>/kernel``, ``<layer>.weight``, ``<layer>_w`` or ``<layer>_0`` and a bias named
  likewise (``bias``, ``b``, ``1``), in HWIO ``(kh, kw, in, out)`` or in Caffe/PyTorch's OIHW
  ``(out, in, kh, kw)`` layout (told apart by shape).

  Args:
    params: the ``'params'`` collection of a :class:`SalNetDeep` (default features).
    path: a ``.npz`` or ``.safetensors`` file.
    bgr_to_rgb: reverse conv1's input channels (Caffe models read BGR images); pass False when
      the data pipeline feeds BGR (``normalization='caffe_bgr'``).

  Returns:
    A new params dict (the input is not modified).

  Raises:
    ValueError: a missing file, key or a shape that matches neither layout.

  Example::

    variables = model.init(key, jnp.zeros((1, 240, 320, 3)))
    params = load_vgg_cnn_m(variables['params'], 'vgg_cnn_m.npz')
  """
  new = dict(params)
  for layer in _VGG_CNN_M_LAYERS:
    if layer not in params:
      raise ValueError(f"params has no {layer!r}; pass the 'params' collection of SalNetDeep.")
    kernel, bias = _vgg_cnn_m_layer(
      path, layer, tuple(params[layer]['kernel'].shape), bgr_to_rgb=bgr_to_rgb
    )
    new[layer] = {'kernel': jnp.asarray(kernel), 'bias': jnp.asarray(bias)}
  return new


def _vgg_cnn_m_layer(
  path: str, layer: str, target: tuple[int, ...], *, bgr_to_rgb: bool
) -> tuple[np.ndarray, np.ndarray]:
  """One layer's HWIO kernel and bias from the file, checked against ``target`` (HWIO)."""
  arrays = _read_arrays(path)
  kernel = np.asarray(_find(arrays, layer, 'kernel'), np.float32)
  bias = np.asarray(_find(arrays, layer, 'bias'), np.float32).reshape(-1)
  if kernel.shape != tuple(target):
    oihw_as_hwio = tuple(kernel.shape[i] for i in (2, 3, 1, 0)) if kernel.ndim == 4 else None
    if oihw_as_hwio != tuple(target):
      raise ValueError(
        f'{layer} kernel has shape {kernel.shape}; expected HWIO {tuple(target)} or OIHW '
        f'{(target[3], target[2], target[0], target[1])}.'
      )
    kernel = kernel.transpose(2, 3, 1, 0)
  if bias.shape != (target[3],):
    raise ValueError(f'{layer} bias has shape {bias.shape}; expected ({target[3]},).')
  if layer == 'conv1' and bgr_to_rgb:
    kernel = kernel[:, :, ::-1, :]
  return np.ascontiguousarray(kernel), bias
