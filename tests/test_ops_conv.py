"""jaxseg.ops.conv2d / conv_transpose2d / atrous_conv2d against naive NumPy loops and PyTorch.

The grids are all-pairs subsets (tests/numpy_reference.pairwise_cases) of the Cartesian product
of kernel size 1..7 (odd, even, non-square), stride 1..3, every padding form, dilation 1..4 and
groups 1, 2 and depthwise: every value of every axis meets every value of every other axis.
"""

from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax import test_util as jtu

import numpy_reference as ref
from jaxseg import ops
from jaxseg.ops import conv as conv_module

TOL = 1e-5  # max-norm relative error, float32 vs float64 loops
CHANNELS = 4

CONV_AXES = dict(
  kernel=[1, 2, 3, 4, 5, 6, 7, (2, 5)],
  stride=[1, 2, 3, (1, 2)],
  padding=[0, 1, 2, (1, 2), ((0, 2), (1, 0)), 'SAME', 'VALID'],
  dilation=[1, 2, 3, 4, (2, 1)],
  groups=['1', '2', 'depthwise'],
)
CONV_CASES = ref.pairwise_cases(CONV_AXES, seed=0)

TRANSPOSE_AXES = dict(
  kernel=[1, 2, 3, 4, 5, 6, 7, (3, 2)],
  stride=[1, 2, 3, (2, 1)],
  padding=[0, 1, 2, (1, 0), ((0, 1), (2, 1)), 'VALID'],
  dilation=[1, 2, 3, 4],
  output_padding=['none', 'max'],
)


def _transpose_valid(case):
  kh, kw = ref.as_pair(case['kernel'])
  (pt, pb), (pl, pr) = ref.explicit_pads(case['padding'], None, None, None)
  d = case['dilation']
  # Output of a 2-pixel input must be non-empty on both axes.
  sh, sw = ref.as_pair(case['stride'])
  return (sh + d * (kh - 1) + 1 - pt - pb >= 1) and (sw + d * (kw - 1) + 1 - pl - pr >= 1)


TRANSPOSE_CASES = ref.pairwise_cases(TRANSPOSE_AXES, valid=_transpose_valid, seed=1)


def _case_id(case):
  return '-'.join(f'{k}={v}'.replace(' ', '') for k, v in case.items())


def conv_problem(case):
  """Random x, w, b and conv2d kwargs for a grid case; the input is sized so output >= 1."""
  kh, kw = ref.as_pair(case['kernel'])
  sh, sw = ref.as_pair(case['stride'])
  dh, dw = ref.as_pair(case['dilation'])
  groups = {'1': 1, '2': 2, 'depthwise': CHANNELS}[case['groups']]
  out_ch = 2 * CHANNELS if groups == CHANNELS else 6  # depthwise: channel multiplier 2
  height = dh * (kh - 1) + 1 + sh + 2
  width = dw * (kw - 1) + 1 + sw + 1
  rng = np.random.default_rng(len(CONV_CASES) + kh * 7 + kw + 31 * sh + 101 * dh)
  x = rng.standard_normal((2, height, width, CHANNELS)).astype(np.float32)
  w = rng.standard_normal((kh, kw, CHANNELS // groups, out_ch)).astype(np.float32)
  b = rng.standard_normal((out_ch,)).astype(np.float32)
  kwargs = dict(
    stride=case['stride'], padding=case['padding'], dilation=case['dilation'], groups=groups
  )
  return x, w, b, kwargs


def transpose_problem(case):
  kh, kw = ref.as_pair(case['kernel'])
  stride = ref.as_pair(case['stride'])
  dilation = case['dilation']
  output_padding = (
    (0, 0) if case['output_padding'] == 'none' else tuple(max(s, dilation) - 1 for s in stride)
  )
  rng = np.random.default_rng(kh * 7 + kw + 31 * stride[0] + 101 * dilation)
  x = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
  w = rng.standard_normal((kh, kw, 3, 5)).astype(np.float32)
  b = rng.standard_normal((5,)).astype(np.float32)
  kwargs = dict(
    stride=case['stride'], padding=case['padding'], dilation=dilation, output_padding=output_padding
  )
  return x, w, b, kwargs


def test_grids_cover_every_value():
  for axes, cases in ((CONV_AXES, CONV_CASES), (TRANSPOSE_AXES, TRANSPOSE_CASES)):
    for name, values in axes.items():
      assert {repr(c[name]) for c in cases} == {repr(v) for v in values}, name
  assert len(CONV_CASES) < 80 and len(TRANSPOSE_CASES) < 60  # affordable


@pytest.mark.parametrize('case', CONV_CASES, ids=_case_id)
def test_conv2d_matches_numpy_loops(case):
  x, w, b, kwargs = conv_problem(case)
  actual = ops.conv2d(x, w, b, **kwargs)
  assert ref.relative_error(actual, ref.conv2d(x, w, b, **kwargs)) < TOL


@pytest.mark.parametrize('case', TRANSPOSE_CASES, ids=_case_id)
def test_conv_transpose2d_matches_numpy_scatter(case):
  x, w, b, kwargs = transpose_problem(case)
  actual = ops.conv_transpose2d(x, w, b, **kwargs)
  assert ref.relative_error(actual, ref.conv_transpose2d(x, w, b, **kwargs)) < TOL


@pytest.mark.parametrize('case', [c for c in CONV_CASES if c['groups'] == '1'], ids=_case_id)
def test_conv_transpose2d_is_vjp_of_conv2d(case):
  """conv_transpose2d(dy, w with in/out swapped) == d<conv2d(x, w), dy>/dx (groups=1)."""
  x, w, _, kwargs = conv_problem(case)
  kwargs.pop('groups')
  y, vjp = jax.vjp(lambda x_: ops.conv2d(x_, w, **kwargs), x)
  dy = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
  (expected,) = vjp(dy)
  # The transposed conv's output_padding recovers the rows a strided conv2d never reached.
  kh, kw = w.shape[:2]
  stride, dilation = ref.as_pair(kwargs['stride']), ref.as_pair(kwargs['dilation'])
  ext = [d * (k - 1) + 1 for k, d in zip((kh, kw), dilation)]
  pads = ref.explicit_pads(kwargs['padding'], x.shape[1:3], ext, stride)
  output_padding = tuple(
    size + p[0] + p[1] - ((o - 1) * s + e)
    for size, p, o, s, e in zip(x.shape[1:3], pads, y.shape[1:3], stride, ext)
  )
  actual = ops.conv_transpose2d(
    dy,
    np.swapaxes(w, 2, 3),
    stride=stride,
    padding=pads,
    output_padding=output_padding,
    dilation=dilation,
  )
  assert ref.relative_error(actual, expected) < TOL


def _torch_nchw(a):
  torch = pytest.importorskip('torch')
  return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))


