"""Convolutions over NHWC activations with HWIO kernels.

Three checked ops over `jax.lax.conv_general_dilated`. Seven shapes take a faster lowering,
numerically the same op (benchmarks/README.md has the numbers on XLA:CPU): a 1x1, `groups=1`
convolution runs as a matmul over channels (3x faster to train); a stride-1, `groups=1` atrous
convolution whose products mostly read padding as one matmul per kernel tap that reads the
image (DeepLab's ASPP 5.6x faster to train at output stride 8); on CPUs, a convolution whose
kernel outgrows the cache and has no more output pixels than channels (FCN's fc6) runs as
one matmul of the input's patches with the kernel (2.1-6.8x faster to train), a stride-1
convolution whose activations outgrow the cache takes its kernel gradient as one matmul per
tap (1.4-2x), one over at most 8 input channels takes its input gradient as the transpose of
a patch matmul (col2im, 1.3-4.8x for that gradient), and in a population (`member_conv`) an
input the members share (their first layer) meets every member's kernel in one patch matmul
where its patches have 64-512 columns (1.1-1.5x); and a strided, undilated transposed
convolution runs as a dense convolution over the kernel's stride phases with hand-picked
derivative formulations (10-200x faster forward, 5-140x faster to train).

* `conv2d`: the cross-correlation of deep learning (PyTorch `torch.nn.functional.conv2d`).
* `conv_transpose2d`: its adjoint, Caffe's "Deconvolution" (PyTorch's `conv_transpose2d`).
* `atrous_conv2d`: `conv2d` with holes (DeepLab), TensorFlow's `tf.nn.atrous_conv2d`.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxseg.ops import member_conv
from jaxseg.ops import _validation as v

_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


def _check_bias(b: Any, features: int) -> None:
  if b is not None and tuple(getattr(b, 'shape', ())) != (features,):
    raise ValueError(
      f'b must have shape ({features},) (one value per output channel), got '
      f'{tuple(getattr(b, "shape", ()))}.'
    )


def _add_bias(y: jax.Array, b: jax.Array | None) -> jax.Array:
  return y if b is None else y + jnp.asarray(b).astype(y.dtype)


def _promote(x: Any, w: Any) -> tuple[jax.Array, jax.Array]:
  """x and w in their common dtype (XLA's convolution needs one); bfloat16 x bfloat16 stays.

  `jnp.promote_types` follows the promotion mode, as `jnp` operations do: strict rejects a mix.
  """
  dtype = jnp.promote_types(jnp.result_type(x), jnp.result_type(w))
  return jnp.asarray(x, dtype), jnp.asarray(w, dtype)


def _conv_geometry(x, w, b, *, stride, padding, dilation, groups, what='conv2d'):
  """Checks conv2d's arguments; returns (stride, pads, dilation, out_hw) as static ints."""
  v.check_rank(x, 4, 'x', 'NHWC')
  v.check_rank(w, 4, 'w', 'HWIO (kh, kw, in/groups, out)')
  v.check_not_bool(x, 'x')
  v.check_not_bool(w, 'w')
  if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
    raise ValueError(f'groups must be a positive int, got {groups!r}.')
  stride = v.pair(stride, 'stride')
  dilation = v.pair(dilation, 'dilation')
  kh, kw, w_in, w_out = w.shape
  channels = x.shape[-1]
  if min(kh, kw) < 1:
    raise ValueError(f'w must have a positive spatial size, got shape {tuple(w.shape)}.')
  if channels % groups:
    raise ValueError(f'groups={groups} must divide the input channels x.shape[-1]={channels}.')
  if w_out % groups:
    raise ValueError(f'groups={groups} must divide the output channels w.shape[3]={w_out}.')
  if w_in * groups != channels:
    raise ValueError(
      f'w.shape[2]={w_in} must equal x.shape[-1] / groups = {channels} / {groups} '
      f'(w is HWIO (kh, kw, in/groups, out)); got w shape {tuple(w.shape)} for x shape '
      f'{tuple(x.shape)}.'
    )
  window = v.effective_window((kh, kw), dilation)
  pads = v.explicit_padding(
    padding, input_hw=tuple(x.shape[1:3]), window_hw=window, stride_hw=stride
  )
  out_hw = tuple(
    v.output_size(size, p, k, s) for size, p, k, s in zip(x.shape[1:3], pads, window, stride)
  )
  v.check_nonempty(
    x.shape,
    out_hw,
    what=what,
    details=f'kernel {(kh, kw)}, dilation {dilation}, stride {stride}, padding {pads}',
  )
  _check_bias(b, w_out)
  return stride, pads, dilation, out_hw


def _pointwise_conv(x: jax.Array, w: jax.Array, stride, pads) -> jax.Array:
  """A 1x1, groups=1 convolution as one (N*H*W, C) x (C, O) matmul.

  XLA:CPU runs a 1x1 convolution's backward pass several times slower than the equivalent
  matmuls (see benchmarks/conv_ops.py); pad, subsample by slicing, then contract channels.
  The matmul is taken on 2-D matrices, not as a 4-D einsum: the einsum's filter gradient
  contracts dy over (N, H, W), for which XLA made the producer of dy (the batch-norm backward
  fusion) write it transposed, as (O, N*H*W), at ~10x the cost of its natural layout. On the
  2-D matrices reverse mode computes the filter gradient as `x^T dy` contracting the rows of
  both (issue 16: ResNet-50's step 1412 -> 1129 ms with this formulation), and forward mode
  still works (no custom derivative rule is needed).
  """
  x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  x = x[:, :: stride[0], :: stride[1], :]
  n, height, width, channels = x.shape
  y = jnp.matmul(x.reshape(n * height * width, channels), w[0, 0])
  return y.reshape(n, height, width, w.shape[-1])


def conv2d(
  x: jax.Array,
  w: jax.Array,
  b: jax.Array | None = None,
  *,
  stride: Any = 1,
  padding: Any = 0,
  dilation: Any = 1,
  groups: int = 1,
) -> jax.Array:
  r"""2-D convolution (cross-correlation) of NHWC activations with an HWIO kernel.

  With :math:`g` the group of output channel :math:`o` and :math:`C_g = C / \text{groups}`,

  .. math::
    y_{n,i,j,o} = b_o + \sum_{u<k_h}\sum_{v<k_w}\sum_{c<C_g}
      \tilde x_{n,\, s_h i + d_h u,\, s_w j + d_w v,\, g C_g + c}\; w_{u,v,c,o}

  where :math:`\tilde x` is `x` zero-padded. Output size per axis:
  :math:`\lfloor (H + p_{lo} + p_{hi} - d(k-1) - 1) / s \rfloor + 1`.
  Agrees with PyTorch's `torch.nn.functional.conv2d` (NCHW/OIHW there) and Caffe's Convolution.

  Args:
    x: input, shape `(N, H, W, C)` (NHWC).
    w: kernel, shape `(kh, kw, C / groups, O)` (HWIO); `O` must be divisible by `groups`.
    b: optional bias, shape `(O,)`.
    stride: int or `(sh, sw)`, positive.
    padding: int, `(ph, pw)`, `((top, bottom), (left, right))`, `'SAME'` (output
      `ceil(H / stride)`, extra pixel bottom/right, as TensorFlow) or `'VALID'` (no padding).
    dilation: int or `(dh, dw)`, the spacing between kernel taps (atrous rate), positive.
    groups: number of channel groups; `groups = C` with `O = C * m` is a depthwise convolution.

  Returns:
    `y`, shape `(N, H_out, W_out, O)`, in the dtype promoted from `x` and `w` (JAX's promotion
    mode applies: under `jax_numpy_dtype_promotion='strict'` mixed dtypes raise).

  Raises:
    ValueError: wrong ranks, channel mismatch, `groups` not dividing the channels, non-positive
      stride or dilation, negative padding, or an empty output.

  Example:
    >>> x = jnp.ones((1, 5, 5, 3)); w = jnp.ones((3, 3, 3, 8))
    >>> conv2d(x, w, stride=2, padding=1).shape
    (1, 3, 3, 8)
  """
  stride, pads, dilation, _ = _conv_geometry(
    x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups
  )
  x, w = _promote(x, w)
  y = _conv2d_lowered(x, w, stride, pads, dilation, groups)
  if member_conv.active() and _beside_channels_pays(w.shape[-1]):
    # A population's maps of few channels keep their member axis beside them (rule below).
    return member_conv.add_bias(member_conv.members_beside_channels(y), b)
  return _add_bias(y, b)


# A population's maps of fewer than 8 channels are laid out (N, H, W, K, C) in memory rather
# than (K, N, H, W, C), on CPUs (`member_conv.members_beside_channels`): XLA:CPU's loops over
# them vectorise along the innermost axis, and 8 float32 values fill an AVX register. Issue
# 16, LeNet-5's population of 8 (6 channels: the first layer's output, the second's input):
# ReLU + 2x2 max pool forward and backward 5.8 -> 1.8 ms, its whole step ~23 -> ~21 ms (with
# `max_pool`'s and `ops.relu`'s layout-keeping derivatives), and with tanh and average pooling
# ~22-28 -> ~21-22 ms. At 8 channels and more the transposes cost more than they save (the
# demo FCN-8s at width / 8, K = 2: its step 4-7% slower, compilation 0.2-0.7 s longer).
_FEW_CHANNELS_TO_VECTORISE = 8


def _beside_channels_pays(channels: int) -> bool:
  """Whether a population's map of ``channels`` channels is laid out members beside them."""
  return channels < _FEW_CHANNELS_TO_VECTORISE and _traced_for_cpu()


def _conv2d_lowered(x, w, stride, pads, dilation, groups):
  """conv2d on checked, static arguments, each shape routed to its fastest formulation."""
  if w.shape[:2] == (1, 1) and groups == 1:
    return _pointwise_conv(x, w, stride, pads)
  # The tap windows need concrete sizes (jax.export's symbolic ones take XLA's convolution).
  concrete = all(isinstance(size, int) for size in x.shape[1:3])
  if dilation != (1, 1) and stride == (1, 1) and groups == 1 and concrete:
    if _image_product_fraction(x.shape[1:3], w.shape[:2], pads, dilation) <= _MOSTLY_PADDING:
      return _dilated_conv_by_taps(x, w, pads, dilation)
  if groups == 1 and concrete and _patches_matmul_pays(x, w, stride, pads, dilation):
    if _traced_for_cpu():  # XLA:CPU's kernel repacking is what this avoids (see below)
      return _conv_by_patches(x, w, stride, pads, dilation)
  if stride == (1, 1) and dilation == (1, 1) and groups == 1 and concrete:
    # Not in a population (member_conv): its per-member convolution has a custom VJP, which
    # reverse mode cannot transpose inside this path's JVP rule.
    if _kernel_gradient_by_taps_pays(x, w, pads) and _traced_for_cpu() and not member_conv.active():
      return _conv_with_tap_filter_gradient(x, w, pads)
    if _input_gradient_by_patches_pays(x, w, pads) and _traced_for_cpu():
      conv = functools.partial(_conv_with_patch_input_gradient, pads=pads)
      return _in_population(conv, x, w, stride, pads, dilation, groups)
  return _lax_conv(x, w, stride, pads, dilation, groups)


def _traced_for_cpu() -> bool:
  """Whether programs are traced for XLA:CPU (JAX's default backend).

  The patch matmul and the kernel gradient by taps below work around XLA:CPU's own kernels;
  GPUs and TPUs keep XLA's convolution (cuDNN's on GPUs), which nothing here has measured
  against. The 1x1 matmul and the atrous taps over the image stay on every platform: one is
  the same matmul and the other skips products with padding.
  """
  return jax.default_backend() == 'cpu'


# XLA:CPU's kernel gradient of a stride-1 3x3 convolution falls off a cliff, from 100-190 to
# 40-60 GFLOP/s for 64-wide layers and from 130-190 to 60-130 for wider ones, once its input
# and output gradient together outgrow the last-level cache (32 MiB on the machine measured),
# while one matmul per tap keeps its speed. Issue 16, idle, per shape (batch x map, channels),
# XLA / taps: 4x224^2 64->64 (103 MB) 1.55x, 2x454^2 64->64 (FCN's conv1_2) 1.64x, 4x112^2
# 64->128 (38 MB) 1.9x, 4x112^2 128->128 2.0x, 16x56^2 128->128 1.5x, 16x28^2 512->512 1.4x;
# below the cache XLA's own wins or ties: 4x112^2 64->64 (26 MB) 0.56x, 2x112^2 64->128 0.87x,
# 4x56^2 256->256 1.04x, 16x56^2 64->64 0.6x. Between 32 and 40 MB it is a tie (6x112^2 64->64
# 0.93x, 48x28^2 128->128 0.97x). ResNet-50 and DeepLab at their benchmark batches stay below.
# Larger kernels are mixed (5x5 at 8x112^2 64->64 0.78x, 7x7 at 4x224^2 1.4x): up to 9 taps.
_LAST_LEVEL_CACHE_BYTES = 32 * 2**20
_MAX_KERNEL_TAPS = 9


def _kernel_gradient_by_taps_pays(x, w, pads) -> bool:
  """Whether a stride-1, undilated convolution of at most 9 taps outgrows the cache (above)."""
  kh, kw, _, features = w.shape
  out_h, out_w = _output_hw(x, w, (1, 1), pads, (1, 1))
  values = x.size + x.shape[0] * out_h * out_w * features
  return (
    kh * kw <= _MAX_KERNEL_TAPS and values * jnp.dtype(x.dtype).itemsize >= _LAST_LEVEL_CACHE_BYTES
  )


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _conv_with_tap_filter_gradient(x, w, pads):
  """A stride-1, undilated convolution whose kernel gradient is one matmul per tap.

  The value and the input gradient are XLA's convolution. The JVP is
  `conv(dx, w) + sum_{u,v} xpad[., u:u+H', v:v+W', .] @ dw[u, v]`; reverse mode transposes
  its second term into `dw[u, v] = xpad[., u:u+H', v:v+W', .]^T dy`, contracting the N*H'*W'
  rows of two 2-D matrices, which XLA:CPU runs 1.4-2x faster than its own kernel gradient
  where `_conv2d_lowered` routes here. Forward mode works too.
  """
  return _lax_conv(x, w, (1, 1), pads, (1, 1), 1)


@functools.partial(_conv_with_tap_filter_gradient.defjvp, symbolic_zeros=True)
def _conv_with_tap_filter_gradient_jvp(pads, primals, tangents):
  conv = lambda x, w: _lax_conv(x, w, (1, 1), pads, (1, 1), 1)  # noqa: E731
  out_hw = _output_hw(primals[0], primals[1], (1, 1), pads, (1, 1))
  kernel_term = lambda x, dw: _conv_by_padded_taps(x, dw, pads, out_hw)  # noqa: E731
  return _bilinear_jvp(conv, conv, kernel_term, primals, tangents)


def _bilinear_jvp(value, input_term, kernel_term, primals, tangents):
  """The JVP of a convolution, bilinear in `(x, w)`: `value(x, w)` and
  `input_term(dx, w) + kernel_term(x, dw)`, each term skipped where its tangent is a symbolic
  zero (reverse mode then transposes only what it needs)."""
  (x, w), (dx, dw) = primals, tangents
  y = value(x, w)
  dy = jnp.zeros_like(y)
  if not isinstance(dx, SymbolicZero):
    dy = dy + input_term(dx, w)
  if not isinstance(dw, SymbolicZero):
    dy = dy + kernel_term(x, dw)
  return y, dy


# XLA:CPU's input gradient of a convolution into few input channels is slow (its output, the
# input's gradient, is a few channels wide), while the transpose of the patch matmul (one matmul
# into the patch matrix, then its taps added back into place: col2im) is not. Issue 16, input
# gradient alone, per shape (batch x output map, channels in -> out, window), XLA / col2im:
# LeNet-5's second layer 64x10^2 6->16 5x5 0.80 / 0.48 ms (1.67x), 1 channel 4.8x, 3 3.5x,
# 4 2.0x, 8 1.33x, 12 1.12x; 64x14^2 6->16 3x3 2.8x; 16x24^2 6->16 5x5 1.64x; 16x56^2 4->32 3x3
# 1.7x; 8x112^2 3->64 3x3 2.1x; 32x28^2 8->64 3x3 1.6x; 16x24^2 6->120 5x5 4.0x; the demo's
# FCN-8s (width / 8) 16x64^2 8->8 3x3 1.2-1.3x, 16x32^2 8->16 3x3 1.3x. Where the patch
# matrix outgrows the cache it loses (4x112^2 8->16 5x5, 40 MB: 0.79x). A first layer's input
# (the images) has no gradient: there nothing changes.
_FEW_INPUT_CHANNELS = 8


def _input_gradient_by_patches_pays(x, w, pads) -> bool:
  """Whether a stride-1, undilated convolution takes its input gradient by col2im (above)."""
  kh, kw, channels, _ = w.shape
  out_h, out_w = _output_hw(x, w, (1, 1), pads, (1, 1))
  patch_bytes = x.shape[0] * out_h * out_w * kh * kw * channels * jnp.dtype(x.dtype).itemsize
  return channels <= _FEW_INPUT_CHANNELS and patch_bytes <= _LAST_LEVEL_CACHE_BYTES


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _conv_with_patch_input_gradient(x, w, pads):
  """A stride-1, undilated convolution whose input gradient is the patch matmul's transpose.

  The value and the kernel gradient are XLA's convolution. The JVP is
  `patches(dx) @ w + conv(x, dw)`; reverse mode transposes its first term into
  `col2im(dy @ w^T)`: one matmul into the patch matrix, whose taps are added back into place.
  """
  return _xla_conv(x, w, (1, 1), pads, (1, 1), 1)


@functools.partial(_conv_with_patch_input_gradient.defjvp, symbolic_zeros=True)
def _conv_with_patch_input_gradient_jvp(pads, primals, tangents):
  conv = lambda x, w: _xla_conv(x, w, (1, 1), pads, (1, 1), 1)  # noqa: E731
  input_term = lambda dx, w: _conv_by_patches(dx, w, (1, 1), pads, (1, 1))  # noqa: E731
  return _bilinear_jvp(conv, input_term, conv, primals, tangents)


def _conv_by_padded_taps(x, w, pads, out_hw):
  """`sum_{u,v} xpad[:, u:u+H', v:v+W', :] @ w[u, v]` on 2-D matrices: linear in `w`."""
  n, _, _, channels = x.shape
  kh, kw, _, features = w.shape
  padded = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  rows = n * out_hw[0] * out_hw[1]
  y = jnp.zeros((rows, features), jnp.result_type(x, w))
  for row_tap in range(kh):
    for col_tap in range(kw):
      patch = padded[:, row_tap : row_tap + out_hw[0], col_tap : col_tap + out_hw[1]]
      y = y + jnp.matmul(patch.reshape(rows, channels), w[row_tap, col_tap])
  return y.reshape(n, *out_hw, features)


# XLA:CPU's convolution repacks its kernel at every call (a buffer of the kernel's size is
# allocated, filled and freed in the forward pass and again for the input gradient), which
# costs little beside the products of a convolution over a large map but dominates one over a
# few pixels with a large kernel, such as FCN's fc6 (7x7, 512 -> 4096, 411 MB of weights on an
# 8x8 map). There one matmul of the input's patches with the kernel as it lies in memory
# (HWIO is already the (kh*kw*cin, cout) matrix) wins, and so do its gradients, which
# autodiff makes two matmuls and a sum of padded slices. Issue 16, idle, per shape (batch x
# map, kernel, channels), forward and both gradients, XLA / patches: 2x8^2 7x7 512->4096
# 569 / 154 ms (3.7x), 1x8^2 6.8x, 2x16^2 2.1x, 8x8^2 2.7x, 8x16^2 (as many pixels as output
# channels: patches as large as the kernel) 2.4x, 16x16^2 (twice as many) 1.7x. Smaller
# kernels are mixed (ResNet-50's stage-4 3x3 at 8x7^2, 9.4 MB, 1.7x; 1x8^2 3x3 2048->64,
# 4.7 MB, 0.7x), so only kernels of at least the cache's size take this path, and only with
# at most as many output pixels as output channels (the patches then no larger than the
# kernel).


def _patches_matmul_pays(x, w, stride, pads, dilation) -> bool:
  """Whether a convolution is kernel-bound as above: a large kernel over few output pixels."""
  features = w.shape[-1]
  out_h, out_w = _output_hw(x, w, stride, pads, dilation)
  kernel_bytes = w.size * jnp.dtype(w.dtype).itemsize
  return x.shape[0] * out_h * out_w <= features and kernel_bytes >= _LAST_LEVEL_CACHE_BYTES


def _output_hw(x, w, stride, pads, dilation) -> tuple[int, int]:
  """The output's (height, width) for explicit pads."""
  return tuple(
    v.output_size(size, p, rate * (k - 1) + 1, s)
    for size, p, k, s, rate in zip(x.shape[1:3], pads, w.shape[:2], stride, dilation)
  )


def _conv_by_patches(x, w, stride, pads, dilation, *, column_taps_first=False):
  """A `groups=1` convolution as one matmul: `patches(x) @ w.reshape(kh*kw*cin, cout)`.

  Row `(n, i, j)` of the patch matrix holds `xpad[n, i*s_h + u*d_h, j*s_w + v*d_w, c]` for every
  tap `(u, v)` and channel `c`, in the kernel's own (u, v, c) order, so the HWIO kernel reshapes
  to the matrix without a copy. Products are summed in float32 (or wider), then cast. Both
  autodiff modes come from slices, concatenations and a matmul.

  `column_taps_first` builds the matrix in two concatenations, the `kw` column taps of every
  row first, then `kh` row windows of that, so that over few channels each copy moves `kw * cin`
  values at a time rather than `cin`: LeNet-5's first layer in a population (5x5 over 3
  channels, forward and kernel gradient) 1.13x, its K = 8 step 24.1-25.5 -> 22.2-23.3 ms
  (interleaved processes). Its transpose (the input gradient's col2im) is slower, 0.82-0.88x
  (LeNet-5's second layer, the demo's 8-channel layers), and fc6 ties: only the shared input
  of a population takes it.
  """
  n, _, _, channels = x.shape
  kh, kw, _, features = w.shape
  out_h, out_w = _output_hw(x, w, stride, pads, dilation)
  padded = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))

  def row_tap(array, u):  # the rows tap u reads: u*d_h, u*d_h + s_h, ...
    start = u * dilation[0]
    return lax.slice_in_dim(array, start, start + (out_h - 1) * stride[0] + 1, stride[0], axis=1)

  def column_tap(array, t):  # the columns tap t reads
    start = t * dilation[1]
    return lax.slice_in_dim(array, start, start + (out_w - 1) * stride[1] + 1, stride[1], axis=2)

  if column_taps_first:
    columns = jnp.concatenate([column_tap(padded, t) for t in range(kw)], axis=-1)
    taps = jnp.concatenate([row_tap(columns, u) for u in range(kh)], axis=-1)
  else:
    taps = jnp.concatenate(
      [column_tap(row_tap(padded, u), t) for u in range(kh) for t in range(kw)], axis=-1
    )
  patches = taps.reshape(n * out_h * out_w, kh * kw * channels)
  accumulate = jnp.promote_types(x.dtype, jnp.float32)
  y = jnp.matmul(
    patches, w.reshape(kh * kw * channels, features), preferred_element_type=accumulate
  )
  return y.reshape(n, out_h, out_w, features).astype(jnp.result_type(x, w))


