"""Max and average pooling over NHWC activations, with Caffe's ceil-mode rounding.

FCN, DeepLab and the saliency networks were trained in Caffe, whose pooling rounds the output
size up (`ceil_mode=True` here) and then drops a last window that would start in the bottom/right
padding; PyTorch's `max_pool2d`/`avg_pool2d` with `ceil_mode=True` implement the same rule, and
so do these ops.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax._src import core  # max_dim: max() of symbolic sizes (jax.export)

from jaxseg.ops import _validation as v


def _pool_geometry(x, window, stride, padding, ceil_mode, what):
  """Checks pooling arguments; returns (window, stride, pads, out_hw, ceil overhang)."""
  v.check_rank(x, 4, 'x', 'NHWC')
  v.check_not_bool(x, 'x')
  window = v.pair(window, 'window')
  stride = window if stride is None else v.pair(stride, 'stride')
  pads = v.explicit_padding(
    padding, input_hw=tuple(x.shape[1:3]), window_hw=window, stride_hw=stride
  )
  for axis in range(2):
    if max(pads[axis]) > window[axis] // 2:
      # Beyond half the window some window could lie entirely in padding (PyTorch's limit too).
      raise ValueError(
        f'padding={padding!r} must be at most half the window {window} on each axis, '
        f'got {pads[axis]} on axis {axis}.'
      )
  out_hw = tuple(
    v.output_size(size, p, k, s, ceil_mode=bool(ceil_mode))
    for size, p, k, s in zip(x.shape[1:3], pads, window, stride)
  )
  v.check_nonempty(
    x.shape,
    out_hw,
    what=what,
    details=f'window {window}, stride {stride}, padding {pads}, ceil_mode={ceil_mode}',
  )
  # The ceil-mode overhang: how far the last window runs past the bottom/right padding. Without
  # ceil mode the last window always fits, so it is 0 (stated, not computed: with symbolic
  # sizes under jax.export the comparison inside max() could not be decided).
  if not ceil_mode:
    return window, stride, pads, out_hw, (0, 0)
  overhang = tuple(
    _max0((o - 1) * s + k - (size + p[0] + p[1]))
    for o, s, k, size, p in zip(out_hw, stride, window, x.shape[1:3], pads)
  )
  return window, stride, pads, out_hw, overhang


def _max0(size):
  """``max(size, 0)`` for int sizes and for jax.export's symbolic sizes."""
  if isinstance(size, int):
    return max(size, 0)
  return core.max_dim(size, 0)


def _reduce_pads(pads, overhang):
  return (
    (0, 0),
    (pads[0][0], pads[0][1] + overhang[0]),
    (pads[1][0], pads[1][1] + overhang[1]),
    (0, 0),
  )


def max_pool(
  x: jax.Array, window: Any, *, stride: Any = None, padding: Any = 0, ceil_mode: bool = False
) -> jax.Array:
  r"""Max pooling over spatial windows of NHWC activations.

  .. math::
    y_{n,i,j,c} = \max_{u<k_h,\, v<k_w} \tilde x_{n,\, s_h i + u,\, s_w j + v,\, c}

  where :math:`\tilde x` is `x` padded with :math:`-\infty` (padding never wins). Output size
  per axis is :math:`\lfloor (H + p_{lo} + p_{hi} - k) / s \rfloor + 1`, or with `ceil_mode`
  :math:`\lceil \cdot \rceil + 1` minus one if the last window would start in the bottom padding.
  Agrees with PyTorch's `torch.nn.functional.max_pool2d` and, with `ceil_mode=True`, Caffe's
  Pooling layer (MAX).

  Derivative: the whole gradient of an output goes to the first maximum of its window in
  row-major order (PyTorch's and XLA's select-and-scatter rule; padding never wins, a NaN
  counts as the maximum), computed separably without select-and-scatter (2.5x faster to train
  on XLA:CPU; see `_max_pool_first_max`). Forward and reverse mode both work. A NaN or
  infinite gradient arriving at an output also reaches its window's other cells, as NaN.

  Args:
    x: input, shape `(N, H, W, C)` (NHWC).
    window: int or `(kh, kw)`, positive.
    stride: int or `(sh, sw)`; `None` (default) means `window`.
    padding: int, `(ph, pw)`, `((top, bottom), (left, right))`, `'SAME'` or `'VALID'`; at most
      half the window on each side.
    ceil_mode: round the output size up, as Caffe does.

  Returns:
    `y`, shape `(N, H_out, W_out, C)`, dtype of `x`.

  Example (the lecture's 2x2, stride-2 max pool):
    >>> x = jnp.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], jnp.float32)
    >>> max_pool(x[None, :, :, None], 2)[0, :, :, 0]
    Array([[6., 8.],
           [3., 4.]], dtype=float32)
  """
  window, stride, pads, _, overhang = _pool_geometry(
    x, window, stride, padding, ceil_mode, 'max_pool'
  )
  x = jnp.asarray(x)
  reduce_pads = _reduce_pads(pads, overhang)
  if jnp.issubdtype(x.dtype, jnp.floating):
    return _max_pool_first_max(x, window, stride, reduce_pads, pads)
  init = np.array(np.iinfo(x.dtype).min, x.dtype)
  return lax.reduce_window(x, init, lax.max, (1, *window, 1), (1, *stride, 1), reduce_pads)