@pytest.mark.parametrize('case', CONV_CASES, ids=_case_id)
def test_conv2d_matches_torch(case):
  torch = pytest.importorskip('torch')
  x, w, b, kwargs = conv_problem(case)
  kh, kw = w.shape[:2]
  stride, dilation = ref.as_pair(kwargs['stride']), ref.as_pair(kwargs['dilation'])
  ext = [d * (k - 1) + 1 for k, d in zip((kh, kw), dilation)]
  (pt, pb), (pl, pr) = ref.explicit_pads(kwargs['padding'], x.shape[1:3], ext, stride)
  # torch pads symmetrically only: pad explicitly (any form), then convolve unpadded.
  x_t = torch.nn.functional.pad(_torch_nchw(x), (pl, pr, pt, pb))
  w_t = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))  # OIHW
  expected = torch.nn.functional.conv2d(
    x_t, w_t, torch.from_numpy(b), stride=stride, dilation=dilation, groups=kwargs['groups']
  )
  actual = ops.conv2d(x, w, b, **kwargs)
  assert ref.relative_error(actual, np.moveaxis(expected.numpy(), 1, -1)) < TOL


@pytest.mark.parametrize('case', TRANSPOSE_CASES, ids=_case_id)
def test_conv_transpose2d_matches_torch(case):
  torch = pytest.importorskip('torch')
  x, w, b, kwargs = transpose_problem(case)
  (pt, pb), (pl, pr) = ref.explicit_pads(kwargs['padding'], None, None, None)
  w_t = torch.from_numpy(np.ascontiguousarray(w.transpose(2, 3, 0, 1)))  # (in, out, kh, kw)
  symmetric = pt == pb and pl == pr
  expected = torch.nn.functional.conv_transpose2d(
    _torch_nchw(x),
    w_t,
    torch.from_numpy(b),
    stride=kwargs['stride'],
    padding=(pt, pl) if symmetric else 0,
    output_padding=kwargs['output_padding'],
    dilation=kwargs['dilation'],
  )
  expected = np.moveaxis(expected.numpy(), 1, -1)
  if not symmetric:  # torch crops symmetrically only: crop its uncropped output ourselves.
    expected = expected[:, pt : expected.shape[1] - pb, pl : expected.shape[2] - pr]
  actual = ops.conv_transpose2d(x, w, b, **kwargs)
  assert ref.relative_error(actual, expected) < TOL


def _lax_transpose_reference(x, w, *, stride, padding, output_padding):
  """XLA's plain formulation (dilated input, flipped kernel), to check the fast path's rules."""
  (kh, kw), stride = w.shape[:2], ref.as_pair(stride)
  (pt, pb), (pl, pr) = ref.explicit_pads(padding, None, None, None)
  oph, opw = ref.as_pair(output_padding)
  return lax.conv_general_dilated(
    x,
    w[::-1, ::-1],
    (1, 1),
    [(kh - 1 - pt, kh - 1 - pb + oph), (kw - 1 - pl, kw - 1 - pr + opw)],
    lhs_dilation=stride,
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
  )


# The strided, undilated geometries (the fast path): FCN's x2 and x8, a kernel that is not a
# multiple of the stride with asymmetric padding, a stride of 1 on one axis.
FAST_TRANSPOSE_CASES = [
  dict(kernel=4, stride=2, padding=1, dilation=1, output_padding='none'),
  dict(kernel=16, stride=8, padding=4, dilation=1, output_padding='max'),
  dict(kernel=5, stride=3, padding=((0, 1), (2, 1)), dilation=1, output_padding='max'),
  dict(kernel=(3, 2), stride=(2, 1), padding=(1, 0), dilation=1, output_padding='max'),
]