# A population's first layer convolves the members' one batch with every member's kernel: under
# `vmap` one convolution with the members' filters side by side (`member_conv`). XLA:CPU's
# kernel for it is slow on a few input channels with a 5x5 or 7x7 window, where the patch
# matmul of `_conv_by_patches` (one patch matrix for all members, reused by the kernel
# gradient) wins. Issue 16, forward and kernel gradient, per shape (batch x map x channels,
# members x outputs, window), XLA / patches: LeNet-5's 64x32^2x3 8x6 5x5 1.28-1.33x (its whole
# population step 30 -> 25 ms), 16x6 1.45x, 4x6 6.6x (XLA's kernel stumbles), 2x6 1.03x;
# 16x64^2x3 8x16 5x5 1.19x; 32x96^2x3 8x24 7x7 stride 2 1.41x; 16x32^2x16 8x16 3x3 1.29x;
# 16x32^2x32 8x32 3x3 1.34x; 32x32^2x8 8x16 3x3 1.08x. Measured on patch matrices of 25 to 63
# columns (kh*kw*cin) it is mixed (3x3x3 0.74-1.09x, 5x5x1 0.94-1.03x, 7x7x1 0.79x, 5x5x2
# 0.76x), and above 512 so (3x3x64 0.94x, 3x3x128 1.12x): the patches take the shared input
# from 64 to 512 columns.
_SHARED_INPUT_PATCH_COLUMNS = (64, 512)


