r"""GrabCut (Rother, Kolmogorov & Blake 2004) as OpenCV's ``cv2.grabCut`` implements it.

Foreground and background colours are Gaussian mixtures (``num_components`` full-covariance
components each, in RGB on the 0..255 scale). One iteration, in OpenCV's order:

1. every pixel takes the component of its current side's mixture that explains it best,
2. both mixtures are refitted to their pixels (maximum likelihood: weights, means, covariances),
3. the Boykov-Jolly energy is built and minimised by the exact grid cut
   (:func:`jaxseg.classic.grid_min_cut`, 8-connected):

   .. math::
     E(\alpha) = \sum_p D_p(\alpha_p)
               + \sum_{(p, q)} \frac{\gamma}{\mathrm{dist}(p, q)}\,[\alpha_p \ne \alpha_q]\,
                 e^{-\beta \|z_p - z_q\|^2},\qquad
     \beta = \big(2 \langle \|z_p - z_q\|^2 \rangle\big)^{-1},

   with :math:`D_p(\alpha) = -\log \sum_c \pi_c \det\Sigma_c^{-1/2}
   e^{-\frac12 (z_p - \mu_c)^\top \Sigma_c^{-1} (z_p - \mu_c)}` (OpenCV's density, without the
   constant :math:`(2\pi)^{-3/2}`) for undecided pixels, and :math:`9\gamma` (OpenCV's "infinite"
   capacity) tying the sure pixels to their side.

The mixtures start from one k-means run per side, as OpenCV: k-means++ (three greedy trials per
centre) and Lloyd iterations. That seeding is the only randomness (``key``; OpenCV's comes from
``cv2.setRNGSeed``), and it decides which local optimum GrabCut reaches: started from OpenCV's
initial mixtures, this loop reproduces OpenCV's masks (docs/classic.md).
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.classic.graph_cut import _warm_grid_min_cut

__all__ = ['GC_BGD', 'GC_FGD', 'GC_PR_BGD', 'GC_PR_FGD', 'grabcut']

# OpenCV's mask codes.
GC_BGD, GC_FGD, GC_PR_BGD, GC_PR_FGD = 0, 1, 2, 3
_KMEANS_UPDATES = 8  # cv::kmeans with 10 iterations: 1 + 8 label assignments after seeding
_KMEANS_TRIALS = 3  # cv::kmeans++ tries 3 candidates per centre
_EMPTY_NLL = 1e6  # the t-link of an empty mixture (OpenCV: -log 0 = inf)
_SINGULAR_FIX = 0.01  # added to a covariance's diagonal when its determinant is <= 1e-6


# --------------------------------------------------------------------------- the energy


def _beta(image: jax.Array) -> jax.Array:
  """OpenCV's ``calcBeta``: 1 / (2 * mean squared colour difference over 8-neighbour pairs)."""
  height, width = image.shape[:2]
  total = jnp.float32(0)
  for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
    # Every pair (y, x) -- (y + dy, x + dx) with both ends inside the image, once.
    a = image[: height - dy, max(-dx, 0) : width - max(dx, 0)]
    b = image[dy:, max(dx, 0) : width - max(-dx, 0)]
    total = total + jnp.sum((a - b) ** 2)
  pairs = 4 * width * height - 3 * width - 3 * height + 2
  return jnp.where(total > 0, pairs / (2 * jnp.maximum(total, 1e-30)), 0.0)


def _pairwise(image: jax.Array, beta: jax.Array, gamma: jax.Array) -> jax.Array:
  """``(H, W, 4)`` n-link weights to the right, down, down-right and down-left neighbours.

  OpenCV's ``calcNWeights`` stores the same weights at the other end of each edge (left, up,
  up-left, up-right): ``gamma / dist * exp(-beta |z_p - z_q|^2)``, ``dist`` 1 or sqrt(2).
  """
  height, width = image.shape[:2]
  out = []
  for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
    shifted = jnp.pad(image, ((0, dy), (max(-dx, 0), max(dx, 0)), (0, 0)))
    shifted = shifted[dy : dy + height, max(dx, 0) : max(dx, 0) + width]
    diff2 = jnp.sum((image - shifted) ** 2, axis=-1)
    scale = gamma / np.float32(np.sqrt(2.0) if dx and dy else 1.0)
    rows = np.arange(height)[:, None] + dy
    cols = np.arange(width)[None, :] + dx
    inside = (rows < height) & (cols >= 0) & (cols < width)
    out.append(jnp.where(inside, scale * jnp.exp(-beta * diff2), 0.0))
  return jnp.stack(out, axis=-1)