@pytest.mark.parametrize('case', FAST_TRANSPOSE_CASES, ids=_case_id)
def test_conv_transpose2d_fast_path_derivatives(case):
  """Strided transposed convs have hand-written derivative rules: check VJP and JVP."""
  x, w, _, kwargs = transpose_problem(case)
  kwargs.pop('dilation')
  ours = jax.jit(lambda x_, w_: ops.conv_transpose2d(x_, w_, **kwargs))
  theirs = jax.jit(lambda x_, w_: _lax_transpose_reference(x_, w_, **kwargs))
  y, vjp = jax.vjp(ours, x, w)
  y_ref, vjp_ref = jax.vjp(theirs, x, w)
  assert ref.relative_error(y, y_ref) < TOL
  rng = np.random.default_rng(8)
  dy = rng.standard_normal(y.shape).astype(np.float32)
  for got, expected in zip(vjp(dy), vjp_ref(dy)):
    assert ref.relative_error(got, expected) < TOL
  tangents = (
    rng.standard_normal(x.shape).astype(np.float32),
    rng.standard_normal(w.shape).astype(np.float32),
  )
  _, jvp_out = jax.jvp(ours, (x, w), tangents)
  _, jvp_ref = jax.jvp(theirs, (x, w), tangents)
  assert ref.relative_error(jvp_out, jvp_ref) < TOL


@pytest.mark.parametrize('rate', [1, 2, 3, 4, (2, 3)])
@pytest.mark.parametrize('padding', ['SAME', 'VALID', 2, ((1, 3), (0, 2))])
def test_atrous_equals_conv2d_with_zero_inserted_kernel(rate, padding):
  rng = np.random.default_rng(7)
  x = rng.standard_normal((2, 13, 12, 3)).astype(np.float32)
  w = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
  rh, rw = ref.as_pair(rate)
  holes = np.zeros((rh * 2 + 1, rw * 1 + 1, 3, 4), np.float32)  # r - 1 zeros between taps
  holes[::rh, ::rw] = w
  expected = ops.conv2d(x, holes, padding=padding)
  if padding == 'SAME':  # 'SAME' pads by the dilated extent either way: same output size.
    assert expected.shape[1:3] == x.shape[1:3]
  actual = ops.atrous_conv2d(x, w, rate=rate, padding=padding)
  assert ref.relative_error(actual, expected) < TOL
  assert ref.relative_error(actual, ref.conv2d(x, w, padding=padding, dilation=rate)) < TOL


@pytest.mark.parametrize('stride', [1, 2, 3])
@pytest.mark.parametrize('padding', [0, 1, 'SAME'])
def test_pointwise_lowering_matches_lax_forward_and_gradients(stride, padding):
  """1x1 convs run as a matmul (see benchmarks/conv_ops.py); they must equal lax's conv."""
  rng = np.random.default_rng(11)
  x = rng.standard_normal((2, 7, 8, 5)).astype(np.float32)
  w = rng.standard_normal((1, 1, 5, 6)).astype(np.float32)
  pads = ref.explicit_pads(padding, x.shape[1:3], (1, 1), (stride, stride))

  def lax_conv(x_, w_):
    return lax.conv_general_dilated(
      x_, w_, (stride, stride), pads, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
    )

  def ours(x_, w_):
    return ops.conv2d(x_, w_, stride=stride, padding=padding)

  y, vjp = jax.vjp(ours, x, w)
  y_lax, vjp_lax = jax.vjp(lax_conv, x, w)
  assert ref.relative_error(y, y_lax) < TOL
  dy = rng.standard_normal(y.shape).astype(np.float32)
  for got, expected in zip(vjp(dy), vjp_lax(dy)):
    assert ref.relative_error(got, expected) < TOL


def _assert_matches_lax(ours, lax_conv, x, w, rng, *, forward_mode=True):
  """`ours` equals `lax_conv` in value, both reverse-mode gradients and (optionally) a jvp.

  Returns our value and the output cotangent drawn for the gradients.
  """
  y_lax = lax_conv(x, w)
  dy = rng.standard_normal(y_lax.shape).astype(np.float32)
  forward_and_back = lambda f: jax.jit(lambda x_, w_: (f(x_, w_), jax.vjp(f, x_, w_)[1](dy)))
  (y, grads), (_, grads_lax) = forward_and_back(ours)(x, w), forward_and_back(lax_conv)(x, w)
  assert y.shape == y_lax.shape
  assert ref.relative_error(y, y_lax) < TOL
  for got, expected in zip(grads, grads_lax):
    assert ref.relative_error(got, expected) < TOL
  if forward_mode:
    tangents = (rng.standard_normal(x.shape).astype(np.float32), w / 3)
    _, jvp = jax.jit(lambda: jax.jvp(ours, (x, w), tangents))()
    _, jvp_lax = jax.jit(lambda: jax.jvp(lax_conv, (x, w), tangents))()
    assert ref.relative_error(jvp, jvp_lax) < TOL
  return y, dy