def _shared_input_patches_pay(x, w, groups) -> bool:
  """Whether a population's shared-input convolution runs as a patch matmul (see above)."""
  lo, hi = _SHARED_INPUT_PATCH_COLUMNS
  concrete = all(isinstance(size, int) for size in x.shape[1:3])
  return groups == 1 and concrete and lo <= w.shape[0] * w.shape[1] * w.shape[2] <= hi


# Atrous convolutions run tap by tap where at most this share of their products reads the image
# (the rest multiplies padding): at rate 12 on a 32x32 map (56%) the taps win 2x; at rates 2
# and 4 on it (94%, 84%) they tie or win 1.2x but cost compilation time (nine matmuls each).
_MOSTLY_PADDING = 0.6


def _image_product_fraction(in_hw, kernel_hw, pads, dilation) -> float:
  """The share of a convolution's products whose input pixel is inside the image."""
  fraction = 1.0
  for size, kernel, (pad_lo, pad_hi), rate in zip(in_hw, kernel_hw, pads, dilation):
    out_size = size + pad_lo + pad_hi - rate * (kernel - 1)
    inside = sum(hi - lo for _, lo, hi, _ in _tap_windows(size, kernel, rate, pad_lo, out_size))
    fraction *= inside / (kernel * out_size)
  return fraction