# --------------------------------------------------------------------------- mixtures


def _fit_gmm(pixels: jax.Array, component: jax.Array, weight: jax.Array, num_components: int):
  """OpenCV's ``learnGMMs``/``endLearning`` on the pixels with ``weight`` 1.

  Returns ``(log_coef (C,), mean (C, 3), inverse (C, 3, 3), log_det (C,))``; empty components
  get ``log_coef = -inf``. Covariances are centred sums (two passes) for float32 accuracy.
  """
  onehot = jax.nn.one_hot(component, num_components, dtype=jnp.float32) * weight[:, None]
  counts = jnp.sum(onehot, axis=0)
  safe = jnp.maximum(counts, 1.0)
  mean = (onehot.T @ pixels) / safe[:, None]
  centred = pixels[:, None, :] - mean[None]  # (N, C, 3)
  cov = jnp.einsum('nc,nci,ncj->cij', onehot, centred, centred) / safe[:, None, None]
  det = jnp.linalg.det(cov)
  cov = jnp.where((det <= 1e-6)[:, None, None], cov + _SINGULAR_FIX * jnp.eye(3), cov)
  log_det = jnp.log(jnp.maximum(jnp.linalg.det(cov), 1e-30))
  inverse = jnp.linalg.inv(cov)
  log_coef = jnp.where(counts > 0, jnp.log(safe / jnp.maximum(jnp.sum(counts), 1.0)), -jnp.inf)
  return log_coef, mean, inverse, log_det


def _component_log_density(pixels: jax.Array, gmm) -> jax.Array:
  """``(N, C)``: log of OpenCV's ``GMM::operator()(ci, color)``; ``-inf`` for empty components."""
  log_coef, mean, inverse, log_det = gmm
  centred = pixels[:, None, :] - mean[None]
  mahalanobis = jnp.einsum('nci,cij,ncj->nc', centred, inverse, centred)
  density = -0.5 * log_det[None] - 0.5 * mahalanobis
  return jnp.where(jnp.isfinite(log_coef)[None], density, -jnp.inf)


def _mixture_nll(pixels: jax.Array, gmm) -> jax.Array:
  """``-log sum_c pi_c p_c(z)``, OpenCV's t-link weight, computed in the log domain.

  OpenCV sums the densities directly, which underflows to an infinite weight far from every
  component; the log domain keeps it finite. A mixture with no pixels at all (its side lost
  every pixel in the last cut) gets ``_EMPTY_NLL``: everything then stays on the other side,
  as in OpenCV, without infinite capacities.
  """
  nll = -jax.nn.logsumexp(gmm[0][None] + _component_log_density(pixels, gmm), axis=1)
  return jnp.where(jnp.any(jnp.isfinite(gmm[0])), nll, _EMPTY_NLL)


def _best_component(pixels: jax.Array, gmm) -> jax.Array:
  """OpenCV's ``whichComponent``: the most likely component, unweighted by its coefficient."""
  return jnp.argmax(_component_log_density(pixels, gmm), axis=1).astype(jnp.int32)


