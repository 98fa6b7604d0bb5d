"""Ground-truth saliency densities from binary fixation maps.

Saliency benchmarks turn the discrete fixations of many observers into a continuous density by
blurring the binary fixation map with a Gaussian. Two conventions are in use:

* a Gaussian of standard deviation ``sigma`` in pixels (SALICON, most papers): a truncated,
  normalised, separable kernel, as ``scipy.ndimage.gaussian_filter(..., truncate=4.0)``;
* the MIT saliency benchmark's ``antonioGaussian.m`` (cvzoya/saliency, ``code_forMetrics``): a
  Gaussian low-pass filter in the Fourier domain whose transfer function falls to one half at
  ``cycles_per_image`` cycles per image (8 for MIT1003/MIT300). The image is zero-padded into a
  square of side ``2n`` (``n`` the longer side rounded up to a power of two), multiplied in the
  Fourier domain by ``exp(-(u^2 + v^2) / s^2)`` with ``s = 2 fc / sqrt(ln 2)`` for integer
  frequencies ``u, v`` in ``[-n/2, n/2)`` of the ``2n``-point DFT (zero elsewhere), and cropped
  back. Away from the borders this is a Gaussian of standard deviation
  ``sigma = n sqrt(ln 2) / (sqrt(2) pi fc)`` pixels (the inverse of ``run_antonioGaussian.m``).

This is host-side preprocessing (dataset builders run it once per image), so it is written in
NumPy and computes in float64; it is neither traced nor jitted.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ['fixation_density', 'mit_gaussian_sigma']

_BOUNDARIES = ('constant', 'reflect')


def _check_fixations(fixations) -> np.ndarray:
  if not hasattr(fixations, 'shape'):
    raise TypeError(f'fixations must be an array of shape (H, W), got {type(fixations).__name__}.')
  fixations = np.asarray(fixations)
  if fixations.ndim != 2:
    raise ValueError(
      f'fixations must have shape (H, W), got shape {fixations.shape} of rank {fixations.ndim}.'
    )
  if min(fixations.shape) < 1:
    raise ValueError(f'fixations must be non-empty, got shape {fixations.shape}.')
  if fixations.dtype.kind not in 'biuf':
    raise TypeError(f'fixations must be boolean or numeric, got dtype {fixations.dtype}.')
  if np.any(fixations < 0) or not np.all(np.isfinite(fixations)):
    raise ValueError('fixations must be finite and non-negative (a binary or count map).')
  return fixations.astype(np.float64)


def _padded_side(shape: tuple[int, int]) -> int:
  # antonioGaussian.m: n = max(H, W); n += mod(n, 2); n = 2^ceil(log2(n)).
  n = max(shape)
  n += n % 2
  return 2 ** math.ceil(math.log2(n))


def mit_gaussian_sigma(shape: tuple[int, int], cycles_per_image: float) -> float:
  r"""The spatial standard deviation of the MIT benchmark's low-pass filter.

  .. math:: \sigma = \frac{n \sqrt{\ln 2}}{\sqrt{2}\, \pi\, f_c}

  with :math:`n` the longer side of the ``(H, W)`` map rounded up to an even number and then to
  a power of two, as ``antonioGaussian.m`` (cvzoya/saliency) does: its transfer function
  :math:`\exp(-f^2 / s^2)`, :math:`s = 2 f_c / \sqrt{\ln 2}` on the ``2n``-point DFT, is the
  Fourier transform of a Gaussian of this standard deviation.

  Args:
    shape: ``(H, W)`` of the fixation map.
    cycles_per_image: the cut-off ``fc`` (the transfer function is 1/2 there).

  Returns:
    The standard deviation in pixels of the Gaussian the filter approximates.

  Example:
    >>> round(mit_gaussian_sigma((768, 1024), 8), 3)
    23.986
  """
  n = _padded_side(tuple(shape))
  return n * math.sqrt(math.log(2.0)) / (math.sqrt(2.0) * math.pi * cycles_per_image)


def _gaussian_kernel_1d(sigma: float, truncate: float) -> np.ndarray:
  radius = int(truncate * sigma + 0.5)  # scipy.ndimage's radius rule
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  kernel = np.exp(-0.5 * (x / sigma) ** 2)
  return kernel / kernel.sum()


def _blur_axis(x: np.ndarray, kernel: np.ndarray, axis: int, boundary: str) -> np.ndarray:
  radius = (kernel.size - 1) // 2
  pad = [(0, 0), (0, 0)]
  pad[axis] = (radius, radius)
  if boundary == 'constant':
    padded = np.pad(x, pad, mode='constant')
  else:
    # scipy's 'reflect' is (d c b a | a b c d): numpy's 'symmetric'. A kernel wider than the
    # image reflects more than once, which numpy's pad does too.
    padded = np.pad(x, pad, mode='symmetric')
  windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.size, axis=axis)
  return windows @ kernel  # symmetric kernel: correlation == convolution


def _gaussian_blur(x: np.ndarray, sigma: float, truncate: float, boundary: str) -> np.ndarray:
  kernel = _gaussian_kernel_1d(sigma, truncate)
  return _blur_axis(_blur_axis(x, kernel, 0, boundary), kernel, 1, boundary)


def _mit_lowpass(x: np.ndarray, cycles_per_image: float) -> np.ndarray:
  h, w = x.shape
  n = _padded_side((h, w))
  n2 = 2 * n
  padded = np.zeros((n2, n2))
  padded[n : n + h, n : n + w] = x
  # Integer DFT frequencies of the 2n-point transform; the filter keeps [-n/2, n/2).
  freq = np.fft.fftfreq(n2, d=1.0 / n2)
  in_band = (freq >= -n // 2) & (freq < n // 2)
  s = 2.0 * cycles_per_image / math.sqrt(math.log(2.0))  # round(n2 / n) * fc / sqrt(ln 2)
  profile = np.where(in_band, np.exp(-(freq**2) / s**2), 0.0)
  transfer = profile[:, None] * profile[None, :]
  blurred = np.real(np.fft.ifft2(np.fft.fft2(padded) * transfer))
  return blurred[n : n + h, n : n + w]


def fixation_density(
  fixations,
  *,
  sigma: float | None = None,
  cycles_per_image: float | None = None,
  truncate: float = 4.0,
  boundary: str = 'constant',
) -> np.ndarray:
  r"""A ground-truth saliency density from a binary fixation map, normalised to sum to 1.

  .. math:: D = \frac{B}{\sum_p B_p}, \qquad B = \max(G * F, 0)

  where ``F`` is the ``(H, W)`` fixation map and ``G`` a Gaussian:

  * ``sigma=s``: ``G(y, x) ∝ exp(-(y^2 + x^2) / (2 s^2))`` truncated at ``truncate * s`` pixels
    and normalised, applied separably; ``boundary='constant'`` treats outside pixels as 0
    (no fixation), ``'reflect'`` mirrors them. Equal to
    ``scipy.ndimage.gaussian_filter(F, s, mode=boundary, truncate=truncate)`` before the
    normalisation.
  * ``cycles_per_image=fc``: the MIT saliency benchmark's ``antonioGaussian.m`` (see the module
    docstring): a Fourier-domain Gaussian whose amplitude is 1/2 at ``fc`` cycles per image,
    with zero padding. MIT1003 and MIT300 use ``fc=8``.

  Exactly one of ``sigma`` and ``cycles_per_image`` is given. A map without fixations has no
  density: the result is then all zeros (never NaN), which the saliency metrics treat as an
  empty fixation map.

  Args:
    fixations: ``(H, W)`` binary (or count) map of fixated pixels, any real or bool dtype.
    sigma: Gaussian standard deviation in pixels, positive.
    cycles_per_image: the MIT cut-off frequency, positive.
    truncate: the ``sigma`` kernel's radius in standard deviations, as SciPy's ``truncate``.
    boundary: ``'constant'`` or ``'reflect'`` (``sigma`` only; the MIT filter zero-pads).

  Returns:
    ``(H, W)`` float64 NumPy array, non-negative, summing to 1 (or all zeros).

  Example:
    >>> fix = np.zeros((32, 48), np.uint8); fix[10, 20] = 1; fix[5, 40] = 1
    >>> d = fixation_density(fix, sigma=3.0)
    >>> d.shape, round(float(d.sum()), 6)
    ((32, 48), 1.0)
  """
  fixations = _check_fixations(fixations)
  if (sigma is None) == (cycles_per_image is None):
    raise ValueError(
      'exactly one of sigma and cycles_per_image must be given, got '
      f'sigma={sigma!r}, cycles_per_image={cycles_per_image!r}.'
    )
  if boundary not in _BOUNDARIES:
    raise ValueError(f'boundary must be one of {_BOUNDARIES}, got {boundary!r}.')
  if sigma is not None:
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
      raise ValueError(f'sigma must be a positive number of pixels, got {sigma!r}.')
    if not isinstance(truncate, (int, float)) or not truncate > 0:
      raise ValueError(f'truncate must be a positive number, got {truncate!r}.')
    blurred = _gaussian_blur(fixations, float(sigma), float(truncate), boundary)
  else:
    if (
      not isinstance(cycles_per_image, (int, float))
      or isinstance(cycles_per_image, bool)
      or not cycles_per_image > 0
    ):
      raise ValueError(f'cycles_per_image must be a positive number, got {cycles_per_image!r}.')
    if boundary != 'constant':
      raise ValueError(f'boundary={boundary!r} applies to sigma only; the MIT filter zero-pads.')
    blurred = _mit_lowpass(fixations, float(cycles_per_image))
  # A density is >= 0. The Fourier filter leaves round-off of either sign, and for maps under
  # ~128 pixels its band limit (transfer ~0.06 at the edge for n = 64) rings slightly negative.
  blurred = np.maximum(blurred, 0.0)
  total = blurred.sum()
  if total <= 0.0:
    return np.zeros_like(blurred)
  return blurred / total
