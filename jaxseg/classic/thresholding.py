"""Otsu and multi-Otsu thresholds, and labels from thresholds.

Otsu (1979) picks the grey level that maximises the between-class variance of the image
histogram. With more classes the same criterion over `classes - 1` thresholds is a maximisation
over all increasing threshold tuples; scikit-image enumerates them (:math:`O(B^{C-1})` for `B`
bins, seconds at five classes). The criterion is a sum of per-class terms over contiguous bin
ranges, so it decomposes: here it is maximised exactly by dynamic programming over the histogram
in :math:`O(C B^2)`, all `(B, B)` array operations (a fraction of a millisecond).

Histograms follow `skimage.exposure.histogram` so the thresholds are the same bins:

* `uint8`/`int8` images get one bin per integer value (`nbins` ignored, as scikit-image), over
  the dtype's 256 values (scikit-image trims the empty ends, which changes nothing: an empty
  class is never optimal and ties go to the lowest bin in both).
* Other images (floats, wider integers, and the luminance of colour images) get `nbins` equal
  bins between the image's minimum and maximum, NumPy's edges (`np.linspace`) and rule (a value
  on an inner edge goes to the upper bin, the maximum to the last). scikit-image gives wider
  integer types one bin per value; here they are binned like floats.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxseg.classic import _inputs
from jaxseg.classic.color import rgb_to_gray

_LAYOUT = '(H, W), (H, W, C) or (N, H, W, C) with C = 1 (grey) or 3 (RGB, thresholded on luminance)'


def _prepare(image, name='image'):
  """Checks `image`; returns (grey image(s) `(..., H, W)`, batched?, integer bins?)."""
  image = _inputs.check_image(image, name, layout=_LAYOUT, channels=(1, 3))
  batched = image.ndim == 4
  if image.ndim >= 3:
    if image.shape[-1] == 3:
      return rgb_to_gray(image), batched, False
    image = image[..., 0]
  integer_bins = jnp.dtype(image.dtype) in (jnp.dtype(jnp.uint8), jnp.dtype(jnp.int8))
  return jnp.asarray(image), batched, integer_bins


def _histogram(gray, nbins, integer_bins):
  """Counts (int32) and bin centres (float32) of one grey image."""
  flat = gray.reshape(-1)
  if integer_bins:
    low = int(jnp.iinfo(flat.dtype).min)
    index = flat.astype(jnp.int32) - low
    centres = jnp.arange(256, dtype=jnp.float32) + low
    return jnp.bincount(index, length=256).astype(jnp.int32), centres
  flat = flat.astype(jnp.float32)
  lo, hi = jnp.min(flat), jnp.max(flat)
  # skimage widens an empty range to avoid a zero bin width.
  lo, hi = jnp.where(lo == hi, lo - 0.5, lo), jnp.where(lo == hi, hi + 0.5, hi)
  # np.linspace's edges, in the image's float32 (as skimage's bin dtype for float32 images).
  step = (hi - lo) / nbins
  edges = jnp.arange(nbins + 1, dtype=jnp.float32) * step + lo
  edges = edges.at[-1].set(hi)
  index = jnp.clip(jnp.searchsorted(edges, flat, side='right') - 1, 0, nbins - 1)
  centres = (edges[:-1] + edges[1:]) / 2.0
  return jnp.bincount(index, length=nbins).astype(jnp.int32), centres


@functools.partial(jax.jit, static_argnames=('nbins', 'integer_bins', 'int_exact'))
def _otsu_one(gray, nbins, integer_bins, int_exact):
  counts, centres = _histogram(gray, nbins, integer_bins)
  bins = counts.shape[0]
  index = jnp.arange(bins, dtype=jnp.int32 if int_exact else jnp.float32)
  counts_m = counts if int_exact else counts.astype(jnp.float32)
  weight1 = jnp.cumsum(counts_m)
  moment1 = jnp.cumsum(counts_m * index)
  total_w, total_m = weight1[-1], moment1[-1]
  weight2, moment2 = total_w - weight1, total_m - moment1
  w1, w2 = weight1.astype(jnp.float32), weight2.astype(jnp.float32)
  valid = (weight1 > 0) & (weight2 > 0)
  mean1 = moment1.astype(jnp.float32) / jnp.where(valid, w1, 1.0)
  mean2 = moment2.astype(jnp.float32) / jnp.where(valid, w2, 1.0)
  # Between-class variance times pixels^2 for the split after bin t (skimage's variance12).
  between = jnp.where(valid, w1 * w2 * (mean1 - mean2) ** 2, -jnp.inf)
  threshold = centres[jnp.argmax(between)]  # first maximum, as np.argmax
  flat = gray.reshape(-1)
  constant = jnp.all(flat == flat[0])
  # A constant image has no split; skimage returns its value.
  return jnp.where(constant, flat[0].astype(jnp.float32), threshold)


def _int_exact(gray_shape, bins):
  pixels = 1
  for size in gray_shape[-2:]:
    pixels *= size
  return pixels * (bins - 1) < 2**31


def threshold_otsu(image: jax.Array, *, nbins: int = 256) -> jax.Array:
  r"""Otsu's threshold (Otsu 1979), as `skimage.filters.threshold_otsu`.

  With the histogram :math:`n_b` over bin centres :math:`x_b`, the threshold is the centre
  :math:`x_t` maximising the between-class variance of the split `{b <= t}` / `{b > t}`:

  .. math::
    t^* = \arg\max_t\; w_1(t)\, w_2(t)\, (\mu_1(t) - \mu_2(t))^2,
    \quad w_1 = \sum_{b \le t} n_b,\; \mu_1 = \tfrac{1}{w_1}\sum_{b \le t} n_b x_b

  (and likewise above `t`); the first maximum wins. Pixels above the threshold are the
  foreground (`image > t`); `apply_thresholds` gives `image >= t` the upper label, as
  `np.digitize`. Bins: see the module docstring (one per value for `uint8`).

  Args:
    image: `(H, W)` grey, `(H, W, 1)`, `(H, W, 3)` RGB (thresholded on its luminance
      `rgb_to_gray`), or a batch `(N, H, W, C)`.
    nbins: number of histogram bins for non-`uint8` images.

  Returns:
    The threshold in the image's units (luminance in [0, 1] for colour): a float32 scalar, or
    `(N,)` for a batch. A constant image returns its value.

  Example:
    >>> image = jnp.array([[10, 10, 12, 200], [11, 198, 201, 199]], jnp.uint8)
    >>> threshold_otsu(image)
    Array(12., dtype=float32)
  """
  gray, batched, integer_bins = _prepare(image)
  nbins = _inputs.check_int(nbins, 'nbins', minimum=2)
  bins = 256 if integer_bins else nbins
  fn = functools.partial(
    _otsu_one, nbins=nbins, integer_bins=integer_bins, int_exact=_int_exact(gray.shape, bins)
  )
  return jax.vmap(fn)(gray) if batched else fn(gray)


@functools.partial(jax.jit, static_argnames=('classes', 'nbins', 'integer_bins', 'int_exact'))
def _multiotsu_one(gray, classes, nbins, integer_bins, int_exact):
  counts, centres = _histogram(gray, nbins, integer_bins)
  bins = counts.shape[0]
  index = jnp.arange(bins, dtype=jnp.int32 if int_exact else jnp.float32)
  counts_m = counts if int_exact else counts.astype(jnp.float32)
  zero = jnp.zeros((1,), counts_m.dtype)
  weight = jnp.concatenate([zero, jnp.cumsum(counts_m)])  # weight[j] = pixels in bins < j
  moment = jnp.concatenate([zero, jnp.cumsum(counts_m * index)])
  # score[i, j]: the class of bins i..j contributes S^2 / P (its share of the between-class
  # variance up to constants); empty classes and i > j are impossible (-inf).
  p = weight[None, 1:] - weight[:-1, None]
  # Intensities measured from an integer `shift` near the mean: the objective changes by a
  # constant, its terms become the (small) between-class variance instead of the (large) raw
  # second moment, and S - shift * P stays an exact integer. float32 then separates tuples
  # whose exact variances differ by 1e-7 relative (raw moments would not).
  if int_exact:
    shift = moment[-1] // jnp.maximum(weight[-1], 1)
  else:
    shift = jnp.round(moment[-1] / jnp.maximum(weight[-1], 1.0))
  s = ((moment[None, 1:] - moment[:-1, None]) - shift * p).astype(jnp.float32)
  pf = p.astype(jnp.float32)
  upper = jnp.arange(bins)[:, None] <= jnp.arange(bins)[None, :]
  score = jnp.where(upper & (p > 0), s * s / jnp.where(p > 0, pf, 1.0), -jnp.inf)
  # best[j]: the best score of bins 0..j cut into c + 1 classes; start[c][j]: where its last
  # class starts. The maximum over starts takes the first (lowest) start among ties, so empty
  # bins between classes put each threshold at the lowest equivalent bin, as scikit-image's
  # lexicographic search does.
  best = score[0]
  starts = []
  for _ in range(1, classes):
    # candidate[i, j] = best[i - 1] + score[i, j] for a last class i..j, i >= 1.
    candidate = jnp.concatenate(
      [jnp.full((1, bins), -jnp.inf), best[:-1, None] + score[1:]], axis=0
    )
    starts.append(jnp.argmax(candidate, axis=0))
    best = jnp.max(candidate, axis=0)
  # Backtrack from the last bin: threshold = the bin before each class start.
  thresholds = []
  end = bins - 1
  for start in reversed(starts):
    begin = start[end]
    thresholds.append(begin - 1)
    end = begin - 1
  indices = jnp.stack(thresholds[::-1])
  feasible = jnp.isfinite(best[-1])  # at least `classes` occupied bins
  return jnp.where(feasible, centres[indices], jnp.nan)


def threshold_multiotsu(image: jax.Array, *, classes: int = 3, nbins: int = 256) -> jax.Array:
  r"""Multi-Otsu thresholds (Liao, Chen & Chung 2001), exact by dynamic programming.

  For `C` classes of contiguous bins :math:`[b_0, t_1], [t_1 + 1, t_2], \ldots, [t_{C-1} + 1,
  B - 1]`, the between-class variance is, up to terms independent of the thresholds,

  .. math::
    \sigma_B^2(t) \propto \sum_{c=1}^{C} \frac{S_c^2}{P_c},
    \quad P_c = \sum_{b \in c} n_b,\; S_c = \sum_{b \in c} b\, n_b .

  The sum decomposes over classes, so with :math:`F_c(j)` the best value of bins `0..j` cut
  into `c` classes, :math:`F_c(j) = \max_{i \le j} F_{c-1}(i - 1) + S_{i..j}^2 / P_{i..j}`,
  an exact :math:`O(C B^2)` recursion (scikit-image enumerates all :math:`\binom{B}{C-1}` tuples).
  Ties (empty bins between classes) go to the lowest bins, as scikit-image's lexicographic search.
  Agrees with `skimage.filters.threshold_multiotsu` (the same bins) except where scikit-image's
  float32 search misses the optimum (its first-moment table counts bin 0 as intensity 1, and its
  float32 sums blur tuples within ~1e-7 of each other): there the thresholds here have the larger
  exact between-class variance (the tests check it in float64).

  Args:
    image: `(H, W)` grey, `(H, W, 1)`, `(H, W, 3)` RGB (thresholded on its luminance), or a
      batch `(N, H, W, C)`.
    classes: number of classes, at least 2.
    nbins: histogram bins for non-`uint8` images (see the module docstring).

  Returns:
    The `classes - 1` increasing thresholds in the image's units (bin centres), float32, shape
    `(classes - 1,)` or `(N, classes - 1)`. NaN where the image occupies fewer than `classes`
    bins (scikit-image raises there; a traced function cannot).

  Example:
    >>> image = jnp.array([[0, 1, 100, 101], [200, 201, 0, 100]], jnp.uint8)
    >>> threshold_multiotsu(image, classes=3)
    Array([  1., 101.], dtype=float32)
  """
  gray, batched, integer_bins = _prepare(image)
  classes = _inputs.check_int(classes, 'classes', minimum=2)
  nbins = _inputs.check_int(nbins, 'nbins', minimum=2)
  bins = 256 if integer_bins else nbins
  if classes > bins:
    raise ValueError(f'classes={classes} must be at most the number of bins ({bins}).')
  fn = functools.partial(
    _multiotsu_one,
    classes=classes,
    nbins=nbins,
    integer_bins=integer_bins,
    int_exact=_int_exact(gray.shape, bins),
  )
  return jax.vmap(fn)(gray) if batched else fn(gray)


def apply_thresholds(image: jax.Array, thresholds: jax.Array) -> jax.Array:
  r"""Labels from increasing thresholds, as `np.digitize(image, thresholds)`.

  .. math::
    \ell(x) = \#\{k : x \ge t_k\}

  so `x < t_0` is label 0 and `x >= t_{K-1}` label `K`. NaN thresholds count for nothing.

  Args:
    image: grey `(H, W)`, `(H, W, 1)`, RGB `(H, W, 3)` (its luminance), or a batch
      `(N, H, W, C)`.
    thresholds: `(K,)` increasing thresholds in the image's units (a scalar for one), or
      `(N, K)` for a batch.

  Returns:
    int32 labels in `0..K`, shape `(H, W)` or `(N, H, W)`.

  Example:
    >>> image = jnp.array([[0, 50, 100], [150, 200, 250]], jnp.uint8)
    >>> apply_thresholds(image, jnp.array([100.0, 200.0]))
    Array([[0, 0, 1],
           [1, 2, 2]], dtype=int32)
  """
  gray, batched, _ = _prepare(image)
  thresholds = _inputs.as_array(thresholds, 'thresholds')
  expected = 2 if batched else 1
  thresholds = jnp.asarray(thresholds, jnp.float32)
  if thresholds.ndim == expected - 1:
    thresholds = thresholds[..., None]
  if thresholds.ndim != expected or (batched and thresholds.shape[0] != gray.shape[0]):
    raise ValueError(
      f'thresholds must have shape {"(N, K)" if batched else "(K,)"} for an '
      f'image of shape {tuple(image.shape)}, got {tuple(thresholds.shape)}.'
    )
  values = gray.astype(jnp.float32)
  if batched:
    thresholds = thresholds[:, None, None, :]
  return jnp.sum(values[..., None] >= thresholds, axis=-1, dtype=jnp.int32)
