"""jaxseg.ops max/avg/global pooling against naive NumPy loops, PyTorch and closed forms.

The grid is an all-pairs subset of window 1..7 (and non-square), stride default/1..3, every
padding form (at most half the window), ceil_mode and count_include_pad.
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

TOL = 1e-5

POOL_AXES = dict(
  window=[1, 2, 3, 4, 5, 6, 7, (2, 3)],
  stride=[None, 1, 2, 3, (2, 1)],
  padding=[0, 1, 2, 3, (1, 0), ((0, 1), (1, 0)), 'SAME', 'VALID'],
  ceil_mode=[False, True],
  count_include_pad=[True, False],
  size=['small', 'large'],
)


def _pool_valid(case):
  kh, kw = ref.as_pair(case['window'])
  sh, sw = ref.as_pair(case['stride'] or case['window'])
  if isinstance(case['padding'], str):
    return True
  (pt, pb), (pl, pr) = ref.explicit_pads(case['padding'], None, None, None)
  return max(pt, pb) <= kh // 2 and max(pl, pr) <= kw // 2


POOL_CASES = ref.pairwise_cases(POOL_AXES, valid=_pool_valid, seed=2)


def _case_id(case):
  return '-'.join(f'{k}={v}'.replace(' ', '') for k, v in case.items())


def pool_problem(case):
  kh, kw = ref.as_pair(case['window'])
  # 'small' leaves the ceil-mode remainder small, 'large' sizes are co-prime with most strides.
  extra = (1, 2) if case['size'] == 'small' else (5, 4)
  rng = np.random.default_rng(kh * 13 + kw + extra[0])
  x = rng.standard_normal((2, kh + extra[0], kw + extra[1], 3)).astype(np.float32)
  kwargs = dict(stride=case['stride'], padding=case['padding'], ceil_mode=case['ceil_mode'])
  return x, case['window'], kwargs


def _torch_pool(name, x, window, stride, padding, **kwargs):
  """torch's pooling on NHWC numpy x, padding any form (asymmetric padding done by hand)."""
  torch = pytest.importorskip('torch')
  kh, kw = ref.as_pair(window)
  stride = ref.as_pair(stride or window)
  (pt, pb), (pl, pr) = ref.explicit_pads(padding, x.shape[1:3], (kh, kw), stride)
  x_t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
  if pt == pb and pl == pr:
    y = getattr(torch.nn.functional, name)(x_t, (kh, kw), stride, (pt, pl), **kwargs)
  else:
    return None
  return np.moveaxis(y.numpy(), 1, -1)


def test_grid_covers_every_value():
  for name, values in POOL_AXES.items():
    assert {repr(c[name]) for c in POOL_CASES} == {repr(v) for v in values}, name
  assert len(POOL_CASES) < 80


@pytest.mark.parametrize('case', POOL_CASES, ids=_case_id)
def test_max_pool_matches_numpy_loops_and_torch(case):
  x, window, kwargs = pool_problem(case)
  actual = np.asarray(ops.max_pool(x, window, **kwargs))
  assert ref.relative_error(actual, ref.max_pool(x, window, **kwargs)) < TOL
  expected = _torch_pool(
    'max_pool2d', x, window, kwargs['stride'], kwargs['padding'], ceil_mode=kwargs['ceil_mode']
  )
  if expected is not None:
    assert ref.relative_error(actual, expected) < TOL


@pytest.mark.parametrize('case', POOL_CASES, ids=_case_id)
def test_avg_pool_matches_numpy_loops_and_torch(case):
  x, window, kwargs = pool_problem(case)
  kwargs['count_include_pad'] = case['count_include_pad']
  actual = np.asarray(ops.avg_pool(x, window, **kwargs))
  assert ref.relative_error(actual, ref.avg_pool(x, window, **kwargs)) < TOL
  expected = _torch_pool(
    'avg_pool2d',
    x,
    window,
    kwargs['stride'],
    kwargs['padding'],
    ceil_mode=kwargs['ceil_mode'],
    count_include_pad=kwargs['count_include_pad'],
  )
  if expected is not None:
    assert ref.relative_error(actual, expected) < TOL


