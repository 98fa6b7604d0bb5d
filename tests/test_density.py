"""Tests for jaxseg.ops.density: ground-truth densities from fixation maps."""

import math

import numpy as np
import pytest
from scipy import ndimage

from jaxseg.ops.density import fixation_density, mit_gaussian_sigma
import reference_data


def _random_fixations(shape, count, seed):
  rng = np.random.default_rng(seed)
  fix = np.zeros(shape, np.uint8)
  fix[rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)] = 1
  return fix


@pytest.mark.parametrize('sigma', [0.7, 2.0, 5.5])
@pytest.mark.parametrize('boundary', ['constant', 'reflect'])
@pytest.mark.parametrize('truncate', [4.0, 2.0])
def test_sigma_matches_scipy_gaussian_filter(sigma, boundary, truncate):
  fix = _random_fixations((23, 37), 12, seed=int(sigma * 10))
  expected = ndimage.gaussian_filter(
    fix.astype(np.float64), sigma, mode=boundary, truncate=truncate
  )
  expected /= expected.sum()
  got = fixation_density(fix, sigma=sigma, boundary=boundary, truncate=truncate)
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
  assert got.sum() == pytest.approx(1.0, abs=1e-12)


def test_sigma_single_fixation_closed_form():
  # One fixation far from the border: D(y, x) = exp(-r^2 / 2s^2) / sum of the truncated kernel.
  sigma, (y0, x0) = 3.0, (30, 25)
  fix = np.zeros((61, 50), bool)
  fix[y0, x0] = True
  got = fixation_density(fix, sigma=sigma)
  radius = int(4.0 * sigma + 0.5)
  yy, xx = np.mgrid[0:61, 0:50]
  inside = (np.abs(yy - y0) <= radius) & (np.abs(xx - x0) <= radius)
  gauss = np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * sigma**2)) * inside
  np.testing.assert_allclose(got, gauss / gauss.sum(), atol=1e-14)
  # The normaliser is the square of the 1-D sampled kernel sum, about 2 pi sigma^2.
  one_d = sum(math.exp(-k * k / (2 * sigma**2)) for k in range(-radius, radius + 1))
  assert got[y0, x0] == pytest.approx(1.0 / one_d**2, rel=1e-12)
  # Against the continuous Gaussian: the truncated tails (beyond ~4.2 sigma) hold < 1e-4 of the
  # mass, so the peak is higher by less than that, but higher.
  peak = 1.0 / (2 * math.pi * sigma**2)
  assert 0.0 < got[y0, x0] / peak - 1.0 < 1e-4


def test_mit_sigma_formula_inverts_run_antonio_gaussian():
  # run_antonioGaussian.m: fc = n sqrt(ln2 / (2 pi^2 sigma^2)), n the padded side.
  for shape, n in [((240, 320), 512), ((768, 1024), 1024), ((100, 64), 128), ((33, 33), 64)]:
    sigma = mit_gaussian_sigma(shape, 8)
    assert n * math.sqrt(math.log(2) / (2 * math.pi**2 * sigma**2)) == pytest.approx(8)


def test_mit_single_fixation_is_gaussian_of_predicted_sigma():
  # 256 x 256: n = 256, the band limit cuts the transfer at exp(-44), so the filter is a sampled
  # Gaussian of sigma = 256 sqrt(ln 2) / (sqrt 2 pi 8) ~ 6.0 px (periodic images are 512 px away).
  fix = np.zeros((256, 256), np.uint8)
  y0, x0 = 120, 131
  fix[y0, x0] = 1
  got = fixation_density(fix, cycles_per_image=8)
  sigma = mit_gaussian_sigma((256, 256), 8)
  assert sigma == pytest.approx(5.996, abs=1e-3)
  yy, xx = np.mgrid[0:256, 0:256]
  gauss = np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * sigma**2))
  np.testing.assert_allclose(got, gauss / gauss.sum(), atol=1e-12)