def _tap_windows(size: int, kernel: int, dilation: int, pad_lo: int, out_size: int):
  """Per kernel tap along one axis: the output rows `[lo, hi)` where it reads the image.

  Tap `u` reads input row `i - pad_lo + u * dilation` for output row `i`; rows outside
  `[0, size)` are padding, whose zeros it would multiply. Returns `(u, lo, hi, offset)` for the
  taps with at least one row inside; a tap with an empty window only ever reads padding.
  """
  windows = []
  for u in range(kernel):
    offset = u * dilation - pad_lo
    lo, hi = max(0, -offset), min(out_size, size - offset)
    if hi > lo:
      windows.append((u, lo, hi, offset))
  return windows


# Jitted so that an eager call dispatches one program, not ~4 operations per tap (inside an
# outer jit it is inlined).
@functools.partial(jax.jit, static_argnames=('pads', 'dilation'))
def _dilated_conv_by_taps(x, w, pads, dilation):
  """A stride-1, `groups=1` atrous convolution as one channel matmul per kernel tap.

  Tap `(u, v)` adds `x[i + u d_h - p_t, j + v d_w - p_l] @ w[u, v]` over the output rows and
  columns where it reads the image rather than its zero padding; a tap that reads only padding
  is skipped. With DeepLab's large rates on small maps most taps read mostly or only padding
  (output stride 8, a 32x32 map: at rate 36 only the centre tap is left, at rate 24 a quarter
  of the products), and XLA:CPU's dilated convolution slows as the rate grows at a fixed number
  of products (issue 16: DeepLabV3's three 3x3 ASPP branches at batch 2, 2048 -> 256 channels,
  forward and backward 1518 -> 271 ms; the whole train step 2605 -> 1425 ms). Products are
  summed in float32 (or wider), then cast. Both autodiff modes come from slices, matmuls and
  pads; no custom rule is needed.
  """
  n, height, width, channels = x.shape
  kh, kw, _, features = w.shape
  out_h, out_w = _output_hw(x, w, (1, 1), pads, dilation)
  accumulate = jnp.promote_types(x.dtype, jnp.float32)
  y = jnp.zeros((n, out_h, out_w, features), accumulate)
  for row_tap, top, bottom, row_offset in _tap_windows(height, kh, dilation[0], pads[0][0], out_h):
    for col_tap, left, right, col_offset in _tap_windows(width, kw, dilation[1], pads[1][0], out_w):
      patch = x[:, top + row_offset : bottom + row_offset, left + col_offset : right + col_offset]
      product = jnp.matmul(
        patch.reshape(-1, channels), w[row_tap, col_tap], preferred_element_type=accumulate
      ).reshape(n, bottom - top, right - left, features)
      y = y + lax.pad(
        product,
        jnp.zeros((), accumulate),
        ((0, 0, 0), (top, out_h - bottom, 0), (left, out_w - right, 0), (0, 0, 0)),
      )
  return y.astype(jnp.result_type(x, w))