def _symmetric(case):
  x, window, kwargs = pool_problem(case)
  kh, kw = ref.as_pair(window)
  pads = ref.explicit_pads(
    kwargs['padding'], x.shape[1:3], (kh, kw), ref.as_pair(kwargs['stride'] or window)
  )
  return all(lo == hi for lo, hi in pads)


def test_torch_comparison_is_not_vacuous():
  """torch pads symmetrically only; most grid cases are symmetric, so torch checks them."""
  assert sum(map(_symmetric, POOL_CASES)) > 0.7 * len(POOL_CASES)


def test_lecture_max_pool():
  x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float32)
  y = ops.max_pool(x[None, :, :, None], 2, stride=2)
  np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8], [3, 4]])


def test_max_pool_integer_input_pads_with_dtype_minimum():
  x = -np.arange(1, 10, dtype=np.int32).reshape(1, 3, 3, 1)
  y = ops.max_pool(x, 3, stride=1, padding=1)
  assert y.dtype == jnp.int32
  np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -1, -2], [-1, -1, -2], [-4, -4, -5]])


def test_ceil_mode_rounds_up_like_caffe():
  """VGG/FCN pool5 on 7x7 with ceil_mode: Caffe's ceil((7-2)/2)+1 = 4, floor gives 3."""
  x = np.arange(49, dtype=np.float32).reshape(1, 7, 7, 1)
  assert ops.max_pool(x, 2, stride=2).shape == (1, 3, 3, 1)
  y = ops.max_pool(x, 2, stride=2, ceil_mode=True)
  assert y.shape == (1, 4, 4, 1)
  # The last row/column of windows covers input row/column 6 alone.
  np.testing.assert_array_equal(y[0, 3, :, 0], [43, 45, 47, 48])


def test_ceil_mode_drops_a_window_starting_in_the_padding():
  """H=3, window 2, stride 2, padding 1: ceil gives 3 windows, the 3rd starts at padded row 4.

  Row 4 of the padded input is padding only, so (as Caffe and PyTorch do) that window is
  dropped: 2 windows, covering [pad, x0] and [x1, x2].
  """
  x = np.array([1.0, 5.0, 3.0], np.float32).reshape(1, 3, 1, 1)
  y = ops.max_pool(x, (2, 1), stride=(2, 1), padding=((1, 1), (0, 0)), ceil_mode=True)
  np.testing.assert_array_equal(y[0, :, 0, 0], [1.0, 5.0])
  y = ops.avg_pool(x, (2, 1), stride=(2, 1), padding=((1, 1), (0, 0)), ceil_mode=True)
  np.testing.assert_allclose(y[0, :, 0, 0], [0.5, 4.0])


@pytest.mark.parametrize('count_include_pad', [True, False])
def test_avg_pool_ceil_overhang_is_not_counted(count_include_pad):
  """5x5 ones, 2x2/2 ceil: the last windows overhang the input; the average stays exactly 1."""
  y = ops.avg_pool(
    np.ones((1, 5, 5, 1), np.float32),
    2,
    stride=2,
    ceil_mode=True,
    count_include_pad=count_include_pad,
  )
  assert y.shape == (1, 3, 3, 1)
  np.testing.assert_array_equal(y, np.ones((1, 3, 3, 1)))


def test_avg_pool_count_include_pad_closed_form():
  """3x3 ones, 3x3/1 padding 1: the corner window holds 4 ones among 9 cells."""
  x = np.ones((1, 3, 3, 1), np.float32)
  with_pad = ops.avg_pool(x, 3, stride=1, padding=1, count_include_pad=True)[0, :, :, 0]
  np.testing.assert_allclose(with_pad, np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9, rtol=1e-6)
  without = ops.avg_pool(x, 3, stride=1, padding=1, count_include_pad=False)
  np.testing.assert_allclose(without, np.ones_like(x), rtol=1e-6)