def _kmeans_labels(pixels: jax.Array, weight: jax.Array, num_components: int, key: jax.Array):
  """cv::kmeans(KMEANS_PP_CENTERS, 10 iterations) on the pixels with ``weight`` 1.

  One run, as OpenCV's ``initGMMs`` (it passes ``attempts=0``, which cv::kmeans raises to 1):
  keeping the lowest-inertia of several runs changes which local optimum GrabCut reaches (on
  scikit-image's astronaut it favoured one that OpenCV reaches for 1 seed in 40).
  """
  keys = jax.random.split(key, num_components)

  def sq_dist(centre):
    return jnp.sum((pixels - centre) ** 2, axis=1)

  def draw(key, mass, shape):
    # Inverse-CDF sampling with one uniform per draw, as OpenCV's linear scan (a categorical
    # over the N pixels would draw N Gumbel numbers per sample: most of the seeding's time).
    cdf = jnp.cumsum(mass)
    u = jax.random.uniform(key, shape, jnp.float32) * cdf[-1]
    return jnp.clip(jnp.searchsorted(cdf, u, side='right'), 0, mass.shape[0] - 1)

  first = draw(keys[0], weight, ())
  centres = jnp.zeros((num_components, 3), jnp.float32).at[0].set(pixels[first])
  dist = sq_dist(pixels[first]) * weight
  for k in range(1, num_components):
    # k-means++ with OpenCV's greedy trials: draw candidates by D^2, keep the one whose
    # potential (the sum of the updated D^2) is smallest. All D^2 zero: draw by weight.
    mass = jnp.where(jnp.sum(dist) > 0, dist, weight)
    candidates = draw(keys[k], mass, (_KMEANS_TRIALS,))
    updated = jnp.minimum(dist[None], jax.vmap(sq_dist)(pixels[candidates]) * weight[None])
    best = jnp.argmin(jnp.sum(updated, axis=1))
    centres = centres.at[k].set(pixels[candidates[best]])
    dist = updated[best]

  def assign(centres):
    d = jnp.sum((pixels[:, None, :] - centres[None]) ** 2, axis=-1)
    return jnp.argmin(d, axis=1).astype(jnp.int32)

  def update(_, state):
    labels, centres = state
    onehot = jax.nn.one_hot(labels, num_components, dtype=jnp.float32) * weight[:, None]
    counts = jnp.sum(onehot, axis=0)
    new = (onehot.T @ pixels) / jnp.maximum(counts, 1.0)[:, None]
    # An emptied cluster keeps its centre (OpenCV moves a far point into it instead).
    centres = jnp.where((counts > 0)[:, None], new, centres)
    return assign(centres), centres

  labels, _ = jax.lax.fori_loop(0, _KMEANS_UPDATES, update, (assign(centres), centres))
  return labels


# --------------------------------------------------------------------------- the loop


def _terminal_caps(pixels, codes, fg_gmm, bg_gmm, lam):
  """OpenCV's t-links, reparametrised to be non-negative (only their difference matters).

  ``source`` (paid when the pixel ends on the background side) and ``sink`` (paid on the
  foreground side); returns them with the constant ``min(source, sink)`` taken out.
  """
  probable = (codes == GC_PR_BGD) | (codes == GC_PR_FGD)
  source = jnp.where(probable, _mixture_nll(pixels, bg_gmm), jnp.where(codes == GC_BGD, 0.0, lam))
  sink = jnp.where(probable, _mixture_nll(pixels, fg_gmm), jnp.where(codes == GC_BGD, lam, 0.0))
  offset = jnp.minimum(source, sink)
  return source - offset, sink - offset, offset


def _is_foreground(codes):
  return (codes == GC_FGD) | (codes == GC_PR_FGD)


def _grid_cut_8(source, sink, pairwise, flow):
  return _warm_grid_min_cut(source, sink, pairwise, flow, connectivity=8)