def _xla_conv(x, w, stride, pads, dilation, groups):
  """XLA's own convolution: the reference every other lowering must equal."""
  return lax.conv_general_dilated(
    x,
    w,
    window_strides=stride,
    padding=pads,
    rhs_dilation=dilation,
    dimension_numbers=_DIMENSION_NUMBERS,
    feature_group_count=groups,
  )


def _lax_conv(x, w, stride, pads, dilation, groups):
  """XLA's own convolution, batched as below in a population."""
  conv = functools.partial(_xla_conv, stride=stride, pads=pads, dilation=dilation, groups=groups)
  return _in_population(conv, x, w, stride, pads, dilation, groups)


def _in_population(conv, x, w, stride, pads, dilation, groups):
  """``conv(x, w)``, a convolution of the given geometry, with a population's batching.

  Inside ``member_conv.per_member_convolutions`` (a vmapped population), batched over members
  as one plain convolution per member instead of ``vmap``'s grouped convolution, and on CPUs
  over an input shared by the members as one patch matmul where that pays (see above).
  """
  if member_conv.active():
    shared_input_conv = None
    if _shared_input_patches_pay(x, w, groups) and _traced_for_cpu():
      shared_input_conv = functools.partial(
        _conv_by_patches, stride=stride, pads=pads, dilation=dilation, column_taps_first=True
      )
    beside = (_beside_channels_pays(x.shape[-1]), _beside_channels_pays(w.shape[-1]))
    if beside[0]:  # its cotangent then flows back beside the channels too
      x = member_conv.members_beside_channels(x)
    return member_conv.per_member(
      conv, shared_input_conv=shared_input_conv, maps_beside_channels=beside
    )(x, w)
  return conv(x, w)