@pytest.mark.parametrize(
  'kernel,rate,padding,size',
  [
    (3, 12, 'SAME', (9, 8)),  # off-centre taps read only padding: skipped
    (3, 4, 'SAME', (7, 9)),  # partly inside: cropped windows
    ((2, 5), (4, 3), ((0, 2), (3, 1)), (6, 11)),  # uneven kernel, rates and padding
    (3, (5, 1), 5, (7, 6)),  # dilated along one axis only
    (5, 3, 'SAME', (6, 7)),
  ],
)
def test_dilated_lowering_matches_lax_forward_and_gradients(kernel, rate, padding, size):
  """Stride-1 atrous convs run as one matmul per tap that reads the image (see the lowering)."""
  rng = np.random.default_rng(13)
  kh, kw = ref.as_pair(kernel)
  x = rng.standard_normal((2, *size, 5)).astype(np.float32)
  w = rng.standard_normal((kh, kw, 5, 6)).astype(np.float32)
  dilation = ref.as_pair(rate)
  window = tuple(d * (k - 1) + 1 for d, k in zip(dilation, (kh, kw)))
  pads = ref.explicit_pads(padding, size, window, (1, 1))

  def lax_conv(x_, w_):
    return lax.conv_general_dilated(
      x_, w_, (1, 1), pads, rhs_dilation=dilation, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
    )

  def ours(x_, w_):
    return ops.conv2d(x_, w_, padding=padding, dilation=rate)

  assert 'conv_general_dilated' not in _primitives(ours, x, w)  # mostly padding: the taps
  y, _ = _assert_matches_lax(ours, lax_conv, x, w, rng, forward_mode=False)
  assert ref.relative_error(ref.conv2d(x, w, padding=padding, dilation=rate), y) < TOL


def test_dilated_lowering_skips_taps_that_read_only_padding():
  """Rate 36 on a 32x32 map ('SAME'): only the centre tap reads the image, so one matmul.

  Rate 24 keeps all nine taps (each reads an 8-pixel border band; 25% of the products read the
  image), rate 12 too (56%); at rate 2 (92%) XLA's convolution stays.
  """
  w = jnp.ones((3, 3, 4, 2))
  for rate, expected_matmuls in ((36, 1), (24, 9), (12, 9), (2, 0)):
    conv = lambda x_, w_, rate=rate: ops.atrous_conv2d(x_, w_, rate=rate)
    names = _primitive_names(conv, jnp.ones((1, 32, 32, 4)), w)
    assert names.count('dot_general') == expected_matmuls
    assert ('conv_general_dilated' in names) == (expected_matmuls == 0)
  x = np.random.default_rng(14).standard_normal((1, 32, 32, 4)).astype(np.float32)
  centre_only = np.einsum('nhwc,co->nhwo', x, np.asarray(w[1, 1]))
  assert ref.relative_error(ops.atrous_conv2d(x, w, rate=36), centre_only) < TOL


def _stride_one_case(rng, x_shape, kernel, padding, *, features):
  """Random `x` and `w` of a stride-1 `conv2d`, with lax's convolution and ours as functions."""
  kh, kw = ref.as_pair(kernel)
  x = rng.standard_normal(x_shape).astype(np.float32)
  w = rng.standard_normal((kh, kw, x_shape[-1], features)).astype(np.float32)
  pads = ref.explicit_pads(padding, x.shape[1:3], (kh, kw), (1, 1))

  def lax_conv(x_, w_):
    return lax.conv_general_dilated(
      x_, w_, (1, 1), pads, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
    )

  def ours(x_, w_):
    return ops.conv2d(x_, w_, padding=padding)

  return x, w, lax_conv, ours


def test_kernel_gradient_by_taps_matches_lax(monkeypatch, kernel=(2, 4), padding=((0, 2), (3, 1))):
  """Stride-1 convs past the cache threshold take dw as one matmul per tap, equal to lax's.

  Value, input gradient and kernel gradient equal lax's convolution; the kernel gradient holds
  one matmul per tap and no convolution; forward mode (jvp) still works. The threshold is
  lowered so that a small case takes the path (the routing itself is the next test's).
  """
  monkeypatch.setattr(conv_module, '_LAST_LEVEL_CACHE_BYTES', 1)
  rng = np.random.default_rng(15)
  kh, kw = ref.as_pair(kernel)
  x, w, lax_conv, ours = _stride_one_case(rng, (2, 13, 14, 3), kernel, padding, features=5)
  _, dy = _assert_matches_lax(ours, lax_conv, x, w, rng)
  grad_w = lambda w_: jax.vjp(lambda w__: ours(x, w__), w_)[1](dy)[0]
  names = _primitive_names(grad_w, w)
  assert names.count('dot_general') == kh * kw
  assert names.count('conv_general_dilated') == 1  # the value's; lax's dw would be a second