@functools.partial(jax.jit, static_argnames=('iterations', 'num_components', 'min_cut'))
def _grabcut_core(
  image, codes, key, gamma, *, iterations, num_components, min_cut=_grid_cut_8, mixtures=None
):
  """Runs GrabCut from initial mask ``codes``; returns the final state for checks.

  ``mixtures``: optional initial ``(fg_gmm, bg_gmm)`` in place of the k-means seeding (tests
  start from the mixtures ``cv2.grabCut(..., iterCount=0)`` returns, to compare the iterations
  alone with OpenCV's).

  ``min_cut(source, sink, pairwise, flow) -> (labels, cut, gap, flow)`` is the exact
  8-connected grid cut; ``flow`` is the previous cut's n-link flow, from which the next one
  starts (the n-links do not change between iterations; tests swap in PyMaxflow, which ignores
  it, to check the rest of the algorithm at full size quickly).

  ``(codes, component, fg_gmm, bg_gmm, energy, gap, steps)``: the mixtures are the ones the
  last cut was built from; ``energy`` is that cut's value plus the constants taken out of the
  t-links (the Boykov-Jolly energy of the final labelling); ``steps`` the iterations run.
  """
  height, width = image.shape[:2]
  pixels = image.reshape(-1, 3)
  lam = 9.0 * gamma
  pairwise = _pairwise(image, _beta(image), gamma)
  flat = codes.reshape(-1)
  fg = _is_foreground(flat).astype(jnp.float32)
  key_bg, key_fg = jax.random.split(key)
  if mixtures is None:
    component = jnp.where(
      fg > 0,
      _kmeans_labels(pixels, fg, num_components, key_fg),
      _kmeans_labels(pixels, 1.0 - fg, num_components, key_bg),
    )
    fg_gmm = _fit_gmm(pixels, component, fg, num_components)
    bg_gmm = _fit_gmm(pixels, component, 1.0 - fg, num_components)
  else:
    fg_gmm, bg_gmm = mixtures
    component = jnp.zeros(flat.shape, jnp.int32)  # only read by the fixed-point test

  def body(state):
    flat, component, fg_gmm, bg_gmm, _, _, step, _, flow = state
    fg = _is_foreground(flat)
    new_component = jnp.where(fg, _best_component(pixels, fg_gmm), _best_component(pixels, bg_gmm))
    fg_w = fg.astype(jnp.float32)
    fg_gmm = _fit_gmm(pixels, new_component, fg_w, num_components)
    bg_gmm = _fit_gmm(pixels, new_component, 1.0 - fg_w, num_components)
    source, sink, offset = _terminal_caps(pixels, flat, fg_gmm, bg_gmm, lam)
    labels, cut, gap, flow = min_cut(
      source.reshape(height, width), sink.reshape(height, width), pairwise, flow
    )
    probable = (flat == GC_PR_BGD) | (flat == GC_PR_FGD)
    new_flat = jnp.where(
      probable, jnp.where(labels.reshape(-1) == 1, GC_PR_FGD, GC_PR_BGD), flat
    ).astype(jnp.int32)
    # A fixed point (same labels and components) repeats itself exactly: stop there.
    changed = jnp.any(new_flat != flat) | jnp.any(new_component != component)
    energy = cut + jnp.sum(offset)
    return new_flat, new_component, fg_gmm, bg_gmm, energy, gap, step + 1, changed, flow

  def cond(state):
    return (state[6] < iterations) & state[7]

  zero = jnp.float32(0)
  state = (
    flat.astype(jnp.int32),
    component,
    fg_gmm,
    bg_gmm,
    zero,
    zero,
    jnp.int32(0),
    jnp.bool_(True),
    jnp.zeros_like(pairwise),
  )
  flat, component, fg_gmm, bg_gmm, energy, gap, steps, *_ = jax.lax.while_loop(cond, body, state)
  return flat.reshape(height, width), component, fg_gmm, bg_gmm, energy, gap, steps


# --------------------------------------------------------------------------- validation


def _check_int(value: Any, name: str, minimum: int) -> int:
  if not isinstance(value, numbers.Integral) or isinstance(value, bool):
    raise TypeError(f'{name} must be an int, got {value!r}.')
  if value < minimum:
    raise ValueError(f'{name} must be at least {minimum}, got {value!r}.')
  return int(value)


def _prepare_image(image: Any) -> jax.Array:
  if not hasattr(image, 'shape') or not hasattr(image, 'dtype'):
    image = np.asarray(image)
  if (
    image.ndim not in (3, 4)
    or image.shape[-1] != 3
    or image.shape[-3] < 2
    or image.shape[-2] < 2
    or (image.ndim == 4 and image.shape[0] < 1)
  ):
    raise ValueError(
      f'image must be (H, W, 3) or (N, H, W, 3) RGB with H, W >= 2, got shape {tuple(image.shape)}.'
    )
  dtype = np.dtype(image.dtype)
  if np.issubdtype(dtype, np.integer) and dtype != np.bool_:
    if not isinstance(image, jax.core.Tracer):
      values = np.asarray(image)
      if values.min() < 0 or values.max() > 255:
        raise ValueError(
          f'integer images must lie in [0, 255], got [{values.min()}, {values.max()}].'
        )
    return jnp.asarray(image).astype(jnp.float32)
  if not np.issubdtype(dtype, np.floating):
    raise TypeError(f'image must be uint8 (0..255) or float (0..1), got dtype {dtype}.')
  if not isinstance(image, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(image))):
    raise ValueError('image must be finite (it has NaN or inf values).')
  # Float images are in [0, 1]: OpenCV's densities and its 0.01 covariance fix are on 0..255.
  return jnp.asarray(image).astype(jnp.float32) * jnp.float32(255)