def conv_transpose2d(
  x: jax.Array,
  w: jax.Array,
  b: jax.Array | None = None,
  *,
  stride: Any = 1,
  padding: Any = 0,
  output_padding: Any = 0,
  dilation: Any = 1,
) -> jax.Array:
  r"""Transposed 2-D convolution ("deconvolution"), the adjoint of `conv2d`.

  Every input pixel scatters a copy of the kernel, scaled by its value, into the output:

  .. math::
    y_{n,\, s_h i + d_h u - p_{top},\, s_w j + d_w v - p_{left},\, o} \mathrel{+}=
      x_{n,i,j,c}\; w_{u,v,c,o}, \qquad y \mathrel{+}= b_o

  so with the same stride, padding and dilation it is the vector-Jacobian product of `conv2d`
  with respect to its input (kernel transposed in its channel axes). Output size per axis:
  :math:`(H - 1) s - p_{lo} - p_{hi} + d (k - 1) + \text{output\_padding} + 1`.
  Agrees with PyTorch's `torch.nn.functional.conv_transpose2d` (weight `(in, out, kh, kw)` there)
  and Caffe's Deconvolution, which FCN and the saliency networks use for learned upsampling.
  With `stride > 1` and `dilation = 1` it avoids XLA's zero-dilated formulation (see
  `_strided_transpose`); `jit`, `vmap`, `grad` and `jvp` all work.

  Args:
    x: input, shape `(N, H, W, C_in)` (NHWC).
    w: kernel, shape `(kh, kw, C_in, C_out)` (HWIO, `I` being the input of *this* op).
    b: optional bias, shape `(C_out,)`.
    stride: int or `(sh, sw)`, positive: the upsampling factor.
    padding: int, `(ph, pw)`, `((top, bottom), (left, right))` or `'VALID'` (zero): rows and
      columns cropped from the full output, as in PyTorch. `'SAME'` is not accepted (its meaning
      depends on the forward input size; use `output_padding`).
    output_padding: int or `(oh, ow)` added to the bottom/right of the output to pick among the
      input sizes a strided `conv2d` maps to the same size; each must be below
      `max(stride, dilation)` on its axis, as in PyTorch.
    dilation: int or `(dh, dw)`, spacing between kernel taps, positive.

  Returns:
    `y`, shape `(N, H_out, W_out, C_out)`.

  Raises:
    ValueError: wrong ranks, channel mismatch, non-positive stride/dilation, negative padding,
      too large an `output_padding`, or an empty output.

  Example:
    >>> x = jnp.ones((1, 4, 4, 21)); w = bilinear_kernel(4, 21)   # FCN's 2x upsampling
    >>> conv_transpose2d(x, w, stride=2, padding=1).shape
    (1, 8, 8, 21)
  """
  v.check_rank(x, 4, 'x', 'NHWC')
  v.check_rank(w, 4, 'w', 'HWIO (kh, kw, in, out)')
  v.check_not_bool(x, 'x')
  v.check_not_bool(w, 'w')
  stride = v.pair(stride, 'stride')
  dilation = v.pair(dilation, 'dilation')
  output_padding = v.pair(output_padding, 'output_padding', minimum=0)
  pads = v.explicit_padding(padding, allow_same=False)
  kh, kw, w_in, w_out = w.shape
  if w_in != x.shape[-1]:
    raise ValueError(
      f'w.shape[2]={w_in} must equal the input channels x.shape[-1]={x.shape[-1]} '
      f'(w is (kh, kw, in, out)); got w shape {tuple(w.shape)}.'
    )
  for axis in range(2):
    if output_padding[axis] >= max(stride[axis], dilation[axis]):
      raise ValueError(
        f'output_padding={output_padding} must be smaller than max(stride, dilation) = '
        f'{max(stride[axis], dilation[axis])} on axis {axis}.'
      )
  window = v.effective_window((kh, kw), dilation)
  out_hw = tuple(
    (size - 1) * s - p[0] - p[1] + k + op
    for size, s, p, k, op in zip(x.shape[1:3], stride, pads, window, output_padding)
  )
  v.check_nonempty(
    x.shape,
    out_hw,
    what='conv_transpose2d',
    details=f'kernel {(kh, kw)}, stride {stride}, padding {pads}',
  )
  _check_bias(b, w_out)
  x, w = _promote(x, w)
  geometry = _TransposeGeometry(stride, pads, output_padding, dilation, out_hw)
  if dilation == (1, 1) and max(stride) > 1:
    y = _strided_transpose(x, w, geometry)
  else:
    y = _transpose_by_dilation(x, w, geometry)
  return _add_bias(y, b)