def _axis_taps(x, axis, window, stride, reduce_pads, fill):
  """Per tap t of a 1-D window along `axis`, x at that tap of every window (a strided slice).

  Output i reads padded index s i + t; the slice's transpose (reverse mode) is a pad with
  interior zeros, so the gradient is scattered by k pads and adds, not select-and-scatter.
  """
  padded = jnp.pad(
    x, [reduce_pads if a == axis else (0, 0) for a in range(x.ndim)], constant_values=fill
  )
  out = (padded.shape[axis] - window) // stride + 1
  for tap in range(window):
    start = [0] * x.ndim
    start[axis] = tap
    limit = list(padded.shape)
    limit[axis] = tap + (out - 1) * stride + 1
    strides = [1] * x.ndim
    strides[axis] = stride
    yield lax.slice(padded, start, limit, strides)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4, 5))
def _max_pool_axis(x, axis, window, stride, reduce_pads, pad_lo):
  """1-D max pooling along `axis` whose derivative goes to the first maximum of each window.

  Its JVP is linear in the tangent: per tap, a strided slice of the tangent kept where that tap
  is its window's first maximum; JAX transposes it into strided pads (no select-and-scatter).
  """
  del pad_lo
  dims = [1] * x.ndim
  dims[axis] = window
  steps = [1] * x.ndim
  steps[axis] = stride
  pads = [reduce_pads if a == axis else (0, 0) for a in range(x.ndim)]
  # The init value is a host constant: grad under jit needs it.
  return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, dims, steps, pads)


@_max_pool_axis.defjvp
def _max_pool_axis_jvp(axis, window, stride, reduce_pads, pad_lo, primals, tangents):
  (x,), (dx,) = primals, tangents
  y = _max_pool_axis(x, axis, window, stride, reduce_pads, pad_lo)
  first = _first_maximum_tap(x, y, axis, window, stride, reduce_pads, pad_lo)
  # Each tap's tangent is kept by a 0/1 mask, not by `where`: under vmap, `where`'s transpose
  # selects against an unbatched zero, and the batching rule then moves the mapped axis to the
  # front, undoing a population's layout (member_conv.members_beside_channels). The one
  # difference: a NaN or infinite cotangent reaches the window's other cells as NaN.
  dy = None
  for tap, dx_tap in enumerate(_axis_taps(dx, axis, window, stride, reduce_pads, 0)):
    term = dx_tap * (first == tap).astype(dx.dtype)
    dy = term if dy is None else dy + term
  return y, dy


def _first_maximum_tap(x, y, axis, window, stride, reduce_pads, pad_lo):
  """Per output along `axis`, the first tap holding its maximum (int32, shape of `y`).

  The first holding the maximum, or a NaN (it propagates to y), inside the input (padding
  never wins; an all -inf window takes its first input cell, as PyTorch's loop does). Scanned
  backwards, so the first wins without a running mask; in integer arithmetic with scalars
  rather than `where` against a constant array, which would move a vmapped axis to the front.
  """
  y_is_nan = jnp.isnan(y)
  size = x.shape[axis]
  shape = [1] * x.ndim
  shape[axis] = y.shape[axis]
  starts = np.arange(y.shape[axis]) * stride - pad_lo
  first = None
  for tap, x_tap in reversed(
    list(enumerate(_axis_taps(x, axis, window, stride, reduce_pads, -np.inf)))
  ):
    hit = (x_tap == y) | (y_is_nan & jnp.isnan(x_tap))
    inside = (starts + tap >= 0) & (starts + tap < size)
    if not inside.all():
      hit = hit & inside.reshape(shape)
    hit = hit.astype(jnp.int32)
    first = window + (tap - window) * hit if first is None else first + (tap - first) * hit
  return first