def _initial_codes(shape: tuple[int, int], rect: Any, mask: Any) -> np.ndarray:
  height, width = shape
  if rect is None and mask is None:
    raise ValueError('grabcut needs rect=(x, y, width, height), mask=, or both.')
  codes = None
  if rect is not None:
    if (
      not isinstance(rect, (tuple, list, np.ndarray))
      or len(rect) != 4
      or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in rect)
    ):
      raise TypeError(f'rect must be four ints (x, y, width, height) as OpenCV, got {rect!r}.')
    x, y, w, h = (int(v) for v in rect)
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
      raise ValueError(
        f'rect (x, y, width, height) = {tuple(rect)} must be non-empty and lie '
        f'inside the {width}x{height} image.'
      )
    codes = np.full(shape, GC_BGD, np.int32)
    codes[y : y + h, x : x + w] = GC_PR_FGD
  if mask is not None:
    if isinstance(mask, jax.core.Tracer):
      raise TypeError('mask must be concrete (it is checked for OpenCV codes).')
    mask = np.asarray(mask)
    if mask.shape != shape:
      raise ValueError(f'mask must have the image shape {shape}, got {mask.shape}.')
    if not np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_:
      raise TypeError(f'mask must hold integer OpenCV codes 0..3, got dtype {mask.dtype}.')
    bad = ~np.isin(mask, (GC_BGD, GC_FGD, GC_PR_BGD, GC_PR_FGD))
    if bad.any():
      raise ValueError(
        f'mask values must be OpenCV codes 0 (GC_BGD), 1 (GC_FGD), 2 (GC_PR_BGD) '
        f'or 3 (GC_PR_FGD), got {np.unique(mask[bad]).tolist()}.'
      )
    if codes is None:
      codes = mask.astype(np.int32)
    else:
      # With a rectangle, the mask's sure codes are scribbles that override it.
      sure = (mask == GC_BGD) | (mask == GC_FGD)
      codes = np.where(sure, mask, codes).astype(np.int32)
  fg = (codes == GC_FGD) | (codes == GC_PR_FGD)
  if fg.all() or not fg.any():
    raise ValueError(
      'the initial mask must hold both background (codes 0, 2) and foreground '
      '(codes 1, 3) pixels: both mixtures need samples.'
    )
  return codes