class _TransposeGeometry(NamedTuple):
  """Static (hashable) arguments of a transposed convolution, as checked pairs."""

  stride: tuple[int, int]
  pads: tuple[tuple[int, int], tuple[int, int]]
  output_padding: tuple[int, int]
  dilation: tuple[int, int]
  out_hw: tuple[int, int]


def _transpose_by_dilation(x, w, geometry):
  """XLA's formulation: a convolution of the stride-dilated input with the flipped kernel.

  Scatter == gather with the flipped kernel over the input dilated by the stride, padded by
  (window - 1 - crop); a crop beyond window - 1 becomes a negative pad, which XLA accepts. Its
  input gradient is an ordinary strided convolution, which XLA runs well.
  """
  window = v.effective_window(w.shape[:2], geometry.dilation)
  lax_pads = [
    (k - 1 - p[0], k - 1 - p[1] + op)
    for k, p, op in zip(window, geometry.pads, geometry.output_padding)
  ]
  return lax.conv_general_dilated(
    x,
    w[::-1, ::-1],
    window_strides=(1, 1),
    padding=lax_pads,
    lhs_dilation=geometry.stride,
    rhs_dilation=geometry.dilation,
    dimension_numbers=_DIMENSION_NUMBERS,
  )


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _strided_transpose(x, w, geometry):
  """A strided, undilated transposed convolution, fast in the forward pass and both gradients.

  XLA runs a transposed convolution as a convolution over the input dilated with stride - 1
  zeros per pixel, which multiplies mostly zeros (FCN's 32x upsampling ran at ~1 GFLOP/s), and
  its kernel gradient is just as slow (benchmarks/conv_ops.py). Each part takes the fastest
  formulation: the value comes from `_transpose_by_phases`; the JVP is
  `_transpose_by_dilation(dx, w) + _transpose_by_blocks(x, dw)`, both linear in the tangent, and
  reverse mode transposes them into a strided convolution (input gradient) and m*m matmuls
  (kernel gradient). Forward mode still works (at XLA's speed).
  """
  return _transpose_by_phases(x, w, geometry.stride, geometry.pads, geometry.out_hw)


@functools.partial(_strided_transpose.defjvp, symbolic_zeros=True)
def _strided_transpose_jvp(geometry, primals, tangents):
  x, w = primals
  dx, dw = tangents
  y = _transpose_by_phases(x, w, geometry.stride, geometry.pads, geometry.out_hw)
  dy = jnp.zeros_like(y)
  if not isinstance(dx, SymbolicZero):
    dy = dy + _transpose_by_dilation(dx, w, geometry)
  if not isinstance(dw, SymbolicZero):
    dy = dy + _transpose_by_blocks(x, dw, geometry.stride, geometry.pads, geometry.out_hw)
  return y, dy


