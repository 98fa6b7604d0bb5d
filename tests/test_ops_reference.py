"""The lecture's derivations: convolution as a matrix, backprop through a convolution."""

import jax
import numpy as np
import pytest

import numpy_reference as ref
from jaxseg import ops

TOL = 1e-5

GEOMETRIES = ref.pairwise_cases(
  dict(
    kernel=[1, 2, (3, 2)],
    stride=[1, 2, 3],
    padding=[1, ((0, 2), (1, 0)), 'SAME', 'VALID'],
    dilation=[1, 2, (1, 3)],
  ),
  seed=4,
)


def _problem(case, seed=0):
  kh, kw = ref.as_pair(case['kernel'])
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((2, 7, 8, 3)).astype(np.float32)
  w = rng.standard_normal((kh, kw, 3, 4)).astype(np.float32)
  return x, w, {k: case[k] for k in ('stride', 'padding', 'dilation')}


def _case_id(case):
  return '-'.join(f'{k}={v}'.replace(' ', '') for k, v in case.items())


@pytest.mark.parametrize('case', GEOMETRIES, ids=_case_id)
def test_conv2d_as_matrix_times_input_is_conv2d(case):
  x, w, kwargs = _problem(case)
  matrix = np.asarray(ops.conv2d_as_matrix(w, x.shape[1:], **kwargs))
  expected = np.asarray(ops.conv2d(x, w, **kwargs))
  assert matrix.shape == (expected[0].size, x[0].size)
  for n in range(2):
    assert ref.relative_error(matrix @ x[n].ravel(), expected[n].ravel()) < TOL
  assert ref.relative_error(matrix @ x[1].ravel(), ref.conv2d(x[1:], w, **kwargs).ravel()) < TOL


def test_conv2d_as_matrix_is_sparse_with_shared_weights():
  """Each row holds at most kh*kw*C weights, and interior rows are shifted copies of one row."""
  w = np.random.default_rng(1).standard_normal((3, 3, 2, 1)).astype(np.float32)
  matrix = np.asarray(ops.conv2d_as_matrix(w, (6, 6, 2)))  # VALID: 4x4 outputs, all interior
  assert ((matrix != 0).sum(axis=1) == 3 * 3 * 2).all()
  row_00 = matrix[0].reshape(6, 6, 2)
  np.testing.assert_array_equal(row_00[:3, :3], w[..., 0])
  for i, j in [(0, 1), (2, 3), (3, 3)]:
    shifted = np.roll(row_00, (i, j), axis=(0, 1))
    np.testing.assert_array_equal(matrix[i * 4 + j].reshape(6, 6, 2), shifted)


@pytest.mark.parametrize('case', GEOMETRIES, ids=_case_id)
def test_conv2d_vjp_equals_jax_vjp(case):
  x, w, kwargs = _problem(case, seed=1)
  y, vjp = jax.vjp(lambda x_, w_: ops.conv2d(x_, w_, **kwargs), x, w)
  dy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
  expected_dx, expected_dw = vjp(dy)
  dx, dw = ops.conv2d_vjp(x, w, dy, **kwargs)
  assert ref.relative_error(dx, expected_dx) < TOL
  assert ref.relative_error(dw, expected_dw) < TOL


def test_conv2d_vjp_against_the_matrix():
  """dx = M^T dy: the transposed matrix is the transposed convolution."""
  x, w, kwargs = _problem(dict(kernel=3, stride=2, padding=1, dilation=1), seed=3)
  dy = np.random.default_rng(4).standard_normal((2, 4, 4, 4)).astype(np.float32)
  dx, _ = ops.conv2d_vjp(x, w, dy, **kwargs)
  matrix = np.asarray(ops.conv2d_as_matrix(w, x.shape[1:], **kwargs))
  expected = np.stack([(matrix.T @ dy[n].ravel()).reshape(x.shape[1:]) for n in range(2)])
  assert ref.relative_error(dx, expected) < TOL


def test_reference_errors():
  w = np.zeros((3, 3, 2, 1), np.float32)
  with pytest.raises(
    ValueError,
    match=r'w.shape\[2\]=2 must equal the channels '
    r'input_shape\[2\]=3',
  ):
    ops.conv2d_as_matrix(w, (5, 5, 3))
  with pytest.raises(ValueError, match=r'input_shape must be \(H, W, C\)'):
    ops.conv2d_as_matrix(w, (5, 5))
  with pytest.raises(ValueError, match=r'empty output'):
    ops.conv2d_as_matrix(w, (2, 2, 2))
  with pytest.raises(
    ValueError,
    match=r"dy must have the shape of conv2d's output "
    r'\(1, 3, 3, 1\), got \(1, 5, 5, 1\)',
  ):
    ops.conv2d_vjp(np.zeros((1, 5, 5, 2)), w, np.zeros((1, 5, 5, 1)))
