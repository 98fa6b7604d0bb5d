"""Resizing, cropping and FCN's bilinear upsampling kernel, for NHWC activations."""

from __future__ import annotations

import numbers
from typing import Any

import jax
from jax import export
import jax.numpy as jnp
import numpy as np

from jaxseg.ops import _validation as v

_METHODS = ('bilinear', 'nearest')


def bilinear_kernel(size: int, channels: int, *, dtype: Any = jnp.float32) -> jax.Array:
  r"""FCN's bilinear upsampling kernel: one bilinear filter per channel, on the diagonal.

  With :math:`f = \lceil \text{size} / 2 \rceil` and centre :math:`c = f - 1` (odd size) or
  :math:`f - 1/2` (even size),

  .. math::
    w_{u,v,i,o} = [i = o]\, \Big(1 - \frac{|u - c|}{f}\Big)\Big(1 - \frac{|v - c|}{f}\Big)

  Used as the kernel of `conv_transpose2d` with `size = 2 * factor - factor % 2`,
  `stride = factor` and `padding = ceil((factor - 1) / 2)`, it upsamples by `factor` with
  bilinear interpolation (exact on linear ramps away from the borders). This is
  `upsample_filt` of the FCN reference code (Caffe "Deconvolution" with a bilinear filler).

  Args:
    size: kernel height and width, positive.
    channels: number of channels `C` (input and output; channels are not mixed).
    dtype: dtype of the result.

  Returns:
    kernel, shape `(size, size, C, C)` (HWIO), zero off the channel diagonal.

  Example:
    >>> bilinear_kernel(4, 1)[:, :, 0, 0][0]
    Array([0.0625, 0.1875, 0.1875, 0.0625], dtype=float32)
  """
  for name, value in (('size', size), ('channels', channels)):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
      raise ValueError(f'{name} must be a positive int, got {value!r}.')
  factor = (size + 1) // 2
  center = factor - 1 if size % 2 == 1 else factor - 0.5
  taps = 1.0 - np.abs(np.arange(size) - center) / factor
  kernel = np.zeros((size, size, channels, channels), np.float64)
  kernel[:, :, np.arange(channels), np.arange(channels)] = np.outer(taps, taps)[:, :, None]
  return jnp.asarray(kernel, dtype)


