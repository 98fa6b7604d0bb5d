"""The lecture's derivations of convolution, as callable references.

* A convolution is a fully connected layer whose weight matrix is sparse (each output sees one
  window) and shared (every window uses the same kernel): `conv2d_as_matrix` builds that matrix.
* Backpropagation through a convolution is itself a convolution: `conv2d_vjp` computes both
  gradients with `conv2d` and `conv_transpose2d` only.

These are for teaching and testing (`conv2d_as_matrix` is dense and grows as (H W)^2).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.ops import _validation as v
from jaxseg.ops.conv import conv2d, conv_transpose2d


def _geometry(w_shape, input_shape, stride, padding, dilation):
  kh, kw = w_shape[:2]
  stride = v.pair(stride, 'stride')
  dilation = v.pair(dilation, 'dilation')
  window = v.effective_window((kh, kw), dilation)
  pads = v.explicit_padding(
    padding, input_hw=tuple(input_shape[:2]), window_hw=window, stride_hw=stride
  )
  out_hw = tuple(
    v.output_size(size, p, k, s) for size, p, k, s in zip(input_shape[:2], pads, window, stride)
  )
  return stride, pads, dilation, out_hw


def conv2d_as_matrix(
  w: jax.Array, input_shape: Any, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1
) -> jax.Array:
  r"""The dense matrix `M` of `conv2d` on one image, a fully connected layer in disguise.

  `M @ x.ravel() == conv2d(x[None], w)[0].ravel()`.

  Row :math:`(i, j, o)` and column :math:`(h, w', c)` (both in row-major HWC order) hold

  .. math::
    M_{(i,j,o),(h,w',c)} = \sum_{u,v} w_{u,v,c,o}\,[h = s_h i + d_h u - p_{top}]
      \,[w' = s_w j + d_w v - p_{left}]

  so each row is one output neuron of a fully connected layer whose weights are zero outside
  its window (sparse connections) and repeat the same kernel values in every row (weight
  sharing). Taps landing in the zero padding have no column. Built from the definition by
  scattering the kernel, so it is differentiable with respect to `w`. It is the Jacobian of
  `conv2d` (and of `torch.nn.functional.conv2d`) with respect to the flattened input.

  Args:
    w: kernel, shape `(kh, kw, C, O)` (HWIO, `groups=1`).
    input_shape: `(H, W, C)` of one input image (HWC).
    stride, padding, dilation: as in `conv2d`.

  Returns:
    `M`, shape `(H_out * W_out * O, H * W * C)`, dtype of `w`.

  Example:
    >>> w = jnp.ones((3, 3, 1, 1)); x = jnp.arange(16.).reshape(4, 4, 1)
    >>> m = conv2d_as_matrix(w, (4, 4, 1), padding=1)
    >>> m.shape, bool(jnp.allclose(m @ x.ravel(), conv2d(x[None], w, padding=1).ravel()))
    ((16, 16), True)
  """
  v.check_rank(w, 4, 'w', 'HWIO (kh, kw, in, out)')
  if len(input_shape) != 3:
    raise ValueError(f'input_shape must be (H, W, C), got {input_shape!r}.')
  height, width, channels = (int(s) for s in input_shape)
  kh, kw, w_in, w_out = w.shape
  if w_in != channels:
    raise ValueError(f'w.shape[2]={w_in} must equal the channels input_shape[2]={channels}.')
  stride, pads, dilation, (out_h, out_w) = _geometry(
    w.shape, input_shape, stride, padding, dilation
  )
  if min(out_h, out_w) < 1:
    raise ValueError(
      f'conv2d_as_matrix of input_shape {tuple(input_shape)} gives an empty '
      f'output {(out_h, out_w)}.'
    )
  # Enumerate every (output pixel, tap, in channel, out channel) and where its input lies.
  i, j, u, q, c, o = np.meshgrid(
    np.arange(out_h),
    np.arange(out_w),
    np.arange(kh),
    np.arange(kw),
    np.arange(channels),
    np.arange(w_out),
    indexing='ij',
  )
  rows_in = i * stride[0] + u * dilation[0] - pads[0][0]
  cols_in = j * stride[1] + q * dilation[1] - pads[1][0]
  inside = (rows_in >= 0) & (rows_in < height) & (cols_in >= 0) & (cols_in < width)
  out_index = ((i * out_w + j) * w_out + o)[inside]
  in_index = ((rows_in * width + cols_in) * channels + c)[inside]
  w = jnp.asarray(w)
  values = w[u[inside], q[inside], c[inside], o[inside]]
  matrix = jnp.zeros((out_h * out_w * w_out, height * width * channels), w.dtype)
  return matrix.at[out_index, in_index].add(values)


def conv2d_vjp(
  x: jax.Array, w: jax.Array, dy: jax.Array, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1
) -> tuple[jax.Array, jax.Array]:
  r"""Gradients of `conv2d` with respect to input and kernel, computed as convolutions.

  For :math:`y = \text{conv2d}(x, w)` and upstream gradient
  :math:`\delta = \partial L / \partial y`:

  .. math::
    \frac{\partial L}{\partial x} = \text{conv\_transpose2d}(\delta, w^{\top_{IO}})
    \qquad
    \frac{\partial L}{\partial w_{u,v,c,o}} = \sum_{n,i,j}
      \tilde x_{n,\, s_h i + d_h u,\, s_w j + d_w v,\, c}\; \delta_{n,i,j,o}

  The input gradient is the transposed convolution of :math:`\delta` with the kernel (in and out
  channels swapped), with `output_padding` recovering rows a strided convolution skipped. The
  kernel gradient is a convolution of :math:`\tilde x` (batch and channels swapped) with
  :math:`\delta` as the kernel, stride `dilation` and dilation `stride`. Equals `jax.vjp` of
  `conv2d` (`groups=1`).

  Args:
    x: input, shape `(N, H, W, C)` (NHWC).
    w: kernel, shape `(kh, kw, C, O)` (HWIO).
    dy: upstream gradient, shape `(N, H_out, W_out, O)`, the shape of `conv2d(x, w, ...)`.
    stride, padding, dilation: as in `conv2d`.

  Returns:
    `(dx, dw)` with the shapes of `x` and `w`.

  Example:
    >>> x = jnp.ones((1, 5, 5, 2)); w = jnp.ones((3, 3, 2, 4)); dy = jnp.ones((1, 3, 3, 4))
    >>> dx, dw = conv2d_vjp(x, w, dy, stride=2, padding=1)
    >>> dx.shape, dw.shape
    ((1, 5, 5, 2), (3, 3, 2, 4))
  """
  v.check_rank(x, 4, 'x', 'NHWC')
  v.check_rank(w, 4, 'w', 'HWIO (kh, kw, in, out)')
  v.check_rank(dy, 4, 'dy', 'NHWC')
  stride, pads, dilation, out_hw = _geometry(w.shape, x.shape[1:], stride, padding, dilation)
  expected = (x.shape[0], *out_hw, w.shape[3])
  if tuple(dy.shape) != expected:
    raise ValueError(
      f"dy must have the shape of conv2d's output {expected}, got {tuple(dy.shape)}."
    )
  kh, kw = w.shape[:2]
  window = v.effective_window((kh, kw), dilation)
  # Rows of x that no window reached (strided case): output_padding gives them back (as zeros).
  output_padding = tuple(
    size + p[0] + p[1] - ((o - 1) * s + k)
    for size, p, o, s, k in zip(x.shape[1:3], pads, out_hw, stride, window)
  )
  dx = conv_transpose2d(
    dy,
    jnp.swapaxes(w, 2, 3),
    stride=stride,
    padding=pads,
    output_padding=output_padding,
    dilation=dilation,
  )
  # dw: correlate x (channels as batch) with dy (batch as input channels) as the kernel.
  x_t = jnp.transpose(x, (3, 1, 2, 0))  # (C, H, W, N)
  dy_t = jnp.transpose(dy, (1, 2, 0, 3))  # (H_out, W_out, N, O), HWIO
  dw = conv2d(x_t, dy_t, stride=dilation, padding=pads, dilation=stride)  # (C, >=kh, >=kw, O)
  dw = jnp.transpose(dw[:, :kh, :kw, :], (1, 2, 0, 3))
  return dx, dw