def test_global_pools():
  x = np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32)
  np.testing.assert_allclose(ops.global_avg_pool(x), x.mean(axis=(1, 2)), rtol=1e-6)
  np.testing.assert_array_equal(ops.global_max_pool(x), x.max(axis=(1, 2)))
  assert ops.global_avg_pool(x, keepdims=True).shape == (2, 1, 1, 3)
  np.testing.assert_array_equal(ops.global_max_pool(x, keepdims=True)[:, 0, 0], x.max((1, 2)))
  with pytest.raises(ValueError, match=r'x must have rank 4'):
    ops.global_avg_pool(x[0])


X = np.zeros((1, 6, 6, 2), np.float32)


@pytest.mark.parametrize(
  'call, match',
  [
    (lambda: ops.max_pool(X[0], 2), r'x must have rank 4'),
    (lambda: ops.max_pool(X, 0), r'window must be positive, got 0'),
    (lambda: ops.max_pool(X, (2, -1)), r'window must be positive, got \(2, -1\)'),
    (lambda: ops.avg_pool(X, 2, stride=0), r'stride must be positive, got 0'),
    (lambda: ops.avg_pool(X, 3, padding=-1), r'padding must be non-negative, got -1'),
    (lambda: ops.max_pool(X, 3, padding=2), r'padding=2 must be at most half the window'),
    (lambda: ops.max_pool(X, 7), r'max_pool .* empty output \(0, 0\)'),
    (lambda: ops.avg_pool(X, (2, 8), padding='VALID'), r'avg_pool .* empty output'),
    (lambda: ops.max_pool(X, 2, padding='full'), r'padding as a string must be'),
  ],
)
def test_bad_arguments_raise_value_error_before_tracing(call, match):
  with mock.patch.object(lax, 'reduce_window', side_effect=AssertionError('traced')):
    with pytest.raises(ValueError, match=match):
      call()


def test_avg_pool_rejects_integers():
  with pytest.raises(TypeError, match=r'avg_pool needs a floating x, got dtype int32'):
    ops.avg_pool(np.zeros((1, 4, 4, 1), np.int32), 2)


def test_jit_vmap_and_grad():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((3, 2, 7, 6, 2)).astype(np.float32)
  avg = lambda x_: ops.avg_pool(x_, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
  mx = lambda x_: ops.max_pool(x_, 3, stride=2, padding='SAME', ceil_mode=True)
  for fn in (avg, mx):
    eager = fn(x[0])
    assert ref.relative_error(jax.jit(fn)(x[0]), eager) < TOL
    assert ref.relative_error(jax.vmap(fn)(x), np.stack([fn(xi) for xi in x])) < TOL
  with jax.enable_x64(True):
    jtu.check_grads(avg, (x[0].astype(np.float64),), order=1)
    jtu.check_grads(mx, (x[0].astype(np.float64),), order=1)
    jtu.check_grads(lambda x_: ops.global_avg_pool(x_), (x[0].astype(np.float64),), order=1)


def _adaptive_avg_pool_loops(x, out_hw):
  """PyTorch's definition, one output cell at a time: rows floor(i*H/o) .. ceil((i+1)*H/o)."""
  n, h, w, c = x.shape
  oh, ow = out_hw
  y = np.zeros((n, oh, ow, c), np.float64)
  for i in range(oh):
    h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
    for j in range(ow):
      w0, w1 = (j * w) // ow, -(-((j + 1) * w) // ow)
      y[:, i, j, :] = x[:, h0:h1, w0:w1, :].mean(axis=(1, 2))
  return y


# (input H, W) -> output: divisible, non-divisible (overlapping windows), upsampling, identity.
ADAPTIVE_CASES = [
  ((8, 8), 4),
  ((14, 14), 7),
  ((7, 5), (3, 2)),
  ((13, 10), (6, 4)),
  ((5, 6), 5),
  ((2, 3), (4, 5)),
  ((6, 6), 6),
  ((9, 4), 1),
]


@pytest.mark.parametrize('in_hw, output_size', ADAPTIVE_CASES)
def test_adaptive_avg_pool_matches_numpy_loops_and_torch(in_hw, output_size):
  x = np.random.default_rng(sum(in_hw)).standard_normal((2, *in_hw, 3)).astype(np.float32)
  out_hw = ref.as_pair(output_size)
  y = np.asarray(ops.adaptive_avg_pool(x, output_size))
  assert y.shape == (2, *out_hw, 3)
  np.testing.assert_allclose(y, _adaptive_avg_pool_loops(x, out_hw), rtol=1e-5, atol=1e-6)
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  expected = torch.nn.functional.adaptive_avg_pool2d(
    torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1))), out_hw
  ).numpy()
  np.testing.assert_allclose(y, np.moveaxis(expected, 1, -1), rtol=1e-5, atol=1e-6)