def source_points(
  in_size: int, out_size: int, *, method: str = 'bilinear', align_corners: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  r"""Where each output index of a 1-D resize reads the input: the sampling rule of `resize`.

  Bilinear: :math:`s_i = \max((i + \tfrac12)\,\tfrac{n_{in}}{n_{out}} - \tfrac12, 0)` (or
  :math:`i\,\tfrac{n_{in} - 1}{n_{out} - 1}` with `align_corners`), read as
  :math:`(1 - \lambda_i)\, x_{low_i} + \lambda_i\, x_{high_i}` with
  :math:`low_i = \lfloor s_i \rfloor`, :math:`high_i = low_i + 1` (both clamped to the input)
  and :math:`\lambda_i = s_i - low_i`. Nearest: :math:`low_i = high_i =
  \lfloor i\, n_{in} / n_{out} \rfloor`, :math:`\lambda_i = 0`. Host-side NumPy, shared by
  `resize` and the host resizes of `jaxseg.inference`, so both sample the same points.

  Args:
    in_size: input length, positive.
    out_size: output length, positive.
    method: `'bilinear'` or `'nearest'`.
    align_corners: map the end pixel centres onto each other (bilinear only).

  Returns:
    `(low, high, frac)`: int64 indices, shape `(out_size,)` each, and float64 weights of `high`.

  Example:
    >>> low, high, frac = source_points(2, 4)
    >>> low.tolist(), high.tolist(), frac.tolist()
    ([0, 0, 0, 1], [1, 1, 1, 1], [0.0, 0.25, 0.75, 0.25])
  """
  for name, value in (('in_size', in_size), ('out_size', out_size)):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
      raise ValueError(f'{name} must be a positive int, got {value!r}.')
  if method not in _METHODS:
    raise ValueError(f'method must be one of {_METHODS}, got {method!r}.')
  if not isinstance(align_corners, bool):
    raise TypeError(f'align_corners must be a bool, got {align_corners!r}.')
  if align_corners and method == 'nearest':
    # PyTorch raises here too: nearest sampling has no corner alignment to honour.
    raise ValueError(
      "align_corners=True only applies to method='bilinear'; nearest "
      'resizing has no corner alignment (as torch.nn.functional.interpolate).'
    )
  dst = np.arange(out_size, dtype=np.float64)
  if method == 'nearest':
    # PyTorch's legacy 'nearest': floor(dst * in / out).
    idx = np.minimum(np.floor(dst * (in_size / out_size)).astype(np.int64), in_size - 1)
    return idx, idx, np.zeros(out_size)
  if align_corners:
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    src = dst * scale
  else:
    src = np.maximum((dst + 0.5) * (in_size / out_size) - 0.5, 0.0)
  low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  high = np.minimum(low + 1, in_size - 1)
  return low, high, src - low


def _symbolic_source_points(
  in_size: Any, out_size: Any, *, method: str, align_corners: bool
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`source_points` traced in float32, for jax.export's symbolic sizes (no host NumPy there)."""
  dst = jnp.arange(out_size, dtype=jnp.float32)
  n_in = jnp.asarray(in_size, jnp.float32)
  n_out = jnp.asarray(out_size, jnp.float32)
  if method == 'nearest':
    idx = jnp.minimum(jnp.floor(dst * (n_in / n_out)).astype(jnp.int32), in_size - 1)
    return idx, idx, jnp.zeros_like(dst)
  if align_corners:
    src = dst * jnp.where(n_out > 1, (n_in - 1) / jnp.maximum(n_out - 1, 1), 0.0)
  else:
    src = jnp.maximum((dst + 0.5) * (n_in / n_out) - 0.5, 0.0)
  low = jnp.minimum(jnp.floor(src).astype(jnp.int32), in_size - 1)
  high = jnp.minimum(low + 1, in_size - 1)
  return low, high, src - low.astype(jnp.float32)  # the fraction, float32 (an explicit cast)


def _interpolate_axis(
  x: jax.Array, axis: int, out_size: int, method: str, align_corners: bool
) -> jax.Array:
  in_size = x.shape[axis]
  symbolic = export.is_symbolic_dim(in_size) or export.is_symbolic_dim(out_size)
  if symbolic:
    low, high, frac = _symbolic_source_points(
      in_size, out_size, method=method, align_corners=align_corners
    )
  elif in_size == out_size and (method == 'nearest' or not align_corners or out_size > 1):
    return x
  else:
    low, high, frac = source_points(in_size, out_size, method=method, align_corners=align_corners)
  x_low = jnp.take(x, low, axis=axis)
  if method == 'nearest':
    return x_low
  shape = [1] * x.ndim
  shape[axis] = out_size
  frac = jnp.asarray(frac.reshape(shape), x.dtype)
  return x_low + (jnp.take(x, high, axis=axis) - x_low) * frac


def resize(
  x: jax.Array, shape: Any, *, method: str = 'bilinear', align_corners: bool = False
) -> jax.Array:
  r"""Resizes NHWC activations to spatial `shape` by bilinear or nearest interpolation.

  Bilinear, separable over rows then columns: output index :math:`i` samples the input at
  :math:`s = (i + \tfrac12)\,\tfrac{H_{in}}{H_{out}} - \tfrac12` (clamped at 0) or, with
  `align_corners`, :math:`s = i\,\tfrac{H_{in} - 1}{H_{out} - 1}`, and interpolates
  :math:`(1 - \lambda)\, x_{\lfloor s \rfloor} + \lambda\, x_{\lfloor s \rfloor + 1}`,
  :math:`\lambda = s - \lfloor s \rfloor`. `'nearest'` takes :math:`x_{\lfloor i H_{in}/H_{out}
  \rfloor}`. Agrees with PyTorch's `torch.nn.functional.interpolate(x, size=shape,
  mode='bilinear' | 'nearest', align_corners=...)`; DeepLab's Caffe "Interp" layer is the
  `align_corners=True` case.

  Args:
    x: input, shape `(N, H, W, C)` (NHWC), floating for `'bilinear'`.
    shape: output spatial size `(H_out, W_out)`, positive ints.
    method: `'bilinear'` or `'nearest'`.
    align_corners: map corner pixel centres onto each other (bilinear only).

  Returns:
    `y`, shape `(N, H_out, W_out, C)`, dtype of `x`.

  Example:
    >>> x = jnp.array([0., 1.]).reshape(1, 1, 2, 1)
    >>> resize(x, (1, 4))[0, 0, :, 0]
    Array([0.  , 0.25, 0.75, 1.  ], dtype=float32)
  """
  v.check_rank(x, 4, 'x', 'NHWC')
  out_hw = v.size_pair(shape, 'shape')
  if method not in _METHODS:
    raise ValueError(f'method must be one of {_METHODS}, got {method!r}.')
  if align_corners and method == 'nearest':
    raise ValueError(
      "align_corners=True only applies to method='bilinear'; nearest "
      'resizing has no corner alignment (as torch.nn.functional.interpolate).'
    )
  x = jnp.asarray(x)
  if method == 'bilinear' and not jnp.issubdtype(x.dtype, jnp.inexact):
    raise TypeError(f'bilinear resize needs a floating x, got dtype {x.dtype}.')
  y = _interpolate_axis(x, 1, out_hw[0], method, bool(align_corners))
  return _interpolate_axis(y, 2, out_hw[1], method, bool(align_corners))


def crop_like(x: jax.Array, reference: Any, *, offset: Any = None) -> jax.Array:
  r"""Crops NHWC `x` spatially to the size of `reference`.

  :math:`y_{n,i,j,c} = x_{n,\, i + t,\, j + l,\, c}` for :math:`i < H_{ref}, j < W_{ref}`.
  With `offset=None` the crop is centred (:math:`t = \lfloor (H - H_{ref}) / 2 \rfloor`); FCN's
  Caffe "Crop" layer uses fixed offsets such as `(19, 19)` after its 100-pixel input padding.

  Args:
    x: input, shape `(N, H, W, C)` (NHWC).
    reference: an array shaped `(N', H_ref, W_ref, C')` (NHWC; only `H_ref, W_ref` are used).
    offset: `(top, left)` of the crop, non-negative ints, or `None` to centre it.

  Returns:
    `y`, shape `(N, H_ref, W_ref, C)`.

  Example:
    >>> crop_like(jnp.zeros((1, 10, 10, 2)), jnp.zeros((1, 4, 6, 21)), offset=(3, 2)).shape
    (1, 4, 6, 2)
  """
  v.check_rank(reference, 4, 'reference', 'NHWC')
  return _crop(x, tuple(reference.shape[1:3]), offset)


def center_crop(x: jax.Array, shape: Any) -> jax.Array:
  r"""Crops the centre `shape = (h, w)` of NHWC `x`.

  :math:`y_{n,i,j,c} = x_{n,\, i + t,\, j + l,\, c}` with :math:`t = \lfloor (H - h)/2 \rfloor`,
  :math:`l = \lfloor (W - w)/2 \rfloor`,
  what Caffe's Crop layer computes with offset :math:`\lfloor (H - h)/2 \rfloor` (the odd pixel
  is dropped at the bottom/right).

  Args:
    x: input, shape `(N, H, W, C)` (NHWC).
    shape: `(h, w)` with `h <= H`, `w <= W` (an int means square).

  Returns:
    `y`, shape `(N, h, w, C)`.

  Example:
    >>> center_crop(jnp.arange(25.).reshape(1, 5, 5, 1), 3)[0, :, :, 0][0]
    Array([6., 7., 8.], dtype=float32)
  """
  return _crop(x, v.pair(shape, 'shape'), None)


def _crop(x, out_hw, offset):
  v.check_rank(x, 4, 'x', 'NHWC')
  in_hw = tuple(x.shape[1:3])
  if offset is None:
    offset = tuple((size - out) // 2 for size, out in zip(in_hw, out_hw))
  else:
    offset = v.pair(offset, 'offset', minimum=0)
  if out_hw[0] > in_hw[0] or out_hw[1] > in_hw[1]:
    raise ValueError(
      f'cannot crop {tuple(out_hw)} from x of spatial size {in_hw} '
      f'(x shape {tuple(x.shape)}): the crop must not exceed the input.'
    )
  for axis, name in enumerate(('height', 'width')):
    if offset[axis] + out_hw[axis] > in_hw[axis]:
      raise ValueError(
        f'cannot crop {name} {out_hw[axis]} at offset {offset[axis]} from an input of '
        f'{name} {in_hw[axis]} (x shape {tuple(x.shape)}, offset {offset}).'
      )
  top, left = offset
  return x[:, top : top + out_hw[0], left : left + out_hw[1], :]
