"""jaxseg.ops.local_response_norm against NumPy loops, PyTorch and AlexNet's closed form."""

from unittest import mock

import jax
import numpy as np
import pytest
from jax import lax
from jax import test_util as jtu

import numpy_reference as ref
from jaxseg import ops

TOL = 1e-5

LRN_CASES = [
  dict(size=size, alpha=alpha, beta=beta, k=k)
  for size, (alpha, beta, k) in zip(
    [1, 2, 3, 4, 5, 6, 7, 9],
    [
      (1e-4, 0.75, 1.0),
      (0.5, 0.75, 2.0),
      (1.0, 0.5, 1.0),
      (2.0, 1.0, 0.5),
      (1e-4, 0.75, 2.0),
      (0.3, 0.25, 1.0),
      (5e-4, 0.75, 2.0),
      (1.5, 0.75, 1.0),
    ],
  )
]


def _problem(size):
  x = np.random.default_rng(size).standard_normal((2, 3, 4, 7)).astype(np.float32) * 2
  return x


@pytest.mark.parametrize('params', LRN_CASES, ids=str)
def test_lrn_matches_numpy_loops_and_torch(params):
  x = _problem(params['size'])
  actual = ops.local_response_norm(x, **params)
  assert ref.relative_error(actual, ref.local_response_norm(x, **params)) < TOL
  torch = pytest.importorskip('torch')
  expected = torch.nn.functional.local_response_norm(
    torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1))), **params
  )
  assert ref.relative_error(actual, np.moveaxis(expected.numpy(), 1, -1)) < TOL


def test_alexnet_form_closed_form():
  """AlexNet: b = a / (2 + 1e-4 * sum_{5 neighbours} a^2)^0.75, alpha not divided by n.

  With every channel equal to a, a middle channel sums 5 squares, the first only 3
  (channels c-2..c+2, clipped): the docstring's recipe alpha = 5 * 1e-4 must reproduce both.
  """
  a = 7.0
  x = np.full((1, 1, 1, 9), a, np.float32)
  y = np.asarray(ops.local_response_norm(x, size=5, alpha=5 * 1e-4, beta=0.75, k=2.0))[0, 0, 0]
  np.testing.assert_allclose(y[4], a / (2 + 1e-4 * 5 * a**2) ** 0.75, rtol=1e-6)
  np.testing.assert_allclose(y[0], a / (2 + 1e-4 * 3 * a**2) ** 0.75, rtol=1e-6)


def test_lrn_mixes_only_the_window():
  """A spike in channel 3 with size=3 normalizes channels 2..4 only."""
  x = np.ones((1, 1, 1, 8), np.float32)
  x[..., 3] = 10.0
  y = np.asarray(ops.local_response_norm(x, size=3, alpha=3.0, beta=1.0, k=1.0))[0, 0, 0]
  np.testing.assert_allclose(y[[1, 5, 6]], 1 / (1 + 3), rtol=1e-6)  # three ones in the window
  np.testing.assert_allclose(y[2], 1 / (1 + 1 + 1 + 100), rtol=1e-6)
  np.testing.assert_allclose(y[3], 10 / (1 + 1 + 100 + 1), rtol=1e-6)
  np.testing.assert_allclose(y[[0, 7]], 1 / (1 + 2), rtol=1e-6)  # edge channels: two in range


@pytest.mark.parametrize(
  'call, match, error',
  [
    (lambda: ops.local_response_norm(np.ones((2, 3, 4))), r'x must have rank 4', ValueError),
    (
      lambda: ops.local_response_norm(np.ones((1, 2, 2, 3)), size=0),
      r'size must be a positive int, got 0',
      ValueError,
    ),
    (
      lambda: ops.local_response_norm(np.ones((1, 2, 2, 3)), size=2.5),
      r'size must be a positive int, got 2.5',
      ValueError,
    ),
    (
      lambda: ops.local_response_norm(np.ones((1, 2, 2, 3)), alpha='big'),
      r"alpha must be a real number, got 'big'",
      TypeError,
    ),
  ],
)
def test_bad_arguments(call, match, error):
  with mock.patch.object(lax, 'reduce_window', side_effect=AssertionError('traced')):
    with pytest.raises(error, match=match):
      call()


def test_jit_vmap_and_grad():
  x = np.random.default_rng(0).standard_normal((3, 2, 3, 3, 6)).astype(np.float32)
  fn = lambda x_: ops.local_response_norm(x_, size=3, alpha=0.5, beta=0.75, k=1.0)
  assert ref.relative_error(jax.jit(fn)(x[0]), fn(x[0])) < TOL
  assert ref.relative_error(jax.vmap(fn)(x), np.stack([fn(xi) for xi in x])) < TOL
  with jax.enable_x64(True):
    jtu.check_grads(fn, (x[0].astype(np.float64),), order=1)