def _max_pool_first_max(x, window, stride, reduce_pads, pads):
  """Max pooling, separably: along W, then along H, each with a first-maximum derivative.

  The maximum is separable, and so is the row-major first maximum: the first row (in H) whose
  row maximum is the window's, then the first column of that row holding it. Separable, each
  stage's first-tap search costs k compares instead of k_h k_w, and XLA fuses it into the
  scatter cheaply. XLA differentiates `reduce_window(max)` into select-and-scatter, which
  XLA:CPU runs far slower than PyTorch's max-pool backward (issue 16, benchmarks/README.md).
  """
  y = _max_pool_axis(x, 2, window[1], stride[1], reduce_pads[2], pads[1][0])
  return _max_pool_axis(y, 1, window[0], stride[0], reduce_pads[1], pads[0][0])


def _window_counts(
  size: int, pads: tuple[int, int], window: int, stride: int, out: int, count_include_pad: bool
) -> np.ndarray:
  """Per output position, how many window cells the average divides by (one axis).

  With padding counted, a window is clipped to the padded extent [-lo, size + hi) but not to the
  ceil-mode overhang beyond it (PyTorch and Caffe); otherwise it is clipped to [0, size).
  """
  lo_limit, hi_limit = (-pads[0], size + pads[1]) if count_include_pad else (0, size)
  starts = np.arange(out) * stride - pads[0]
  ends = np.minimum(starts + window, hi_limit)
  return (ends - np.maximum(starts, lo_limit)).astype(np.int64)


def avg_pool(
  x: jax.Array,
  window: Any,
  *,
  stride: Any = None,
  padding: Any = 0,
  ceil_mode: bool = False,
  count_include_pad: bool = True,
) -> jax.Array:
  r"""Average pooling over spatial windows of NHWC activations.

  .. math::
    y_{n,i,j,c} = \frac{1}{|W_{ij}|} \sum_{(h,w) \in W_{ij}} x_{n,h,w,c}

  where :math:`W_{ij}` is the window at output :math:`(i, j)` and :math:`|W_{ij}|` counts its
  cells inside the padded input if `count_include_pad` (padding counts as zeros, the part of a
  ceil-mode window hanging past the padding does not), else only those inside the input.
  Output size as in `max_pool`. Agrees with PyTorch's `torch.nn.functional.avg_pool2d` and, with
  `ceil_mode=True, count_include_pad=True`, Caffe's Pooling layer (AVE).

  Args:
    x: input, shape `(N, H, W, C)` (NHWC), floating.
    window: int or `(kh, kw)`, positive.
    stride: int or `(sh, sw)`; `None` (default) means `window`.
    padding: int, `(ph, pw)`, `((top, bottom), (left, right))`, `'SAME'` or `'VALID'`; at most
      half the window on each side.
    ceil_mode: round the output size up, as Caffe does.
    count_include_pad: divide by the window size including zero padding (PyTorch's default).

  Returns:
    `y`, shape `(N, H_out, W_out, C)`, dtype of `x`.

  Example:
    >>> x = jnp.arange(16.).reshape(1, 4, 4, 1)
    >>> avg_pool(x, 2)[0, :, :, 0]
    Array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
  """
  window, stride, pads, out_hw, overhang = _pool_geometry(
    x, window, stride, padding, ceil_mode, 'avg_pool'
  )
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.inexact):
    raise TypeError(f'avg_pool needs a floating x, got dtype {x.dtype}.')
  sums = lax.reduce_window(
    x, np.array(0, x.dtype), lax.add, (1, *window, 1), (1, *stride, 1), _reduce_pads(pads, overhang)
  )
  counts_h, counts_w = (
    _window_counts(size, p, k, s, o, bool(count_include_pad))
    for size, p, k, s, o in zip(x.shape[1:3], pads, window, stride, out_hw)
  )
  counts = np.outer(counts_h, counts_w)[None, :, :, None]
  if (counts == counts.flat[0]).all():
    # Every window counts alike (no padding, or padding counted without overhang): dividing by
    # a scalar, the same values, keeps a vmapped axis where it is (member_conv's layout).
    return sums / jnp.asarray(counts.flat[0], x.dtype)
  return sums / jnp.asarray(counts, x.dtype)