def grabcut(
  image: Any,
  rect: Any = None,
  *,
  mask: Any = None,
  iterations: int = 5,
  num_components: int = 5,
  gamma: float = 50.0,
  key: jax.Array,
) -> jax.Array:
  r"""Segments the object in a rectangle by GrabCut (Rother, Kolmogorov & Blake 2004).

  Alternates, as ``cv2.grabCut`` does, (1) assigning each pixel the best component of its
  side's colour mixture, (2) refitting the foreground and background mixtures, and (3) the
  exact minimum of the Boykov-Jolly energy

  .. math::
    E = \sum_p -\log P(z_p \mid \text{GMM}_{\alpha_p})
      + \sum_{(p,q) \in \mathcal N_8} \frac{\gamma}{\|p - q\|}
        e^{-\beta \|z_p - z_q\|^2} [\alpha_p \ne \alpha_q],\quad
    \beta = \frac{1}{2 \langle \|z_p - z_q\|^2 \rangle}

  by :func:`jaxseg.classic.grid_min_cut` (8-connected); sure pixels (codes 0 and 1) are tied
  to their side with OpenCV's capacity ``9 gamma``. It stops after ``iterations`` rounds or at
  a fixed point (the same labels and components, which would repeat). The mixtures are
  seeded by k-means++ (OpenCV's three greedy trials per centre) and 10 Lloyd iterations; that
  seeding is the only randomness.

  Cost per iteration: ``O(H W C)`` for the mixtures plus one grid cut, started from the previous
  cut's n-link flow (the n-links do not change; the cut is still exact); jit-compiled once per
  image shape (``rect`` and ``mask`` are checked on the host and become the initial codes).

  Args:
    image: ``(H, W, 3)`` RGB, uint8 in 0..255 or float in [0, 1] (scaled by 255, the scale
      OpenCV's densities and its 0.01 covariance regulariser assume); ``(N, H, W, 3)`` runs a
      batch under ``vmap`` (``rect`` and ``mask`` then shared or one per image, one key each
      split from ``key``).
    rect: OpenCV's ``(x, y, width, height)``: outside is background (code 0), inside probable
      foreground (code 3); it must lie inside the image.
    mask: optional ``(H, W)`` OpenCV codes 0 background, 1 foreground, 2 probable background,
      3 probable foreground. Alone, it is ``GC_INIT_WITH_MASK``; with ``rect``, its sure codes
      (0 and 1) override the rectangle (scribbles) and its probable codes are ignored.
    iterations: the most rounds (OpenCV's ``iterCount``).
    num_components: Gaussians per mixture (OpenCV: 5).
    gamma: the smoothness weight :math:`\gamma` (OpenCV: 50).
    key: PRNG key of the k-means++ seeding.

  Returns:
    ``(H, W)`` (or ``(N, H, W)``) bool foreground mask (OpenCV's codes 1 and 3).

  Example:
    >>> image = np.zeros((24, 24, 3), np.uint8); image[6:18, 6:18] = (200, 40, 40)
    >>> image[::2, ::2] += 10    # some texture, so the mixtures are not singular
    >>> fg = grabcut(image, (3, 3, 18, 18), key=jax.random.PRNGKey(0))
    >>> int(fg.sum()), bool(fg[12, 12]), bool(fg[4, 4])
    (144, True, False)

  Matches ``cv2.grabCut(image, mask, rect, bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)`` to IoU >= 0.95
  for one of OpenCV's seeds on real images (tests/test_classic_grabcut.py).
  """
  pixels = _prepare_image(image)
  iterations = _check_int(iterations, 'iterations', 1)
  num_components = _check_int(num_components, 'num_components', 1)
  if (
    not isinstance(gamma, numbers.Real)
    or isinstance(gamma, bool)
    or not (np.isfinite(gamma) and gamma > 0)
  ):
    raise ValueError(f'gamma must be a finite number > 0, got {gamma!r}.')
  shape = tuple(pixels.shape[-3:-1])
  core = functools.partial(_grabcut_core, iterations=iterations, num_components=num_components)
  if pixels.ndim == 3:
    codes = _initial_codes(shape, rect, mask)
    return _is_foreground(core(pixels, jnp.asarray(codes), key, jnp.float32(gamma))[0])
  count = pixels.shape[0]
  rects = _per_image(rect, count, 'rect', is_rect=True)
  masks = _per_image(mask, count, 'mask', is_rect=False)
  codes = np.stack([_initial_codes(shape, r, m) for r, m in zip(rects, masks)])
  keys = jax.random.split(key, count)
  result = jax.vmap(core, in_axes=(0, 0, 0, None))(
    pixels, jnp.asarray(codes), keys, jnp.float32(gamma)
  )
  return _is_foreground(result[0])


def _per_image(value: Any, count: int, name: str, *, is_rect: bool) -> list:
  """One ``rect``/``mask`` per image of a batch: ``None``, one shared, or one each."""
  if value is None:
    return [None] * count
  if is_rect:
    array = np.asarray(value)
    if array.ndim == 1:
      return [value] * count
    if array.shape != (count, 4):
      raise ValueError(
        f'rect must be one (x, y, width, height) or {count} of them for a batch '
        f'of {count} images, got shape {array.shape}.'
      )
    return [tuple(int(v) for v in row) for row in array]
  if isinstance(value, jax.core.Tracer):
    raise TypeError('mask must be concrete (it is checked for OpenCV codes).')
  array = np.asarray(value)
  if array.ndim == 2:
    return [array] * count
  if array.ndim != 3 or array.shape[0] != count:
    raise ValueError(
      f'mask must be (H, W) or ({count}, H, W) for a batch of {count} images, got '
      f'shape {array.shape}.'
    )
  return list(array)