@pytest.mark.parametrize(
  'x_shape, kernel, features, dtype, backend, by_taps',
  [
    # x and dy hold 2 x 4 Mi float32 values: exactly 32 MiB, the threshold.
    ((1, 256, 256, 64), (3, 3), 64, jnp.float32, 'cpu', True),
    ((1, 256, 256, 64), (3, 3), 63, jnp.float32, 'cpu', False),  # just below
    ((4, 224, 224, 3), (3, 3), 64, jnp.float32, 'cpu', True),  # VGG's first layer
    ((1, 256, 256, 64), (3, 3), 64, jnp.bfloat16, 'cpu', False),  # half the bytes
    ((2, 256, 256, 64), (5, 5), 64, jnp.float32, 'cpu', False),  # 25 taps: XLA's wins
    ((2, 256, 256, 64), (3, 3), 64, jnp.float32, 'gpu', False),  # only XLA:CPU's kernel
  ],
)
def test_kernel_gradient_by_taps_routes_past_the_cache(
  monkeypatch, x_shape, kernel, features, dtype, backend, by_taps
):
  """The tap kernel gradient is taken where x and dy outgrow 32 MiB, up to 9 taps, on CPUs.

  Traced for another backend the kernel gradient is XLA's convolution (GPUs keep cuDNN's).
  """
  monkeypatch.setattr(jax, 'default_backend', lambda: backend)
  x = jax.ShapeDtypeStruct(x_shape, dtype)
  w = jax.ShapeDtypeStruct((*kernel, x_shape[-1], features), dtype)
  # A fresh function per case: make_jaxpr caches by function identity.
  grad_w = lambda x_, w_: jax.grad(lambda w__: ops.conv2d(x_, w__, padding='SAME').sum())(w_)
  names = _primitive_names(grad_w, x, w)
  if by_taps:
    assert names.count('dot_general') == kernel[0] * kernel[1]
    assert names.count('conv_general_dilated') == 1
  else:
    assert names.count('conv_general_dilated') == 2 and 'dot_general' not in names


@pytest.mark.parametrize(
  'kernel, stride, padding, dilation',
  [((3, 3), 1, 1, 1), ((2, 4), (1, 2), ((0, 2), (3, 1)), 1), ((3, 2), 2, 'SAME', (2, 1))],
)
def test_patch_matmul_matches_lax(monkeypatch, kernel, stride, padding, dilation):
  """Kernel-bound convs run as one matmul of the patches; value and both derivatives as lax's.

  The cache threshold is lowered so that a small case takes the path (the routing itself is
  the next test's); the output has fewer pixels than channels, as the rule asks.
  """
  monkeypatch.setattr(conv_module, '_LAST_LEVEL_CACHE_BYTES', 1)
  rng = np.random.default_rng(16)
  kh, kw = ref.as_pair(kernel)
  x = rng.standard_normal((2, 6, 7, 3)).astype(np.float32)
  w = rng.standard_normal((kh, kw, 3, 90)).astype(np.float32)
  stride_, dilation_ = ref.as_pair(stride), ref.as_pair(dilation)
  extent = tuple(d * (k - 1) + 1 for d, k in zip(dilation_, (kh, kw)))
  pads = ref.explicit_pads(padding, x.shape[1:3], extent, stride_)

  def lax_conv(x_, w_):
    return lax.conv_general_dilated(
      x_, w_, stride_, pads, rhs_dilation=dilation_, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
    )

  def ours(x_, w_):
    return ops.conv2d(x_, w_, stride=stride, padding=padding, dilation=dilation)

  names = _primitive_names(ours, x, w)
  assert names.count('dot_general') == 1 and 'conv_general_dilated' not in names
  y, _ = _assert_matches_lax(ours, lax_conv, x, w, rng)
  assert y.shape[0] * y.shape[1] * y.shape[2] <= w.shape[-1]

  # The patch matrix built column taps first (a population's shared input): the same map.
  def column_taps_first(x_, w_):
    return conv_module._conv_by_patches(  # pylint: disable=protected-access
      x_, w_, stride_, pads, dilation_, column_taps_first=True
    )

  _assert_matches_lax(column_taps_first, lax_conv, x, w, rng)
  reference = ref.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
  assert ref.relative_error(reference, y) < TOL


@pytest.mark.parametrize(
  'kernel, padding, channels',
  [
    (5, 0, 6),  # LeNet-5's second layer
    (3, 1, 1),
    ((2, 4), ((0, 2), (3, 1)), 8),  # uneven kernel and padding, the most channels routed
  ],
)
def test_input_gradient_by_patches_matches_lax(kernel, padding, channels):
  """Few input channels: dx is the patch matmul's transpose (col2im), equal to lax's.

  Value, both gradients and a jvp equal lax's convolution; the input gradient holds one matmul
  and no convolution, the kernel gradient stays XLA's.
  """
  rng = np.random.default_rng(19)
  x, w, lax_conv, ours = _stride_one_case(rng, (3, 11, 12, channels), kernel, padding, features=7)
  y, dy = _assert_matches_lax(ours, lax_conv, x, w, rng)
  assert ref.relative_error(ref.conv2d(x, w, padding=padding), y) < TOL
  grad_x = lambda x_: jax.vjp(lambda x__: ours(x__, w), x_)[1](dy)[0]
  names = _primitive_names(grad_x, x)
  assert names.count('dot_general') == 1
  assert names.count('conv_general_dilated') == 1  # the value's; lax's dx would be a second
  grad_w = lambda w_: jax.vjp(lambda w__: ours(x, w__), w_)[1](dy)[0]
  assert 'dot_general' not in _primitive_names(grad_w, w)