def _blocks(kernel_hw, stride):
  return tuple(-(-k // s) for k, s in zip(kernel_hw, stride))


def _blocked_kernel(w, stride):
  """w zero-padded to m*s taps per axis (m = ceil(k / s)), as (mh, sh, mw, sw, in, out) blocks."""
  (sh, sw), (kh, kw) = stride, w.shape[:2]
  mh, mw = _blocks((kh, kw), stride)
  w = jnp.pad(w, ((0, mh * sh - kh), (0, mw * sw - kw), (0, 0), (0, 0)))
  return w.reshape(mh, sh, mw, sw, *w.shape[2:])


def _crop_full_map(y, pads, out_hw):
  """Crops the scattered map to the output; output_padding past its end reads zeros."""
  (top, _), (left, _) = pads
  extra_h = max(top + out_hw[0] - y.shape[1], 0)
  extra_w = max(left + out_hw[1] - y.shape[2], 0)
  y = jnp.pad(y, ((0, 0), (0, extra_h), (0, extra_w), (0, 0)))
  return y[:, top : top + out_hw[0], left : left + out_hw[1]]


def _transpose_by_phases(x, w, stride, pads, out_hw):
  """The transposed convolution as one dense stride-1 convolution plus depth-to-space.

  Output row i*s + r (phase r) only meets kernel taps a*s + r, so all s*s phases are one
  convolution of the undilated input with an (m, m) kernel whose output channels are (phase
  row, phase column, out); depth-to-space then interleaves the phases. Tap a*s + r of input
  pixel i - a lands on row i*s + r, so the kernel blocks are flipped and the input padded by
  m - 1 on both sides ("full" correlation).
  """
  (sh, sw), (mh, mw) = stride, _blocks(w.shape[:2], stride)
  n, height, width, c_in = x.shape
  c_out = w.shape[-1]
  phases = _blocked_kernel(w, stride)[::-1, :, ::-1]  # (mh, sh, mw, sw, in, out)
  phases = jnp.transpose(phases, (0, 2, 4, 1, 3, 5)).reshape(mh, mw, c_in, sh * sw * c_out)
  y = lax.conv_general_dilated(
    x, phases, (1, 1), [(mh - 1, mh - 1), (mw - 1, mw - 1)], dimension_numbers=_DIMENSION_NUMBERS
  )
  full_h, full_w = height + mh - 1, width + mw - 1
  y = y.reshape(n, full_h, full_w, sh, sw, c_out)
  y = jnp.transpose(y, (0, 1, 3, 2, 4, 5)).reshape(n, full_h * sh, full_w * sw, c_out)
  return _crop_full_map(y, pads, out_hw)


def _transpose_by_blocks(x, w, stride, pads, out_hw):
  """The same map as m*m matmuls and an overlap-add (only its transpose is used: dw).

  Kernel block (a, b) scatters input pixel (i, j) into output block (i + a, j + b) of s x s
  pixels; transposed, it is dw_blocks[a, b] = sum_ij x[i, j] (outer) dy_blocks[i + a, j + b].
  """
  (sh, sw), (mh, mw) = stride, _blocks(w.shape[:2], stride)
  n, height, width, _ = x.shape
  w_blocks = _blocked_kernel(w, stride)
  full = 0
  for a in range(mh):
    for b in range(mw):
      block = jnp.einsum('nhwc,rqco->nhrwqo', x, w_blocks[a, :, b])
      full = full + jnp.pad(
        block, ((0, 0), (a, mh - 1 - a), (0, 0), (b, mw - 1 - b), (0, 0), (0, 0))
      )
  full = full.reshape(n, (height + mh - 1) * sh, (width + mw - 1) * sw, w.shape[-1])
  return _crop_full_map(full, pads, out_hw)


def atrous_conv2d(
  x: jax.Array, w: jax.Array, b: jax.Array | None = None, *, rate: Any, padding: Any = 'SAME'
) -> jax.Array:
  r"""Atrous (dilated) convolution: `conv2d` with `rate - 1` holes between kernel taps.

  .. math::
    y_{n,i,j,o} = b_o + \sum_{u,v,c} \tilde x_{n,\, i + r u,\, j + r v,\, c}\; w_{u,v,c,o}

  equal to `conv2d` with the kernel whose taps are spread `rate` apart with zeros in between
  (DeepLab's "algorithme a trous"). With the default `'SAME'` padding the spatial size is kept,
  which is how DeepLab enlarges the field of view without losing resolution. Agrees with
  TensorFlow's `tf.nn.atrous_conv2d` and `torch.nn.functional.conv2d(..., dilation=rate)`.

  Args:
    x: input, shape `(N, H, W, C)` (NHWC).
    w: kernel, shape `(kh, kw, C, O)` (HWIO).
    b: optional bias, shape `(O,)`.
    rate: int or `(rh, rw)`, positive; `rate=1` is an ordinary convolution.
    padding: any padding form of `conv2d`; `'SAME'` by default.

  Returns:
    `y`, shape `(N, H_out, W_out, O)` (`(N, H, W, O)` for `'SAME'`).

  Example:
    >>> x = jnp.ones((1, 33, 33, 8)); w = jnp.ones((3, 3, 8, 4))
    >>> atrous_conv2d(x, w, rate=12).shape     # DeepLab-LargeFOV's fc6
    (1, 33, 33, 4)
  """
  v.pair(rate, 'rate')
  return conv2d(x, w, b, stride=1, padding=padding, dilation=rate)