def test_mit_transfer_is_one_half_at_cut_off():
  # The amplitude of a cosine at fc cycles per (padded) image is halved: blur a 2-D cosine
  # pattern of frequency fc along x over a 128 x 128 map (n = 128, no band truncation at fc).
  n, fc = 128, 6
  x = np.arange(n)
  # A cosine plus a constant keeps the map non-negative; compare the centre rows only, where the
  # zero padding (the map is finite) does not reach within 4 sigma.
  img = np.tile(1.0 + np.cos(2 * np.pi * fc * x / n), (n, 1))
  fix_total = img.sum()
  got = fixation_density(img, cycles_per_image=fc) * fix_total
  sigma = mit_gaussian_sigma((n, n), fc)
  centre = got[n // 2, int(4 * sigma) : n - int(4 * sigma)]
  xs = x[int(4 * sigma) : n - int(4 * sigma)]
  # Least squares for a + b cos(2 pi fc x / n): b is the transmitted amplitude.
  design = np.stack([np.ones_like(xs, float), np.cos(2 * np.pi * fc * xs / n)], 1)
  (a, b), *_ = np.linalg.lstsq(design, centre, rcond=None)
  # The constant term's attenuation from the finite support is ~0; b / a is the transfer ratio.
  assert b / a == pytest.approx(0.5, abs=2e-3)


def test_density_properties_and_empty_map():
  fix = _random_fixations((40, 60), 20, seed=3)
  for kwargs in ({'sigma': 2.5}, {'cycles_per_image': 8}):
    d = fixation_density(fix, **kwargs)
    assert d.shape == fix.shape and d.dtype == np.float64
    assert d.min() >= 0 and d.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(fixation_density(np.zeros((5, 7)), **kwargs), 0.0)


@pytest.mark.parametrize(
  'kwargs, match',
  [
    ({}, 'exactly one of sigma'),
    ({'sigma': 1.0, 'cycles_per_image': 8}, 'exactly one of sigma'),
    ({'sigma': 0.0}, 'sigma must be a positive'),
    ({'cycles_per_image': -1}, 'cycles_per_image must be a positive'),
    ({'sigma': 1.0, 'boundary': 'wrap'}, 'boundary must be one of'),
    ({'cycles_per_image': 8, 'boundary': 'reflect'}, 'applies to sigma only'),
  ],
)
def test_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    fixation_density(np.zeros((4, 4)), **kwargs)


def test_bad_fixations():
  with pytest.raises(ValueError, match=r'shape \(H, W\)'):
    fixation_density(np.zeros((2, 4, 4)), sigma=1.0)
  with pytest.raises(TypeError, match='fixations must be an array'):
    fixation_density([[0, 1]], sigma=1.0)
  with pytest.raises(ValueError, match='non-negative'):
    fixation_density(-np.ones((3, 3)), sigma=1.0)


REFERENCE = reference_data.path('mit1003-i210')


def test_mit_convention_reproduces_the_benchmark_fixation_map():
  # MIT1003 i210: the benchmark's own fixation map (a JPEG) against our density from the binary
  # fixation locations. The MIT convention at 8 cycles per image matches it (CC > 0.999, the
  # residue is JPEG); 6 or 10 cycles fit visibly worse, so the cut-off convention is right.
  import os

  if not os.path.isdir(REFERENCE):
    pytest.skip('reference data absent')
  io = pytest.importorskip('scipy.io')
  from PIL import Image

  fix = io.loadmat(os.path.join(REFERENCE, 'fixation_locations.mat'))['fixations']
  reference = np.asarray(Image.open(os.path.join(REFERENCE, 'fixation_map.jpg')), np.float64)
  assert fix.shape == reference.shape == (675, 1024)

  def corr(cycles):
    d = fixation_density(fix, cycles_per_image=cycles)
    return np.corrcoef(d.ravel(), reference.ravel())[0, 1]

  assert corr(8) > 0.999
  assert corr(8) > corr(6) + 0.01 and corr(8) > corr(10) + 0.005


def _antonio_gaussian_transcription(img, fc):
  """antonioGaussian.m (cvzoya/saliency, 2017 edit), statement by statement, 0-based indices."""
  sn, sm = img.shape
  n = max(sn, sm)
  n = n + n % 2
  n = 2 ** math.ceil(math.log2(n))
  img2 = np.zeros((2 * n, 2 * n))  # zeropadimage(img, n)
  img2[n : n + sn, n : n + sm] = img
  n2 = max(img2.shape)
  fx, fy = np.meshgrid(np.arange(n), np.arange(n))
  fx = fx - n / 2
  fy = fy - n / 2
  s = round(n2 / n) * fc / math.sqrt(math.log(2))
  gf = np.exp(-(fx**2 + fy**2) / s**2)
  gf2 = np.zeros((n2, n2))
  gf2[n2 // 2 - n // 2 : n2 // 2 + n // 2, n2 // 2 - n // 2 : n2 // 2 + n // 2] = gf
  gf2 = np.fft.fftshift(gf2)
  bf = np.real(np.fft.ifft2(np.fft.fft2(img2) * gf2))
  return bf[n : n + sn, n : n + sm]


@pytest.mark.parametrize('shape, fc', [((20, 30), 8), ((33, 17), 6), ((48, 64), 8)])
def test_mit_matches_antonio_gaussian_transcription(shape, fc):
  # Small maps, where the filter's band limit (n/2 cycles) cuts the Gaussian visibly: the
  # placement of the transfer function must match the MATLAB code exactly.
  fix = _random_fixations(shape, 6, seed=shape[0])
  expected = np.maximum(_antonio_gaussian_transcription(fix.astype(np.float64), fc), 0.0)
  expected /= expected.sum()
  np.testing.assert_allclose(fixation_density(fix, cycles_per_image=fc), expected, atol=1e-12)