@pytest.mark.parametrize(
  'x_shape, channels_note, stride, dilation, backend, by_patches',
  [
    # 2x2 kernel over 8 channels: a patch row is 128 bytes; 512x512 rows are exactly 32 MiB.
    ((1, 513, 513, 8), 'at the threshold', 1, 1, 'cpu', True),
    ((1, 514, 513, 8), 'one row of outputs more', 1, 1, 'cpu', False),
    ((1, 9, 9, 9), 'nine channels', 1, 1, 'cpu', False),
    ((1, 9, 9, 8), 'strided', 2, 1, 'cpu', False),
    ((1, 9, 9, 8), 'dilated', 1, 2, 'cpu', False),
    ((1, 9, 9, 8), 'an accelerator', 1, 1, 'gpu', False),
  ],
)
def test_input_gradient_by_patches_routes_few_channels_below_the_cache(
  monkeypatch, x_shape, channels_note, stride, dilation, backend, by_patches
):
  del channels_note  # the case's name
  monkeypatch.setattr(jax, 'default_backend', lambda: backend)
  x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
  w = jax.ShapeDtypeStruct((2, 2, x_shape[-1], 4), jnp.float32)

  def grad_x(x_, w_):  # a fresh function per case: make_jaxpr caches by function identity
    conv = lambda x__: ops.conv2d(x__, w_, stride=stride, dilation=dilation)  # noqa: E731
    return jax.grad(lambda x__: jnp.sum(conv(x__)))(x_)

  names = _primitive_names(grad_x, x, w)
  assert names.count('dot_general') == int(by_patches)
  assert names.count('conv_general_dilated') == 2 - int(by_patches)


@pytest.mark.parametrize(
  'x_shape, features, dtype, backend, by_patches',
  [
    # A 2x2 kernel 2048 -> 1024: exactly 32 MiB of float32 (the threshold).
    ((1, 3, 3, 2048), 1024, jnp.float32, 'cpu', True),  # 4 output pixels
    ((1, 33, 33, 2048), 1024, jnp.float32, 'cpu', True),  # 1024 pixels: as many as channels
    ((1, 34, 33, 2048), 1024, jnp.float32, 'cpu', False),  # 1056 pixels: more
    ((1, 3, 3, 2048), 1023, jnp.float32, 'cpu', False),  # a kernel just below the cache
    ((1, 3, 3, 2048), 1024, jnp.bfloat16, 'cpu', False),  # half the bytes
    ((1, 3, 3, 2048), 1024, jnp.float32, 'gpu', False),  # only XLA:CPU's repacking
  ],
)
def test_patch_matmul_routes_kernel_bound_convolutions(
  monkeypatch, x_shape, features, dtype, backend, by_patches
):
  """One patch matmul where the kernel fills the cache and outnumbers the output pixels, on CPUs."""
  monkeypatch.setattr(jax, 'default_backend', lambda: backend)
  x = jax.ShapeDtypeStruct(x_shape, dtype)
  w = jax.ShapeDtypeStruct((2, 2, x_shape[-1], features), dtype)
  # A fresh function per case: make_jaxpr caches by function identity.
  names = _primitive_names(lambda x_, w_: ops.conv2d(x_, w_, padding='VALID'), x, w)
  assert ('conv_general_dilated' not in names) == by_patches
  assert names.count('dot_general') == int(by_patches)


def test_fcn_fc6_runs_as_a_patch_matmul():
  """FCN-8s's fc6 at the benchmark's size (2 x 8x8, 7x7 'SAME', 512 -> 4096) on XLA:CPU."""
  x = jax.ShapeDtypeStruct((2, 8, 8, 512), jnp.float32)
  w = jax.ShapeDtypeStruct((7, 7, 512, 4096), jnp.float32)
  names = _primitive_names(lambda x_, w_: ops.conv2d(x_, w_, padding=3), x, w)
  assert names.count('dot_general') == 1 and 'conv_general_dilated' not in names


def test_dtypes_promote_as_jax_says_and_bfloat16_stays():
  # Mixed dtypes follow JAX's promotion mode, as jnp operations do: standard promotes, strict
  # (the test suite's) raises.
  x = np.ones((1, 5, 5, 2), np.float32)
  w = np.ones((3, 3, 2, 4), np.float32)
  for op in (
    lambda a, b: ops.conv2d(a, b),
    lambda a, b: ops.conv2d(a, b[:1, :1]),
    lambda a, b: ops.conv_transpose2d(a, b[..., :2], stride=2),
  ):
    with jax.numpy_dtype_promotion('standard'):
      assert op(x.astype(jnp.bfloat16), w).dtype == jnp.float32
    with jax.numpy_dtype_promotion('strict'), pytest.raises(jax.dtypes.TypePromotionError):
      op(x.astype(jnp.bfloat16), w)
    assert op(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)).dtype == jnp.bfloat16
  np.testing.assert_array_equal(
    ops.conv2d(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)), np.full((1, 3, 3, 4), 18.0)
  )