def test_adaptive_avg_pool_overlapping_windows_closed_form():
  # H=5 -> 2: windows [0, 3) and [2, 5) share row 2 (PyTorch's rule, not a partition).
  x = np.arange(5, dtype=np.float32).reshape(1, 5, 1, 1)
  np.testing.assert_allclose(ops.adaptive_avg_pool(x, (2, 1))[0, :, 0, 0], [1.0, 3.0])


def test_adaptive_avg_pool_bad_arguments():
  with pytest.raises(ValueError, match=r'x must have rank 4'):
    ops.adaptive_avg_pool(np.zeros((4, 4, 3), np.float32), 2)
  with pytest.raises(ValueError, match=r'output_size must be positive, got 0'):
    ops.adaptive_avg_pool(np.zeros((1, 4, 4, 3), np.float32), 0)
  with pytest.raises(TypeError, match=r'output_size must be an int or a pair of ints'):
    ops.adaptive_avg_pool(np.zeros((1, 4, 4, 3), np.float32), 2.5)


def test_pooling_gradients_under_jit():
  """Regression: grad of max_pool/avg_pool inside jit failed ('Linearization failed') when
  reduce_window's init value was a traced jnp array instead of a host constant."""
  rng = np.random.default_rng(3)
  x = rng.standard_normal((2, 4, 6, 3)).astype(np.float32)
  max_grad = jax.jit(jax.grad(lambda x_: ops.max_pool(x_, 2).sum()))(x)
  # Non-overlapping 2x2 windows: the gradient of the sum is 1 at each window's maximum, else 0.
  windows = x.reshape(2, 2, 2, 3, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 2, 3, 3, 4)
  expected = np.zeros_like(windows)
  np.put_along_axis(expected, windows.argmax(-1)[..., None], 1.0, axis=-1)
  expected = expected.reshape(2, 2, 3, 3, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(x.shape)
  np.testing.assert_array_equal(max_grad, expected)
  # Each input cell lies in one 2x2 window (weight 1/4) ...
  avg_grad = jax.jit(jax.grad(lambda x_: ops.avg_pool(x_, 2).sum()))(x)
  np.testing.assert_allclose(avg_grad, np.full_like(x, 0.25), rtol=1e-6)
  # ... and with stride 1, padding 1, count_include_pad=False the weights are 1/count summed
  # over the windows that cover the cell: compare with the gradient of the NumPy loops' mean.
  fn = lambda x_: ops.avg_pool(x_, 3, stride=1, padding=1, count_include_pad=False).sum()
  counts = np.array([2, 3, 3, 2])[:, None] * np.array([2, 3, 3, 3, 3, 2])[None, :]
  inv = 1.0 / counts
  expected = np.zeros((4, 6))
  for i in range(4):
    for j in range(6):
      expected[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2] += inv[i, j]
  np.testing.assert_allclose(
    jax.jit(jax.grad(fn))(x), np.broadcast_to(expected[None, :, :, None], x.shape), rtol=1e-5
  )
  # Also through jit of a function that builds the pool inside a traced computation.
  np.testing.assert_allclose(
    jax.jit(
      jax.grad(lambda x_: ops.max_pool(x_ * 2.0, 3, stride=2, padding=1, ceil_mode=True).sum())
    )(x).sum(),
    2.0 * ops.max_pool(x, 3, stride=2, padding=1, ceil_mode=True).size,
    rtol=1e-6,
  )


# ---------------------------------------------------------------- max pool derivative (issue 16)
# Rule: the whole gradient of an output goes to the first maximum of its window in row-major
# order (PyTorch's max_pool2d and XLA's select-and-scatter), a NaN counting as the maximum.


def _select_and_scatter_max_pool(x, window, stride, padding, ceil_mode):
  """jaxseg's max pool before issue 16: reduce_window, differentiated by XLA."""
  from jaxseg.ops import pooling  # noqa: PLC0415 (private helpers of the op under test)

  window, stride, pads, _, overhang = pooling._pool_geometry(
    x, window, stride, padding, ceil_mode, 'max_pool'
  )
  return lax.reduce_window(
    x,
    np.array(-np.inf, x.dtype),
    lax.max,
    (1, *window, 1),
    (1, *stride, 1),
    pooling._reduce_pads(pads, overhang),
  )


def _tied_inputs(case):
  x, window, kwargs = pool_problem(case)
  rng = np.random.default_rng(len(_case_id(case)))
  ties = rng.integers(-1, 2, x.shape).astype(np.float32)  # three values: ties in most windows
  return [np.maximum(x, 0), ties]  # ReLU zeros (ResNet's stem) and small integers


@pytest.mark.parametrize('case', POOL_CASES[::6], ids=_case_id)
def test_max_pool_gradient_goes_to_first_maximum_like_select_and_scatter_and_torch(case):
  _, window, kwargs = pool_problem(case)
  for x in _tied_inputs(case):
    # jit: eagerly, every small op of the derivative would compile on its own.
    y, vjp = jax.vjp(jax.jit(lambda x_: ops.max_pool(x_, window, **kwargs)), x)
    y_old, vjp_old = jax.vjp(
      jax.jit(
        lambda x_: _select_and_scatter_max_pool(
          x_, window, kwargs['stride'], kwargs['padding'], kwargs['ceil_mode']
        )
      ),
      x,
    )
    np.testing.assert_array_equal(y, y_old)
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    grad = vjp(dy)[0]
    np.testing.assert_allclose(grad, vjp_old(dy)[0], rtol=0, atol=1e-5)
    if not _symmetric(case):
      continue
    torch = pytest.importorskip('torch')
    kh, kw = ref.as_pair(window)
    stride = ref.as_pair(kwargs['stride'] or window)
    (pt, _), (pl, _) = ref.explicit_pads(kwargs['padding'], x.shape[1:3], (kh, kw), stride)
    x_t = torch.tensor(np.moveaxis(x, -1, 1), requires_grad=True)
    torch.nn.functional.max_pool2d(
      x_t, (kh, kw), stride, (pt, pl), ceil_mode=kwargs['ceil_mode']
    ).backward(torch.from_numpy(np.moveaxis(dy, -1, 1).copy()))
    np.testing.assert_allclose(grad, np.moveaxis(x_t.grad.numpy(), 1, -1), rtol=0, atol=1e-5)


def test_max_pool_gradient_first_maximum_closed_form():
  """All-equal 3x3/2 windows: each output's gradient lands on its window's top-left cell."""
  x = np.zeros((1, 5, 5, 1), np.float32)
  grad = jax.jit(jax.grad(lambda x_: ops.max_pool(x_, 3, stride=2).sum()))(x)[0, :, :, 0]
  expected = np.zeros((5, 5), np.float32)
  expected[0, 0] = expected[0, 2] = expected[2, 0] = expected[2, 2] = 1.0
  np.testing.assert_array_equal(grad, expected)
  # With padding 1 the first cell inside the input wins (padding never does), also for -inf.
  for fill in (0.0, -np.inf):
    x = np.full((1, 4, 4, 1), fill, np.float32)
    grad = jax.jit(jax.grad(lambda x_: ops.max_pool(x_, 3, stride=2, padding=1).sum()))(x)
    grad = grad[0, :, :, 0]
    expected = np.zeros((4, 4), np.float32)
    expected[0, 0] = expected[0, 1] = expected[1, 0] = expected[1, 1] = 1.0
    np.testing.assert_array_equal(grad, expected)


def test_max_pool_gradient_goes_to_a_nan():
  """A NaN propagates to the output; its gradient goes to the (first) NaN of the window."""
  x = np.zeros((1, 2, 2, 1), np.float32)
  x[0, 1, 0, 0] = np.nan
  x[0, 0, 1, 0] = 5.0
  y, vjp = jax.vjp(jax.jit(lambda x_: ops.max_pool(x_, 2)), x)
  assert np.isnan(y).all()
  np.testing.assert_array_equal(vjp(np.ones_like(y))[0][0, :, :, 0], [[0, 0], [1, 0]])


def test_max_pool_infinite_cotangent_reaches_its_whole_window():
  """The one difference from select-and-scatter (documented): a non-finite gradient arriving
  at an output reaches its window's maximum and, as NaN, the window's other cells; the other
  windows are untouched."""
  x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
  y, vjp = jax.vjp(jax.jit(lambda x_: ops.max_pool(x_, 2)), x)
  ct = np.ones_like(y)
  ct[0, 0, 0, 0] = np.inf
  grad = np.asarray(vjp(ct)[0][0, :, :, 0])
  assert grad[1, 1] == np.inf  # the window's maximum gets it
  assert np.isnan([grad[0, 0], grad[0, 1], grad[1, 0]]).all()
  expected = np.zeros((4, 4), np.float32)
  expected[1, 3] = expected[3, 1] = expected[3, 3] = 1.0
  np.testing.assert_array_equal(grad[2:], expected[2:])
  np.testing.assert_array_equal(grad[:2, 2:], expected[:2, 2:])


@pytest.mark.parametrize('pool', [ops.max_pool, ops.avg_pool], ids=['max', 'avg'])
def test_pool_derivative_keeps_a_vmapped_axis_in_place(pool):
  """vmapped over the axis before the channels (a population's layout, member_conv), the
  pool's value and derivative move nothing; both equal the loop over the mapped axis."""
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3, 4))
  ct = jax.random.normal(jax.random.key(1), (2, 4, 4, 3, 4))

  def pool_vjp(x_, ct_):
    return jax.vjp(lambda v: pool(v, 2), x_)[1](ct_)[0]

  batched = jax.vmap(pool_vjp, in_axes=3, out_axes=3)
  names = {eqn.primitive.name for eqn in jax.make_jaxpr(batched)(x, ct).eqns}
  assert 'transpose' not in names, names
  looped = np.stack([pool_vjp(x[:, :, :, k], ct[:, :, :, k]) for k in range(3)], axis=3)
  np.testing.assert_array_equal(jax.jit(batched)(x, ct), looped)


def test_max_pool_backward_has_no_select_and_scatter_and_keeps_bfloat16():
  x = jnp.ones((2, 9, 9, 3), jnp.bfloat16)
  grad = jax.grad(lambda x_: ops.max_pool(x_, 3, stride=2, padding=1).astype(jnp.float32).sum())
  names = {eqn.primitive.name for eqn in jax.make_jaxpr(grad)(x).eqns}
  assert not any('select_and_scatter' in name for name in names)
  assert jax.jit(grad)(x).dtype == jnp.bfloat16
  assert ops.max_pool(x, 3, stride=2, padding=1).dtype == jnp.bfloat16