def global_avg_pool(x: jax.Array, *, keepdims: bool = False) -> jax.Array:
  r"""Mean over the spatial axes of NHWC activations.

  :math:`y_{n,c} = \frac{1}{HW}\sum_{h,w} x_{n,h,w,c}`.

  Agrees with `torch.nn.functional.adaptive_avg_pool2d(x, 1)` (the head of ResNet and GoogLeNet).

  Args:
    x: input, shape `(N, H, W, C)` (NHWC).
    keepdims: keep the spatial axes as size 1.

  Returns:
    `(N, C)`, or `(N, 1, 1, C)` with `keepdims`.

  Example:
    >>> global_avg_pool(jnp.ones((2, 7, 7, 2048))).shape
    (2, 2048)
  """
  v.check_rank(x, 4, 'x', 'NHWC')
  v.check_not_bool(x, 'x')
  return jnp.mean(x, axis=(1, 2), keepdims=keepdims)


def global_max_pool(x: jax.Array, *, keepdims: bool = False) -> jax.Array:
  r"""Maximum over the spatial axes of NHWC activations.

  :math:`y_{n,c} = \max_{h,w} x_{n,h,w,c}`.

  Agrees with `torch.nn.functional.adaptive_max_pool2d(x, 1)`.

  Args:
    x: input, shape `(N, H, W, C)` (NHWC).
    keepdims: keep the spatial axes as size 1.

  Returns:
    `(N, C)`, or `(N, 1, 1, C)` with `keepdims`.

  Example:
    >>> global_max_pool(jnp.ones((2, 7, 7, 512)), keepdims=True).shape
    (2, 1, 1, 512)
  """
  v.check_rank(x, 4, 'x', 'NHWC')
  v.check_not_bool(x, 'x')
  return jnp.max(x, axis=(1, 2), keepdims=keepdims)


def _adaptive_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
  """`(out_size, in_size)` averaging weights of adaptive average pooling along one axis.

  Output cell `i` averages input cells `floor(i * in / out) <= j < ceil((i + 1) * in / out)`.
  """
  matrix = np.zeros((out_size, in_size), np.float32)
  for i in range(out_size):
    start = (i * in_size) // out_size
    end = -((-(i + 1) * in_size) // out_size)  # ceil division
    matrix[i, start:end] = 1.0 / (end - start)
  return matrix


def adaptive_avg_pool(x: jax.Array, output_size: Any) -> jax.Array:
  r"""Average pools NHWC activations to a fixed spatial size.

  .. math::
    y_{n,i,j,c} = \operatorname{mean}_{h_0(i) \le h < h_1(i),\; w_0(j) \le w < w_1(j)}
    x_{n,h,w,c}, \qquad h_0(i) = \lfloor i H / o_h \rfloor,\;
    h_1(i) = \lceil (i + 1) H / o_h \rceil

  (likewise for `w`). Windows overlap when `H` is not a multiple of `o_h`; when the input is
  smaller than the output, cells are replicated; at equal sizes it is the identity. Agrees with
  PyTorch's `torch.nn.functional.adaptive_avg_pool2d` (torchvision's AlexNet and VGG heads, and
  GoogLeNet's auxiliary heads). Computed as two small averaging matrices applied by `einsum`, so
  it is differentiable and cheap for the small outputs it is used for.

  Args:
    x: input, shape `(N, H, W, C)` (NHWC).
    output_size: `o` or `(o_h, o_w)`, positive.

  Returns:
    `y`, shape `(N, o_h, o_w, C)`, dtype of `x`.

  Example:
    >>> x = jnp.arange(5.).reshape(1, 1, 5, 1)
    >>> adaptive_avg_pool(x, (1, 2))[0, 0, :, 0]   # windows [0, 3) and [2, 5)
    Array([1., 3.], dtype=float32)
  """
  v.check_rank(x, 4, 'x', 'NHWC')
  v.check_not_bool(x, 'x')
  oh, ow = v.pair(output_size, 'output_size')
  _, h, w, _ = x.shape
  if (h, w) == (oh, ow):
    return jnp.asarray(x)
  rows = jnp.asarray(_adaptive_pool_matrix(h, oh), x.dtype)
  cols = jnp.asarray(_adaptive_pool_matrix(w, ow), x.dtype)
  return jnp.einsum('ih,nhwc,jw->nijc', rows, x, cols)