def test_lecture_worked_example():
  """The lecture's 5x5x3 input, padding 1, two 3x3x3 filters, stride 2 -> 3x3x2.

  The slide's second map comes out exactly, which pins the conventions (cross-correlation, HWIO
  layout, padding 1 on every side, stride 2). Its first map cannot be reproduced from the
  inputs the slide prints: the explicit loop below, written from the slide's own definition,
  gives [[5,-4,5],[6,10,7],[12,2,7]] for w0 and b0 = 1, so the slide's first map must have been
  computed from values other than those it shows. We assert the map the definition gives.
  """
  x = np.stack(
    [
      [[1, 2, 1, 0, 2], [2, 1, 1, 2, 2], [1, 2, 0, 1, 0], [2, 0, 1, 0, 2], [1, 2, 2, 0, 1]],
      [[2, 0, 1, 2, 0], [1, 1, 1, 1, 2], [1, 2, 2, 1, 0], [0, 1, 1, 2, 0], [2, 1, 0, 2, 0]],
      [[2, 1, 0, 2, 1], [2, 1, 2, 2, 2], [1, 2, 1, 0, 1], [2, 2, 1, 1, 0], [1, 0, 0, 1, 1]],
    ],
    axis=-1,
  ).astype(np.float32)
  w0 = np.stack(
    [
      [[-1, 1, -1], [-1, 0, 1], [0, 1, -1]],
      [[1, -1, 1], [0, 1, -1], [1, -1, 1]],
      [[0, 1, 1], [1, 1, 0], [1, -1, -1]],
    ],
    axis=-1,
  )
  w1 = np.stack(
    [
      [[1, -1, 1], [0, 0, 0], [1, 0, -1]],
      [[1, 1, 1], [-1, 0, -1], [0, -1, -1]],
      [[-1, -1, 0], [-1, 1, -1], [0, 0, 0]],
    ],
    axis=-1,
  )
  w = np.stack([w0, w1], axis=-1).astype(np.float32)  # (3, 3, 3, 2) HWIO
  b = np.array([1.0, 0.0], np.float32)
  y = np.asarray(ops.conv2d(x[None], w, b, stride=2, padding=1))[0]
  assert y.shape == (3, 3, 2)
  np.testing.assert_array_equal(y[:, :, 1], [[-2, -8, -3], [-5, -5, -1], [-3, -4, -3]])
  # The explicit loop from the slide's definition, independent of every library.
  padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
  loop = np.zeros((3, 3))
  for i in range(3):
    for j in range(3):
      loop[i, j] = np.sum(padded[2 * i : 2 * i + 3, 2 * j : 2 * j + 3, :] * w0) + 1
  np.testing.assert_array_equal(loop, [[5, -4, 5], [6, 10, 7], [12, 2, 7]])
  np.testing.assert_array_equal(y[:, :, 0], loop)


# ---------------------------------------------------------------- errors, before any tracing


def _forbid_lax():
  """Makes any attempt to build a convolution fail loudly (the checks must come first)."""
  return mock.patch.object(lax, 'conv_general_dilated', side_effect=AssertionError('traced'))


X = np.zeros((1, 6, 6, 4), np.float32)
W = np.zeros((3, 3, 4, 2), np.float32)


@pytest.mark.parametrize(
  'call, match',
  [
    (lambda: ops.conv2d(X[0], W), r'x must have rank 4.*\(6, 6, 4\)'),
    (lambda: ops.conv2d(X, W[0]), r'w must have rank 4'),
    (lambda: ops.conv2d(X, np.zeros((3, 3, 3, 2))), r'w.shape\[2\]=3 must equal .* 4'),
    (lambda: ops.conv2d(X, np.zeros((3, 3, 1, 2)), groups=3), r'groups=3 must divide .*=4'),
    (
      lambda: ops.conv2d(X, np.zeros((3, 3, 2, 3)), groups=2),
      r'groups=2 must divide the '
      r'output channels .*3',
    ),
    (lambda: ops.conv2d(X, W, groups=0), r'groups must be a positive int, got 0'),
    (lambda: ops.conv2d(X, W, stride=0), r'stride must be positive, got 0'),
    (lambda: ops.conv2d(X, W, stride=(1, -2)), r'stride must be positive, got \(1, -2\)'),
    (lambda: ops.conv2d(X, W, dilation=0), r'dilation must be positive, got 0'),
    (lambda: ops.conv2d(X, W, padding=-1), r'padding must be non-negative, got -1'),
    (lambda: ops.conv2d(X, W, padding=((0, 1), (-1, 0))), r'padding must be non-negative'),
    (
      lambda: ops.conv2d(X, W, padding='FULL'),
      r"padding as a string must be 'SAME' or "
      r"'VALID', got 'FULL'",
    ),
    (lambda: ops.conv2d(X, W, dilation=3), r'empty output \(0, 0\)'),
    (lambda: ops.conv2d(X, W, b=np.zeros(3)), r'b must have shape \(2,\)'),
    (lambda: ops.conv_transpose2d(X, np.zeros((3, 3, 2, 4))), r'w.shape\[2\]=2 must equal'),
    (
      lambda: ops.conv_transpose2d(X, W, stride=2, output_padding=2),
      r'output_padding=\(2, 2\) must be smaller than max\(stride, dilation\) = 2',
    ),
    (lambda: ops.conv_transpose2d(X, W, padding=-1), r'padding must be non-negative'),
    (
      lambda: ops.conv_transpose2d(X, W, padding='SAME'),
      r'padding as a string must be '
      r"'VALID', got 'SAME'",
    ),
    (lambda: ops.conv_transpose2d(X[:, :1, :1], W, padding=2), r'empty output'),
    (lambda: ops.atrous_conv2d(X, W, rate=0), r'rate must be positive, got 0'),
  ],
)
def test_bad_arguments_raise_value_error_before_tracing(call, match):
  with _forbid_lax(), pytest.raises(ValueError, match=match):
    call()


def test_non_integer_stride_is_a_type_error():
  with pytest.raises(TypeError, match=r'stride must be an int or a pair of ints, got 1.5'):
    ops.conv2d(X, W, stride=1.5)


