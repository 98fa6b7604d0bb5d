"""jaxseg.ops resize, crops and bilinear_kernel against NumPy loops, PyTorch and closed forms."""

import jax
import numpy as np
import pytest
from jax import test_util as jtu

import numpy_reference as ref
from jaxseg import ops

TOL = 1e-5

# (input H, W) -> (output H, W): up, down, mixed, identity, to and from size 1.
RESIZE_SHAPES = [
  ((4, 5), (8, 10)),
  ((7, 6), (3, 4)),
  ((5, 5), (13, 2)),
  ((6, 4), (6, 4)),
  ((1, 3), (4, 7)),
  ((5, 6), (1, 1)),
  ((3, 8), (11, 5)),
]


@pytest.mark.parametrize(
  'method, align_corners', [('bilinear', False), ('bilinear', True), ('nearest', False)]
)
@pytest.mark.parametrize('in_hw, out_hw', RESIZE_SHAPES)
def test_resize_matches_numpy_loops_and_torch(in_hw, out_hw, method, align_corners):
  x = np.random.default_rng(sum(in_hw)).standard_normal((2, *in_hw, 3)).astype(np.float32)
  actual = ops.resize(x, out_hw, method=method, align_corners=align_corners)
  assert actual.shape == (2, *out_hw, 3)
  expected = ref.resize(x, out_hw, method=method, align_corners=align_corners)
  assert ref.relative_error(actual, expected) < TOL
  torch = pytest.importorskip('torch')
  options = {'align_corners': align_corners} if method == 'bilinear' else {}
  expected = torch.nn.functional.interpolate(
    torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1))),
    size=out_hw,
    mode=method,
    **options,
  )
  assert ref.relative_error(actual, np.moveaxis(expected.numpy(), 1, -1)) < TOL


def test_resize_closed_forms():
  ramp = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2, 1)
  np.testing.assert_allclose(ops.resize(ramp, (1, 4))[0, 0, :, 0], [0, 0.25, 0.75, 1])
  np.testing.assert_allclose(
    ops.resize(ramp, (1, 4), align_corners=True)[0, 0, :, 0], [0, 1 / 3, 2 / 3, 1], rtol=1e-6
  )
  np.testing.assert_array_equal(
    ops.resize(ramp, (1, 4), method='nearest')[0, 0, :, 0], [0, 0, 1, 1]
  )


def test_resize_errors():
  x = np.zeros((1, 4, 4, 1), np.float32)
  with pytest.raises(
    ValueError,
    match=r"method must be one of \('bilinear', 'nearest'\), "
    r"got 'bicubic'",
  ):
    ops.resize(x, (8, 8), method='bicubic')
  with pytest.raises(ValueError, match=r'shape must be positive, got \(0, 8\)'):
    ops.resize(x, (0, 8))
  with pytest.raises(ValueError, match=r'x must have rank 4'):
    ops.resize(x[0], (8, 8))
  with pytest.raises(TypeError, match=r'bilinear resize needs a floating x'):
    ops.resize(x.astype(np.int32), (8, 8))


def test_resize_jit_vmap_grad():
  x = np.random.default_rng(0).standard_normal((3, 2, 4, 5, 2)).astype(np.float32)
  fn = lambda x_: ops.resize(x_, (7, 3))
  assert ref.relative_error(jax.jit(fn)(x[0]), fn(x[0])) < TOL
  assert ref.relative_error(jax.vmap(fn)(x), np.stack([fn(xi) for xi in x])) < TOL
  with jax.enable_x64(True):
    jtu.check_grads(fn, (x[0].astype(np.float64),), order=1)


def test_bilinear_kernel_values():
  """size 4 (factor 2): taps 1 - |u - 1.5| / 2 = [1/4, 3/4, 3/4, 1/4]; size 3: [1/2, 1, 1/2]."""
  k4 = np.asarray(ops.bilinear_kernel(4, 3))
  assert k4.shape == (4, 4, 3, 3)
  taps = np.array([0.25, 0.75, 0.75, 0.25])
  for c in range(3):
    np.testing.assert_array_equal(k4[:, :, c, c], np.outer(taps, taps))
  off_diagonal = k4 * (1 - np.eye(3))[None, None]
  assert not off_diagonal.any()
  np.testing.assert_array_equal(np.asarray(ops.bilinear_kernel(3, 1))[1, :, 0, 0], [0.5, 1, 0.5])


@pytest.mark.parametrize('factor', [2, 3, 4, 8])
def test_bilinear_kernel_upsamples_a_linear_ramp_exactly(factor):
  """conv_transpose2d with FCN's kernel (2f - f%2, stride f, pad ceil((f-1)/2)) is bilinear.

  A linear ramp in, away from the borders the output is the ramp sampled at the half-pixel
  positions (j + 1/2) / f - 1/2: exactly linear, slope 1/f, in both directions.
  """
  size = 2 * factor - factor % 2
  padding = (factor - 1 + 1) // 2  # ceil((f - 1) / 2)
  height, width = 6, 5
  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  ramp = (3.0 * rows - 2.0 * cols + 1.0).astype(np.float32)[None, :, :, None]
  up = np.asarray(
    ops.conv_transpose2d(ramp, ops.bilinear_kernel(size, 1), stride=factor, padding=padding)
  )[0, :, :, 0]
  assert up.shape == (height * factor, width * factor)
  i, j = np.meshgrid(np.arange(up.shape[0]), np.arange(up.shape[1]), indexing='ij')
  src_r, src_c = (i + 0.5) / factor - 0.5, (j + 0.5) / factor - 0.5
  expected = 3.0 * src_r - 2.0 * src_c + 1.0
  interior = (slice(factor, -factor), slice(factor, -factor))
  np.testing.assert_allclose(up[interior], expected[interior], atol=1e-5)
  # ... and it is what resize(bilinear) computes there.
  resized = np.asarray(ops.resize(ramp, up.shape))[0, :, :, 0]
  np.testing.assert_allclose(up[interior], resized[interior], atol=1e-5)


def test_bilinear_kernel_errors():
  with pytest.raises(ValueError, match=r'size must be a positive int, got 0'):
    ops.bilinear_kernel(0, 3)
  with pytest.raises(ValueError, match=r'channels must be a positive int, got -1'):
    ops.bilinear_kernel(4, -1)


def test_center_crop_and_crop_like():
  x = np.arange(2 * 7 * 8 * 3, dtype=np.float32).reshape(2, 7, 8, 3)
  np.testing.assert_array_equal(ops.center_crop(x, (3, 4)), x[:, 2:5, 2:6])
  np.testing.assert_array_equal(ops.center_crop(x, 5), x[:, 1:6, 1:6])
  reference = np.zeros((1, 4, 5, 21))
  np.testing.assert_array_equal(ops.crop_like(x, reference), x[:, 1:5, 1:6])
  np.testing.assert_array_equal(ops.crop_like(x, reference, offset=(3, 0)), x[:, 3:7, 0:5])
  with pytest.raises(
    ValueError,
    match=r'cannot crop height 4 at offset 4 from an input of '
    r'height 7',
  ):
    ops.crop_like(x, reference, offset=(4, 0))
  with pytest.raises(ValueError, match=r'cannot crop \(3, 9\) from x of spatial size \(7, 8\)'):
    ops.center_crop(x, (3, 9))
  with pytest.raises(ValueError, match=r'offset must be at least 0, got \(-1, 0\)'):
    ops.crop_like(x, reference, offset=(-1, 0))
  with pytest.raises(ValueError, match=r'reference must have rank 4'):
    ops.crop_like(x, np.zeros((4, 5)))