# ---------------------------------------------------------------- transformations


def test_jit_vmap_and_grad():
  rng = np.random.default_rng(5)
  x = rng.standard_normal((3, 2, 7, 6, 4)).astype(np.float32)  # extra leading axis for vmap
  w = rng.standard_normal((3, 3, 2, 6)).astype(np.float32)
  conv = lambda x_, w_: ops.conv2d(x_, w_, stride=2, padding='SAME', groups=2)
  eager = conv(x[0], w)
  assert ref.relative_error(jax.jit(conv)(x[0], w), eager) < TOL
  batched = jax.vmap(conv, in_axes=(0, None))(x, w)
  assert ref.relative_error(batched, np.stack([conv(xi, w) for xi in x])) < TOL
  tconv = lambda x_, w_: ops.conv_transpose2d(x_, w_, stride=2, padding=1)  # the fast path
  w_t = w[..., :2, :]
  batched = jax.vmap(tconv, in_axes=(0, None))(x[..., :2], w_t)
  assert ref.relative_error(batched, np.stack([tconv(xi, w_t) for xi in x[..., :2]])) < TOL
  with jax.enable_x64(True):  # finite differences need float64
    x64, w64 = x[0].astype(np.float64), w.astype(np.float64)
    jtu.check_grads(conv, (x64, w64), order=2, modes=['rev', 'fwd'])
    tconv = lambda x_, w_: ops.conv_transpose2d(x_, w_, stride=2, padding=1, output_padding=1)
    jtu.check_grads(tconv, (x64[..., :2], w64[..., :2, :]), order=1)
    tconv = lambda x_, w_: ops.conv_transpose2d(x_, w_, stride=(3, 2), padding=((2, 0), (1, 3)))
    jtu.check_grads(tconv, (x64[..., :2], w64[..., :2, :]), order=1)
    pointwise = lambda x_, w_: ops.conv2d(x_, w_, stride=2, padding=1)
    w1x1 = rng.standard_normal((1, 1, 4, 3))
    jtu.check_grads(pointwise, (x64, w1x1), order=1)


def _primitive_names(fn, *args) -> list[str]:
  """Every primitive `fn` traces to, nested jits and custom rules' bodies included."""

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      yield eqn.primitive.name
      for param in eqn.params.values():
        for sub in param if isinstance(param, (tuple, list)) else (param,):
          inner = getattr(sub, 'jaxpr', sub)  # a ClosedJaxpr or a Jaxpr
          if hasattr(inner, 'eqns'):
            yield from walk(inner)

  return list(walk(jax.make_jaxpr(fn)(*args).jaxpr))


def _primitives(fn, *args):
  return set(_primitive_names(fn, *args))


@pytest.mark.parametrize(
  'kernel,groups,expect_conv',
  [
    ((1, 1), 1, False),  # a matmul over channels: XLA:CPU trains it ~2x faster
    ((3, 3), 1, True),  # XLA's (YNNPACK's) convolution beat every matmul formulation tried
    ((7, 7), 1, True),  # the stem: space-to-depth and im2col both lost
    ((1, 1), 2, True),  # grouped 1x1: not a single matmul
  ],
)
def test_conv2d_lowering_routes(kernel, groups, expect_conv):
  """Pins which shapes leave XLA's convolution (benchmarks/resnet50_step.py has the numbers)."""
  x = jnp.ones((1, 9, 9, 4))
  w = jnp.ones((*kernel, 4 // groups, 6))
  for stride in (1, 2):
    conv = lambda x_, w_: ops.conv2d(x_, w_, stride=stride, padding=kernel[0] // 2, groups=groups)
    forward = _primitives(conv, x, w)
    backward = _primitives(jax.grad(lambda x_, w_: conv(x_, w_).sum(), argnums=(0, 1)), x, w)
    assert ('conv_general_dilated' in forward) == expect_conv
    assert ('conv_general_dilated' in backward) == expect_conv
    if not expect_conv:
      assert 'dot_general' in forward and 'dot_general' in backward


def test_pointwise_filter_gradient_is_x_transpose_dy_on_matrices():
  """Issue 16: the 1x1 filter gradient contracts the (N*H*W) rows of 2-D x and dy.

  The former 4-D einsum contracted dy over (N, H, W), for which XLA had the batch-norm
  backward write dy transposed (~10x its natural cost); pin the 2-D form and its values.
  """
  rng = np.random.default_rng(12)
  x = rng.standard_normal((2, 5, 6, 4)).astype(np.float32)
  w = rng.standard_normal((1, 1, 4, 3)).astype(np.float32)
  dy = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
  grad_w = lambda x_, w_: jax.vjp(lambda w__: ops.conv2d(x_, w__), w_)[1](dy)[0]
  dots = [eqn for eqn in jax.make_jaxpr(grad_w)(x, w).eqns if eqn.primitive.name == 'dot_general']
  assert [tuple(v.aval.shape) for v in dots[-1].invars] in ([(60, 3), (60, 4)], [(60, 4), (60, 3)])
  assert dots[-1].params['dimension_numbers'][0] == ((0,), (0,))
  expected = np.einsum('nhwc,nhwo->co', x.astype(np.float64), dy)[None, None]
  assert ref.relative_error(grad_w(x, w), expected) < TOL
